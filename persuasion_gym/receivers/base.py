"""The Receiver interface: a batch of chat prompts in, a batch of responses out.

Every Receiver has a stable ``identity`` (kind, model, decoding parameters, and for a server
its endpoint and what it says of the model; never a secret) that keys the persistent response
cache and is written into every result file. Subclasses
implement ``generate`` for the requests the cache does not hold; ``respond`` does the rest.
"""

from __future__ import annotations

import json
import logging
import weakref
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

from tqdm.auto import tqdm

from persuasion_gym.errors import ConfigError, ReceiverConfigError, ReceiverError
from persuasion_gym.receivers import budget
from persuasion_gym.receivers.cache import ResponseCache, cache_key, open_cache
from persuasion_gym.receivers.response import Request, Response, Usage, token_cost
from persuasion_gym.tasks.base import Messages

logger = logging.getLogger(__name__)
# (cache file, identity) pairs whose old entries this process has already pointed out.
_legacy_noted: set[tuple[str, str]] = set()
# Every Receiver of this process, for what a whole stage (a benchmark run's training) spent.
_LIVE: weakref.WeakSet[Receiver] = weakref.WeakSet()

OnError = Literal["raise", "return"]
OnTruncated = Literal["score", "error"]


@dataclass
class ReceiverStats:
    """What a Receiver has cost this process: requests sent, cache hits, tokens; and the
    backend fingerprints its answers carried (OpenAI's ``system_fingerprint``), cached ones too."""

    calls: int = 0
    cache_hits: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    reasoning_tokens: int = 0  # the part of completion_tokens spent thinking
    truncated: int = 0  # answers served (asked or cached) that the token limit cut off
    fingerprints: set[str] = field(default_factory=set)


def _summary(errors: list[ReceiverError], asked: int, cached: bool) -> ReceiverError:
    """One error for a batch whose requests failed after their retries: how many, why (the
    distinct reasons, most common first), and that nothing else is lost. What a rerun does
    depends on the command (a recording asks the missing cells, a benchmark reruns the missing
    runs, training resumes from a checkpoint): the caller who knows it says it."""
    if len(errors) == 1 and asked == 1:
        return errors[0]
    reasons = Counter(str(error) for error in errors).most_common()
    why = "; ".join(f"{n} x {reason}" if n > 1 else reason for reason, n in reasons[:3])
    if len(reasons) > 3:
        why += f"; and {len(reasons) - 3} other reasons"
    kept = asked - len(errors)
    if kept == 0:
        after = "none was answered"
    elif cached:
        after = f"the other {kept} answers are saved in the response cache and are not asked again"
    else:
        after = f"the other {kept} answered; without a cache a rerun asks them all again"
    kinds = {type(error) for error in errors}
    kind = kinds.pop() if len(kinds) == 1 else ReceiverError
    return kind(f"{len(errors)} of {asked} Receiver requests failed ({why}); {after}")


