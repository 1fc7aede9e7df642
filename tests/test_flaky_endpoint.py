"""A recording, a benchmark and a training run against an endpoint that answers 503 at random:
every cell that can be answered is, the summary says how many failed and why, that the rest
is saved, and the same command again asks only the missing ones."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from persuasion_gym.cli.main import main
from persuasion_gym.errors import ReceiverError
from persuasion_gym.receivers import make_receiver

from testkit import question_of


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


def test_a_flaky_benchmark_finishes_the_other_runs_says_what_failed_and_a_rerun_runs_only_those(
        make_server, gold_by_question, tmp_path):
    # Seed 20: the first four draws pass (none finishes) and the fifth fails (random does not);
    # best-fixed's 40 training requests meet more 503s. No SDK retries: the failures are certain.
    server = make_server(lambda m: f"The answer is {gold_by_question[question_of(m)]}.", fail_rate=0.3, seed=20)
    out = tmp_path / "bench"
    policies = ["none", "random", "best-fixed"]
    argv = ["bench", "--receiver", f"openai:scripted@{server.url}?max_retries=0", "--policies", ",".join(policies),
            "--n-items", "4", "--train-items", "4", "--featurizer", "hashed", "--out", str(out)]
    # A subprocess, so that its logging is configured as a user's is (pytest's own handlers hide that).
    first = subprocess.run([sys.executable, "-m", "persuasion_gym", *argv], capture_output=True, text=True,
                           timeout=120)
    assert first.returncode == 2, first.stderr[-2000:]
    err = first.stderr
    sent, answered = server.count, cached(tmp_path)
    assert f"2 of 3 benchmark runs failed, as {sent - answered} of the {sent} Receiver requests sent failed" in err
    assert "random (" in err and "best-fixed (" in err and "HTTP 503" in err
    assert "The run that finished (none) is saved in" in err and "results.md, which lack the failed ones" in err
    assert "run the same command again and only the 2 missing runs are run" in err
    assert "HTTP Request:" not in err and "Traceback" not in err  # no line per request unless -v
    assert [p.name.rsplit("__", 1)[1] for p in (out / "runs").glob("*.json")] == ["none.json"]
    assert [r["policy"] for r in json.loads((out / "results.json").read_text())["rows"]] == ["none"]
    assert "| none |" in first.stdout  # the table of what finished

    server.fail_rate = 0.0
    assert main(argv) == 0
    assert server.count - sent == cached(tmp_path) - answered  # the rerun asked only what was not cached
    assert server.count - sent < 44  # random's and best-fixed's answers that came back were not asked again
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert sorted(r["policy"] for r in rows) == sorted(policies)


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")
def test_lm_advisor_training_on_a_flaky_receiver_stops_with_the_summary_and_resumes_from_the_cache(
        make_server, gold_by_question, tmp_path, capsys):
    from testkit import build_tiny_advisor

    from persuasion_agents.lm_advisor import LMAdvisor

    # Seed 1: the first request of the first step fails, the second is answered.
    server = make_server(lambda m: f"The answer is {gold_by_question[question_of(m)]}.", fail_rate=0.5, seed=1)
    argv = ["train", "--algo", "lm-advisor", "--advisor", str(build_tiny_advisor(tmp_path / "tiny")),
            "--receiver", f"openai:scripted@{server.url}?max_retries=0", "--n-items", "4", "--steps", "1",
            "--max-new-tokens", "8", "--num-generations", "4", "--save-steps", "1", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    sent, answered = server.count, cached(tmp_path)
    assert 0 < answered < sent
    assert (f"error: training stopped in step 1 of 1: {sent - answered} of {sent} Receiver requests failed" in err
            and "HTTP 503" in err)
    assert f"the other {answered} answers are saved in the response cache" in err
    assert "no checkpoint is saved yet (one every step)" in err
    assert "run the same command with --resume and training continues from the last checkpoint" in err
    assert "reusing the cached answers" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "advisor").exists()

    server.fail_rate = 0.0
    assert main([*argv, "--resume"]) == 0  # step 1 again, now answered: checkpoint-1
    assert server.count - sent == cached(tmp_path) - answered  # the answers kept were not asked again
    assert server.count - sent <= sent - answered  # the same signals again: only the failed ones were asked

    # Failing in the second step: the summary names the checkpoint that --resume continues from.
    server.fail_rate = 0.5
    two = [*argv, "--steps", "2", "--resume"]
    assert main(two) == 2
    err = capsys.readouterr().err
    assert "error: training stopped in step 2 of 2: " in err and "HTTP 503" in err and "Traceback" not in err
    assert f"the last checkpoint is {tmp_path / 'run' / 'checkpoint-1'} (one every step)" in err
    server.fail_rate = 0.0
    sent, answered = server.count, cached(tmp_path)
    assert main(two) == 0
    assert server.count - sent == cached(tmp_path) - answered
    assert LMAdvisor.load(str(tmp_path / "run" / "advisor")).info.trained_on["steps"] == 2


@pytest.mark.filterwarnings("ignore:You have specified a mini-batch size:UserWarning")  # SB3, on 4 envs
@pytest.mark.parametrize(("argv", "hint"), [
    (["train", "--algo", "ppo", "--timesteps", "64", "--n-envs", "4", "--eval-items", "2"],
     "run the same command with --resume to continue from the last checkpoint, the cached answers reused"),
    (["train", "--algo", "ucb", "--timesteps", "64"], "run the same command again: the cached answers are reused"),
    (["check"], ""),
])
def test_other_commands_on_a_failing_receiver_say_what_a_rerun_does(make_server, gold_by_question, tmp_path, capsys,
                                                                    argv, hint):
    server = make_server(lambda m: f"The answer is {gold_by_question[question_of(m)]}.", fail_rate=1.0)
    spec = f"openai:scripted@{server.url}?max_retries=0"
    extra = ["--n-items", "4", "--featurizer", "hashed", "--out", str(tmp_path / "run")] if argv[0] == "train" else []
    assert main([*argv, "--receiver", spec, *extra]) == 2
    err = capsys.readouterr().err
    assert "error: " in err and "HTTP 503" in err and "Traceback" not in err
    assert hint in err
