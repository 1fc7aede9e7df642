"""Tasks: data sets of task items, the prompts that ask the Receiver, and their scorers."""

from collections.abc import Callable

from persuasion_gym.errors import ConfigError
from persuasion_gym.tasks.base import Dataset, Messages, Score, Task, TaskItem
from persuasion_gym.tasks.code import CodeItem, CodeTask
from persuasion_gym.tasks.code_extraction import extract_program
from persuasion_gym.tasks.gsm8k import GSM8KTask
from persuasion_gym.tasks.humaneval import HumanEvalTask
from persuasion_gym.tasks.math import MATHTask
from persuasion_gym.tasks.math_answers import extract_math_answer, math_answers_match
from persuasion_gym.tasks.mbpp import MBPPTask
from persuasion_gym.tasks.numeric import extract_numeric_answer, numbers_match, parse_number
from persuasion_gym.tasks.reasoning_gym import ReasoningGymTask

# Task name -> a factory of the task (classes are factories; ``register_task`` adds yours).
TASKS: dict[str, Callable[[], Task]] = {
    "gsm8k": GSM8KTask, "humaneval": HumanEvalTask, "mbpp": MBPPTask, "math": MATHTask,
    "reasoning_gym": ReasoningGymTask,
}


def register_task(task: Task | Callable[[], Task]) -> str:
    """Make a task known by its name (``make_task(name)``, tables replayed from it); returns the name."""
    factory = (lambda: task) if isinstance(task, Task) else task
    name = factory().name if not isinstance(task, Task) else task.name
    TASKS[name] = factory
    return name


def make_task(task: str | Task) -> Task:
    """A task by name (``"gsm8k"``, ``"humaneval"``, ...) or an instance passed through."""
    if isinstance(task, Task):
        return task
    try:
        return TASKS[task]()
    except KeyError:
        raise ConfigError(
            f"unknown task {task!r}: use one of {', '.join(TASKS)}, pass a Task, or register yours "
            "with persuasion_gym.register_env(env_id, task)"
        ) from None


__all__ = [
    "TASKS", "CodeItem", "CodeTask", "Dataset", "GSM8KTask", "HumanEvalTask", "MATHTask", "MBPPTask",
    "Messages", "ReasoningGymTask", "Score", "Task", "TaskItem", "extract_math_answer", "extract_numeric_answer",
    "extract_program", "make_task", "math_answers_match", "numbers_match", "parse_number", "register_task",
]
