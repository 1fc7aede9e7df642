"""A recording, a benchmark and a training run against an endpoint that answers 503 at random:
every cell that can be answered is, the summary says how many failed and why, that the rest
is saved, and the same command again asks only the missing ones."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from persuasion_gym.cli.main import main
from persuasion_gym.errors import ReceiverError
from persuasion_gym.receivers import make_receiver

from conftest import question_of


def cached(tmp_path) -> int:
    with sqlite3.connect(tmp_path / "cache" / "responses.sqlite") as conn:
        return conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]


def test_a_flaky_recording_says_what_failed_and_a_rerun_asks_only_those(make_server, gold_by_question, tmp_path,
                                                                        capsys):
    server = make_server(lambda m: f"The answer is {gold_by_question[question_of(m)]}.", fail_rate=0.2, seed=1)
    # No SDK retries, so that one in five cells fails for real.
    argv = ["record", "--receiver", f"openai:scripted@{server.url}?max_retries=0", "--split", "test",
            "--n-items", "12", "--out", str(tmp_path / "t.npz")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    failed = 120 - cached(tmp_path)
    assert 5 < failed < 50, failed
    assert f"{failed} of 120 Receiver requests failed ({failed} x " in err and "HTTP 503" in err
    assert f"the other {120 - failed} answers are saved in the response cache" in err
    assert "only the" in err and "missing ones are asked" in err
    assert "HTTP Request:" not in err  # no line per request unless -v
    assert not (tmp_path / "t.npz").exists()  # no half table
    server.fail_rate = 0.0
    before = server.count
    rerun = subprocess.run([sys.executable, "-m", "persuasion_gym", *argv, "-v"], capture_output=True, text=True,
                           timeout=120)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert server.count - before == failed  # the rerun asked only the missing cells
    assert "HTTP Request: POST" in rerun.stderr  # -v shows them


def test_the_same_summary_reaches_env_steps_benchmarks_and_training(make_server, gold_by_question, tmp_path):
    import gymnasium as gym

    server = make_server(lambda m: f"The answer is {gold_by_question[question_of(m)]}.")
    envs = gym.make_vec("Persuasion-GSM8K-v0", num_envs=8, receiver=f"openai:scripted@{server.url}?max_retries=0",
                        featurizer="hashed", max_items=8, split="test")
    envs.reset(seed=0, options={"item_indices": list(range(8))})
    server.fail_next(3, 503)
    with pytest.raises(ReceiverError, match=r"3 of 8 Receiver requests failed \(3 x .*HTTP 503.*the other 5 answers"):
        envs.step([1] * 8)
    # One request alone keeps its own message.
    receiver = make_receiver(f"openai:scripted@{server.url}?max_retries=0", cache=False)
    server.fail_next(1, 503)
    with pytest.raises(ReceiverError, match=r"^http://127\.0\.0\.1:\d+/v1 failed with HTTP 503"):
        receiver.respond([[{"role": "user", "content": "Question: hi"}]])
