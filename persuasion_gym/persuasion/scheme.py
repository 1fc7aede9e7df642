"""The committed scheme of an Advisor that writes its signals (``docs/text_signals.md``).

With text signals the scheme is the Advisor itself: the Receiver, who knows it, scores any
signal under any information item. Envs take any object with this one method, so they never
import an Advisor; ``persuasion_agents.lm_advisor.LMAdvisor`` is the one the package provides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class TextScheme(Protocol):
    """pi(g | q, x): how likely the Advisor writes signal g for question q observing item x."""

    def log_likelihoods(self, questions: Sequence[str], signals: Sequence[str], items: Sequence[str]) -> np.ndarray:
        """log pi(signals[j] | questions[j], items[x]) for every j and every item x: shape
        ``(len(signals), len(items))``; ``-inf`` where the signal is impossible."""
        ...
