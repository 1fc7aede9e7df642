"""Every environment persuasion_gym registers, in one place."""

from __future__ import annotations

import gymnasium as gym

ENVS = {
    "Persuasion-GSM8K-v0": ("persuasion_gym.envs.gsm8k:GSM8KEnv", "persuasion_gym.envs.vector:gsm8k_vector_env"),
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


register_envs()
