"""Tasks: data sets of task items, the prompts that ask the Receiver, and their scorers."""

from persuasion_gym.errors import ConfigError
from persuasion_gym.tasks.base import Dataset, Messages, Score, Task, TaskItem
from persuasion_gym.tasks.gsm8k import GSM8KTask
from persuasion_gym.tasks.numeric import extract_numeric_answer, numbers_match, parse_number

TASKS: dict[str, type[Task]] = {"gsm8k": GSM8KTask}


def make_task(task: str | Task) -> Task:
    """A task by name (``"gsm8k"``) or an instance passed through."""
    if isinstance(task, Task):
        return task
    try:
        return TASKS[task]()
    except KeyError:
        raise ConfigError(f"unknown task {task!r}: use one of {', '.join(TASKS)} or pass a Task") from None


__all__ = [
    "TASKS", "Dataset", "GSM8KTask", "Messages", "Score", "Task", "TaskItem",
    "extract_numeric_answer", "make_task", "numbers_match", "parse_number",
]
