"""Deep-RL Advisors through Stable-Baselines3 (PPO, A2C, DQN): ``SB3Policy`` behind the policy
protocol, and ``train_ppo``, PPO on copies of any single env.

Training is SB3's own ``learn`` on the native vector env (one Receiver batch per step), with
SB3 callbacks; models are saved and loaded with SB3's own ``save``/``load``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from persuasion_agents.policy import Policy
from persuasion_agents.training import vectorize

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

# One-step episodes: nothing to bootstrap (gamma = 0), short rollouts, some entropy early on.
DEFAULTS: dict[str, dict[str, Any]] = {
    "ppo": {"n_steps": 8, "batch_size": 128, "n_epochs": 10, "learning_rate": 1e-3, "ent_coef": 0.01,
            "gamma": 0.0, "gae_lambda": 1.0},
    "a2c": {"n_steps": 4, "learning_rate": 1e-3, "ent_coef": 0.01, "gamma": 0.0, "gae_lambda": 1.0},
    # train_freq counts vector steps: with 16 envs, one gradient step per 16 episodes.
    "dqn": {"learning_rate": 1e-3, "buffer_size": 50_000, "learning_starts": 256, "batch_size": 128,
            "train_freq": 1, "gradient_steps": 2, "target_update_interval": 50, "gamma": 0.0,
            "exploration_fraction": 0.3, "exploration_final_eps": 0.02},
}
# PPO's defaults with rollouts cut for a few single-env copies instead of one wide native
# vector env (``train_ppo``): 4 copies x 64 steps, minibatches of 64.
PPO_DEFAULTS: dict[str, Any] = {**DEFAULTS["ppo"], "n_steps": 64, "batch_size": 64}


def sb3_vec_env(env, n_envs: int):
    """The native vector env over ``env`` as an SB3 VecEnv, with episode statistics (VecMonitor)."""
    from stable_baselines3.common.vec_env import VecMonitor

    from persuasion_gym.envs.sb3 import as_sb3_vec_env

    return VecMonitor(as_sb3_vec_env(vectorize(env, n_envs)))


def algorithm(name: str):
    from stable_baselines3 import A2C, DQN, PPO

    try:
        return {"ppo": PPO, "a2c": A2C, "dqn": DQN}[name]
    except KeyError:
        raise ValueError(f"unknown SB3 algorithm {name!r}: use ppo, a2c or dqn") from None


class SB3Policy(Policy):
    """An SB3 model as a signaling policy. ``fit`` trains it with ``learn``."""

    needs_training = True

    def __init__(self, algo: str = "ppo", n_envs: int = 16, callbacks: list | None = None,
                 tensorboard_log: str | None = None, **kwargs: Any):
        algorithm(algo)
        self.algo, self.name, self.n_envs = algo, algo, n_envs
        self.callbacks, self.tensorboard_log, self.kwargs = callbacks or [], tensorboard_log, kwargs
        self.model: BaseAlgorithm | None = None
        self.curve: list[tuple[int, float]] = []

    def make_model(self, env, seed: int = 0):
        venv = sb3_vec_env(env, self.n_envs)
        options = {**DEFAULTS[self.algo], **self.kwargs}
        return algorithm(self.algo)("MlpPolicy", venv, seed=seed, verbose=0, tensorboard_log=self.tensorboard_log,
                                    **options)

    def fit(self, env: gym.Env, timesteps: int = 0, *, seed: int | None = None, progress: bool = False) -> None:
        """``timesteps`` more steps of ``learn`` (a model loaded or trained before continues,
        its step count and logs with it)."""
        from persuasion_agents.progress import TqdmCallback

        if self.model is None:
            self.model = self.make_model(env, int(self.rng.integers(2**31)) if seed is None else seed)
        bar = TqdmCallback(timesteps, desc=f"training {self.algo}", disable=not progress)
        self.model.learn(timesteps, callback=[bar, *self.callbacks], reset_num_timesteps=self.model.num_timesteps == 0)
        self.curve = bar.curve

    def _fitted(self) -> BaseAlgorithm:
        assert self.model is not None, "fit or load the policy first"
        return self.model

    def act(self, observations, info):
        return np.asarray(self._fitted().predict(observations, deterministic=False)[0], dtype=np.int64)

    def greedy(self, observations, info):
        return np.asarray(self._fitted().predict(observations, deterministic=True)[0], dtype=np.int64)

    def save(self, path: str | Path) -> None:
        self._fitted().save(path)

    @classmethod
    def load(cls, path: str | Path, algo: str = "ppo", env=None) -> SB3Policy:
        policy = cls(algo)
        venv = None if env is None else sb3_vec_env(env, policy.n_envs)
        policy.model = algorithm(algo).load(path, env=venv)
        return policy


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
