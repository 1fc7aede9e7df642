"""MBPP: Mostly Basic Python Problems, 974 crowd-sourced tasks with three asserts each
(Austin et al., 2021). Loaded from local files (the original ``mbpp.jsonl``, the sanitized
variant, or a directory of per-split files) or from the Hugging Face hub."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

from persuasion_gym.errors import DataError
from persuasion_gym.paths import data_dir
from persuasion_gym.tasks.base import Dataset, check_load_args
from persuasion_gym.tasks.code import CodeItem, CodeTask
from persuasion_gym.tasks.hub import content_sha256, hub_rows
from persuasion_gym.tasks.jsonl import file_sha256, read_jsonl

# The paper's split of the task ids (Austin et al., 2021, section 2.1).
SPLIT_IDS = {"prompt": range(1, 11), "test": range(11, 511), "validation": range(511, 601), "train": range(601, 975)}
SPLITS = tuple(SPLIT_IDS)
HUB_ID = "google-research-datasets/mbpp"


def entry_point_of(tests: list[str], code: str) -> str | None:
    """The function the tests call: the first called name the reference code defines (else
    the first called name that is not a built-in)."""
    called = [node.func.id for test in tests for node in ast.walk(ast.parse(test))
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)]
    try:
        defined = {node.name for node in ast.walk(ast.parse(code)) if isinstance(node, ast.FunctionDef)}
    except SyntaxError:
        defined = set()
    for name in called:
        if name in defined:
            return name
    return next((name for name in called if not hasattr(builtins, name)), None)


def item_from_record(record: dict, where: str) -> CodeItem:
    """One MBPP record (original or sanitized field names) as a ``CodeItem``."""
    description = record.get("text", record.get("prompt"))
    tests = record.get("test_list")
    if not isinstance(description, str) or not isinstance(tests, list) or not tests or "code" not in record:
        raise DataError(f"{where}: an MBPP record needs 'text' (or 'prompt'), 'code' and a non-empty 'test_list'")
    try:
        entry_point = entry_point_of(tests, str(record["code"]))
    except SyntaxError as exc:
        raise DataError(f"{where}: a test does not parse ({exc.msg})") from None
    if entry_point is None:
        raise DataError(f"{where}: no test calls a function; MBPP tests look like 'assert f(1) == 2'")
    setup = "\n".join([*record.get("test_imports", []), record.get("test_setup_code", "") or ""]).strip()
    text = f"{description}\nYour code should pass these tests:\n\n" + "\n".join(tests)
    return CodeItem(f"mbpp/{record.get('task_id', where)}", text, str(record["code"]), entry_point=entry_point,
                    tests="\n".join(tests) + "\n", setup=setup, stub=setup)


class MBPPTask(CodeTask):
    """MBPP problems; the reward is pass@1 of the written function against the task's asserts."""

    name = "mbpp"
    text_key = "text"

    def load(self, split: str = "train", data_path: str | None = None, max_items: int | None = None) -> Dataset:
        check_load_args("MBPP", split, SPLITS, max_items)
        path, whole = self._locate(split, data_path)
        if path is None:
            items, source, sha = self._from_hub(split)
        else:
            items, source, sha = [], str(path), file_sha256(path)
            for number, record in read_jsonl(path):
                if whole and record.get("task_id") not in SPLIT_IDS[split]:
                    continue
                items.append(item_from_record(record, f"{path}:{number}"))
        if not items:
            raise DataError(f"{source}: holds no MBPP items in split {split!r}")
        return Dataset(self.name, split, tuple(items[:max_items]), source, sha)

    @staticmethod
    def _locate(split: str, data_path: str | None) -> tuple[Path | None, bool]:
        """The file to read and whether it holds every split (to be cut by task id)."""
        roots = [Path(data_path).expanduser()] if data_path is not None else []
        if data_path is None and (shared := data_dir()) is not None:
            roots.append(shared / "mbpp")
        for root in roots:
            if root.is_file():
                return root, True
            for name in (f"{split}.jsonl", f"mbpp/{split}.jsonl"):
                if (root / name).is_file():
                    return root / name, False
            for name in ("mbpp.jsonl", "sanitized-mbpp.jsonl", "mbpp/mbpp.jsonl"):
                if (root / name).is_file():
                    return root / name, True
        if data_path is not None:
            raise DataError(
                f"no MBPP data at {data_path}: pass mbpp.jsonl (every split, cut by task id), a "
                f"{split}.jsonl, or a directory holding either"
            )
        return None, False

    def _from_hub(self, split: str) -> tuple[list[CodeItem], str, str]:
        rows = hub_rows(HUB_ID, "full", split, "no local MBPP data: pass data_path= (mbpp.jsonl or a directory of "
                        "per-split .jsonl files), set PERSUASION_GYM_DATA_DIR to a directory holding mbpp/")
        items = [item_from_record(dict(row), f"{HUB_ID} {split} row {index}") for index, row in enumerate(rows)]
        return items, f"hf:{HUB_ID}", content_sha256((i.item_id, i.text, i.tests) for i in items)
