"""The persistent response cache: SQLite, shared by every Receiver and process.

Keyed by a hash of (receiver identity, messages, sample index); the identity already holds
the decoding parameters. WAL mode and a busy timeout let the workers of an async vector env
write to one file. Nothing secret is stored: identities exclude API keys by contract.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from persuasion_gym.paths import cache_dir
from persuasion_gym.receivers.response import Request, Response, Usage

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    receiver TEXT NOT NULL,
    messages TEXT NOT NULL,
    sample INTEGER NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_s REAL NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(identity_json: str, messages: Sequence[dict], sample: int) -> str:
    payload = json.dumps([identity_json, list(messages), int(sample)], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache:
    """A SQLite file of Receiver responses. Safe to share across processes and to pickle
    (the connection is reopened in each process)."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=60.0, check_same_thread=False)
            # Switching a new file to WAL takes an exclusive lock that SQLite's busy timeout
            # does not wait for: processes opening the cache at the same moment retry.
            deadline = time.monotonic() + 60.0
            while True:
                try:
                    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                        conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute(_SCHEMA)
                    conn.commit()
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.01 + 0.05 * random.random())
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def get_many(self, keys: Sequence[str]) -> list[Response | None]:
        found: dict[str, Response] = {}
        conn = self._connection()
        for start in range(0, len(keys), 500):  # SQLite caps the number of parameters
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                "SELECT key, text, prompt_tokens, completion_tokens, latency_s "
                f"FROM responses WHERE key IN ({marks})",
                chunk,
            )
            for key, text, pt, ct, latency in rows:
                found[key] = Response(text, Usage(pt, ct), latency)
        return [found.get(key) for key in keys]

    def put_many(self, identity_json: str, entries: Sequence[tuple[str, Request, Response]]) -> None:
        now = time.time()
        rows = [
            (key, identity_json, json.dumps(req.messages), req.sample, res.text,
             res.usage.prompt_tokens, res.usage.completion_tokens, res.latency_s, now)
            for key, req, res in entries
        ]
        conn = self._connection()
        with conn:
            conn.executemany("INSERT OR REPLACE INTO responses VALUES (?,?,?,?,?,?,?,?,?)", rows)

    def __len__(self) -> int:
        return self._connection().execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        ResponseCache.__init__(self, state["path"])

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"


def default_cache_path() -> Path:
    return cache_dir() / "responses.sqlite"


def open_cache(cache: ResponseCache | str | Path | bool | None) -> ResponseCache | None:
    """``True``: the default file; ``False``/``None``: no cache; a path or a ResponseCache."""
    if cache is True:
        return ResponseCache(default_cache_path())
    if cache is False or cache is None:
        return None
    if isinstance(cache, ResponseCache):
        return cache
    return ResponseCache(cache)
