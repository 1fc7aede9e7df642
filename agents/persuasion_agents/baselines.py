"""The policies to beat: no signal, uniform random, a fixed signal, the best fixed signal, and
the per-item oracle (the upper bound)."""

from __future__ import annotations

from typing import Any, cast

import gymnasium as gym
import numpy as np

from persuasion_agents.evaluation import best_fixed_signal, reward_table
from persuasion_agents.policy import Policy
from persuasion_gym.envs import PersuasionEnv


class NoSignal(Policy):
    """Always the empty signal (the baseline every lift is measured against)."""

    name = "none"

    def fit(self, env: gym.Env, timesteps: int = 0, *, seed: int | None = None, progress: bool = False) -> None:
        index = cast(PersuasionEnv, env.unwrapped).signals.empty_index
        if index is None:
            raise ValueError("the env's signal library has no empty signal '': the no-signal baseline needs one")
        self.index = index

    def act(self, observations, info):
        return np.full(len(observations), self.index)


class UniformRandom(Policy):
    name = "random"

    def act(self, observations, info):
        return self.rng.integers(self.n_actions, size=len(observations))


class FixedSignal(Policy):
    def __init__(self, index: int):
        self.index, self.name = index, f"fixed-{index}"

    def act(self, observations, info):
        return np.full(len(observations), self.index)


class BestFixed(Policy):
    """The signal with the best mean reward on the training split (exact on a table)."""

    name = "best-fixed"
    needs_training = True

    def fit(self, env: gym.Env, timesteps: int = 0, *, seed: int | None = None, progress: bool = False) -> None:
        self.index = best_fixed_signal(reward_table(env))

    def act(self, observations, info):
        return np.full(len(observations), self.index)


class Oracle(Policy):
    """The best signal for each item, read off the evaluation env's rewards (a table, or
    every cell asked once): the upper bound no signaling policy can beat."""

    name = "oracle"

    def fit(self, env: gym.Env, timesteps: int = 0, *, seed: int | None = None, progress: bool = False) -> None:
        """``env`` is the *evaluation* env: the oracle knows the answers there."""
        self.best = reward_table(env).argmax(axis=1)

    def act(self, observations, info: dict[str, Any]):
        return self.best[np.asarray(info["item_index"])]
