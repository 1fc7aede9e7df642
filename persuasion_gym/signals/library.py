"""A signal library: the finite set of texts the Advisor chooses from.

A signal is text. A ``Discrete(K)`` action indexes a library, which is only one way to choose
a signal: the persuasion core takes the text itself, so free-text Advisors plug in unchanged.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Iterable, Iterator, Mapping, Sequence

from persuasion_gym.errors import ConfigError

# What a text signal may hold by default: printable ASCII (no vertical tab or form feed) and the
# typography and math symbols language models write. ``signal_charset=`` replaces it.
SIGNAL_CHARSET = (string.ascii_letters + string.digits + string.punctuation + " \t\n"
                  + "‘’“”–—…•×÷−±≈≠≤≥°²³½¼¾√π€£¥¢")


class SignalLibrary(Sequence[str]):
    """An ordered, duplicate-free tuple of signal texts; ``""`` is the empty signal."""

    def __init__(self, texts: Iterable[str]):
        if isinstance(texts, Mapping):  # iterating one would silently make its keys the signals
            raise ConfigError(f"signals is a {type(texts).__name__}, not a list: pass the signal texts as a list")
        texts = tuple(texts) if not isinstance(texts, str) else (texts,)
        if not texts:
            raise ConfigError("the signal library is empty: pass at least one signal text")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise ConfigError(
                    f"signal {i} is {type(text).__name__}, not str: a signal library is a list of texts"
                )
        seen: dict[str, int] = {}
        for i, text in enumerate(texts):
            if text in seen:
                raise ConfigError(
                    f"signals {seen[text]} and {i} are the same text {text!r}: remove the duplicate"
                )
            seen[text] = i
        self._texts = texts

    def __getitem__(self, index):
        return self._texts[index]

    def __len__(self) -> int:
        return len(self._texts)

    def __iter__(self) -> Iterator[str]:
        return iter(self._texts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SignalLibrary) and other._texts == self._texts

    def __hash__(self) -> int:
        return hash(self._texts)

    def __repr__(self) -> str:
        return f"SignalLibrary({len(self)} signals, fingerprint={self.fingerprint[:12]})"

    @property
    def texts(self) -> tuple[str, ...]:
        return self._texts

    @property
    def empty_index(self) -> int | None:
        """Index of the empty signal (the no-signal baseline), or None if the library has none."""
        return self._texts.index("") if "" in self._texts else None

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the texts, recorded in result files to tell libraries apart."""
        return hashlib.sha256(json.dumps(self._texts).encode()).hexdigest()


def as_library(signals: SignalLibrary | Iterable[str]) -> SignalLibrary:
    return signals if isinstance(signals, SignalLibrary) else SignalLibrary(signals)
