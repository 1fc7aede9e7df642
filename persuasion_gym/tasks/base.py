"""The task interface: items with gold answers, how to ask the Receiver, how to score it.

A task knows nothing of Receivers, envs or RL: it loads data, builds chat messages for an
item with an optional context text (the signal, or an information item), and scores a response.
"""

from __future__ import annotations

import string
from abc import ABC, abstractmethod
from dataclasses import dataclass

from persuasion_gym.signals import SignalLibrary

Message = dict[str, str]
Messages = list[Message]


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
    """The scored response: the extracted answer, whether it is right, and the reward."""

    answer: str | None
    correct: bool
    reward: float


class Task(ABC):
    """A family of task items the Receiver answers and a scorer for its answers."""

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
