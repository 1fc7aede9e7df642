"""One exchange with the Receiver: items and contexts in, scored outcomes out, as a batch.

Single envs, vector envs and evaluations all go through ``exchange``, so every Receiver call
is batched (sent concurrently) and cached the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from persuasion_gym.receivers import Receiver, Usage
from persuasion_gym.receivers.base import OnError
from persuasion_gym.receivers.budget import Stage
from persuasion_gym.tasks import Task, TaskItem


@dataclass(frozen=True)
class Outcome:
    """The scored Receiver response to one task item with one context."""

    context: str
    response: str
    answer: str | None
    correct: bool
    reward: float
    usage: Usage
    latency_s: float
    cached: bool
    error: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    fingerprint: str | None = None  # the server's system_fingerprint for this answer, if it sent one
    truncated: bool = False  # cut off by the token limit (scored as it is)
    finish_reason: str | None = None  # why the Receiver stopped, as it said
    reasoning: str | None = None  # a reasoning model's thinking, apart from the answer

    def info(self) -> dict[str, Any]:
        """What a step reports: the same for a Receiver call and its later cache hit (the cache
        keeps the call's usage and latency), so seeded steps compare equal on a cold cache;
        ``cached`` is on the Outcome (``env.unwrapped.last_outcomes``)."""
        info: dict[str, Any] = {
            "context": self.context,
            "response": self.response,
            "answer": self.answer,
            "correct": self.correct,
            "usage": self.usage.as_dict(),
            "latency_s": self.latency_s,
            "truncated": self.truncated,
        }
        if self.reasoning is not None:
            info["reasoning"] = self.reasoning
        if self.error is not None:
            info["receiver_error"] = self.error
        info.update(self.details)
        return info


def exchange(
    task: Task,
    receiver: Receiver,
    items: Sequence[TaskItem],
    contexts: Sequence[str],
    samples: Sequence[int] | None = None,
    on_error: OnError = "raise",
    progress: bool = False,
) -> list[Outcome]:
    """Ask the Receiver every item with its context in one concurrent batch; score each answer.

    ``on_error="return"`` turns a Receiver failure into reward 0 with ``error`` set;
    ``progress=True`` shows a bar of the Receiver calls.
    """
    if len(items) != len(contexts):
        raise ValueError(f"{len(items)} items but {len(contexts)} contexts")
    prompts = [task.build_messages(item, context) for item, context in zip(items, contexts, strict=True)]
    responses = receiver.respond(prompts, samples, on_error=on_error, progress=progress)
    answered = [j for j, response in enumerate(responses) if response.error is None]
    scored = task.score_batch([items[j] for j in answered], [responses[j].text for j in answered])
    scores = dict(zip(answered, scored, strict=True))
    outcomes = []
    for j, (context, response) in enumerate(zip(contexts, responses, strict=True)):
        if j not in scores:
            outcomes.append(Outcome(context, "", None, False, 0.0, response.usage, response.latency_s, False,
                                    response.error))
            continue
        score = scores[j]
        outcomes.append(Outcome(context, response.text, score.answer, score.correct, score.reward,
                                response.usage, response.latency_s, response.cached, details=score.details,
                                fingerprint=response.fingerprint, truncated=response.truncated,
                                finish_reason=response.finish_reason, reasoning=response.reasoning))
    return outcomes


def plan_exchange(name: str, task: Task, receiver: Receiver, items: Sequence[TaskItem], contexts: Sequence[str],
                  samples: Sequence[int] | None = None) -> Stage:
    """The spending of one ``exchange`` before it happens: its distinct requests, how many the
    cache holds, and their prompt tokens (estimated at four characters a token)."""
    prompts = [task.build_messages(item, context) for item, context in zip(items, contexts, strict=True)]
    samples = [0] * len(prompts) if samples is None else list(samples)
    distinct = {(repr(m), s): m for m, s in zip(prompts, samples, strict=True)}
    cached = receiver.cached_count(prompts, samples)
    chars = sum(len(str(part.get("content", ""))) for m in distinct.values() for part in m)
    new_share = 1 - cached / len(distinct) if distinct else 0
    return Stage(name, len(distinct), cached, int(chars / 4 * new_share))
