"""GSM8K: grade-school math word problems with numeric answers (Cobbe et al., 2021)."""

from __future__ import annotations

import string
from pathlib import Path

from persuasion_gym.errors import DataError
from persuasion_gym.paths import data_dir
from persuasion_gym.signals import MATH_SIGNALS
from persuasion_gym.tasks.base import Dataset, Messages, Score, Task, TaskItem, ask, check_load_args
from persuasion_gym.tasks.hub import content_sha256, hub_rows
from persuasion_gym.tasks.jsonl import file_sha256, read_jsonl
from persuasion_gym.tasks.numeric import extract_numeric_answer, numbers_match, parse_number

SYSTEM_PROMPT = (
    "You are a careful math solver. Solve the problem, then end your reply with a line of the "
    "form 'The answer is N', where N is a number."
)
SPLITS = ("train", "test")
# Printable ASCII and every other character of both official splits.
CHARSET = string.printable + "\xa0¢£³¼¾çèéñА\u200b–—‘’“”\u2028€"
HUB_ID = "openai/gsm8k"


def gold_from_solution(solution: str) -> str | None:
    """The number after ``####`` in an official GSM8K solution, without thousands separators."""
    if "####" not in solution:
        return None
    gold = solution.rsplit("####", 1)[1].strip().replace(",", "")
    return gold if parse_number(gold) is not None else None


class GSM8KTask(Task):
    """GSM8K questions; the reward is 1 when the final number equals the gold answer."""

    name = "gsm8k"
    default_signals = MATH_SIGNALS
    text_key = "question"
    charset = CHARSET
    max_text_length = 2048

    def load(self, split: str = "train", data_path: str | None = None, max_items: int | None = None) -> Dataset:
        check_load_args("GSM8K", split, SPLITS, max_items)
        path = self._locate(split, data_path)
        if path is None:
            items, source, sha = self._from_hub(split)
        else:
            items, sha = self._from_file(path, split), file_sha256(path)
            source = str(path)
        if not items:
            raise DataError(f"{source}: holds no GSM8K items")
        return Dataset(self.name, split, tuple(items[:max_items]), source, sha)

    @staticmethod
    def _locate(split: str, data_path: str | None) -> Path | None:
        if data_path is not None:
            path = Path(data_path).expanduser()
            if path.is_file():
                return path
            for candidate in (path / f"{split}.jsonl", path / "gsm8k" / f"{split}.jsonl"):
                if candidate.is_file():
                    return candidate
            raise DataError(
                f"no GSM8K {split} data at {path}: pass a .jsonl file or a directory holding "
                f"{split}.jsonl (the official format, one {{'question', 'answer'}} per line)"
            )
        root = data_dir()
        if root is not None and (root / "gsm8k" / f"{split}.jsonl").is_file():
            return root / "gsm8k" / f"{split}.jsonl"
        return None

    def _from_file(self, path: Path, split: str) -> list[TaskItem]:
        items: list[TaskItem] = []
        for number, record in read_jsonl(path, required=("question", "answer")):
            gold = gold_from_solution(str(record["answer"]))
            if gold is None:
                raise DataError(
                    f"{path}:{number}: the answer has no '#### <number>' final line; "
                    "GSM8K answers end with '#### 42'"
                )
            items.append(TaskItem(f"gsm8k/{split}/{len(items)}", str(record["question"]), gold))
        return items

    def _from_hub(self, split: str) -> tuple[list[TaskItem], str, str]:
        rows = hub_rows(HUB_ID, "main", split, "no local GSM8K data: pass data_path= (a .jsonl file or a directory "
                        "with train.jsonl/test.jsonl), set PERSUASION_GYM_DATA_DIR to a directory holding gsm8k/")
        items = []
        for index, row in enumerate(rows):
            gold = gold_from_solution(row["answer"])
            if gold is None:
                raise DataError(f"{HUB_ID} {split} row {index}: the answer has no '#### <number>'")
            items.append(TaskItem(f"gsm8k/{split}/{index}", row["question"], gold))
        return items, f"hf:{HUB_ID}", content_sha256((i.text, i.gold) for i in items)

    def build_messages(self, item: TaskItem, context: str = "") -> Messages:
        return ask(SYSTEM_PROMPT, f"Question: {item.text}", context)

    def score(self, item: TaskItem, response: str) -> Score:
        answer = extract_numeric_answer(response)
        correct = numbers_match(answer, item.gold)
        return Score(answer, correct, 1.0 if correct else 0.0)
