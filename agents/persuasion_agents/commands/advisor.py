"""The LM Advisor's training as ``train --algo lm-advisor`` and the main job run it: GRPO
against the env's Receiver, and the signals the Advisor writes before and after."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import gymnasium as gym

    from persuasion_agents.lm_advisor import LMAdvisor
    from persuasion_agents.lm_advisor.grpo_config import AdvisorTraining


@dataclass
class TrainedSignals:
    """A training run's record, and the signals written for the same texts before and after."""

    record: dict[str, Any]
    texts: list[str]
    before: list[str]
    after: list[str]


def train_showing_signals(env: gym.Env, advisor: LMAdvisor, out: str | Path, settings: AdvisorTraining,
                          texts: Sequence[str], *, items: Sequence[str] | None = None,
                          resume: bool = False) -> TrainedSignals:
    """Train ``advisor`` on ``env`` into ``out`` (``train_lm_advisor``), with the signals it
    writes for ``texts`` (observing ``items`` under posterior) before training and, reloaded
    from ``OUT/advisor``, after."""
    from persuasion_agents.lm_advisor import LMAdvisor
    from persuasion_agents.lm_advisor.training import train_lm_advisor

    before = advisor.write(texts, items=items)
    record = train_lm_advisor(env, advisor, out, settings, resume=resume)
    after = LMAdvisor.load(str(Path(out) / "advisor")).write(texts, items=items)
    return TrainedSignals(record=record, texts=list(texts), before=before, after=after)
