"""A real OpenAI-compatible chat-completions server on 127.0.0.1 with scripted answers.

For tests, benchmarks and offline demos: the ``openai`` SDK talks to it over real HTTP, so
timeouts, retries, concurrency and error handling are exercised for real. Answers come from
a Python function of the request's messages; latency and faults (HTTP errors, hangs) are
injected on demand. Not a model: it is how a test pins down what the Receiver says.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[list[dict[str, str]]], str]


def echo_reply(messages: list[dict[str, str]]) -> str:
    return "You said: " + messages[-1]["content"]


class ScriptedChatServer:
    """Serve ``/v1/chat/completions`` and ``/v1/models`` from a reply function.

    Args:
        reply: maps a request's messages to the answer text.
        model: the one model name served (other names get 404).
        latency_s: seconds each request waits before answering.
        api_key: if set, requests without ``Authorization: Bearer <api_key>`` get 401.
        fail_rate: the share of chat requests answered HTTP 503 at random (a flaky endpoint),
            drawn from ``seed``.

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
    ):
        self.reply, self.model, self.latency_s, self.api_key = reply, model, latency_s, api_key
        self.fail_rate, self._random = fail_rate, random.Random(seed)
        self.requests: list[dict[str, Any]] = []
        self.in_flight = self.max_in_flight = 0
        self._faults: deque[int | str] = deque()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

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

    def start(self) -> ScriptedChatServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="scripted-chat", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ScriptedChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- called by the handler threads -----------------------------------------------------
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


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default 5 drops bursts of new connections (1 s SYN retries)

    def handle_error(self, request, client_address) -> None:
        # A client killed or timed out mid-answer is part of what the tests exercise.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _words(text: str) -> int:
    return len(text.split())


def _handler_for(server: ScriptedChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stall

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, kind: str) -> None:
            # retry-after-ms keeps the SDK's retries fast in tests.
            self._send(status, {"error": {"message": message, "type": kind, "code": status}}, {"retry-after-ms": "10"})

        def _authorized(self) -> bool:
            if server.api_key is None or self.headers.get("Authorization") == f"Bearer {server.api_key}":
                return True
            self._error(401, "Incorrect API key provided.", "invalid_request_error")
            return False

        def do_GET(self) -> None:
            if not self._authorized():
                return
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [
                    {"id": server.model, "object": "model", "created": 0, "owned_by": "persuasion-gym"}
                ]})
            else:
                self._error(404, f"no route {self.path}", "not_found_error")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            if not self._authorized():
                return
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._error(404, f"no route {self.path}", "not_found_error")
                return
            fault = server._take_fault(body)
            try:
                self._complete(body, fault)
            finally:
                server._done()

        def _complete(self, body: dict[str, Any], fault: int | str | None) -> None:
            if fault == "hang":
                time.sleep(3600)
            if fault == "drop":
                self.close_connection = True
                self.connection.close()
                return
            if server.latency_s:
                time.sleep(server.latency_s)
            if isinstance(fault, int):
                self._error(fault, f"injected fault {fault}", "server_error")
                return
            if body.get("model") != server.model:
                self._error(404, f"The model '{body.get('model')}' does not exist", "not_found_error")
                return
            messages = body.get("messages", [])
            text = server.reply(messages)
            prompt_tokens = sum(_words(m.get("content", "")) for m in messages)
            self._send(200, {
                "id": f"chatcmpl-{len(server.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": server.model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": _words(text),
                          "total_tokens": prompt_tokens + _words(text)},
            })

    return Handler


def main(argv: list[str] | None = None) -> None:
    """``python -m persuasion_gym.testing --port 8000 --latency 0.1``: serve until killed."""
    import argparse

    parser = argparse.ArgumentParser(description="A scripted OpenAI-compatible server on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--model", default="scripted")
    parser.add_argument("--text", default=None, help="answer every request with this text (default: echo)")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of requests answered 503 at random")
    args = parser.parse_args(argv)
    reply = echo_reply if args.text is None else (lambda messages: args.text)
    server = ScriptedChatServer(reply, args.model, args.latency, port=args.port, fail_rate=args.fail_rate)
    print(f"serving {args.model!r} at {server.url}", flush=True)
    try:
        server._server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass
