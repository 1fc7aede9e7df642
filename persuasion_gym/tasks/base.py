"""The task interface: items with gold answers, how to ask the Receiver, how to score it.

A task knows nothing of Receivers, envs or RL: it loads data, builds chat messages for an
item with an optional context text (the signal, or an information item), and scores a response.
"""

from __future__ import annotations

import string
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from persuasion_gym.errors import DataError
from persuasion_gym.signals import SignalLibrary

Message = dict[str, str]
Messages = list[Message]


def ask(system: str, user: str, context: str = "") -> Messages:
    """A system prompt and a user message, with the Advisor's signal as advice when there is one."""
    if context:
        user += f"\n\nAdvice: {context}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def check_load_args(label: str, split: str, splits: Sequence[str], max_items: int | None) -> None:
    """The errors ``Task.load`` gives for an unknown split or a non-positive ``max_items``."""
    if split not in splits:
        raise DataError(f"unknown {label} split {split!r}: use one of {', '.join(splits)}")
    if max_items is not None and max_items < 1:
        raise DataError(f"max_items={max_items}: pass a positive number of items, or None for all")


@dataclass(frozen=True)
class TaskItem:
    """One task item: what the Receiver is asked and the gold data to score it."""

    item_id: str
    text: str
    gold: str


@dataclass(frozen=True)
class Dataset:
    """A loaded split with the provenance that result files record."""

    name: str
    split: str
    items: tuple[TaskItem, ...]
    source: str
    sha256: str

    def __len__(self) -> int:
        return len(self.items)

    @property
    def texts(self) -> list[str]:
        return [item.text for item in self.items]


@dataclass(frozen=True)
class Score:
    """The scored response: the extracted answer, whether it is right, and the reward.
    ``details`` go into the step's ``info`` (code tasks: the verdict and the sandbox)."""

    answer: str | None
    correct: bool
    reward: float
    details: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


class Task(ABC):
    """A family of task items the Receiver answers and a scorer for its answers.

    To bring your own data set, subclass it (``examples/custom_task.py``):

    - ``name``: a short identifier, recorded in tables and result files.
    - ``default_signals``: the signal library envs use unless given ``signals=``.
    - ``load(split, data_path, max_items)``: a ``Dataset`` of ``TaskItem(item_id, text, gold)``
      with its source and a content hash (``jsonl.read_jsonl``/``file_sha256`` help).
    - ``build_messages(item, context)``: the chat messages asking the Receiver the item, with
      the Advisor's signal as ``context`` (empty for no signal).
    - ``score(item, response)``: a ``Score``; override ``score_batch`` when scoring is costly
      and parallel (code tasks run programs on every core).

    Then ``persuasion_gym.register_env("MyTask-v0", task=MyTask())`` makes ``gym.make`` and
    ``gym.make_vec`` build it, and tables recorded from it replay with ``Persuasion-Table-v0``.
    """

    name: str
    default_signals: SignalLibrary
    text_key: str = "text"  # the info key holding an item's text ("question", "prompt")
    # For text observations: characters and length every item of every split fits in, so
    # that train and test envs share one observation space.
    charset: str = string.printable
    max_text_length: int = 4096

    @abstractmethod
    def load(self, split: str, data_path: str | None = None, max_items: int | None = None) -> Dataset:
        """Load a split, from ``data_path`` when given (file or directory)."""

    @abstractmethod
    def build_messages(self, item: TaskItem, context: str = "") -> Messages:
        """Chat messages asking the Receiver ``item``, with ``context`` (may be empty)."""

    @abstractmethod
    def score(self, item: TaskItem, response: str) -> Score:
        """Score the Receiver's response to ``item``."""

    def settings(self) -> dict[str, Any]:
        """What besides the data decides the scores (code tasks: the sandbox and its limits);
        result files record it."""
        return {}

    def score_batch(self, items: Sequence[TaskItem], responses: Sequence[str]) -> list[Score]:
        """Score many responses (envs and recordings call this once per batch)."""
        return [self.score(item, response) for item, response in zip(items, responses, strict=True)]
