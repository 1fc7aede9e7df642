"""PPO Advisors with Stable-Baselines3: defaults that suit one-step persuasion episodes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from persuasion_agents.deep import DEFAULTS

# The deep-RL PPO defaults, with rollouts cut for a few single-env copies instead of one wide
# native vector env: 4 copies x 64 steps, minibatches of 64.
PPO_DEFAULTS: dict[str, Any] = {**DEFAULTS["ppo"], "n_steps": 64, "batch_size": 64}


def train_ppo(
    make_env: Callable[[], gym.Env],
    total_timesteps: int,
    n_envs: int = 4,
    seed: int = 0,
    progress_bar: bool = False,
    **ppo_kwargs: Any,
):
    """Train an SB3 PPO Advisor with ``MlpPolicy`` on ``n_envs`` copies of ``make_env()``."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env(make_env, n_envs=n_envs, seed=seed)
    model = PPO("MlpPolicy", venv, seed=seed, verbose=0, **{**PPO_DEFAULTS, **ppo_kwargs})
    callback = None
    if progress_bar:
        from persuasion_agents.progress import TqdmCallback

        callback = TqdmCallback(total_timesteps, desc="training PPO")
    model.learn(total_timesteps=total_timesteps, callback=callback)
    return model


def greedy_actions(model, observations: np.ndarray) -> np.ndarray:
    """The policy's most likely signal for each observation."""
    actions, _ = model.predict(observations, deterministic=True)
    return np.asarray(actions, dtype=np.int64)
