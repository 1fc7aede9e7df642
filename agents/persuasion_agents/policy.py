"""The one protocol every signaling policy implements.

A policy acts on a batch of observations and the step's info (per-episode arrays, at least
``item_index``), and may learn from the rewards. ``fit(env, timesteps, seed=, progress=)`` is
the one training verb, as SB3's ``learn`` is for its algorithms: whatever a policy does before
acting on held-out items (choose the best fixed signal, learn online, train PPO, search a
prompt, train the LM Advisor by GRPO). A new policy is a few lines::

    class AlwaysHint(Policy):
        name = "always-hint"
        def act(self, observations, info):
            return np.full(len(observations), 3)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from persuasion_agents.training import train_online

if TYPE_CHECKING:
    from persuasion_gym.receivers import Receiver


def env_sizes(env: gym.Env) -> tuple[int, int]:
    """What ``Policy.bind`` takes from an env: its number of signals (a Discrete action space)
    and its observation dimension (a Box)."""
    return int(cast(spaces.Discrete, env.action_space).n), cast(spaces.Box, env.observation_space).shape[0]


class Policy(ABC):
    """A signaling policy over ``n_actions`` signals."""

    name: str = "policy"
    # Whether the harness must hand ``fit`` the *training* env (and its timesteps) before it
    # acts on held-out items; else ``fit`` gets the evaluation env, to read its sizes or signals.
    needs_training: bool = False
    # Envs an online learner steps at once in ``fit`` (one Receiver batch per step).
    n_envs: int = 16
    # What ``fit`` learnt by: (episodes so far, mean reward of the recent ones).
    curve: Sequence[tuple[int, float]] = ()

    def bind(self, n_actions: int, observation_dim: int, seed: int = 0) -> None:
        """Called once by the harness with the env's sizes, before ``fit``/``act``."""
        self.n_actions, self.observation_dim = n_actions, observation_dim
        self.rng = np.random.default_rng(seed)

    def fit(self, env: gym.Env, timesteps: int = 0, *, seed: int | None = None, progress: bool = False) -> None:
        """Prepare on an env (a single env; ``env.unwrapped`` is a PersuasionEnv) for up to
        ``timesteps`` episodes. By default an online learner (a policy that overrides
        ``update``) learns on ``timesteps`` episodes, ``n_envs`` at a time, and records its
        ``curve``; any other policy needs nothing."""
        if timesteps and type(self).update is not Policy.update:
            self.curve = train_online(self, env, timesteps, n_envs=self.n_envs, seed=0 if seed is None else seed,
                                      progress=progress)

    @property
    def side_receivers(self) -> tuple[Receiver, ...]:
        """Models the policy asks itself (a reflection model, an Advisor): their calls are
        reported apart from the Receiver's."""
        return ()

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Release what training holds (RLlib's env runners); the fitted policy still acts."""

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
