"""Response tables: every (task item, signal) cell's recorded, scored Receiver responses.

One ``.npz`` file, self-describing and portable (no pickle): the scores (items x signals x
samples), token counts, latencies, the response texts and extracted answers, the items
(ids, texts, gold answers), the signal texts, and metadata (Receiver identity with its decoding
parameters, dataset name/split/source/hash, package version, date). Since reasoning Receivers,
also each response's thinking, why it stopped, its reasoning tokens and whether it was cut off
by the token limit; tables recorded before read as having none.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from persuasion_gym.errors import DataError, TableError
from persuasion_gym.tasks import Dataset, TaskItem

FORMAT = "persuasion-gym-table/1"


@dataclass
class ResponseTable:
    """Recorded scored responses; ``scores[i, k, s]`` is sample s of item i with signal k."""

    meta: dict[str, Any]
    item_ids: list[str]
    item_texts: list[str]
    golds: list[str]
    signals: list[str]
    scores: np.ndarray  # float32 (items, signals, samples)
    prompt_tokens: np.ndarray  # int32, same shape
    completion_tokens: np.ndarray
    latency_s: np.ndarray  # float32, same shape
    responses: list = field(repr=False)  # nested lists [item][signal][sample] of str: the answers' texts
    answers: list = field(repr=False)  # same nesting, str or None: what the scorer extracted
    # Filled in by __post_init__ when not given (None), so always the types named here.
    reasoning_tokens: Any = field(default=None, repr=False)  # np.ndarray int32, same shape as scores
    truncated: Any = field(default=None, repr=False)  # np.ndarray bool: cut off by the token limit
    reasonings: Any = field(default=None, repr=False)  # list, same nesting as responses: str or None
    finish_reasons: Any = field(default=None, repr=False)  # list, same nesting: str or None

    def __post_init__(self) -> None:
        n, k = len(self.item_ids), len(self.signals)
        if self.scores.ndim != 3 or self.scores.shape[:2] != (n, k):
            raise DataError(f"table scores have shape {self.scores.shape}, expected ({n}, {k}, samples)")
        # A table recorded before reasoning Receivers: no thinking, nothing known to be cut off.
        if self.reasoning_tokens is None:
            self.reasoning_tokens = np.zeros(self.scores.shape, dtype=np.int32)
        if self.truncated is None:
            self.truncated = np.zeros(self.scores.shape, dtype=bool)
        nothing = [[[None] * self.scores.shape[2] for _ in range(k)] for _ in range(n)]
        if self.reasonings is None:
            self.reasonings = nothing
        if self.finish_reasons is None:
            self.finish_reasons = [[list(s) for s in row] for row in nothing]

    # -- views ---------------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return self.scores.shape[0]

    @property
    def n_samples(self) -> int:
        return self.scores.shape[2]

    @property
    def utilities(self) -> np.ndarray:
        """u[i, k]: the mean recorded score of each cell (the exact expected reward)."""
        return self.scores.mean(axis=2, dtype=np.float64)

    @property
    def task(self) -> str:
        return self.meta["task"]

    @property
    def dataset(self) -> Dataset:
        """The table's items as a Dataset (no data files needed)."""
        info = self.meta["dataset"]
        items = tuple(TaskItem(i, t, g) for i, t, g in zip(self.item_ids, self.item_texts, self.golds, strict=True))
        return Dataset(info["name"], info["split"], items, info["source"], info["sha256"])

    def rows_for(self, dataset: Dataset) -> np.ndarray:
        """The table row of each item of ``dataset``; a clear error if any is not recorded."""
        if dataset.name != self.meta["dataset"]["name"] or dataset.sha256 != self.meta["dataset"]["sha256"]:
            raise DataError(
                f"the table was recorded on {self.meta['dataset']['name']} (sha256 "
                f"{self.meta['dataset']['sha256'][:12]}...), the env loads {dataset.name} (sha256 "
                f"{dataset.sha256[:12]}...): record a table for this data set"
            )
        index = {item_id: row for row, item_id in enumerate(self.item_ids)}
        rows = []
        for item in dataset.items:
            row = index.get(item.item_id)
            if row is None or self.item_texts[row] != item.text:
                raise DataError(
                    f"item {item.item_id} is not in the table ({self.n_items} items, "
                    f"{self.item_ids[0]}..{self.item_ids[-1]}): use max_items <= {self.n_items} "
                    "and the same split, or record the missing items"
                )
            rows.append(row)
        return np.asarray(rows, dtype=np.int64)

    def check_signals(self, signals: list[str]) -> None:
        if list(signals) != self.signals:
            raise DataError(
                f"the env's {len(signals)} signals differ from the table's {len(self.signals)} "
                f"(first difference at index {_first_difference(list(signals), self.signals)}): pass "
                "signals=None to use the table's, or record a table with these signals"
            )

    # -- files ---------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the table atomically (a reader never sees half a file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {**self.meta, "format": FORMAT}
        texts = {"item_ids": self.item_ids, "item_texts": self.item_texts, "golds": self.golds,
                 "signals": self.signals, "responses": self.responses, "answers": self.answers,
                 "reasonings": self.reasonings, "finish_reasons": self.finish_reasons}
        handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
        with os.fdopen(handle, "wb") as out:
            np.savez_compressed(
                out, meta=np.array(json.dumps(meta)), texts=np.array(json.dumps(texts)),
                scores=self.scores.astype(np.float32), prompt_tokens=self.prompt_tokens.astype(np.int32),
                completion_tokens=self.completion_tokens.astype(np.int32), latency_s=self.latency_s.astype(np.float32),
                reasoning_tokens=self.reasoning_tokens.astype(np.int32), truncated=self.truncated.astype(bool),
            )
        os.replace(tmp, path)
        return path


