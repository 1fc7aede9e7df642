"""Gymnasium environments (registered in ``persuasion_gym.registration``).

One module per task env (``gsm8k``, ``humaneval``, ``mbpp``, ``math``, ``reasoning_gym``,
``table``, ``classic``); ``persuasion_env`` is the env they share, made from ``settings``
(its arguments) by ``builders``, checking actions with ``actions``, reporting steps with
``batch`` and results with ``provenance``; ``vector`` is its native vector env.
``persuasion_gym.envs.sb3`` (needs stable-baselines3) adapts the vector env for SB3.
"""

from persuasion_gym.envs.classic import ClassicPersuasionEnv, ProsecutorEnv
from persuasion_gym.envs.gsm8k import GSM8KEnv
from persuasion_gym.envs.humaneval import HumanEvalEnv
from persuasion_gym.envs.math import MATHEnv
from persuasion_gym.envs.mbpp import MBPPEnv
from persuasion_gym.envs.persuasion_env import PersuasionEnv
from persuasion_gym.envs.reasoning_gym import ReasoningGymEnv
from persuasion_gym.envs.settings import EnvSettings
from persuasion_gym.envs.table import TableEnv
from persuasion_gym.envs.vector import PersuasionVectorEnv
from persuasion_gym.errors import InvalidActionError

__all__ = ["ClassicPersuasionEnv", "EnvSettings", "GSM8KEnv", "HumanEvalEnv", "MATHEnv", "MBPPEnv", "ProsecutorEnv",
           "InvalidActionError", "PersuasionEnv", "PersuasionVectorEnv", "ReasoningGymEnv", "TableEnv"]
