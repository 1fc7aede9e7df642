"""Recording a response table: every (item, signal) cell, S samples, one batched pass.

Every response is cached the moment it arrives (see ``Receiver.respond``), so a recording
killed at any point and run again pays for nothing twice: finished cells come back from the
cache and only the rest are asked.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import persuasion_gym
from persuasion_gym.persuasion import exchange
from persuasion_gym.receivers import Receiver
from persuasion_gym.signals import SignalLibrary
from persuasion_gym.tables.table import ResponseTable
from persuasion_gym.tasks import Dataset, Task

logger = logging.getLogger(__name__)
# The share of cut-off answers past which a recording warns.
TRUNCATION_WARNING = 0.02


def record(
    task: Task,
    receiver: Receiver,
    dataset: Dataset,
    signals: Sequence[str],
    samples: int = 1,
    out: str | Path | None = None,
    progress: bool = True,
    env_id: str | None = None,
) -> ResponseTable:
    """Ask ``receiver`` every item of ``dataset`` with every signal, ``samples`` times each;
    return the table (and write it to ``out`` when given)."""
    if samples < 1:
        raise ValueError(f"samples={samples}: record at least one sample per cell")
    n, k = len(dataset), len(signals)
    cells = [(i, j, s) for i in range(n) for j in range(k) for s in range(samples)]
    outcomes = exchange(
        task, receiver,
        [dataset.items[i] for i, _, _ in cells], [signals[j] for _, j, _ in cells], [s for _, _, s in cells],
        progress=progress,
    )
    shape = (n, k, samples)
    scores = np.array([o.reward for o in outcomes], dtype=np.float32).reshape(shape)
    prompt_tokens = np.array([o.usage.prompt_tokens for o in outcomes], dtype=np.int32).reshape(shape)
    completion_tokens = np.array([o.usage.completion_tokens for o in outcomes], dtype=np.int32).reshape(shape)
    latency = np.array([o.latency_s for o in outcomes], dtype=np.float32).reshape(shape)
    reasoning_tokens = np.array([o.usage.reasoning_tokens for o in outcomes], dtype=np.int32).reshape(shape)
    truncated = np.array([o.truncated for o in outcomes], dtype=bool).reshape(shape)
    if truncated.mean() > TRUNCATION_WARNING:
        logger.warning(
            "%d of %d answers (%.0f%%) were cut off by the token limit and score as they are: the table measures "
            "the budget more than the model; raise it (%s) and record again (another budget is another Receiver "
            "identity, so every cell is asked anew)", truncated.sum(), truncated.size, 100 * truncated.mean(),
            receiver.budget_option)

    def nest(values: list) -> list:
        return [[values[(i * k + j) * samples:(i * k + j + 1) * samples] for j in range(k)] for i in range(n)]

    example = dataset.items[0]
    meta = {
        "task": task.name,
        "task_settings": task.settings(),
        "env_id": env_id,
        "dataset": {"name": dataset.name, "split": dataset.split, "source": dataset.source,
                    "sha256": dataset.sha256, "n_items": n},
        "receiver": receiver.identity,
        # What the server said of its backend with the answers (OpenAI's system_fingerprint):
        # more than one means the backend changed during the recording.
        "system_fingerprints": sorted({o.fingerprint for o in outcomes if o.fingerprint}),
        "samples": samples,
        "signals_sha256": SignalLibrary(signals).fingerprint,
        "prompt_example": task.build_messages(example, "{signal}"),
        "usage": {"prompt_tokens": int(prompt_tokens.sum()), "completion_tokens": int(completion_tokens.sum()),
                  "reasoning_tokens": int(reasoning_tokens.sum())},
        "truncated": int(truncated.sum()),
        "package_version": persuasion_gym.__version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    table = ResponseTable(
        meta=meta, item_ids=[i.item_id for i in dataset.items], item_texts=dataset.texts,
        golds=[i.gold for i in dataset.items], signals=list(signals), scores=scores,
        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, latency_s=latency,
        responses=nest([o.response for o in outcomes]), answers=nest([o.answer for o in outcomes]),
        reasoning_tokens=reasoning_tokens, truncated=truncated, reasonings=nest([o.reasoning for o in outcomes]),
        finish_reasons=nest([o.finish_reason for o in outcomes]),
    )
    if out is not None:
        table.save(out)
    return table
