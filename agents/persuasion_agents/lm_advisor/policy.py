"""The LM Advisor behind the ``Policy`` protocol, so ``bench`` compares it with every index
policy on the same held-out items: its actions are the signal texts it writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from persuasion_agents.environments import text_twin
from persuasion_agents.lm_advisor.grpo_config import AdvisorTraining
from persuasion_agents.lm_advisor.model import LMAdvisor
from persuasion_agents.lm_advisor.training import train_lm_advisor
from persuasion_agents.policy import Policy


class LMAdvisorPolicy(Policy):
    """Writes one signal per item: sampled in ``act``, greedy in ``greedy``.

    Args:
        advisor: an ``LMAdvisor``, or where to load one (``embedded``, a hub id, a directory).
        training: how ``fit`` trains it when it is not trained yet (``advisor.json`` says).
        out: where training writes (default: a folder beside nothing, ``runs/lm-advisor``).
    """

    name = "lm-advisor"

    def __init__(self, advisor: LMAdvisor | str = "embedded", training: AdvisorTraining | None = None,
                 out: str | Path = "runs/lm-advisor"):
        self.advisor = advisor if isinstance(advisor, LMAdvisor) else LMAdvisor.load(advisor)
        self.training, self.out = training or AdvisorTraining(), Path(out)
        self.needs_training = self.advisor.info.trained_on is None
        self.curve: list[tuple[int, float]] = []

    def fit(self, env: gym.Env, timesteps: int = 0, *, seed: int | None = None, progress: bool = False) -> None:
        """Train by GRPO against ``env``'s Receiver on its items (``training.steps`` steps, seeded
        by ``training.seed``)."""
        if not self.needs_training:
            return
        # An interrupted benchmark trains on from its last checkpoint; a finished one is not redone.
        record = train_lm_advisor(text_twin(env), self.advisor, self.out, self.training, resume=True,
                                  progress=progress)
        self.curve = record["curve"]
        self.needs_training = False

    def act(self, observations: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        return np.array(self.advisor.write(list(info["text"]), sample=True, seed=int(self.rng.integers(2**31))),
                        dtype=object)

    def greedy(self, observations: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        return np.array(self.advisor.write(list(info["text"])), dtype=object)
