"""Gymnasium environments (registered in ``persuasion_gym.registration``).

``persuasion_gym.envs.sb3`` (needs stable-baselines3) adapts the vector env for SB3.
"""

from persuasion_gym.envs.classic import ClassicPersuasionEnv, ProsecutorEnv
from persuasion_gym.envs.gsm8k import GSM8KEnv
from persuasion_gym.envs.humaneval import HumanEvalEnv
from persuasion_gym.envs.more_tasks import MATHEnv, MBPPEnv
from persuasion_gym.envs.persuasion_env import PersuasionEnv
from persuasion_gym.envs.reasoning_gym import ReasoningGymEnv
from persuasion_gym.envs.table import TableEnv
from persuasion_gym.envs.vector import PersuasionVectorEnv
from persuasion_gym.errors import InvalidActionError

__all__ = ["ClassicPersuasionEnv", "GSM8KEnv", "HumanEvalEnv", "MATHEnv", "MBPPEnv", "ProsecutorEnv",
           "InvalidActionError", "PersuasionEnv", "PersuasionVectorEnv", "ReasoningGymEnv", "TableEnv"]
