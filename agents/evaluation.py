"""Scoring a choice of signals on a whole split, as one concurrent Receiver batch."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from persuasion_gym.envs import PersuasionEnv


def accuracy(env: gym.Env, actions: Sequence[int]) -> float:
    """Mean reward of sending ``actions[i]`` on item ``i`` of the env's split."""
    persuasion_env: PersuasionEnv = env.unwrapped  # type: ignore[assignment]
    outcomes = persuasion_env.evaluate(list(actions))
    return float(np.mean([o.reward for o in outcomes]))


def baseline_actions(env: gym.Env, seed: int = 0) -> dict[str, np.ndarray]:
    """Per-item actions of the baselines: the empty signal and a uniformly random signal."""
    persuasion_env: PersuasionEnv = env.unwrapped  # type: ignore[assignment]
    n_items, n_signals = len(persuasion_env.dataset), len(persuasion_env.signals)
    baselines = {"random signal": np.random.default_rng(seed).integers(n_signals, size=n_items)}
    if persuasion_env.signals.empty_index is not None:
        baselines = {"no signal": np.full(n_items, persuasion_env.signals.empty_index), **baselines}
    return baselines
