"""The persistent response cache: SQLite, shared by every Receiver and process.

Keyed by a hash of (receiver identity, messages, sample index); the identity already holds
the decoding parameters and, for an endpoint, its URL and what the server says of the model
(see ``OpenAIReceiver.identity``), so two servers never share answers unless declared to.
WAL mode and a busy timeout let the workers of an async vector env write to one file.
Nothing secret is stored: identities exclude API keys by contract.

Entries are reused across identities only deliberately: ``adopt`` copies the answers of one
identity (say, one recorded before endpoints were part of it) to another.
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
from persuasion_gym.receivers.reasoning import split_reasoning
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
    created REAL NOT NULL,
    system_fingerprint TEXT,
    reasoning TEXT,
    finish_reason TEXT,
    reasoning_tokens INTEGER
)
"""
# Columns later versions added, with their types: older cache files get them on opening.
_ADDED = {"system_fingerprint": "TEXT", "reasoning": "TEXT", "finish_reason": "TEXT", "reasoning_tokens": "INTEGER"}
_COLUMNS = "key, receiver, messages, sample, text, prompt_tokens, completion_tokens, latency_s, created, " + ", ".join(
    _ADDED)
_MARKS = ",".join("?" * (9 + len(_ADDED)))


def cache_key(identity_json: str, messages: Sequence[dict], sample: int) -> str:
    payload = json.dumps([identity_json, list(messages), int(sample)], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _add_column(conn: sqlite3.Connection, name: str, kind: str) -> None:
    try:
        conn.execute(f"ALTER TABLE responses ADD COLUMN {name} {kind}")
    except sqlite3.OperationalError as exc:  # another process added it first
        if "duplicate column" not in str(exc):
            raise


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
                    columns = {row[1] for row in conn.execute("PRAGMA table_info(responses)")}
                    for name, kind in _ADDED.items():
                        if name not in columns:  # a cache written by an earlier version
                            _add_column(conn, name, kind)
                    conn.execute("CREATE INDEX IF NOT EXISTS responses_receiver ON responses (receiver)")
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
                "SELECT key, text, prompt_tokens, completion_tokens, latency_s, system_fingerprint, reasoning, "
                f"finish_reason, reasoning_tokens FROM responses WHERE key IN ({marks})",
                chunk,
            )
            for key, text, pt, ct, latency, fingerprint, reasoning, finish, rt in rows:
                if reasoning is None:  # cached before the split: an inline <think> block is not the answer
                    text, reasoning = split_reasoning(text)
                found[key] = Response(text, Usage(pt, ct, rt or 0), latency, fingerprint=fingerprint,
                                      reasoning=reasoning, finish_reason=finish)
        return [found.get(key) for key in keys]

    def put_many(self, identity_json: str, entries: Sequence[tuple[str, Request, Response]]) -> None:
        now = time.time()
        rows = [
            (key, identity_json, json.dumps(req.messages), req.sample, res.text,
             res.usage.prompt_tokens, res.usage.completion_tokens, res.latency_s, now, res.fingerprint,
             res.reasoning, res.finish_reason, res.usage.reasoning_tokens)
            for key, req, res in entries
        ]
        conn = self._connection()
        with conn:
            conn.executemany(f"INSERT OR REPLACE INTO responses ({_COLUMNS}) VALUES ({_MARKS})", rows)

    def count(self, identity_json: str) -> int:
        """How many answers the cache holds for one Receiver identity."""
        return self._connection().execute(
            "SELECT COUNT(*) FROM responses WHERE receiver = ?", (identity_json,)).fetchone()[0]

    def identities(self) -> list[tuple[str, int]]:
        """Every Receiver identity in the cache with its number of answers, most first."""
        rows = self._connection().execute(
            "SELECT receiver, COUNT(*) FROM responses GROUP BY receiver ORDER BY COUNT(*) DESC, receiver")
        return [(receiver, n) for receiver, n in rows]

    def adopt(self, source_identity_json: str, target_identity_json: str) -> int:
        """Serve the answers cached under one identity to another, deliberately: each entry is
        copied under the target's key (answers the target already has are kept). Returns how
        many were copied."""
        conn = self._connection()
        rows = conn.execute(
            f"SELECT messages, sample, text, prompt_tokens, completion_tokens, latency_s, created, {', '.join(_ADDED)} "
            "FROM responses WHERE receiver = ?", (source_identity_json,)).fetchall()
        copies = [(cache_key(target_identity_json, json.loads(messages), sample), target_identity_json, messages,
                   sample, *rest) for messages, sample, *rest in rows]
        with conn:
            before = conn.total_changes
            conn.executemany(f"INSERT OR IGNORE INTO responses ({_COLUMNS}) VALUES ({_MARKS})", copies)
            return conn.total_changes - before

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
