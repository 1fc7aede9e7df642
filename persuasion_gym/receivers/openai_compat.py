"""A Receiver behind any OpenAI-compatible chat-completions endpoint.

OpenAI, vLLM, Ollama, llama.cpp server and TGI all speak this protocol. The ``openai`` SDK
does the HTTP, timeouts and retries (exponential backoff on 429, 5xx and connection errors);
this class adds concurrency under a limit, error messages that say what to fix, and keeps
the API key out of identities, caches, reprs and exceptions.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import re
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import httpx2
import openai

from persuasion_gym.errors import ConfigError, ReceiverConfigError, ReceiverError, ReceiverUnavailableError
from persuasion_gym.receivers.base import OnTruncated, Receiver
from persuasion_gym.receivers.cache import ResponseCache
from persuasion_gym.receivers.reasoning import split_reasoning
from persuasion_gym.receivers.response import Request, Response, Usage

OPENAI_URL = "https://api.openai.com/v1"
AUTO = "auto"
DEFAULT_MAX_TOKENS = 512
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high")
# OpenAI's reasoning models, by name (a fine-tune "ft:o4-mini-...:org::id" too): they refuse
# max_tokens and any temperature but the default.
_OPENAI_REASONING = re.compile(r"^(ft:)?(openai/)?(o\d|gpt-5)", re.IGNORECASE)
# What to change when a server refuses a parameter, by the parameter's name.
_PARAMETER_FIXES = {
    "max_tokens": "send the budget as max_completion_tokens instead (spec '?max_tokens=none&max_completion_tokens=N')",
    "temperature": "send no temperature, leaving the model's default (spec '?temperature=none')",
    "top_p": "send no top_p (drop top_p= from the spec)",
    "seed": "send no seed (drop seed= from the spec)",
    "reasoning_effort": "send no reasoning_effort (the model does not take it: drop it from the spec)",
    "max_completion_tokens": "send the budget as max_tokens instead (spec '?max_tokens=N')",
}
# Local servers (vLLM, llama.cpp, Ollama) accept any key; the SDK insists on one.
PLACEHOLDER_KEY = "EMPTY"
# Receivers with a running loop, closed at exit while their loop threads still run.
_OPEN: weakref.WeakSet[OpenAIReceiver] = weakref.WeakSet()
# Clients not yet closed. A Receiver collected unclosed closes its client on its loop; held
# here, the client is not collected with it before that (aiohttp would warn).
_CLIENTS: set[openai.AsyncOpenAI] = set()


class OpenAIReceiver(Receiver):
    """Chat completions from an OpenAI-compatible endpoint.

    Args:
        model: the model name; when None, the endpoint's only served model (``/v1/models``).
        base_url: the endpoint, e.g. ``http://127.0.0.1:8000/v1``; default ``$OPENAI_BASE_URL``,
            else the OpenAI API.
        api_key: default ``$OPENAI_API_KEY``; required for the OpenAI API, optional elsewhere.
        temperature, max_tokens, top_p, seed: decoding parameters (part of the identity); None
            sends none (the server's default). With a seed, sample ``s`` of a prompt is drawn
            with seed ``seed + s``. ``"auto"`` (the default of the first two): greedy with a
            512-token budget, except for OpenAI's reasoning models (o1, o3, o4-mini, gpt-5...),
            which take only their default temperature and a ``max_completion_tokens`` budget:
            for them nothing is sent but what was given, and ``max_tokens`` goes as
            ``max_completion_tokens``.
        max_completion_tokens: the completion budget, thinking included, under the name
            OpenAI's reasoning models take (vLLM takes both names).
        reasoning_effort: ``"minimal"``, ``"low"``, ``"medium"``, ``"high"`` (reasoning models).
        max_concurrency: requests in flight at once.
        rpm, tpm: client-side limits (requests, tokens per minute) shared by every request of
            this Receiver, paced evenly so that an API account's budget is not overrun; the
            SDK honours a 429's ``Retry-After`` on top. Tokens are estimated before a request
            (prompt characters / 4 plus the completion budget) and settled with its usage.
        on_truncated: ``"score"`` (an answer cut off by the token limit is scored as it is,
            and counted as cut off) or ``"error"`` (it is a Receiver failure).
        timeout: seconds per request attempt; max_retries: retries after the first attempt.
        cache_key: a name declaring that every endpoint given it serves the same model, so
            they share cached answers (replicas of one deployment). Without it the identity
            holds the endpoint and what ``/v1/models`` says of the model, and no two servers
            share an answer.
        cache: the response cache (see ``open_cache``).
        price_in, price_out: USD per million prompt/completion tokens, for cost reports.
    """

    kind = "openai"

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float | str | None = AUTO,
        max_tokens: int | str | None = AUTO,
        top_p: float | None = None,
        seed: int | None = None,
        max_completion_tokens: int | None = None,
        reasoning_effort: str | None = None,
        max_concurrency: int = 16,
        timeout: float = 120.0,
        max_retries: int = 4,
        rpm: float | None = None,
        tpm: float | None = None,
        cache_key: str | None = None,
        on_truncated: OnTruncated = "score",
        cache: ResponseCache | str | Path | bool | None = True,
        price_in: float = 0.0,
        price_out: float = 0.0,
    ):
        super().__init__(cache, price_in, price_out, on_truncated)
        if cache_key is not None and not str(cache_key).strip():
            raise ConfigError("cache_key='': name the deployment the endpoints share, e.g. cache_key=qwen7b-prod")
        self.cache_key = None if cache_key is None else str(cache_key)
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key and self.base_url.startswith(OPENAI_URL):
            raise ReceiverConfigError(
                "missing API key for the OpenAI API: set OPENAI_API_KEY or pass api_key=; "
                "for a local server pass base_url= (or set OPENAI_BASE_URL)"
            )
        self._api_key = key or PLACEHOLDER_KEY
        if max_concurrency < 1:
            raise ConfigError(f"max_concurrency={max_concurrency}: must be at least 1")
        for name, value in (("temperature", temperature), ("max_tokens", max_tokens)):
            if isinstance(value, str) and value != AUTO:
                raise ConfigError(f"{name}={value!r}: pass a number, None (send none) or 'auto'")
        for name, value in (("rpm", rpm), ("tpm", tpm), ("max_completion_tokens", max_completion_tokens)):
            if value is not None and value <= 0:
                raise ConfigError(f"{name}={value}: must be positive (or None for no limit)")
        if reasoning_effort is not None and reasoning_effort not in REASONING_EFFORTS:
            raise ConfigError(f"reasoning_effort={reasoning_effort!r}: use one of {', '.join(REASONING_EFFORTS)}")
        self._asked = {"temperature": temperature, "max_tokens": max_tokens, "max_completion_tokens":
                       max_completion_tokens}
        self.top_p, self.seed, self.reasoning_effort = top_p, seed, reasoning_effort
        self.max_concurrency, self.timeout, self.max_retries = max_concurrency, timeout, max_retries
        self.rpm, self.tpm = rpm, tpm
        self._pacer: _Pacer | None = None  # lives on the event loop; made there on first use
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: openai.AsyncOpenAI | None = None
        self._lock = threading.Lock()
        # What /v1/models says of the model: asked on first use (a pickle carries it along).
        self._server: dict[str, Any] | None = None
        self._server_known = False
        try:
            self.model = model or self._discover_model()
        except BaseException:
            self.close()
            raise
        self._resolve_decoding()

    def _resolve_decoding(self) -> None:
        """What each request sends, from what was asked and what the model takes."""
        temperature, max_tokens = self._asked["temperature"], self._asked["max_tokens"]
        completion = cast("int | None", self._asked["max_completion_tokens"])
        self.temperature: float | None
        self.max_tokens: int | None
        self.max_completion_tokens: int | None
        if is_openai_reasoning_model(self.model):
            # Only the default temperature; the budget under its other name.
            self.temperature = None if temperature == AUTO else cast("float | None", temperature)
            if max_tokens not in (AUTO, None) and completion is None:
                completion = cast(int, max_tokens)
            self.max_tokens, self.max_completion_tokens = None, completion
        else:
            self.temperature = 0.0 if temperature == AUTO else cast("float | None", temperature)
            self.max_tokens = (None if completion is not None else DEFAULT_MAX_TOKENS) if max_tokens == AUTO \
                else cast("int | None", max_tokens)
            self.max_completion_tokens = completion

    # -- identity -------------------------------------------------------------------------
    @property
    def identity(self) -> dict[str, Any]:
        """The model and decoding, and what tells servers apart: the endpoint and what it says
        of the model in ``/v1/models`` (vLLM's ``root`` checkpoint, llama.cpp's ``meta``, the
        owner), asked once; or, for endpoints declared alike, their ``cache_key`` alone."""
        identity = self._decoding_identity()
        if self.cache_key is not None:
            identity["cache_key"] = self.cache_key
        else:
            identity["endpoint"] = self.base_url
            identity["server"] = self.server_info
        return identity

    @property
    def completion_budget(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def legacy_identity(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "top_p": self.top_p,
            "seed": self.seed,
        }

    def _decoding_identity(self) -> dict[str, Any]:
        """Exactly what requests send besides the model and messages (None: not sent)."""
        identity = self.legacy_identity
        for name in ("max_completion_tokens", "reasoning_effort"):
            if getattr(self, name) is not None:  # absent when unset: the identity stays as before
                identity[name] = getattr(self, name)
        return identity

    @property
    def server_info(self) -> dict[str, Any] | None:
        """The stable fields ``/v1/models`` gives for this model (None when the server lists
        no models, or not this one), fetched on first use. Listing times (``created``, which
        vLLM and llama.cpp set to the time of asking) and ids are left out."""
        if not self._server_known:
            self._server, self._server_known = _describe(self._list_models(required=False), self.model), True
        return self._server

    @property
    def dispatch(self) -> tuple[int, int]:
        return 1, self.max_concurrency  # one request per call, as many as the endpoint may take

    def __repr__(self) -> str:
        return f"OpenAIReceiver(model={self.model!r}, base_url={self.base_url!r})"

    # -- the event loop the SDK runs on -----------------------------------------------------
    # A private loop in a daemon thread, so ``respond`` works from plain code, from Jupyter
    # (which already runs a loop) and from several envs' threads alike.
    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="openai-receiver", daemon=True)
                self._thread.start()
                _OPEN.add(self)
            return self._loop

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._event_loop()).result()

    def _get_client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            # The SDK's aiohttp transport (its documented choice for high concurrency) spends
            # far less CPU per request than its default; one kept-alive connection per slot,
            # so a batch does not reopen connections (the default keeps only 100 alive).
            slots = httpx2.Limits(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency)
            self._client = openai.AsyncOpenAI(
                api_key=self._api_key, base_url=self.base_url, timeout=self.timeout,
                max_retries=self.max_retries, http_client=openai.DefaultAioHttpClient(limits=slots),
            )
            _CLIENTS.add(self._client)
        return self._client

    def __getstate__(self) -> dict:
        # Threads, loops and HTTP clients do not cross processes; they are rebuilt on use.
        state = self.__dict__.copy()
        state.update(_loop=None, _thread=None, _client=None, _lock=None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def close(self, wait: bool = True) -> None:
        """Close the HTTP connections and stop the event-loop thread (both come back on use)."""
        loop, client, thread = self._loop, self._client, self._thread
        self._loop, self._client, self._thread = None, None, None
        # At interpreter exit (a ``__del__`` after threads stopped) the loop thread is gone:
        # waiting on it would hang, and the OS closes the sockets anyway.
        if loop is None or thread is None or not thread.is_alive() or sys.is_finalizing():
            return

        async def shut() -> None:
            if client is not None:
                await client.close()
                _CLIENTS.discard(client)

        done = asyncio.run_coroutine_threadsafe(shut(), loop)
        done.add_done_callback(lambda _: loop.call_soon_threadsafe(loop.stop))
        if wait and threading.current_thread() is not thread:
            try:
                done.result(timeout=5)
            except (concurrent.futures.TimeoutError, RuntimeError):
                pass  # a stuck connection must not block closing

    def __del__(self) -> None:
        # A Receiver dropped unclosed still closes its connections (aiohttp warns otherwise).
        if getattr(self, "_loop", None) is not None:
            self.close(wait=False)

    # -- requests ----------------------------------------------------------------------------
    def _list_models(self, required: bool) -> list[dict[str, Any]] | None:
        """``/v1/models``' entries; None where the server has no such route and ``required``
        is false (a listing is only a description then)."""
        async def models() -> Any:
            return (await self._get_client().get("/models", cast_to=httpx2.Response)).json()

        try:
            listing = self._run(models())
        except openai.APIStatusError as exc:
            if not required and exc.status_code in (404, 405, 501):  # no such route: nothing to describe
                return None
            raise self._explain(exc, "listing the served models") from None
        except openai.OpenAIError as exc:
            raise self._explain(exc, "listing the served models") from None
        except ValueError:  # not JSON
            if not required:
                return None
            raise ReceiverError(f"{self.base_url}/models answered with a body that is not JSON") from None
        entries = listing.get("data") if isinstance(listing, dict) else None
        return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []

    def _discover_model(self) -> str:
        entries = self._list_models(required=True) or []
        served = [str(e.get("id")) for e in entries]
        if len(served) == 1:
            self._server, self._server_known = _describe(entries, served[0]), True
        if len(served) != 1:
            raise ConfigError(
                f"{self.base_url} serves {len(served)} models ({', '.join(served[:10]) or 'none'}): "
                "name one with model= or a spec 'openai:MODEL@URL'"
            )
        return served[0]

    def generate(self, requests: list[Request]) -> Iterator[tuple[int, Response | ReceiverError]]:
        loop, limit = self._event_loop(), asyncio.Semaphore(self.max_concurrency)
        futures = {
            asyncio.run_coroutine_threadsafe(self._one(request, limit), loop): i
            for i, request in enumerate(requests)
        }
        try:
            for future in concurrent.futures.as_completed(futures):
                yield futures[future], future.result()
                # ``respond`` has stored the result by now: only then may another request
                # start, so a killed run has paid for at most max_concurrency lost answers.
                loop.call_soon_threadsafe(limit.release)
        finally:  # interrupted (KeyboardInterrupt, an error downstream): stop what is in flight
            for future in futures:
                future.cancel()

    async def _one(self, request: Request, limit: asyncio.Semaphore) -> Response | ReceiverError:
        body: dict[str, Any] = {"model": self.model, "messages": request.messages}
        for name in ("temperature", "max_tokens", "max_completion_tokens", "top_p", "reasoning_effort"):
            if getattr(self, name) is not None:  # only what was given or the model takes
                body[name] = getattr(self, name)
        if self.seed is not None:
            body["seed"] = self.seed + request.sample
        await limit.acquire()  # released by ``generate`` once the result is stored
        estimate = 0
        if self.rpm or self.tpm:
            if self._pacer is None:
                self._pacer = _Pacer(self.rpm, self.tpm)
            budget = self.max_completion_tokens or self.max_tokens or 0
            estimate = sum(len(str(m.get("content", ""))) for m in request.messages) // 4 + budget
            await self._pacer.wait(estimate)
        start = time.perf_counter()
        try:
            # The SDK's own request path (auth, timeouts, retries, errors) without the typed
            # wrapper: ``chat.completions.create`` walks every message through its TypedDict
            # transform and builds a pydantic model, a quarter of the CPU a request costs,
            # for plain-text messages that need neither.
            raw = await self._get_client().post("/chat/completions", cast_to=httpx2.Response, body=body)
            completion = raw.json()
        except openai.OpenAIError as exc:
            return self._explain(exc, f"asking model {self.model!r}")
        except ValueError:  # not JSON
            return ReceiverError(f"{self.base_url} answered with a body that is not JSON for model {self.model!r}")
        except BaseException:
            limit.release()
            raise
        latency = time.perf_counter() - start
        choices = completion.get("choices") if isinstance(completion, dict) else None
        if not choices:
            return ReceiverError(f"{self.base_url} returned no choices for model {self.model!r}")
        response = _parse(completion, choices[0], latency)
        if self._pacer is not None:
            self._pacer.settle(estimate, response.usage.total_tokens)
        return response

    def _explain(self, exc: openai.OpenAIError, doing: str) -> ReceiverError:
        """Turn an SDK error into one that says what to fix, with the API key redacted."""
        where, retried = self.base_url, f"after {self.max_retries} retries"
        kind: type[ReceiverError] = ReceiverError
        if isinstance(exc, openai.APITimeoutError) and not _refused(exc):
            kind, message = ReceiverUnavailableError, (
                f"{where} did not answer within {self.timeout:g} s {retried} while {doing}: "
                "raise timeout= or check the server's load"
            )
        elif isinstance(exc, openai.APIConnectionError):  # a timeout is one too, when refused
            kind, message = ReceiverUnavailableError, (
                f"cannot reach the Receiver at {where} {retried} while {doing}: is the server "
                "running? check base_url= / OPENAI_BASE_URL or the receiver spec"
            )
        elif isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            kind, message = ReceiverConfigError, (
                f"{where} rejected the API key (HTTP {exc.status_code}) while {doing}: "
                "set OPENAI_API_KEY or pass api_key= with a valid key"
            )
        elif isinstance(exc, openai.BadRequestError) and (refused := _refused_parameter(exc)) is not None:
            kind, message = ReceiverConfigError, (
                f"{where} refused the parameter {refused!r} for model {self.model!r} ({_short(exc.message, 160)}): "
                f"{_PARAMETER_FIXES.get(refused, f'drop {refused}= from the spec')}"
            )
        elif isinstance(exc, openai.NotFoundError):
            message = (
                f"{where} answered 404 while {doing}: check the model name and that the "
                "base URL ends in /v1"
            )
        elif isinstance(exc, openai.APIStatusError):
            message = f"{where} failed with HTTP {exc.status_code} {retried} while {doing}: {_short(exc.message)}"
        else:
            message = f"{where} failed while {doing}: {_short(str(exc))}"
        if self._api_key != PLACEHOLDER_KEY:
            message = message.replace(self._api_key, "***")
        return kind(message)

# ``/v1/models`` fields that describe the model served and stay put across listings.
_STABLE_FIELDS = ("owned_by", "root", "parent", "max_model_len", "meta")


def _describe(entries: list[dict[str, Any]] | None, model: str) -> dict[str, Any] | None:
    entry = next((e for e in entries or [] if e.get("id") == model), None)
    if entry is None:
        return None
    return {name: entry[name] for name in _STABLE_FIELDS if entry.get(name) is not None}


def is_openai_reasoning_model(model: str) -> bool:
    """Whether ``model`` names one of OpenAI's reasoning models (o1, o3, o4-mini, gpt-5, ...)."""
    return bool(_OPENAI_REASONING.match(model))


def _parse(completion: dict[str, Any], choice: dict[str, Any], latency: float) -> Response:
    """One choice as a Response: the answer apart from the thinking, why it stopped, usage."""
    message = choice.get("message") or {}
    content = message.get("content") or ""
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    answer, inline = split_reasoning(content)
    if inline is not None:  # no reasoning parser on the server: the thinking came inline
        reasoning = inline if not reasoning else f"{reasoning}\n{inline}"
    usage = completion.get("usage") or {}
    details = usage.get("completion_tokens_details") or {}
    fingerprint = completion.get("system_fingerprint")
    return Response(
        answer.strip() if inline is not None else answer,
        Usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0,
              details.get("reasoning_tokens") or 0),
        latency,
        fingerprint=fingerprint if isinstance(fingerprint, str) and fingerprint else None,
        reasoning=reasoning if isinstance(reasoning, str) and reasoning else None,
        finish_reason=choice.get("finish_reason") if isinstance(choice.get("finish_reason"), str) else None,
    )