class Receiver(ABC):
    """A black-box model that answers chat prompts, with a persistent response cache."""

    kind: str = "receiver"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Before 0.1's restructuring the method to implement was private; say so, not "abstract".
        if "_generate" in vars(cls) and getattr(cls.generate, "__isabstractmethod__", False):
            raise TypeError(f"{cls.__qualname__} defines _generate: the method a Receiver implements is now "
                            "generate(requests), same arguments and results; rename it")

    def __init__(
        self,
        cache: ResponseCache | str | Path | bool | None = True,
        price_in: float = 0.0,
        price_out: float = 0.0,
        on_truncated: OnTruncated = "score",
    ):
        """``price_in``/``price_out``: USD per million prompt/completion tokens (reasoning tokens
        are completion tokens), for cost reports. ``on_truncated``: an answer the token limit
        cut off is scored as it is (``"score"``, and counted) or is a failure (``"error"``)."""
        if on_truncated not in ("score", "error"):
            raise ConfigError(f"on_truncated={on_truncated!r}: use 'score' or 'error'")
        self.cache = open_cache(cache)
        self.stats = ReceiverStats()
        self.price_in, self.price_out = price_in, price_out
        self.on_truncated = on_truncated
        _LIVE.add(self)

    @property
    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """JSON-serialisable kind, model and decoding parameters; must hold no secret."""

    @abstractmethod
    def generate(self, requests: list[Request]) -> Iterator[tuple[int, Response | ReceiverError]]:
        """Answer every request (concurrently where possible), yielding ``(index, result)`` as
        each finishes, in any order; a failed request yields its error. No cache, no counts:
        what subclasses implement, under ``respond`` (which serves the cache and counts), and
        what a caller that keeps the cache elsewhere asks (a Ray replica, whose driver holds it).
        The caller stores each result before resuming the generator, so a generator that frees
        its concurrency slot only on resumption bounds what a kill can lose to the requests in flight."""

    @property
    def completion_budget(self) -> int | None:
        """The most completion tokens one answer may take, if the Receiver caps it (for plans)."""
        return None

    def cached_count(self, prompts: Sequence[Messages], samples: Sequence[int] | None = None) -> int:
        """How many of these prompts (distinct ones, with their sample indices) the cache
        already answers: what a plan need not pay for."""
        if self.cache is None or not prompts:
            return 0
        identity = self.identity_json
        samples = [0] * len(prompts) if samples is None else list(samples)
        keys = list({cache_key(identity, list(m), s) for m, s in zip(prompts, samples, strict=True)})
        return sum(hit is not None for hit in self.cache.get_many(keys))

    @property
    def legacy_identity(self) -> dict[str, Any] | None:
        """The identity earlier versions gave this Receiver, if it differs: answers cached
        under it are never served to this one (they may come from another server), only
        pointed out once, with how to adopt them (``ResponseCache.adopt``)."""
        return None

    @property
    def dispatch(self) -> tuple[int, int]:
        """How to keep this Receiver busy when another process feeds it (a Ray replica):
        (requests per call, calls in flight at once)."""
        return 8, 1

    @property
    def identity_json(self) -> str:
        return json.dumps(self.identity, sort_keys=True)

    def respond(
        self,
        prompts: Sequence[Messages],
        samples: Sequence[int] | None = None,
        on_error: OnError = "raise",
        progress: bool = False,
    ) -> list[Response]:
        """Answer a batch of prompts, serving what it can from the cache.

        Each response is cached the moment it arrives, so an interrupted batch or a failure
        loses nothing already paid for. ``on_error="return"`` returns failed requests as
        ``Response(text="", error=...)`` instead of raising (after the whole batch ran).
        ``progress=True`` shows a bar of the Receiver calls with tokens (and cost, if priced).
        """
        samples = [0] * len(prompts) if samples is None else list(samples)
        if len(samples) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(samples)} sample indices")
        requests = [Request(list(m), s) for m, s in zip(prompts, samples, strict=True)]
        identity = self.identity_json
        keys = [cache_key(identity, r.messages, r.sample) for r in requests]
        results: list[Response | None] = [None] * len(requests)
        if self.cache is not None:
            for i, hit in enumerate(self.cache.get_many(keys)):
                if hit is not None:
                    results[i] = replace(hit, cached=True)
            self.stats.cache_hits += sum(r is not None for r in results)
            self.stats.fingerprints.update(r.fingerprint for r in results if r is not None and r.fingerprint)
        # Identical prompts in one batch are generated once.
        todo: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            if results[i] is None:
                todo.setdefault(key, []).append(i)
        errors: list[ReceiverError] = []
        if todo and self.cache is not None:
            self._note_legacy_entries(self.cache)
        if todo:
            groups = list(todo.values())
            budget.charge(len(groups))  # a command's cap on new calls (--max-calls): refused before sending
            done = len(requests) - sum(map(len, groups))  # from the cache: a resumed run starts there
            answers = self.generate([requests[g[0]] for g in groups])
            with tqdm(total=len(requests), initial=done, desc=f"{self.kind} receiver", unit="resp",
                      disable=not progress) as bar, closing(cast(Generator, answers)):
                for j, out in answers:
                    self.stats.calls += 1
                    if isinstance(out, ConfigError):  # every request would fail alike: say it once, now
                        self.stats.failures += 1
                        raise out
                    if isinstance(out, ReceiverError):
                        errors.append(out)
                        out = Response(text="", error=str(out))
                        self.stats.failures += 1
                    else:
                        self._account(out.usage)
                        if out.fingerprint:
                            self.stats.fingerprints.add(out.fingerprint)
                        if self.cache is not None:
                            self.cache.put_many(identity, [(keys[groups[j][0]], requests[groups[j][0]], out)])
                    for i in groups[j]:
                        results[i] = out
                    bar.set_postfix(self._postfix(), refresh=False)
                    bar.update(len(groups[j]))
        if errors and on_error == "raise":
            raise _summary(errors, len(todo), self.cache is not None)
        return self._cut_off(cast("list[Response]", results), on_error)

    def _cut_off(self, results: list[Response], on_error: OnError) -> list[Response]:
        """Count the answers the token limit cut off; under ``on_truncated="error"`` they fail."""
        cut = {i for i, r in enumerate(results) if r.truncated and r.error is None}
        self.stats.truncated += len(cut)
        if not cut or self.on_truncated == "score":
            return results
        error = ReceiverConfigError(
            f"{len(cut)} of {len(results)} answers were cut off by the token limit (finish_reason='length') and "
            f"on_truncated='error' makes that a failure: raise the budget ({self.budget_option}), lower "
            "reasoning_effort= for a reasoning model, or pass on_truncated='score' to score them as they are")
        if on_error == "raise":
            raise error
        return [replace(r, text="", error=str(error)) if i in cut else r for i, r in enumerate(results)]

    @property
    def budget_option(self) -> str:
        """The option that sets this Receiver's completion budget, for messages that say to raise it."""
        return "max_tokens= or max_completion_tokens="

    def _note_legacy_entries(self, cache: ResponseCache) -> None:
        legacy = self.legacy_identity
        if legacy is None:
            return
        legacy_json = json.dumps(legacy, sort_keys=True)
        noted = (str(cache.path), legacy_json)
        if noted in _legacy_noted:
            return
        _legacy_noted.add(noted)
        old = cache.count(legacy_json)
        if old:
            logger.warning(
                "the response cache %s holds %d answers of model %r cached by an earlier persuasion-gym, whose "
                "Receiver identity did not name the endpoint; they are not served to %r, as they may come from another "
                "server. If they came from this one, reuse them deliberately: persuasion-gym cache adopt "
                "--receiver SPEC (SPEC: this Receiver's spec)", cache.path, old, legacy.get("model"), self)

    def cost_of(self, usage: Usage) -> float:
        """USD an answer's tokens cost at this Receiver's prices (``token_cost``)."""
        return token_cost(usage.prompt_tokens, usage.completion_tokens, self.price_in, self.price_out)

    def _account(self, usage: Usage) -> None:
        self.stats.prompt_tokens += usage.prompt_tokens
        self.stats.completion_tokens += usage.completion_tokens
        self.stats.reasoning_tokens += usage.reasoning_tokens
        self.stats.cost_usd += self.cost_of(usage)

    def _postfix(self) -> dict[str, str]:
        postfix = {"tokens": f"{self.stats.prompt_tokens + self.stats.completion_tokens:,}"}
        if self.stats.reasoning_tokens:
            postfix["reasoning"] = f"{self.stats.reasoning_tokens:,}"
        if self.price_in or self.price_out:
            postfix["cost"] = f"${self.stats.cost_usd:.4f}"
        return postfix

    def close(self) -> None:  # noqa: B027 (a no-op by default; Receivers holding resources override it)
        """Release connections and threads (the Receiver can still be used afterwards)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.identity_json})"


@dataclass(frozen=True)
class Spending:
    """Receiver calls paid, their tokens (reasoning tokens among them) and cost; a reading
    also remembers each Receiver's own figures, so a later reading counts only what came after
    (a Receiver collected meanwhile takes its figures with it, not from the difference)."""

    calls: int = 0
    tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    per_receiver: dict[int, tuple[weakref.ref, tuple[int, int, int, float]]] = field(
        default_factory=dict, repr=False, compare=False)


def _figures(receiver: Receiver) -> tuple[int, int, int, float]:
    stats = receiver.stats
    return (stats.calls - stats.failures, stats.prompt_tokens + stats.completion_tokens, stats.reasoning_tokens,
            stats.cost_usd)


def spending(since: Spending | None = None, exclude: Sequence[Receiver] = (),
             only: Sequence[Receiver] | None = None) -> Spending:
    """What every Receiver of this process (or ``only`` these, less ``exclude``) has paid so
    far, or since an earlier reading (one stage's cost, whichever Receivers it made)."""
    receivers = [r for r in (list(_LIVE) if only is None else only) if all(r is not e for e in exclude)]
    per: dict[int, tuple[weakref.ref, tuple[int, int, int, float]]] = {}
    totals = [0, 0, 0, 0.0]
    for receiver in receivers:
        figures = _figures(receiver)
        per[id(receiver)] = (weakref.ref(receiver), figures)
        base = (0, 0, 0, 0.0)
        if since is not None and id(receiver) in since.per_receiver:
            ref, then = since.per_receiver[id(receiver)]
            if ref() is receiver:  # the same Receiver, not a new one at a reused address
                base = then
        for k in range(4):
            totals[k] += figures[k] - base[k]
    return Spending(int(totals[0]), int(totals[1]), int(totals[2]), float(totals[3]), per)
