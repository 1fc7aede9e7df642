"""Scoring a choice of signals on a whole split, as one concurrent Receiver batch, and what
the answers cost: the one place for reward tables, the best fixed signal, the accounting of
calls, tokens and cost, and the run record that ``bench`` and ``compare`` report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import gymnasium as gym
import numpy as np

from persuasion_gym.envs import PersuasionEnv
from persuasion_gym.persuasion.exchange import Outcome
from persuasion_gym.receivers import Receiver

if TYPE_CHECKING:
    from persuasion_agents.benchmark import Setting
    from persuasion_gym.receivers.base import Spending


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


def cell_outcomes(env: gym.Env, progress: bool = False) -> list[list[Outcome]]:
    """The scored answer of every (item, signal) cell of the env's split, ``[item][signal]``,
    asked as one batch (the cells are cached, so training on them afterwards is free)."""
    persuasion_env = cast(PersuasionEnv, env.unwrapped)
    n_items, n_signals = len(persuasion_env.dataset), len(persuasion_env.signals)
    outcomes = persuasion_env.evaluate(
        [s for _ in range(n_items) for s in range(n_signals)],
        [i for i in range(n_items) for _ in range(n_signals)],
        progress=progress,
    )
    return [outcomes[i * n_signals:(i + 1) * n_signals] for i in range(n_items)]


def rewards_of(cells: Sequence[Sequence[Outcome]]) -> np.ndarray:
    """The ``(items, signals)`` rewards of ``cell_outcomes``."""
    return np.array([[o.reward for o in row] for row in cells], dtype=np.float64).reshape(len(cells), -1)


def reward_table(env: gym.Env, progress: bool = False) -> np.ndarray:
    """Rewards of every (item, signal) cell of the env's split, shape ``(items, signals)``,
    asked as one batch (the cells are cached, so training on them afterwards is free)."""
    return rewards_of(cell_outcomes(env, progress))


def best_fixed_signal(table: np.ndarray) -> int:
    """The signal with the highest mean reward over a table's items (ties: lowest index)."""
    return int(np.argmax(np.asarray(table).mean(axis=0)))


@dataclass
class Spent:
    """What answers took: Receiver calls paid in this run, tokens (reasoning tokens among
    them), cost (USD), and how many the token limit cut off."""

    calls: float = 0.0
    tokens: float = 0.0
    cost_usd: float = 0.0
    reasoning_tokens: float = 0.0
    truncated: float = 0.0


def spent(outcomes: Sequence[Outcome], receiver: Receiver, weights: Sequence[float] | None = None) -> Spent:
    """What ``outcomes`` of a live Receiver took, as ``bench`` and ``compare`` count it: calls
    and cost for the answers paid now (a cache hit is free; the cost is ``receiver.cost_of``),
    tokens, reasoning tokens and cut-offs for every answer. ``weights`` make it an expectation
    over a draw (one weight per outcome)."""
    total = Spent()
    for outcome, weight in zip(outcomes, [1.0] * len(outcomes) if weights is None else weights, strict=True):
        total.tokens += weight * outcome.usage.total_tokens
        total.reasoning_tokens += weight * outcome.usage.reasoning_tokens
        total.truncated += weight * outcome.truncated
        if not outcome.cached:
            total.calls += weight
            total.cost_usd += weight * receiver.cost_of(outcome.usage)
    return total


def held_out(env: gym.Env, actions: np.ndarray, progress: bool = False) -> tuple[np.ndarray, Spent, float | None]:
    """Per-item rewards of ``actions`` (one per item of the env's split), what their answers
    took, and the oracle's value where it is exact. On a recorded table: the cells' means, the
    tokens they were recorded with, no calls; on a live Receiver: one scored answer per item."""
    core = cast(PersuasionEnv, env.unwrapped)
    if core.table is None:
        outcomes = core.evaluate(actions.tolist(), progress=progress)
        assert core.receiver is not None  # no table: a live Receiver
        return np.array([o.reward for o in outcomes]), spent(outcomes, core.receiver), None
    table, rows = core.table, core.table_rows
    assert rows is not None  # a table env's rows
    used = (table.prompt_tokens + table.completion_tokens)[rows, actions]
    answers = Spent(tokens=int(used.sum()), reasoning_tokens=int(table.reasoning_tokens[rows, actions].sum()),
                    truncated=float(table.truncated[rows, actions].mean(axis=-1).sum()))
    return table.utilities[rows, actions], answers, float(table.utilities[rows].max(axis=1).mean())


def run_record(policy: str, setting: Setting, rewards: Sequence[float] | np.ndarray, actions: Sequence[Any],
               answers: Spent, provenance: dict[str, Any], extra: dict[str, Any] | None = None, *,
               curve: Sequence[tuple[int, float]] = (), fitting: Spending | None = None,
               oracle_value: float | None = None) -> dict[str, Any]:
    """One run as ``bench`` saves it and ``results`` reads it: the policy's held-out actions
    and rewards, its learning curve, and what it cost, the answers scored plus what fitting it
    paid (``fitting``, a ``spending`` reading; its calls also apart, as ``fit_receiver_calls``).
    Counts are rounded: an expectation over a draw (``compare``'s prior) weighs its cells."""
    calls, tokens, reasoning, cost = (0, 0, 0, 0.0) if fitting is None else (
        fitting.calls, fitting.tokens, fitting.reasoning_tokens, fitting.cost_usd)
    run = {"policy": policy, "env": setting.env_id, "receiver": setting.receiver, "split": setting.split,
           "actions": list(actions), "rewards": np.asarray(rewards, dtype=np.float64).tolist(), "curve": list(curve),
           "receiver_calls": round(answers.calls) + calls, "tokens": round(answers.tokens) + tokens,
           "reasoning_tokens": round(answers.reasoning_tokens) + reasoning, "cost_usd": answers.cost_usd + cost,
           "truncated": answers.truncated, "oracle_value": oracle_value, "provenance": provenance}
    if fitting is not None:
        run["fit_receiver_calls"] = fitting.calls
    return {**run, **(extra or {})}


def baseline_actions(env: gym.Env, seed: int = 0) -> dict[str, np.ndarray]:
    """Per-item actions of the baselines: the empty signal and a uniformly random signal."""
    persuasion_env = cast(PersuasionEnv, env.unwrapped)
    n_items, n_signals = len(persuasion_env.dataset), len(persuasion_env.signals)
    baselines = {"random signal": np.random.default_rng(seed).integers(n_signals, size=n_items)}
    if persuasion_env.signals.empty_index is not None:
        baselines = {"no signal": np.full(n_items, persuasion_env.signals.empty_index), **baselines}
    return baselines