def _refused_parameter(exc: openai.BadRequestError) -> str | None:
    """The request parameter a 400 refuses, if it is about one (OpenAI names it in ``param``;
    other servers only in the message)."""
    if exc.param in _PARAMETER_FIXES:
        return exc.param
    text = exc.message.lower()
    if "unsupported" in text or "not supported" in text or "extra inputs" in text:
        return next((name for name in _PARAMETER_FIXES if f"'{name}'" in text or f'"{name}"' in text), None)
    return None


class _Pacer:
    """Requests and tokens per minute, on the Receiver's event loop: each request waits for
    its turn (requests evenly spaced, a little under the limit) and until the tokens of the
    last minute leave room for its estimate."""

    _MARGIN = 1.02  # network jitter must not bunch two requests into one window's edge

    def __init__(self, rpm: float | None, tpm: float | None):
        self.interval = self._MARGIN * 60.0 / rpm if rpm else 0.0
        self.tpm = tpm
        self.next_at = 0.0
        self.spent: deque[list[float]] = deque()  # [time, tokens] of the last minute's requests

    async def wait(self, tokens: int) -> None:
        now = time.monotonic()
        at, self.next_at = max(now, self.next_at), max(now, self.next_at) + self.interval
        if at > now:
            await asyncio.sleep(at - now)
        while self.tpm:
            now = time.monotonic()
            while self.spent and self.spent[0][0] <= now - 60.0:
                self.spent.popleft()
            used = sum(n for _, n in self.spent)
            if not self.spent or used + tokens <= self.tpm:
                break
            await asyncio.sleep(self.spent[0][0] + 60.0 - now)
        self.spent.append([time.monotonic(), float(tokens)])

    def settle(self, estimate: int, actual: int) -> None:
        """Replace a request's estimate by the tokens it used."""
        for entry in reversed(self.spent):
            if entry[1] == estimate:
                entry[1] = float(actual)
                return


@atexit.register
def _close_open_receivers() -> None:
    for receiver in list(_OPEN):
        receiver.close()


def _refused(exc: BaseException) -> bool:
    """Whether an SDK timeout was in fact a refused or dropped connection: the aiohttp
    transport reports every connection failure as a connect timeout."""
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError, ConnectionError)):
            return True
        cause = cause.__cause__
    return False


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
