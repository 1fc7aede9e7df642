"""A real OpenAI-compatible chat-completions server on 127.0.0.1 with scripted answers.

For tests, benchmarks and offline demos: the ``openai`` SDK talks to it over real HTTP, so
timeouts, retries, concurrency and error handling are exercised for real. Answers come from
a Python function of the request's messages; latency and faults (HTTP errors, hangs) are
injected on demand. Not a model: it is how a test pins down what the Receiver says.

It serves HTTP/1.1 with keep-alive from one asyncio event loop (in a thread of its own, or
the process's main thread under ``python -m persuasion_gym.testing``), so a request waiting
out its latency costs a sleeping coroutine, not a thread: it carries a thousand requests in
flight, and a client benchmarked against it is measured, not the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import random
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

Reply = Callable[[list[dict[str, str]]], str]
_BACKLOG = 4096


def echo_reply(messages: list[dict[str, str]]) -> str:
    return "You said: " + messages[-1]["content"]


class ScriptedChatServer:
    """Serve ``/v1/chat/completions`` and ``/v1/models`` from a reply function.

    Args:
        reply: maps a request's messages to the answer text (it runs on the server's event
            loop: keep it quick).
        model: the one model name served (other names get 404).
        latency_s: seconds each request waits before answering.
        api_key: if set, requests without ``Authorization: Bearer <api_key>`` get 401.
        fail_rate: the share of chat requests answered HTTP 503 at random (a flaky endpoint),
            drawn from ``seed``.
        root: the checkpoint ``/v1/models`` names for the model, as vLLM does (default: none).
        system_fingerprint: sent with every completion, as OpenAI does (default: none).
        think: maps a request's messages to the thinking a reasoning model does before it
            answers (default: none); it comes back as ``reasoning_format`` says:
            ``"reasoning_content"`` (vLLM and SGLang with a reasoning parser, DeepSeek),
            ``"reasoning"`` (newer vLLM, OpenRouter), or ``"inline"`` (``<think>...</think>``
            at the start of ``content``: no parser). Thinking counts as reasoning tokens.
        reasoning_model: refuse ``max_tokens`` and a non-default ``temperature`` with HTTP 400,
            as OpenAI's o-series and gpt-5 do (they take ``max_completion_tokens``).
        rate_limit: ``(requests, window_s)``: past that many chat requests in any window,
            answer 429 with ``retry-after-ms`` saying when the window frees (an API budget).

    A token is a word here. A request's ``max_completion_tokens`` or ``max_tokens`` budget is
    spent on the thinking first, then on the answer; what does not fit is cut off, with
    ``finish_reason="length"``.

    Use as a context manager; ``url`` is the base URL for the SDK, ``requests`` the bodies
    received (``count`` of them), ``fail_next`` queues faults.
    """

    def __init__(
        self,
        reply: Reply = echo_reply,
        model: str = "scripted",
        latency_s: float = 0.0,
        api_key: str | None = None,
        port: int = 0,
        fail_rate: float = 0.0,
        seed: int = 0,
        root: str | None = None,
        system_fingerprint: str | None = None,
        think: Reply | None = None,
        reasoning_format: str = "reasoning_content",
        reasoning_model: bool = False,
        rate_limit: tuple[int, float] | None = None,
    ):
        if reasoning_format not in ("reasoning_content", "reasoning", "inline"):
            raise ValueError(f"reasoning_format={reasoning_format!r}: use reasoning_content, reasoning or inline")
        self.reply, self.model, self.latency_s, self.api_key = reply, model, latency_s, api_key
        self.root, self.system_fingerprint = root, system_fingerprint
        self.think, self.reasoning_format, self.reasoning_model = think, reasoning_format, reasoning_model
        self.rate_limit, self.refused = rate_limit, 0
        self._admitted: deque[float] = deque()  # when the chat requests in the rate window came
        self.fail_rate, self._random = fail_rate, random.Random(seed)
        self.requests: list[dict[str, Any]] = []
        self.in_flight = self.max_in_flight = 0
        self._faults: deque[int | str] = deque()
        self._lock = threading.Lock()
        # Bound now, so ``url`` is known before ``start``.
        self._socket = socket.create_server(("127.0.0.1", port))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}/v1"

    @property
    def count(self) -> int:
        """Chat-completion requests received (faulted ones included)."""
        with self._lock:
            return len(self.requests)

    def fail_next(self, n: int = 1, status: int | str = 500) -> None:
        """Answer the next ``n`` chat requests with HTTP ``status``, or ``"hang"`` (never
        answer until the client gives up) or ``"drop"`` (close the connection unanswered)."""
        with self._lock:
            self._faults.extend([status] * n)

    # -- running ---------------------------------------------------------------------------
    def start(self) -> ScriptedChatServer:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="scripted-chat", daemon=True)
        self._thread.start()
        ready.wait()
        return self

    def serve_forever(self) -> None:
        """Serve on this thread until interrupted (the command line's way)."""
        self._run(threading.Event())

    def stop(self) -> None:
        if self._loop is not None and not self._stopped.is_set():
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> ScriptedChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            # A deep accept queue takes a burst of a thousand new connections at once; at
            # asyncio's default (100) the kernel drops the rest and clients stall in TCP
            # retransmits for seconds.
            server = loop.run_until_complete(asyncio.start_server(
                self._connection, sock=self._socket, limit=1 << 22, backlog=_BACKLOG))
            ready.set()
            loop.run_forever()
            server.close()
            for task in asyncio.all_tasks(loop):  # connections mid-request (a hang, a latency)
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
        finally:
            self._stopped.set()
            loop.close()

    # -- HTTP ------------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:  # headers and body are one write anyway; no 40 ms Nagle stalls
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = header.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                answer = await self._answer(method, path, headers, body)
                if answer is None:  # "drop": close the connection unanswered
                    return
                status, payload, extra = answer
                data = json.dumps(payload).encode()
                head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "Content-Type: application/json",
                        f"Content-Length: {len(data)}", *(f"{k}: {v}" for k, v in extra.items())]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, asyncio.CancelledError):
            return  # a client killed or timed out mid-request, or the server stopping
        finally:
            writer.close()

    @staticmethod
    def _error(status: int, message: str, kind: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        # retry-after-ms keeps the SDK's retries fast in tests.
        return status, {"error": {"message": message, "type": kind, "code": status}}, {"retry-after-ms": "10"}

    async def _answer(self, method: str, path: str, headers: dict[str, str],
                      body: bytes) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return self._error(401, "Incorrect API key provided.", "invalid_request_error")
        route = path.split("?")[0].rstrip("/")
        if method == "GET" and route.endswith("/models"):
            # ``created`` is the time of asking, as vLLM and llama.cpp send it.
            entry = {"id": self.model, "object": "model", "created": int(time.time()), "owned_by": "persuasion-gym"}
            if self.root is not None:
                entry["root"] = self.root
            return 200, {"object": "list", "data": [entry]}, {}
        if method != "POST" or not route.endswith("/chat/completions"):
            return self._error(404, f"no route {path}", "not_found_error")
        request = json.loads(body or b"{}")
        limited = self._over_rate_limit()
        if limited is not None:
            return limited
        fault = self._take_fault(request)
        try:
            return await self._complete(request, fault)
        finally:
            self._done()

    async def _complete(
        self, body: dict[str, Any], fault: int | str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        if fault == "hang":
            await asyncio.sleep(3600)
        if fault == "drop":
            return None
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if isinstance(fault, int):
            return self._error(fault, f"injected fault {fault}", "server_error")
        if body.get("model") != self.model:
            return self._error(404, f"The model '{body.get('model')}' does not exist", "not_found_error")
        refused = self._refused_parameter(body)
        if refused is not None:
            return refused
        messages = body.get("messages", [])
        budget = body.get("max_completion_tokens", body.get("max_tokens"))
        thinking = (self.think(messages) if self.think is not None else "").split()
        answer = self.reply(messages).split(" ")
        cut = budget is not None and len(thinking) + len([w for w in answer if w]) > budget
        if budget is not None:
            thinking = thinking[:budget]
            answer = _first_words(answer, budget - len(thinking))
        message: dict[str, Any] = {"role": "assistant", "content": " ".join(answer)}
        if thinking and self.reasoning_format == "inline":  # cut off mid-thought: the block never closes
            message["content"] = "<think>\n" + " ".join(thinking) + ("" if cut and not any(answer) else
                                                                      "\n</think>\n\n" + message["content"])
        elif thinking:
            message[self.reasoning_format] = " ".join(thinking)
        prompt_tokens = sum(_words(m.get("content", "")) for m in messages)
        completion_tokens = len(thinking) + _words(" ".join(answer))
        extra = {} if self.system_fingerprint is None else {"system_fingerprint": self.system_fingerprint}
        usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                 "total_tokens": prompt_tokens + completion_tokens}
        if self.think is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": len(thinking)}
        return 200, {**extra,
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "finish_reason": "length" if cut else "stop", "message": message}],
            "usage": usage,
        }, {}

    def _refused_parameter(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        """What OpenAI's reasoning models answer to the parameters they do not take."""
        if not self.reasoning_model:
            return None
        if "max_tokens" in body:
            message = ("Unsupported parameter: 'max_tokens' is not supported with this model. "
                       "Use 'max_completion_tokens' instead.")
            return 400, {"error": {"message": message, "type": "invalid_request_error", "param": "max_tokens",
                                   "code": "unsupported_parameter"}}, {}
        if body.get("temperature", 1) != 1:
            message = (f"Unsupported value: 'temperature' does not support {body['temperature']} with this model. "
                       "Only the default (1) value is supported.")
            return 400, {"error": {"message": message, "type": "invalid_request_error", "param": "temperature",
                                   "code": "unsupported_value"}}, {}
        return None

    def _over_rate_limit(self) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        if self.rate_limit is None:
            return None
        limit, window = self.rate_limit
        now = time.monotonic()
        with self._lock:
            while self._admitted and self._admitted[0] <= now - window:
                self._admitted.popleft()
            if len(self._admitted) < limit:
                self._admitted.append(now)
                return None
            self.refused += 1
            wait_ms = max(1, int(1000 * (self._admitted[0] + window - now)))
        message = f"Rate limit reached: {limit} requests per {window:g} s. Please try again in {wait_ms} ms."
        return 429, {"error": {"message": message, "type": "requests", "code": "rate_limit_exceeded"}}, {
            "retry-after-ms": str(wait_ms)}

    # -- bookkeeping -------------------------------------------------------------------------
    def _take_fault(self, body: dict[str, Any]) -> int | str | None:
        with self._lock:
            self.requests.append(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self._faults:
                return self._faults.popleft()
            return 503 if self.fail_rate and self._random.random() < self.fail_rate else None

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1


def _words(text: str) -> int:
    return len(text.split())


def _first_words(pieces: list[str], n: int) -> list[str]:
    """The pieces of a space-split text up to its ``n``-th word (empty pieces kept)."""
    kept: list[str] = []
    for piece in pieces:
        if piece and n <= 0:
            break
        kept.append(piece)
        n -= bool(piece)
    return kept


@contextlib.contextmanager
def server_process(latency_s: float = 0.0, text: str | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The scripted server in a process of its own, so that a benchmark's client does not
    share an interpreter with it: yields its base URL (``http://127.0.0.1:PORT/v1``) once it
    listens, and the process; stops it on exit."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "persuasion_gym.testing", "--port", str(port), "--latency", str(latency_s)]
    server = subprocess.Popen([*command, *(["--text", text] if text is not None else [])], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "serving ..." once listening
        yield f"http://127.0.0.1:{port}/v1", server
    finally:
        server.terminate()
        server.wait()


def main(argv: list[str] | None = None) -> None:
    """``python -m persuasion_gym.testing --port 8000 --latency 0.1``: serve until killed."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m persuasion_gym.testing",
                                     description="A scripted OpenAI-compatible server on 127.0.0.1.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--port", type=int, default=8000, help="the port to listen on (0: any free one)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--model", default="scripted",
                        help="the one model name served: a receiver spec openai:MODEL@URL must name it")
    parser.add_argument("--text", default=None, help="answer every request with this text (None: echo the prompt)")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of requests answered 503 at random")
    parser.add_argument("--root", default=None, help="the checkpoint /v1/models names, as vLLM's root")
    parser.add_argument("--system-fingerprint", default=None, help="sent with every completion, as OpenAI does")
    parser.add_argument("--think", default=None, help="a reasoning model's thinking before every answer")
    parser.add_argument("--reasoning-format", default="reasoning_content",
                        choices=["reasoning_content", "reasoning", "inline"], help="where the thinking comes back")
    parser.add_argument("--reasoning-model", action="store_true",
                        help="refuse max_tokens and a non-default temperature, as OpenAI's reasoning models do")
    parser.add_argument("--rate-limit", type=int, default=None, help="chat requests per minute before 429s")
    args = parser.parse_args(argv)
    reply = echo_reply if args.text is None else (lambda messages: args.text)
    think = None if args.think is None else (lambda messages: args.think)
    rate_limit = None if args.rate_limit is None else (args.rate_limit, 60.0)
    try:
        server = ScriptedChatServer(
            reply, args.model, args.latency, port=args.port, fail_rate=args.fail_rate, root=args.root,
            system_fingerprint=args.system_fingerprint, think=think, reasoning_format=args.reasoning_format,
            reasoning_model=args.reasoning_model, rate_limit=rate_limit)
    except OSError as exc:  # the port is taken (or not ours to bind): one line, as argparse's own errors
        reason = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
        print(f"{parser.prog}: error: port {args.port} on 127.0.0.1 {reason}: pick another --port "
              "(--port 0 takes a free one)", file=sys.stderr)
        sys.exit(2)
    print(f"serving {args.model!r} at {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
