"""Re-scoring a recorded table with the current scorer, for free: no Receiver call.

When a scorer improves (a fixed numeric extractor, a new MATH normaliser), every recorded
table is stale. ``rescore`` recomputes each cell's answer and score from its stored response;
code tasks run the stored programs again in the sandbox, against the tests of the data set the
table was recorded on (loaded again, and checked against the recorded hash).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

import persuasion_gym
from persuasion_gym.errors import ConfigError, DataError
from persuasion_gym.receivers.reasoning import split_reasoning
from persuasion_gym.sandbox import Limits, Sandbox
from persuasion_gym.tables.table import ResponseTable, load_table
from persuasion_gym.tables.values import baseline_values
from persuasion_gym.tasks import TASKS, CodeTask, Dataset, Task

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rescored:
    """A re-scored table and what changed: cells whose score or answer differs."""

    table: ResponseTable
    changed_scores: int
    changed_answers: int
    values_before: dict[str, Any]
    values_after: dict[str, Any]


def rescore(source: str | Path | ResponseTable, task: Task | str | None = None, data_path: str | None = None,
            sandbox: str | None = None) -> Rescored:
    """Re-score every cell of a table from its stored responses with the current scorer.

    ``task``: by default the table's task, rebuilt with the settings it was recorded with where
    the task has any (code tasks: the sandbox limits); a task's name for a table that records
    none; or a ``Task``, used as it is. ``data_path``: where a code task's data set is (its tests
    are not in the table). ``sandbox``: code tasks, ``"local"`` (default) or ``"ray"``."""
    name = task if isinstance(task, str) else None if task is None else task.name
    table = load_table(source, task=name)
    if not table.meta.get("task"):  # a table passed in as it is
        if name is None:
            raise DataError("the table records no task: name it, rescore(table, task=NAME) (gsm8k, math, "
                            "humaneval, mbpp or a registered task)")
        table = replace(table, meta={**table.meta, "task": name})
    if isinstance(task, str) and table.task != task:
        raise DataError(f"the table was recorded on task {table.task!r}, not {task!r}: drop --task (task=), "
                        "or name the table's own task")
    if isinstance(task, Task):
        if sandbox is not None:
            raise ConfigError("sandbox= is for the task rescore rebuilds from the table; a Task passed in keeps "
                              "its own sandbox: build it with the sandbox to use, or drop sandbox=")
    else:
        task = _recorded_task(table, sandbox)
    n, k, s = table.scores.shape
    if not _complete(table.responses, n, k, s):
        raise DataError(
            f"the table holds no stored response for some of its {n} x {k} x {s} cells: it cannot be re-scored; "
            "record it again (persuasion-gym record ... --out NEW)"
        )
    dataset = _items(table, task, data_path)
    items = [dataset.items[i] for i in range(n) for _ in range(k) for _ in range(s)]
    stored = [table.responses[i][j][t] for i in range(n) for j in range(k) for t in range(s)]
    thoughts = [table.reasonings[i][j][t] for i in range(n) for j in range(k) for t in range(s)]
    # A table recorded before answers were split from their thinking holds inline <think>
    # blocks: the scorer reads the answer alone; a block never closed was cut off mid-thought.
    split = [(text, thought) if thought is not None else split_reasoning(text) for text, thought in
             zip(stored, thoughts, strict=True)]
    responses = [answer.strip() if thought is not None else answer for answer, thought in split]
    cut_off = np.array([bool(t) and not a and "</think>" not in old.lower() and "<think>" in old.lower()
                        for (a, t), old in zip(split, stored, strict=True)]).reshape(n, k, s)
    logger.info("re-scoring %d cells with the %s scorer", len(responses), task.name)

    def nest(values: list) -> list:
        return [[values[(i * k + j) * s:(i * k + j + 1) * s] for j in range(k)] for i in range(n)]

    scores = task.score_batch(items, responses)
    new_scores = np.array([score.reward for score in scores], dtype=np.float32).reshape(n, k, s)
    flat_answers = [score.answer for score in scores]
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
    rescored = replace(table, meta=meta, scores=new_scores, answers=nest(flat_answers), responses=nest(responses),
                       reasonings=nest([thought for _, thought in split]), truncated=table.truncated | cut_off)
    return Rescored(
        rescored,
        changed_scores=int((new_scores != table.scores).sum()),
        changed_answers=sum(a != b for a, b in zip(flat_answers, old_answers, strict=True)),
        values_before=baseline_values(table),
        values_after=baseline_values(rescored),
    )


def _recorded_task(table: ResponseTable, sandbox: str | None) -> Task:
    """The table's task as it was recorded: a code task gets a sandbox with the recorded limits
    (a tighter timeout fails programs a default one passes), on ``sandbox`` ("local", "ray")."""
    if table.task not in TASKS:
        raise DataError(
            f"the table's task {table.task!r} is unknown here (known: {', '.join(TASKS)}): register it with "
            "persuasion_gym.tasks.register_task, or pass task="
        )
    task = TASKS[table.task]()
    recorded = table.meta.get("task_settings") or {}
    if not isinstance(task, CodeTask):
        if sandbox is not None:
            raise ConfigError(f"--sandbox is for code tasks (humaneval, mbpp), not {table.task}")
        # A task whose items and scorer its settings make (reasoning-gym: the generator, its config, the seed).
        from_settings = getattr(task, "from_settings", None)
        return from_settings(recorded) if from_settings is not None else task
    # Any factory, classes and registered lambdas alike, builds its task with a default sandbox:
    # replace it before the first program runs.
    task.sandbox = _recorded_sandbox(recorded, sandbox or "local", table.meta.get("package_version"))
    if recorded.get("sandbox") and recorded["sandbox"] != task.sandbox.isolation.name:
        logger.warning("the table was scored under %s isolation, it is re-scored under %s",
                       recorded["sandbox"], task.sandbox.isolation.name)
    return task


def _recorded_sandbox(recorded: dict[str, Any], kind: str, version: str | None) -> Sandbox:
    limits = recorded.get("limits") or {}
    unknown = sorted(set(limits) - {f.name for f in fields(Limits)})
    if unknown:
        raise DataError(f"the table's sandbox limits name {', '.join(unknown)}, unknown to persuasion-gym "
                        f"{persuasion_gym.__version__}: re-score it with the version that recorded it ({version}), "
                        "or pass task= a code task with the sandbox to use")
    try:
        recorded_limits = Limits(**limits)
    except (TypeError, ValueError) as exc:
        raise DataError(f"the table's sandbox limits {limits} are not valid ({exc}): record it again") from None
    # "auto": bubblewrap where it works here, else the announced fallback; the isolation that
    # actually ran goes into the new table's settings.
    if kind == "ray":
        from persuasion_gym.sandbox.on_ray import RaySandbox

        return RaySandbox("auto", recorded_limits)
    if kind != "local":
        raise ConfigError(f"sandbox={kind!r}: use 'local' or 'ray'")
    return Sandbox("auto", recorded_limits)


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
