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
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx2
import openai

from persuasion_gym.errors import ConfigError, ReceiverError, ReceiverUnavailableError
from persuasion_gym.receivers.base import Receiver
from persuasion_gym.receivers.cache import ResponseCache
from persuasion_gym.receivers.response import Request, Response, Usage

OPENAI_URL = "https://api.openai.com/v1"
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
        temperature, max_tokens, top_p, seed: decoding parameters (part of the identity). With
            a seed, sample ``s`` of a prompt is drawn with seed ``seed + s``.
        max_concurrency: requests in flight at once.
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
        temperature: float = 0.0,
        max_tokens: int = 512,
        top_p: float | None = None,
        seed: int | None = None,
        max_concurrency: int = 16,
        timeout: float = 120.0,
        max_retries: int = 4,
        cache_key: str | None = None,
        cache: ResponseCache | str | Path | bool | None = True,
        price_in: float = 0.0,
        price_out: float = 0.0,
    ):
        super().__init__(cache, price_in, price_out)
        if cache_key is not None and not str(cache_key).strip():
            raise ConfigError("cache_key='': name the deployment the endpoints share, e.g. cache_key=qwen7b-prod")
        self.cache_key = None if cache_key is None else str(cache_key)
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key and self.base_url.startswith(OPENAI_URL):
            raise ReceiverUnavailableError(
                "missing API key for the OpenAI API: set OPENAI_API_KEY or pass api_key=; "
                "for a local server pass base_url= (or set OPENAI_BASE_URL)"
            )
        self._api_key = key or PLACEHOLDER_KEY
        if max_concurrency < 1:
            raise ConfigError(f"max_concurrency={max_concurrency}: must be at least 1")
        self.temperature, self.max_tokens, self.top_p, self.seed = temperature, max_tokens, top_p, seed
        self.max_concurrency, self.timeout, self.max_retries = max_concurrency, timeout, max_retries
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

    # -- identity -------------------------------------------------------------------------
    @property
    def identity(self) -> dict[str, Any]:
        """The model and decoding, and what tells servers apart: the endpoint and what it says
        of the model in ``/v1/models`` (vLLM's ``root`` checkpoint, llama.cpp's ``meta``, the
        owner), asked once; or, for endpoints declared alike, their ``cache_key`` alone."""
        identity = self.legacy_identity
        if self.cache_key is not None:
            identity["cache_key"] = self.cache_key
        else:
            identity["endpoint"] = self.base_url
            identity["server"] = self.server_info
        return identity

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

    def _generate(self, requests: list[Request]) -> Iterator[tuple[int, Response | ReceiverError]]:
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
        body: dict[str, Any] = {"model": self.model, "messages": request.messages,
                                "temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.top_p is not None:
            body["top_p"] = self.top_p
        if self.seed is not None:
            body["seed"] = self.seed + request.sample
        await limit.acquire()  # released by ``_generate`` once the result is stored
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
        text = (choices[0].get("message") or {}).get("content") or ""
        usage = completion.get("usage") or {}
        fingerprint = completion.get("system_fingerprint")
        return Response(text, Usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0), latency,
                        fingerprint=fingerprint if isinstance(fingerprint, str) and fingerprint else None)

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
            kind, message = ReceiverUnavailableError, (
                f"{where} rejected the API key (HTTP {exc.status_code}) while {doing}: "
                "set OPENAI_API_KEY or pass api_key= with a valid key"
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
