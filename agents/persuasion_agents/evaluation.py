"""Scoring a choice of signals on a whole split, as one concurrent Receiver batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import gymnasium as gym
import numpy as np

from persuasion_gym.envs import PersuasionEnv


def accuracy(env: gym.Env, actions: Sequence[int], progress: bool = False) -> float:
    """Mean reward of sending ``actions[i]`` on item ``i`` of the env's split."""
    persuasion_env = cast(PersuasionEnv, env.unwrapped)
    outcomes = persuasion_env.evaluate(list(actions), progress=progress)
    return float(np.mean([o.reward for o in outcomes]))


def accuracies(env: gym.Env, policies: dict[str, Sequence[int]], progress: bool = False) -> dict[str, float]:
    """``accuracy`` of several policies (name to per-item actions), asked as one batch: cells
    that policies share are generated once."""
    persuasion_env = cast(PersuasionEnv, env.unwrapped)
    n_items = len(persuasion_env.dataset)
    actions = [int(a) for name in policies for a in policies[name]]
    outcomes = persuasion_env.evaluate(actions, list(range(n_items)) * len(policies), progress=progress)
    rewards = np.array([o.reward for o in outcomes]).reshape(len(policies), n_items)
    return {name: float(row.mean()) for name, row in zip(policies, rewards, strict=True)}


def reward_table(env: gym.Env, progress: bool = False) -> np.ndarray:
    """Rewards of every (item, signal) cell of the env's split, shape ``(items, signals)``,
    asked as one batch (the cells are cached, so training on them afterwards is free)."""
    persuasion_env = cast(PersuasionEnv, env.unwrapped)
    n_items, n_signals = len(persuasion_env.dataset), len(persuasion_env.signals)
    outcomes = persuasion_env.evaluate(
        [s for _ in range(n_items) for s in range(n_signals)],
        [i for i in range(n_items) for _ in range(n_signals)],
        progress=progress,
    )
    return np.array([o.reward for o in outcomes], dtype=np.float64).reshape(n_items, n_signals)


def best_fixed_signal(table: np.ndarray) -> int:
    """The signal with the highest mean reward over a table's items (ties: lowest index)."""
    return int(np.argmax(table.mean(axis=0)))


def baseline_actions(env: gym.Env, seed: int = 0) -> dict[str, np.ndarray]:
    """Per-item actions of the baselines: the empty signal and a uniformly random signal."""
    persuasion_env = cast(PersuasionEnv, env.unwrapped)
    n_items, n_signals = len(persuasion_env.dataset), len(persuasion_env.signals)
    baselines = {"random signal": np.random.default_rng(seed).integers(n_signals, size=n_items)}
    if persuasion_env.signals.empty_index is not None:
        baselines = {"no signal": np.full(n_items, persuasion_env.signals.empty_index), **baselines}
    return baselines
