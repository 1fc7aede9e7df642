"""Shared fixtures: isolated caches, the real GSM8K files, and scripted loopback servers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import testkit
from persuasion_gym.testing import ScriptedChatServer

from testkit import GSM8K_DIR, question_of


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test has its own caches, and no test picks up the user's endpoint settings."""
    monkeypatch.setenv("PERSUASION_GYM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PERSUASION_GYM_DATA_DIR", str(GSM8K_DIR.parent))
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODEL", "PERSUASION_GYM_RECEIVER"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def gsm8k_dir() -> Path:
    assert (GSM8K_DIR / "train.jsonl").is_file(), f"GSM8K data expected at {GSM8K_DIR}"
    return GSM8K_DIR


@pytest.fixture(scope="session")
def gold_by_question(gsm8k_dir: Path) -> dict[str, str]:
    gold = {}
    for split in ("train", "test"):
        for line in open(gsm8k_dir / f"{split}.jsonl", encoding="utf-8"):
            record = json.loads(line)
            gold[record["question"]] = record["answer"].rsplit("####", 1)[1].strip().replace(",", "")
    return gold



@pytest.fixture
def make_server() -> Iterator[Callable[..., ScriptedChatServer]]:
    """Start ScriptedChatServers on 127.0.0.1; all are stopped after the test."""
    servers: list[ScriptedChatServer] = []

    def start(reply=None, **kwargs) -> ScriptedChatServer:
        server = ScriptedChatServer(reply, **kwargs) if reply else ScriptedChatServer(**kwargs)
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def gold_server(make_server, gold_by_question) -> ScriptedChatServer:
    """Answers every GSM8K question correctly, in prose."""
    return make_server(lambda m: f"Let me think. The answer is {gold_by_question[question_of(m)]}.")


@pytest.fixture
def rule_tables(tmp_path: Path) -> tuple[Path, Path]:
    """Whole-split tables where "how many" questions need signal 1 and the others signal 2."""
    return testkit.rule_tables(tmp_path)


@pytest.fixture(scope="session")
def ray_local(tmp_path_factory: pytest.TempPathFactory):
    """One local Ray for the whole session (starting Ray costs seconds): 2 CPUs, as CI has.
    Its workers read GSM8K from the shared data and cache into a folder of the session's."""
    ray = pytest.importorskip("ray")
    from persuasion_gym.cluster import connect

    with pytest.MonkeyPatch.context() as patch:  # what the workers inherit, not the tests
        patch.setenv("PERSUASION_GYM_DATA_DIR", str(GSM8K_DIR.parent))
        patch.setenv("PERSUASION_GYM_CACHE_DIR", str(tmp_path_factory.mktemp("ray-workers-cache")))
        connect(num_cpus=2)
    yield ray
    ray.shutdown()
