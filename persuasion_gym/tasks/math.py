"""MATH: competition mathematics problems with LaTeX answers (Hendrycks et al., 2021)."""

from __future__ import annotations

import hashlib
import json
import string
from pathlib import Path
from typing import Any

from persuasion_gym.errors import DataError
from persuasion_gym.paths import data_dir
from persuasion_gym.signals import MATH_SIGNALS
from persuasion_gym.tasks.base import Dataset, Messages, Score, Task, TaskItem, ask, check_load_args
from persuasion_gym.tasks.hub import content_sha256, hub_rows
from persuasion_gym.tasks.jsonl import file_sha256, read_jsonl
from persuasion_gym.tasks.math_answers import (
    extract_boxed,
    extract_math_answer,
    math_answers_match,
    math_verify_version,
)

SYSTEM_PROMPT = (
    "You are a careful competition mathematician. Reason step by step, then give the final "
    "answer in simplest form inside \\boxed{}, as in \\boxed{\\frac{3}{4}}."
)
SPLITS = ("train", "test")
HUB_ID = "EleutherAI/hendrycks_math"
SUBJECTS = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)


def _layouts(split: str) -> str:
    return (
        "a .jsonl(.gz) file of {'problem', 'answer' or 'solution'} records, a directory holding "
        f"{split}.jsonl or math/{split}.jsonl, or the original MATH directory with {split}/<subject>/<n>.json"
    )


def _gold(record: dict) -> str | None:
    """The gold answer: ``answer`` when given, else the last box of ``solution``."""
    if record.get("answer") is not None:
        return str(record["answer"]).strip() or None
    if record.get("solution") is not None:
        return extract_boxed(str(record["solution"]))
    return None


def _stem_key(path: Path) -> tuple[int, str]:
    # Numeric file stems ("2.json" before "10.json"), in the order of the original release.
    return (int(path.stem), "") if path.stem.isdigit() else (-1, path.stem)


class MATHTask(Task):
    """MATH problems; the reward is 1 when the final boxed answer equals the gold answer."""

    name = "math"
    default_signals = MATH_SIGNALS
    text_key = "problem"
    charset = string.printable
    max_text_length = 4096

    def load(self, split: str = "test", data_path: str | None = None, max_items: int | None = None) -> Dataset:
        check_load_args("MATH", split, SPLITS, max_items)
        path = self._locate(split, data_path)
        if path is None:
            items, source, sha = self._from_hub(split)
        elif path.is_dir():
            items, sha = self._from_tree(path, split)
            source = str(path)
        else:
            items, sha = self._from_file(path, split), file_sha256(path)
            source = str(path)
        if not items:
            raise DataError(f"{source}: holds no MATH {split} items; expected {_layouts(split)}")
        return Dataset(self.name, split, tuple(items[:max_items]), source, sha)

    @staticmethod
    def _locate(split: str, data_path: str | None) -> Path | None:
        """The file or ``{split}/`` tree to read, or None to use the hub."""
        if data_path is None:
            root = data_dir()
            if root is None or not (root / "math").is_dir():
                return None
            path = root / "math"
        else:
            path = Path(data_path).expanduser()
            if path.is_file():
                return path
        candidates = [
            *(base / f"{split}.jsonl{ext}" for base in (path, path / "math") for ext in ("", ".gz")),
            *(base / split for base in (path, path / "MATH", path / "math")),
        ]
        for candidate in candidates:
            if candidate.is_file() or (candidate.is_dir() and any(candidate.glob("*/*.json"))):
                return candidate
        if path.name == split and any(path.glob("*/*.json")):  # data_path is the split tree itself
            return path
        raise DataError(f"no MATH {split} data at {path}: pass {_layouts(split)}")

    @staticmethod
    def _from_file(path: Path, split: str) -> list[TaskItem]:
        items: list[TaskItem] = []
        for number, record in read_jsonl(path, required=("problem",)):
            gold = _gold(record)
            if gold is None:
                raise DataError(
                    f"{path}:{number}: no gold answer; give each record an 'answer', or a "
                    "'solution' whose final answer is in \\boxed{...}"
                )
            items.append(TaskItem(f"math/{split}/{len(items)}", str(record["problem"]), gold))
        return items

    @staticmethod
    def _from_tree(path: Path, split: str) -> tuple[list[TaskItem], str]:
        """Items of ``path/<subject>/<n>.json`` and a sha256 over the sorted (file, file sha)."""
        files = sorted(path.glob("*/*.json"), key=lambda f: (f.parent.name, *_stem_key(f)))
        items, digests = [], []
        for file in files:
            relative = file.relative_to(path).as_posix()
            try:
                record = json.loads(file.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise DataError(f"{file}: not valid JSON ({exc}); each file must be one JSON object") from None
            if not isinstance(record, dict) or "problem" not in record:
                raise DataError(f"{file}: expected a JSON object with 'problem' and 'solution'")
            gold = _gold(record)
            if gold is None:
                raise DataError(
                    f"{file}: no gold answer; the 'solution' must put its final answer in \\boxed{{...}}"
                )
            items.append(TaskItem(f"math/{split}/{file.parent.name}/{file.stem}", str(record["problem"]), gold))
            digests.append((relative, file_sha256(file)))
        sha = hashlib.sha256("".join(f"{name}\t{digest}\n" for name, digest in sorted(digests)).encode())
        return items, sha.hexdigest()

    @staticmethod
    def _from_hub(split: str) -> tuple[list[TaskItem], str, str]:
        fix = (f"no local MATH data: pass data_path= ({_layouts(split)}), set PERSUASION_GYM_DATA_DIR "
               "to a directory holding math/")
        items = []
        for subject in SUBJECTS:
            for index, row in enumerate(hub_rows(HUB_ID, subject, split, fix)):
                gold = _gold(row)
                if gold is None:
                    raise DataError(f"{HUB_ID} {subject} {split} row {index}: the solution has no \\boxed{{}}")
                items.append(TaskItem(f"math/{split}/{subject}/{index}", row["problem"], gold))
        return items, f"hf:{HUB_ID}", content_sha256((i.text, i.gold) for i in items)

    def build_messages(self, item: TaskItem, context: str = "") -> Messages:
        return ask(SYSTEM_PROMPT, f"Problem: {item.text}", context)

    def settings(self) -> dict[str, Any]:
        # Equivalent forms (\frac{\sqrt2}{2} for \frac{1}{\sqrt2}) match only with math-verify, and
        # which ones depends on its version: the same responses can score differently.
        return {"math_verify": math_verify_version()}

    def score(self, item: TaskItem, response: str) -> Score:
        answer = extract_math_answer(response)
        correct = math_answers_match(answer, item.gold)
        return Score(answer, correct, 1.0 if correct else 0.0)
