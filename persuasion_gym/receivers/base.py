"""The Receiver interface: a batch of chat prompts in, a batch of responses out.

Every Receiver has a stable ``identity`` (kind, model, decoding parameters; never a secret)
that keys the persistent response cache and is written into every result file. Subclasses
implement ``_generate`` for the requests the cache does not hold; ``respond`` does the rest.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

from persuasion_gym.errors import ReceiverError
from persuasion_gym.receivers.cache import ResponseCache, cache_key, open_cache
from persuasion_gym.receivers.response import Request, Response
from persuasion_gym.tasks.base import Messages

logger = logging.getLogger(__name__)

OnError = Literal["raise", "return"]


@dataclass
class ReceiverStats:
    """What a Receiver has cost this process: requests sent, cache hits, tokens."""

    calls: int = 0
    cache_hits: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Receiver(ABC):
    """A black-box model that answers chat prompts, with a persistent response cache."""

    kind: str = "receiver"

    def __init__(self, cache: ResponseCache | str | Path | bool | None = True):
        self.cache = open_cache(cache)
        self.stats = ReceiverStats()

    @property
    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """JSON-serialisable kind, model and decoding parameters; must hold no secret."""

    @abstractmethod
    def _generate(self, requests: list[Request], advance: Callable[[int], object]) -> list[Response | ReceiverError]:
        """Answer every request (concurrently where possible); a failed one yields its error.

        Call ``advance(n)`` as ``n`` more requests are answered (it drives the progress bar).
        """

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

        Successful responses are cached before any error is raised, so a failure loses
        nothing already paid for. ``on_error="return"`` returns failed requests as
        ``Response(text="", error=...)`` instead of raising. ``progress=True`` shows a bar of
        the Receiver calls (responses, tokens).
        """
        samples = [0] * len(prompts) if samples is None else list(samples)
        if len(samples) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(samples)} sample indices")
        requests = [Request(list(m), s) for m, s in zip(prompts, samples)]
        identity = self.identity_json
        keys = [cache_key(identity, r.messages, r.sample) for r in requests]
        results: list[Response | None] = [None] * len(requests)
        if self.cache is not None:
            for i, hit in enumerate(self.cache.get_many(keys)):
                if hit is not None:
                    results[i] = replace(hit, cached=True)
            self.stats.cache_hits += sum(r is not None for r in results)
        # Identical prompts in one batch are generated once.
        todo: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            if results[i] is None:
                todo.setdefault(key, []).append(i)
        errors: list[ReceiverError] = []
        if todo:
            firsts = [indices[0] for indices in todo.values()]
            with tqdm(total=len(firsts), desc=f"{self.kind} receiver", unit="resp", disable=not progress) as bar:
                generated = self._generate([requests[i] for i in firsts], bar.update)
            fresh = []
            for key, first, out in zip(todo, firsts, generated):
                if isinstance(out, ReceiverError):
                    errors.append(out)
                    out = Response(text="", error=str(out))
                    self.stats.failures += 1
                else:
                    fresh.append((key, requests[first], out))
                    self.stats.prompt_tokens += out.usage.prompt_tokens
                    self.stats.completion_tokens += out.usage.completion_tokens
                for i in todo[key]:
                    results[i] = out
            self.stats.calls += len(firsts)
            if self.cache is not None and fresh:
                self.cache.put_many(identity, fresh)
        if errors and on_error == "raise":
            raise errors[0]
        return results  # type: ignore[return-value]

    def close(self) -> None:
        """Release connections and threads (the Receiver can still be used afterwards)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.identity_json})"
