"""Every environment persuasion_gym registers, in one place."""

from __future__ import annotations

import gymnasium as gym

ENV_IDS: tuple[str, ...] = ("Persuasion-GSM8K-v0",)


def register_envs() -> None:
    """Register the envs with Gymnasium (idempotent: ``import persuasion_gym`` calls it)."""
    if "Persuasion-GSM8K-v0" not in gym.registry:
        gym.register(
            id="Persuasion-GSM8K-v0",
            entry_point="persuasion_gym.envs.gsm8k:GSM8KEnv",
        )


register_envs()
