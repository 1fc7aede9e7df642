"""A prompted large Advisor: any chat model asked, zero-shot, to write a hint for each item.

No training: what a trained small Advisor must beat to be worth its training. The hints are
asked through a Receiver (batched, concurrent, cached, retried, its calls and cost counted
apart from the Receiver's) and cleaned to the env's text action space before they are sent.
"""

from __future__ import annotations

import re
from typing import Any, cast

import gymnasium as gym
import numpy as np

from persuasion_agents.environments import text_twin
from persuasion_agents.lm_advisor.model import AdvisorTemplate
from persuasion_agents.policy import Policy
from persuasion_gym.envs import PersuasionEnv
from persuasion_gym.envs.text_space import SignalText
from persuasion_gym.errors import ConfigError, ReceiverError
from persuasion_gym.receivers import Receiver, make_receiver

_FENCE = re.compile(r"^\s*```\S*\s*$", re.MULTILINE)
# The Advisor's prompt: ``{item}`` is the task item's text.
DEFAULT_ADVISOR_PROMPT = (
    "Another assistant will answer the task below. Write one short hint for it: a single sentence on how to "
    "approach the task, without solving it or stating an answer. Reply with the hint only.\n\nTask:\n{item}"
)


def text_space(env: gym.Env, policy: str) -> SignalText:
    """The text action space an env's signals must fit (its length limit and charset); a
    recorded table has none: it only knows the signals it recorded."""
    core = cast(PersuasionEnv, env.unwrapped)
    if core.table is not None:
        raise ConfigError(f"{policy} writes free text, which a recorded table cannot answer (it only knows its own "
                          "signals): benchmark it on a live Receiver (--receiver openai:MODEL@URL, embedded, ...)")
    return cast(SignalText, text_twin(env).action_space)


class PromptedAdvisor(Policy):
    """One hint per item from a chat model prompted zero-shot.

    Args:
        advisor_lm: the Advisor's spec (any Receiver spec: ``openai:MODEL@URL``, ``embedded``,
            ``hf:...``) or a Receiver.
        prompt: the prompt template; ``{item}`` is replaced by the item's text.
    """

    name = "prompted-advisor"

    def __init__(self, advisor_lm: str | Receiver = "auto", prompt: str = DEFAULT_ADVISOR_PROMPT):
        if "{item}" not in prompt:
            raise ConfigError("the prompted Advisor's prompt must hold {item}, where the task item's text goes")
        self.advisor_lm, self.prompt = advisor_lm, prompt
        self._receiver: Receiver | None = None
        self._template: AdvisorTemplate | None = None
        self.hints: list[str] = []

    @property
    def side_receivers(self) -> tuple[Receiver, ...]:
        """Receivers whose calls are the policy's own, reported apart from the Receiver's."""
        return () if self._receiver is None else (self._receiver,)

    def fit(self, env: gym.Env, timesteps: int = 0, *, seed: int | None = None, progress: bool = False) -> None:
        """Read the env's text action space (the harness passes the evaluation env)."""
        self._template = AdvisorTemplate().within(text_space(env, self.name))

    def act(self, observations: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        if self._template is None:
            raise ConfigError("call fit(env) first: the hints are cleaned to the env's text action space")
        if self._receiver is None:
            self._receiver = make_receiver(self.advisor_lm)
        prompts = [[{"role": "user", "content": self.prompt.replace("{item}", text)}] for text in info["text"]]
        try:
            answers = self._receiver.respond(prompts)
        except ReceiverError as exc:  # the Advisor's failure, not the Receiver's: say whose
            raise type(exc)(f"the prompted Advisor ({self._receiver!r}): {exc}") from None
        # A chat model may fence its hint as code: the fence lines are not the hint.
        self.hints = [self._template.clean(_FENCE.sub("", answer.text)) for answer in answers]
        return np.array(self.hints, dtype=object)
