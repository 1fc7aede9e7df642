"""Spending, visible before it happens: a plan of the Receiver calls a command will make, and a
process-wide cap on the calls it may make.

A ``Plan`` lists a command's stages (a recording's cells, a policy's training and held-out
answers) with the most requests each can send and how many of those the cache already holds,
their estimated tokens and, where priced, cost. ``Plan.check`` refuses a plan past the cap
before the first call; ``limit_calls`` enforces the cap while the command runs (a plan's
bound can only be estimated for text Advisors), with the same message naming the flag.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from persuasion_gym.errors import ConfigError
from persuasion_gym.receivers.response import token_cost

# The cap the command line puts on a command's new Receiver calls unless told otherwise.
DEFAULT_MAX_CALLS = 10_000
# The completion tokens a call is assumed to take when the Receiver names no budget.
ASSUMED_COMPLETION = 512


class CallBudgetError(ConfigError):
    """A command would make (or has reached) more new Receiver calls than its cap allows;
    nothing past the cap was asked, and what was answered is cached."""


@dataclass
class Stage:
    """One part of a command's spending: at most ``calls`` requests, ``cached`` of which the
    cache already answers; ``prompt_tokens`` estimated over the new ones."""

    name: str
    calls: int
    cached: int = 0
    prompt_tokens: int = 0
    exact: bool = True  # False: an upper bound (the requests depend on what a policy does)

    @property
    def new(self) -> int:
        return max(self.calls - self.cached, 0)


@dataclass
class Plan:
    """The stages of one Receiver's spending in a command."""

    receiver: str  # how the Receiver is shown (its repr)
    stages: list[Stage] = field(default_factory=list)
    completion_budget: int | None = None
    price_in: float = 0.0
    price_out: float = 0.0

    @property
    def new_calls(self) -> int:
        return sum(stage.new for stage in self.stages)

    @property
    def tokens(self) -> int:
        completion = self.completion_budget or ASSUMED_COMPLETION
        return sum(stage.prompt_tokens + stage.new * completion for stage in self.stages)

    @property
    def cost_usd(self) -> float:
        completion = self.completion_budget or ASSUMED_COMPLETION
        return token_cost(sum(stage.prompt_tokens for stage in self.stages),
                          sum(stage.new for stage in self.stages) * completion, self.price_in, self.price_out)

    def describe(self) -> str:
        """The plan as a few lines for the terminal."""
        bound = "" if all(stage.exact for stage in self.stages) else "at most "
        head = f"plan for {self.receiver}: {bound}{self.new_calls:,} new Receiver calls"
        cached = sum(min(stage.cached, stage.calls) for stage in self.stages)
        if cached:
            head += f" ({cached:,} more answered by the cache)"
        budget = self.completion_budget or ASSUMED_COMPLETION
        head += f", about {self.tokens:,} tokens (completions at {budget:,} tokens each, at most)"
        if self.price_in or self.price_out:
            head += f", up to ${self.cost_usd:,.2f}"
        width = max((len(stage.name) for stage in self.stages), default=0)
        lines = [head]
        for stage in self.stages:
            note = f"{'at most ' if not stage.exact else ''}{stage.calls:,} requests"
            if stage.cached:
                note += f", {min(stage.cached, stage.calls):,} cached"
            lines.append(f"  {stage.name:<{width}}  {note}")
        return "\n".join(lines)


def check_plans(plans: list[Plan], max_calls: int | None) -> None:
    """Refuse, before any call, plans whose new calls pass ``max_calls`` (None or 0: no cap)."""
    total = sum(plan.new_calls for plan in plans)
    if max_calls and total > max_calls:
        raise CallBudgetError(
            f"this command would make up to {total:,} new Receiver calls, past --max-calls {max_calls:,}: raise "
            f"--max-calls (0: no cap) if that is meant, or ask less (fewer --n-items / --train-items / --samples "
            "/ --timesteps / --steps); nothing was asked")


_remaining: list[int | None] = [None]  # the calls the running command may still make (None: no cap)
_cap: list[int | None] = [None]


@contextlib.contextmanager
def limit_calls(max_calls: int | None) -> Iterator[None]:
    """Cap the new Receiver calls of everything this process runs inside (None or 0: no cap)."""
    before = _remaining[0], _cap[0]
    _remaining[0], _cap[0] = (max_calls or None), (max_calls or None)
    try:
        yield
    finally:
        _remaining[0], _cap[0] = before


def charge(calls: int) -> None:
    """Take ``calls`` new requests from the cap, or refuse them all (none is sent)."""
    remaining, cap = _remaining[0], _cap[0]
    if remaining is None or cap is None or calls == 0:
        return
    if calls > remaining:
        raise CallBudgetError(
            f"the next {calls:,} Receiver requests would pass --max-calls {cap:,} ({cap - remaining:,} made so far): "
            "every answer so far is cached; run the same command with a higher --max-calls (0: no cap) and it goes "
            "on from there")
    _remaining[0] = remaining - calls