def load_table(source: str | Path | ResponseTable, task: str | None = None) -> ResponseTable:
    """A table from its ``.npz`` file (or a table passed through). ``task``: the task's name, for
    a table whose metadata does not record it. A file that is not a readable table raises a
    ``TableError`` naming it (never loaded with pickle)."""
    if isinstance(source, ResponseTable):
        return source
    path = Path(source).expanduser()
    rerecord = f"record it again with `persuasion-gym record ... --out {path}`, which resumes from the response cache"
    if not path.is_file():
        raise TableError(f"no table at {path}: record one with `persuasion-gym record ... --out {path}`")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [name for name in ("meta", "texts", *_ARRAYS) if name not in data.files]
            if missing:
                raise TableError(f"{path} lacks the arrays {', '.join(missing)}: it is not a complete "
                                 f"persuasion-gym table; {rerecord}")
            meta, texts = json.loads(str(data["meta"])), json.loads(str(data["texts"]))
            arrays = {name: data[name] for name in (*_ARRAYS, *_LATER_ARRAYS) if name in data.files}
    except TableError:
        raise
    # A cut or damaged file fails anywhere in numpy, zipfile, zlib or json, each its own way
    # (BadZipFile, zlib.error, EOFError, NotImplementedError, ...): all mean the same to a user.
    except Exception as exc:
        raise TableError(f"{path} is not a readable persuasion-gym table (truncated, corrupt or not a .npz file: "
                         f"{_why_unreadable(exc)}); {rerecord}") from None
    if not isinstance(meta, dict) or not isinstance(texts, dict):
        raise TableError(f"{path}: its meta and texts must be JSON objects; {rerecord}")
    if meta.get("format") != FORMAT:
        raise TableError(f"{path} has format {meta.get('format')!r}; this version reads {FORMAT}")
    if task is not None and not meta.get("task"):
        meta["task"] = task
    _check_fields(path, meta, texts)
    # Only the known fields: a key a later version adds must not break this one's constructor.
    later = {name: texts[name] for name in _LATER_TEXTS if name in texts}
    return ResponseTable(meta=meta, **{name: texts[name] for name in _TEXTS}, **later, **arrays)


def _why_unreadable(exc: Exception) -> str:
    if isinstance(exc, ValueError) and "pickle" in str(exc):  # numpy's advice (allow_pickle) is not for tables
        return "it is neither a zip archive nor a .npy array"
    if isinstance(exc, TypeError):  # a lone .npy array: np.load gives an ndarray, not an archive
        return "it holds one array, not a table's archive of arrays"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


_ARRAYS = ("scores", "prompt_tokens", "completion_tokens", "latency_s")
_TEXTS = ("item_ids", "item_texts", "golds", "signals", "responses", "answers")
# What tables gained with reasoning Receivers; older tables lack them and read as having none.
_LATER_ARRAYS = ("reasoning_tokens", "truncated")
_LATER_TEXTS = ("reasonings", "finish_reasons")
_DATASET = ("name", "split", "source", "sha256")


def _check_fields(path: Path, meta: dict[str, Any], texts: dict[str, Any]) -> None:
    """A clear error for a table missing what replaying or re-scoring it needs."""
    missing = [f"texts.{name}" for name in _TEXTS if name not in texts]
    if not isinstance(meta.get("task"), str) or not meta["task"]:
        missing.append("meta.task")
    dataset = meta.get("dataset")
    if not isinstance(dataset, dict):
        missing.append("meta.dataset")
    else:
        missing += [f"meta.dataset.{name}" for name in _DATASET if name not in dataset]
    if not missing:
        return
    fix = f"record it again with `persuasion-gym record ... --out {path}`"
    if missing == ["meta.task"]:
        fix = (f"name its task (gsm8k, math, humaneval, mbpp or a registered task): `persuasion-gym rescore {path} "
               f"--task NAME --out NEW` or load_table(PATH, task=NAME), or {fix}")
    raise TableError(f"{path} lacks {', '.join(missing)}, which a persuasion-gym table holds: {fix}")


def _first_difference(a: list[str], b: list[str]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
