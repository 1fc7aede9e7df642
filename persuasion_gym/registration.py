"""Every environment persuasion_gym registers, in one place, and ``register_env`` for yours."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym

from persuasion_gym.tasks import Task, register_task

ENVS = {
    "Persuasion-GSM8K-v0": ("persuasion_gym.envs.gsm8k:GSM8KEnv", "persuasion_gym.envs.vector:gsm8k_vector_env"),
    "Persuasion-HumanEval-v0": ("persuasion_gym.envs.humaneval:HumanEvalEnv",
                                "persuasion_gym.envs.vector:humaneval_vector_env"),
    "Persuasion-MBPP-v0": ("persuasion_gym.envs.mbpp:MBPPEnv", "persuasion_gym.envs.vector:mbpp_vector_env"),
    "Persuasion-MATH-v0": ("persuasion_gym.envs.math:MATHEnv", "persuasion_gym.envs.vector:math_vector_env"),
    "Persuasion-ReasoningGym-v0": ("persuasion_gym.envs.reasoning_gym:ReasoningGymEnv",
                                   "persuasion_gym.envs.reasoning_gym:reasoning_gym_vector_env"),
    "Persuasion-Table-v0": ("persuasion_gym.envs.table:TableEnv", "persuasion_gym.envs.vector:table_vector_env"),
    "Persuasion-Prosecutor-v0": ("persuasion_gym.envs.classic:ProsecutorEnv", None),
    "Persuasion-Classic-v0": ("persuasion_gym.envs.classic:ClassicPersuasionEnv", None),
}
ENV_IDS: tuple[str, ...] = tuple(ENVS)


def register_envs() -> None:
    """Register the envs with Gymnasium (idempotent: ``import persuasion_gym`` calls it).
    ``gym.make_vec(id, num_envs=N)`` builds the native batched vector env."""
    for env_id, (entry_point, vector_entry_point) in ENVS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, vector_entry_point=vector_entry_point)


def register_env(env_id: str, task: Task | Callable[[], Task], **defaults: Any) -> None:
    """Register an env for your own task: ``gym.make(env_id)`` and ``gym.make_vec(env_id,
    num_envs=N)`` then build it (a ``PersuasionEnv`` with ``defaults`` as its default
    arguments), and tables recorded from it replay by the task's name. ``task`` is a Task or
    a zero-argument factory of one; registering an id again replaces it."""
    name = register_task(task)
    gym.registry.pop(env_id, None)
    gym.register(id=env_id, entry_point="persuasion_gym.envs.persuasion_env:PersuasionEnv",
                 vector_entry_point="persuasion_gym.envs.vector:task_vector_env", kwargs={"task": name, **defaults})


register_envs()
