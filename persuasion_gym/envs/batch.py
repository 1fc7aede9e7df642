"""What a batch of persuasion episodes produced (``StepBatch``), and the step ``info`` made
of it: ``episode_info`` for one episode (the single env, the server's sessions) and
``batch_info`` for all of them as arrays (the vector env), from the same fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from persuasion_gym.persuasion import Outcome
from persuasion_gym.receivers import Usage
from persuasion_gym.signals import SignalLibrary
from persuasion_gym.tables import ResponseTable


def compose_context(signal: str, item: str) -> str:
    """What the Receiver reads when both the Advisor's text signal and an information item
    go into its context (the text ``posterior`` protocol): the signal, then the item."""
    return "\n".join(part for part in (signal, item) if part)


@dataclass
class StepBatch:
    """What a batch of episodes produced. ``chosen`` is the information item each Receiver
    saw (-1: none); ``outcomes`` are the live Receiver's scored responses (None on a table)."""

    rewards: np.ndarray
    chosen: np.ndarray
    samples: np.ndarray
    beliefs: np.ndarray | None
    outcomes: list[Outcome] | None
    rows: np.ndarray | None = None  # table rows, on a table
    columns: np.ndarray | None = None
    log_likelihoods: np.ndarray | None = None  # the Advisor's, of its text signals (text posterior)


def signal_text(action: int | str, signals: SignalLibrary) -> str:
    """The text an action sent: a text action itself, or the library's text at an index (an
    index past the library, as the posterior protocols' signals are, is named by its number)."""
    if isinstance(action, str):
        return action
    return signals[action] if action < len(signals) else f"<signal {action}>"


def table_outcome(table: ResponseTable, signals: SignalLibrary, batch: StepBatch, j: int) -> Outcome:
    """Episode ``j`` of a table's batch as the Outcome a live Receiver would have given."""
    assert batch.rows is not None and batch.columns is not None  # a table's batch
    r, c, s = int(batch.rows[j]), int(batch.columns[j]), int(batch.samples[j])
    return Outcome(
        context=signals[int(batch.chosen[j])] if batch.chosen[j] >= 0 else "",
        response=table.responses[r][c][s], answer=table.answers[r][c][s],
        correct=bool(table.scores[r, c, s] >= 1.0), reward=float(batch.rewards[j]),
        usage=Usage(int(table.prompt_tokens[r, c, s]), int(table.completion_tokens[r, c, s]),
                    int(table.reasoning_tokens[r, c, s])),
        latency_s=float(table.latency_s[r, c, s]), cached=True, truncated=bool(table.truncated[r, c, s]),
        finish_reason=table.finish_reasons[r][c][s], reasoning=table.reasonings[r][c][s],
    )


def _protocol_info(batch: StepBatch, signals: SignalLibrary, protocol: str) -> dict[str, np.ndarray]:
    """What the protocol adds, per episode: the Receiver's beliefs (``posterior`` under the
    posterior protocol, else ``prior``), the information item it saw, the Advisor's likelihoods."""
    info: dict[str, np.ndarray] = {}
    if batch.beliefs is not None:
        info["posterior" if protocol == "posterior" else "prior"] = batch.beliefs
        info["information_index"] = batch.chosen
        info["information_item"] = np.array([signals[int(c)] for c in batch.chosen], dtype=object)
    if batch.log_likelihoods is not None:
        info["log_likelihoods"] = batch.log_likelihoods
    return info


def episode_info(batch: StepBatch, j: int, action: int | str, outcome: Outcome, signals: SignalLibrary,
                 protocol: str) -> dict[str, Any]:
    """The single env's step info of episode ``j`` (beyond the item's and what the Advisor
    observed): the action, its text, the sample, the reward, the scored answer, the protocol's."""
    info: dict[str, Any] = {"action": action, "signal": signal_text(action, signals),
                            "sample": int(batch.samples[j]), "reward": float(batch.rewards[j]), **outcome.info()}
    for key, values in _protocol_info(batch, signals, protocol).items():
        value = values[j]  # a row of beliefs or likelihoods, an index, or a text
        if isinstance(value, np.ndarray):
            value = value.copy()
        elif isinstance(value, np.generic):
            value = value.item()
        info[key] = value
    return info


def batch_info(batch: StepBatch, items: np.ndarray, actions: Sequence | np.ndarray, signals: SignalLibrary,
               protocol: str) -> dict[str, Any]:
    """The vector env's step info as per-episode arrays: the items, the actions and their
    texts, the information item each Receiver saw (-1: none), whether it was right, the
    sample, the protocol's, and for a live Receiver its response, answer and tokens."""
    info: dict[str, Any] = {
        "item_index": items, "action": actions,
        "signal": np.array([signal_text(a, signals) for a in actions], dtype=object),
        "information_index": batch.chosen, "correct": batch.rewards >= 1.0, "sample": batch.samples,
        **_protocol_info(batch, signals, protocol),
    }
    if batch.outcomes is not None:
        info["response"] = np.array([o.response for o in batch.outcomes], dtype=object)
        info["answer"] = np.array([o.answer for o in batch.outcomes], dtype=object)
        info["total_tokens"] = np.array([o.usage.total_tokens for o in batch.outcomes])
    return info
