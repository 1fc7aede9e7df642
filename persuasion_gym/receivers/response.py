"""What flows through a Receiver: requests, responses and token usage."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from persuasion_gym.tasks.base import Messages


@dataclass(frozen=True)
class Usage:
    """Tokens of one or more responses. ``reasoning_tokens`` are the part of the completion
    tokens spent thinking (billed as output, as OpenAI and vLLM count them)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "total_tokens": self.total_tokens}


def token_cost(prompt_tokens: float, completion_tokens: float, price_in: float, price_out: float) -> float:
    """USD of tokens at ``price_in``/``price_out`` USD per million prompt/completion tokens
    (reasoning tokens are billed as the completion tokens they are part of): the one cost
    formula, for answers paid (``Receiver.cost_of``) and for plans before they are asked."""
    return (prompt_tokens * price_in + completion_tokens * price_out) / 1e6


@dataclass(frozen=True)
class Response:
    """One Receiver response. ``error`` is set (and ``text`` empty) only for a failed request
    returned under ``on_error="return"``; failures are never cached. ``fingerprint`` is what
    the server said of its backend with this answer (OpenAI's ``system_fingerprint``), if
    anything: it is recorded, not part of the cache key, as it is only known afterwards.

    ``text`` is the answer alone, what scorers read; a reasoning model's thinking is in
    ``reasoning``; ``finish_reason`` says why it stopped (``"length"``: cut off by the token
    limit, see ``truncated``)."""

    text: str
    usage: Usage = Usage()
    latency_s: float = 0.0
    cached: bool = False
    error: str | None = None
    fingerprint: str | None = None
    reasoning: str | None = None
    finish_reason: str | None = None

    @property
    def truncated(self) -> bool:
        """Cut off by the token limit: the answer may be missing or incomplete."""
        return self.finish_reason == "length"


@dataclass(frozen=True)
class Request:
    """One prompt to answer; ``sample`` tells repeated draws of the same prompt apart."""

    messages: Messages
    sample: int = 0
