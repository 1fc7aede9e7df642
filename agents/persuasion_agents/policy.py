"""The one protocol every signaling policy implements.

A policy acts on a batch of observations and the step's info (per-episode arrays, at least
``item_index``), and may learn from the rewards. ``fit`` is the hook for whatever a policy
does before acting on held-out items (choose the best fixed signal, train PPO, ...). A new
policy is a few lines::

    class AlwaysHint(Policy):
        name = "always-hint"
        def act(self, observations, info):
            return np.full(len(observations), 3)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def env_sizes(env: gym.Env) -> tuple[int, int]:
    """What ``Policy.bind`` takes from an env: its number of signals (a Discrete action space)
    and its observation dimension (a Box)."""
    return int(cast(spaces.Discrete, env.action_space).n), cast(spaces.Box, env.observation_space).shape[0]


class Policy(ABC):
    """A signaling policy over ``n_actions`` signals."""

    name: str = "policy"
    # Whether the harness must hand ``fit`` the *training* env (or train it online, if it
    # overrides ``update``) before it acts on held-out items.
    needs_training: bool = False

    def bind(self, n_actions: int, observation_dim: int, seed: int = 0) -> None:
        """Called once by the harness with the env's sizes, before ``fit``/``act``."""
        self.n_actions, self.observation_dim = n_actions, observation_dim
        self.rng = np.random.default_rng(seed)

    def fit(self, env: gym.Env, timesteps: int = 0) -> None:  # noqa: B027 - an optional hook
        """Prepare on an env (a single env; ``env.unwrapped`` is a PersuasionEnv): the training
        env if ``needs_training``, else the evaluation env (to read its sizes or signals)."""

    @abstractmethod
    def act(self, observations: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        """One signal per observation (shape ``(N,)``): an index into the env's signals, or
        the signal's text (an object array of str, as the LM Advisor writes them)."""

    def update(  # noqa: B027 - an optional hook
        self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray, info: dict[str, Any]
    ) -> None:
        """Learn from a batch of scored episodes (online learners)."""

    def greedy(self, observations: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        """The actions to evaluate with: no exploration. Defaults to ``act``. The benchmark's
        ``info`` holds ``item_index`` and ``text`` (the items' texts)."""
        return self.act(observations, info)
