"""Code-generation tasks: the Receiver writes a Python function, trusted tests judge it in the sandbox.

The reward is pass@1 of the response: 1.0 when the extracted program passes every test of its
item, else 0.0. Verdicts are memoised by program and tests, so a cell revisited in training is
judged once per process.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from persuasion_gym.sandbox import CodeCheck, Sandbox, Verdict
from persuasion_gym.signals import CODE_SIGNALS
from persuasion_gym.tasks.base import Messages, Score, Task, TaskItem, ask
from persuasion_gym.tasks.code_extraction import extract_program

SYSTEM_PROMPT = (
    "You are an expert Python programmer. Write the requested function. Reply with the complete "
    "function, signature included, in a single ```python code block."
)


@dataclass(frozen=True)
class CodeItem(TaskItem):
    """A programming problem. ``gold`` is a reference solution; ``tests`` (trusted) call
    ``entry_point``; ``setup`` (trusted) runs before them in the runner; every program starts
    with ``stub`` (HumanEval: the prompt, so a response may give only the body)."""

    entry_point: str = ""
    tests: str = ""
    setup: str = ""
    stub: str = ""

    def check(self, program: str) -> CodeCheck:
        return CodeCheck(program, self.tests, self.entry_point, self.setup)


class CodeTask(Task):
    """Base of the code tasks: extraction, sandboxed pass@1 scoring, the code signal library."""

    default_signals = CODE_SIGNALS
    text_key = "prompt"
    charset = string.printable
    max_text_length = 4096

    def __init__(self, sandbox: Sandbox | None = None):
        self.sandbox = sandbox or Sandbox()
        self._verdicts: dict[str, Verdict] = {}

    def build_messages(self, item: TaskItem, context: str = "") -> Messages:
        return ask(SYSTEM_PROMPT, self.question(item), context)

    def settings(self) -> dict[str, Any]:
        return {"sandbox": self.sandbox.isolation.name, "limits": dataclasses.asdict(self.sandbox.limits)}

    def question(self, item: TaskItem) -> str:
        """The user message asking for ``item`` (before any advice)."""
        return item.text

    def program(self, item: TaskItem, response: str) -> str | None:
        """The program to run for ``response`` (None: it holds no usable code)."""
        item = self._code_item(item)
        return extract_program(response, item.entry_point, item.stub)

    def score(self, item: TaskItem, response: str) -> Score:
        return self.score_batch([item], [response])[0]

    def score_batch(self, items: Sequence[TaskItem], responses: Sequence[str]) -> list[Score]:
        """Extract each program, run the new ones in parallel in the sandbox, score pass@1."""
        programs = [self.program(item, response) for item, response in zip(items, responses, strict=True)]
        checks = [None if program is None else self._code_item(item).check(program)
                  for item, program in zip(items, programs, strict=True)]
        new = {check.key: check for check in checks if check is not None and check.key not in self._verdicts}
        self._verdicts.update(zip(new, self.sandbox.run_many(list(new.values())), strict=True))
        scores = []
        for item, program, check in zip(items, programs, checks, strict=True):
            if check is None:
                details = {"verdict": "no code", "verdict_detail": "the response holds no code defining "
                           f"{self._code_item(item).entry_point!r}", "sandbox": self.sandbox.isolation.name}
                scores.append(Score(None, False, 0.0, details))
                continue
            verdict = self._verdicts[check.key]
            details = {"verdict": verdict.status, "verdict_detail": verdict.detail, "sandbox": verdict.isolation}
            scores.append(Score(program, verdict.passed, 1.0 if verdict.passed else 0.0, details))
        return scores

    @staticmethod
    def _code_item(item: TaskItem) -> CodeItem:
        if not isinstance(item, CodeItem):
            raise TypeError(f"{item.item_id}: a code task scores CodeItems (with tests), not {type(item).__name__}")
        return item
