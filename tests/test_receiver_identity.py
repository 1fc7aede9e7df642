"""A Receiver's identity tells servers apart: the response cache never serves one server's
answers to another unless they are declared alike (``cache_key=``), old cache entries are
adopted only on purpose, and tables and results record what the server said of itself."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

import persuasion_gym  # noqa: F401  (registers the envs)
from persuasion_gym.errors import ReceiverUnavailableError
from persuasion_gym.receivers import make_receiver
from persuasion_gym.receivers.cache import ResponseCache, cache_key
from persuasion_gym.receivers.openai_compat import _describe
from persuasion_gym.receivers.response import Request, Response, Usage
from persuasion_gym.tables import load_table, record
from persuasion_gym.tasks import GSM8KTask
from persuasion_gym.testing import ScriptedChatServer


def ask(receiver, text: str = "Question: what is 2 + 2?") -> Response:
    return receiver.respond([[{"role": "user", "content": text}]])[0]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_servers_with_one_model_name_never_share_answers(make_server, tmp_path: Path) -> None:
    first = make_server(lambda m: "The answer is 4.")
    second = make_server(lambda m: "The answer is 18.")
    cache = ResponseCache(tmp_path / "shared.sqlite")
    assert ask(make_receiver(f"openai:scripted@{first.url}", cache=cache)).text == "The answer is 4."
    other = make_receiver(f"openai:scripted@{second.url}", cache=cache)
    answer = ask(other)
    assert answer.text == "The answer is 18." and not answer.cached and second.count == 1
    assert other.identity["endpoint"] == second.url
    # A closed port is not served the first server's answer either: it is an error.
    closed = make_receiver(f"openai:scripted@http://127.0.0.1:{free_port()}/v1?max_retries=0", cache=cache)
    with pytest.raises(ReceiverUnavailableError, match="cannot reach"):
        ask(closed)


def test_a_restarted_server_with_another_checkpoint_is_another_receiver(tmp_path: Path) -> None:
    """vLLM restarted on the same URL under the same served name: its ``root`` tells them apart."""
    port, cache = free_port(), ResponseCache(tmp_path / "c.sqlite")
    with ScriptedChatServer(lambda m: "old checkpoint", port=port, root="/ckpt/step-100"):
        before = make_receiver(f"openai:scripted@http://127.0.0.1:{port}/v1", cache=cache)
        assert ask(before).text == "old checkpoint"
    with ScriptedChatServer(lambda m: "new checkpoint", port=port, root="/ckpt/step-200") as restarted:
        after = make_receiver(f"openai:scripted@http://127.0.0.1:{port}/v1", cache=cache)
        assert ask(after).text == "new checkpoint" and restarted.count == 1
    assert before.identity["server"] == {"owned_by": "persuasion-gym", "root": "/ckpt/step-100"}
    assert after.identity["server"]["root"] == "/ckpt/step-200"


def test_listing_times_do_not_change_the_identity() -> None:
    entry = {"id": "m", "object": "model", "owned_by": "vllm", "root": "/models/m", "max_model_len": 4096,
             "permission": [{"id": "modelperm-1", "created": 1}]}
    assert _describe([{**entry, "created": 1}], "m") == _describe([{**entry, "created": 2,
                                                                    "permission": [{"id": "modelperm-2"}]}], "m")
    assert _describe([entry], "m") == {"owned_by": "vllm", "root": "/models/m", "max_model_len": 4096}
    assert _describe([entry], "other") is None and _describe(None, "m") is None


def test_endpoints_declared_alike_share_one_cache(make_server, tmp_path: Path) -> None:
    first = make_server(lambda m: "The answer is 4.")
    second = make_server(lambda m: "The answer is 4.")
    cache = ResponseCache(tmp_path / "c.sqlite")
    one = make_receiver(f"openai:scripted@{first.url}?cache_key=prod-4b", cache=cache)
    two = make_receiver(f"openai:scripted@{second.url}?cache_key=prod-4b", cache=cache)
    assert one.identity == two.identity and one.identity["cache_key"] == "prod-4b"
    assert "endpoint" not in one.identity
    ask(one)
    assert ask(two).cached and second.count == 0


def test_old_entries_are_pointed_out_once_and_adopted_only_on_purpose(make_server, tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    server = make_server(lambda m: "fresh answer")
    path = tmp_path / "cache" / "responses.sqlite"  # the default cache of the isolated test env
    receiver = make_receiver(f"openai:scripted@{server.url}", cache=path)
    legacy = json.dumps(receiver.legacy_identity, sort_keys=True)
    messages = [{"role": "user", "content": "Question: what is 2 + 2?"}]
    receiver.cache.put_many(legacy, [(cache_key(legacy, messages, 0), Request(messages), Response("old answer"))])
    with caplog.at_level(logging.WARNING, logger="persuasion_gym"):
        assert ask(receiver).text == "fresh answer"  # never served to this endpoint silently
        ask(receiver, "Question: what is 3 + 3?")
    notes = [r.getMessage() for r in caplog.records if "cache adopt" in r.getMessage()]
    assert len(notes) == 1 and "1 answers of model 'scripted'" in notes[0]

    adopter = make_server(lambda m: "never asked")
    done = subprocess.run([sys.executable, "-m", "persuasion_gym.cli.main", "cache", "adopt", "--receiver",
                           f"openai:scripted@{adopter.url}"], capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["adopted"] == 1
    adopted = ask(make_receiver(f"openai:scripted@{adopter.url}", cache=path))
    assert adopted.text == "old answer" and adopted.cached and adopter.count == 0
    listed = subprocess.run([sys.executable, "-m", "persuasion_gym.cli.main", "cache", "list"],
                            capture_output=True, text=True, env=os.environ.copy())
    assert listed.returncode == 0 and adopter.url in listed.stdout and server.url in listed.stdout


def test_tables_and_results_record_the_endpoint_and_the_fingerprints(tmp_path: Path, gold_by_question) -> None:
    with ScriptedChatServer(lambda m: "The answer is 3.", system_fingerprint="fp_0a1b2c", root="/ckpt/7") as server:
        url = server.url
        receiver = make_receiver(f"openai:scripted@{server.url}", cache=tmp_path / "c.sqlite")
        task = GSM8KTask()
        table = record(task, receiver, task.load("test", None, 2), ["", "Think."], out=tmp_path / "t.npz",
                       progress=False)
        env = gym.make("Persuasion-GSM8K-v0", receiver=receiver, max_items=2, featurizer="hashed")
        env.reset(seed=0)
        env.step(0)
        provenance = env.unwrapped.provenance()
        env.close()
    saved = load_table(tmp_path / "t.npz").meta
    for meta in (table.meta, saved):
        assert meta["receiver"]["endpoint"] == url and meta["receiver"]["server"]["root"] == "/ckpt/7"
        assert meta["system_fingerprints"] == ["fp_0a1b2c"]
    # The env's step came from the cache: the fingerprint is kept with the answer.
    assert provenance["receiver"]["endpoint"] == url and provenance["system_fingerprints"] == ["fp_0a1b2c"]
    replay = gym.make("Persuasion-Table-v0", table=tmp_path / "t.npz", featurizer="hashed")
    assert replay.unwrapped.provenance()["system_fingerprints"] == ["fp_0a1b2c"]


def test_a_cache_written_before_fingerprints_opens_and_keeps_its_answers(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, receiver TEXT NOT NULL, messages TEXT NOT NULL, "
                     "sample INTEGER NOT NULL, text TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, "
                     "completion_tokens INTEGER NOT NULL, latency_s REAL NOT NULL, created REAL NOT NULL)")
        conn.execute("INSERT INTO responses VALUES ('k', '{}', '[]', 0, 'kept', 1, 2, 0.5, 0)")
    cache = ResponseCache(path)
    assert cache.get_many(["k"])[0] == Response("kept", Usage(1, 2), 0.5)
    cache.put_many("{}", [("k2", Request([]), Response("new", fingerprint="fp_1"))])
    assert cache.get_many(["k2"])[0].fingerprint == "fp_1"


def test_auto_says_what_it_chose_from_python(make_server) -> None:
    server = make_server()
    code = ("import gymnasium as gym, persuasion_gym; "
            "gym.make('Persuasion-GSM8K-v0', receiver='auto', max_items=1, featurizer='hashed')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PERSUASION_GYM_RECEIVER": f"openai:scripted@{server.url}"})
    assert done.returncode == 0, done.stderr
    assert "receiver='auto' chose" in done.stderr and server.url in done.stderr
