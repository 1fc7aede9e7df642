"""Re-scoring a recorded table with the current scorer, for free: no Receiver call.

When a scorer improves (a fixed numeric extractor, a new MATH normaliser), every recorded
table is stale. ``rescore`` recomputes each cell's answer and score from its stored response;
code tasks run the stored programs again in the sandbox, against the tests of the data set the
table was recorded on (loaded again, and checked against the recorded hash).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

import persuasion_gym
from persuasion_gym.errors import DataError
from persuasion_gym.tables.table import ResponseTable, load_table
from persuasion_gym.tables.values import baseline_values
from persuasion_gym.tasks import TASKS, CodeTask, Dataset, Task, make_task

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rescored:
    """A re-scored table and what changed: cells whose score or answer differs."""

    table: ResponseTable
    changed_scores: int
    changed_answers: int
    values_before: dict[str, Any]
    values_after: dict[str, Any]


def rescore(source: str | Path | ResponseTable, task: Task | None = None, data_path: str | None = None) -> Rescored:
    """Re-score every cell of a table from its stored responses with ``task``'s scorer
    (default: the table's task, by name). ``data_path``: where a code task's data set is (its
    tests are not in the table)."""
    table = load_table(source)
    if task is None:
        if table.task not in TASKS:
            raise DataError(
                f"the table's task {table.task!r} is unknown here (known: {', '.join(TASKS)}): register it with "
                "persuasion_gym.tasks.register_task, or pass task="
            )
        task = make_task(table.task)
    n, k, s = table.scores.shape
    if not _complete(table.responses, n, k, s):
        raise DataError(
            f"the table holds no stored response for some of its {n} x {k} x {s} cells: it cannot be re-scored; "
            "record it again (persuasion-gym record ... --out NEW)"
        )
    dataset = _items(table, task, data_path)
    items = [dataset.items[i] for i in range(n) for _ in range(k) for _ in range(s)]
    responses = [table.responses[i][j][t] for i in range(n) for j in range(k) for t in range(s)]
    logger.info("re-scoring %d cells with the %s scorer", len(responses), task.name)
    scores = task.score_batch(items, responses)
    new_scores = np.array([score.reward for score in scores], dtype=np.float32).reshape(n, k, s)
    flat_answers = [score.answer for score in scores]
    new_answers = [[flat_answers[(i * k + j) * s:(i * k + j + 1) * s] for j in range(k)] for i in range(n)]
    old_answers = [a for row in table.answers for cell in row for a in cell]
    meta = {
        **table.meta,
        "task_settings": task.settings(),
        "rescored": {
            "scorer": {"task": task.name, "settings": task.settings()},
            "package_version": persuasion_gym.__version__,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "previous": {"package_version": table.meta.get("package_version"),
                         "task_settings": table.meta.get("task_settings"),
                         "rescored": table.meta.get("rescored")},
        },
    }
    rescored = replace(table, meta=meta, scores=new_scores, answers=new_answers)
    return Rescored(
        rescored,
        changed_scores=int((new_scores != table.scores).sum()),
        changed_answers=sum(a != b for a, b in zip(flat_answers, old_answers, strict=True)),
        values_before=baseline_values(table),
        values_after=baseline_values(rescored),
    )


def _complete(responses: Any, n: int, k: int, s: int) -> bool:
    try:
        return len(responses) == n and all(
            len(row) == k and all(len(cell) == s and all(isinstance(r, str) for r in cell) for cell in row)
            for row in responses
        )
    except TypeError:
        return False


def _items(table: ResponseTable, task: Task, data_path: str | None) -> Dataset:
    """The items to score against: the table's own (text and gold), or for a code task the data
    set's, whose tests the table does not hold."""
    if not isinstance(task, CodeTask):
        return table.dataset
    recorded = table.meta["dataset"]
    try:
        dataset = task.load(recorded["split"], data_path)
    except DataError as exc:
        raise DataError(
            f"re-scoring a {task.name} table runs its tests, which the table does not hold: {exc}") from None
    if dataset.sha256 != recorded["sha256"]:
        raise DataError(
            f"the {task.name} data set found ({dataset.source}, sha256 {dataset.sha256[:12]}...) is not the one the "
            f"table was recorded on (sha256 {recorded['sha256'][:12]}...): pass --data-path to that data set"
        )
    by_id = {item.item_id: item for item in dataset.items}
    missing = [item_id for item_id in table.item_ids if item_id not in by_id]
    if missing:
        raise DataError(f"{len(missing)} of the table's items are not in {dataset.source} (first: {missing[0]})")
    return replace(dataset, items=tuple(by_id[item_id] for item_id in table.item_ids))
