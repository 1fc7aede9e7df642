"""The reward of a written signal: the Receiver's scored answer, through a persuasion env.

``PersuasionReward(env)`` is a reward function in TRL's form (``GRPOTrainer``,
``RLOOTrainer``): it takes the completions of a step with the dataset's ``item_index`` column,
turns each completion into the signal the env sends (the template's cleaning), and plays them
as one batch through ``env.play``: one concurrent Receiver batch, cached, so identical
(item, signal) pairs are paid once. Any persuasion env in text mode plugs in, under any
protocol (``posterior``: the Receiver's belief comes from the env's scheme).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from persuasion_agents.lm_advisor.model import AdvisorTemplate
from persuasion_gym.envs import PersuasionEnv
from persuasion_gym.errors import ConfigError


def completion_text(completion: Any) -> str:
    """A completion as TRL hands it over: a string, or chat messages (the assistant's text)."""
    if isinstance(completion, str):
        return completion
    return "".join(message.get("content", "") for message in completion)


class PersuasionReward:
    """Scored Receiver answers to the Advisor's completions, as a TRL reward function.

    Args:
        env: a persuasion env (or a wrapper of one) made with ``action_type="text"``.
        template: turns a completion into the signal sent (default: the Advisor's default),
            narrowed to the env's text action space (its length limit and charset).
        seed: seeds the env's draws (information items, samples) made for these rewards.

    ``calls`` counts the batches; ``last`` keeps the last batch's signals, rewards and info.
    """

    __name__ = "persuasion_reward"  # TRL logs each reward function under its name

    def __init__(self, env: gym.Env | PersuasionEnv, template: AdvisorTemplate | None = None, seed: int = 0):
        core = env.unwrapped
        if not isinstance(core, PersuasionEnv):
            raise ConfigError(f"PersuasionReward needs a persuasion env, not {type(core).__name__}")
        if core.action_type != "text":
            raise ConfigError("PersuasionReward sends the Advisor's texts: make the env with action_type='text'")
        # What the Advisor writes is cut to what this env admits, so training never sends an invalid action.
        self.env, self.template = core, (template or AdvisorTemplate()).within(core.action_space)
        self.rng = np.random.default_rng(seed)
        self.batches = 0
        self.last: dict[str, Any] = {}

    def __call__(self, prompts: list[Any], completions: list[Any], item_index: list[int],
                 log_metric: Callable[[str, float], None] | None = None, **kwargs: Any) -> list[float]:
        signals = [self.template.clean(completion_text(c)) for c in completions]
        stats = self.env.receiver.stats if self.env.receiver is not None else None
        calls_before = stats.calls if stats else 0
        batch = self.env.play(item_index, signals, self.rng)
        self.batches += 1
        self.last = {"signals": signals, "rewards": batch.rewards.tolist(), "item_index": list(item_index)}
        if log_metric is not None and stats is not None:
            log_metric("receiver_calls", float(stats.calls - calls_before))
            log_metric("unique_signals", float(len(set(signals))))
        return [float(r) for r in batch.rewards]
