"""What flows through a Receiver: requests, responses and token usage."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from persuasion_gym.tasks.base import Messages


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "total_tokens": self.total_tokens}


@dataclass(frozen=True)
class Response:
    """One Receiver response. ``error`` is set (and ``text`` empty) only for a failed request
    returned under ``on_error="return"``; failures are never cached. ``fingerprint`` is what
    the server said of its backend with this answer (OpenAI's ``system_fingerprint``), if
    anything: it is recorded, not part of the cache key, as it is only known afterwards."""

    text: str
    usage: Usage = Usage()
    latency_s: float = 0.0
    cached: bool = False
    error: str | None = None
    fingerprint: str | None = None


@dataclass(frozen=True)
class Request:
    """One prompt to answer; ``sample`` tells repeated draws of the same prompt apart."""

    messages: Messages
    sample: int = 0
