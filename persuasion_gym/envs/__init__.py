"""Gymnasium environments (registered in ``persuasion_gym.registration``)."""

from persuasion_gym.envs.gsm8k import GSM8KEnv
from persuasion_gym.envs.persuasion_env import PersuasionEnv
from persuasion_gym.errors import InvalidActionError

__all__ = ["GSM8KEnv", "InvalidActionError", "PersuasionEnv"]
