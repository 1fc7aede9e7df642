"""Building response tables in tests, from the real GSM8K items and chosen scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from persuasion_gym.tables import ResponseTable
from persuasion_gym.tasks import Dataset, GSM8KTask


def synthetic_table(dataset: Dataset, signals: list[str], scores: np.ndarray) -> ResponseTable:
    """A table whose cell (i, k, s) scored ``scores[i, k, s]`` (responses say so)."""
    n, k, s = scores.shape
    responses = [[[f"The answer is {d.gold if scores[i, j, t] >= 1 else -1}." for t in range(s)]
                  for j in range(k)] for i, d in enumerate(dataset.items)]
    answers = [[[d.gold if scores[i, j, t] >= 1 else "-1" for t in range(s)] for j in range(k)]
               for i, d in enumerate(dataset.items)]
    meta = {"task": dataset.name, "env_id": None, "receiver": {"kind": "synthetic"}, "samples": s,
            "dataset": {"name": dataset.name, "split": dataset.split, "source": dataset.source,
                        "sha256": dataset.sha256, "n_items": n},
            "package_version": "test", "created": "2026-01-01T00:00:00+00:00"}
    return ResponseTable(meta=meta, item_ids=[d.item_id for d in dataset.items], item_texts=dataset.texts,
                         golds=[d.gold for d in dataset.items], signals=list(signals),
                         scores=scores.astype(np.float32), prompt_tokens=np.full(scores.shape, 50, np.int32),
                         completion_tokens=np.full(scores.shape, 6, np.int32),
                         latency_s=np.full(scores.shape, 0.5, np.float32), responses=responses, answers=answers)


def rule_tables(folder: Path) -> tuple[Path, Path]:
    """Train and test tables (the whole GSM8K splits, 7473 and 500 items) where "how many"
    questions need signal 1 and the others signal 2."""
    def build(split: str, n: int) -> Path:
        items = GSM8KTask().load(split, max_items=n)
        scores = np.zeros((n, 4, 1), np.float32)
        best = [1 if "how many" in item.text.lower() else 2 for item in items.items]
        scores[np.arange(n), best, 0] = 1
        path = folder / f"{split}.npz"
        synthetic_table(items, ["", "hint one", "hint two", "hint three"], scores).save(path)
        return path
    return build("train", 7473), build("test", 500)
