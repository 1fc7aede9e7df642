"""The console script and the examples, run as a user runs them (subprocesses)."""

import json
import subprocess
import sys
from pathlib import Path

from testkit import REPO, advice_of, free_port, question_of

SCRIPT = Path(sys.executable).with_name("persuasion-gym")


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_envs_and_version():
    out = run(str(SCRIPT), "envs")
    assert out.returncode == 0 and "Persuasion-GSM8K-v0" in out.stdout.split()
    assert run(str(SCRIPT), "--version").stdout.startswith("persuasion-gym ")


def test_check_asks_one_question(gold_server):
    out = run(str(SCRIPT), "check", "--receiver", f"openai:scripted@{gold_server.url}", "--item", "2", "--signal", "Use algebra.")
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["item_id"] == "gsm8k/test/2" and shown["correct"] is True and shown["signal"] == "Use algebra."
    assert advice_of(gold_server.requests[-1]["messages"]) == "Use algebra."


def test_check_errors_say_what_to_fix(monkeypatch):
    out = run(str(SCRIPT), "check", "--receiver", "gpt-4")
    assert out.returncode == 2 and "unknown receiver spec 'gpt-4'" in out.stderr and "openai:MODEL@URL" in out.stderr
    monkeypatch.setenv("PERSUASION_GYM_RECEIVER", f"openai:m@http://127.0.0.1:{free_port()}/v1?max_retries=0")
    out = run(str(SCRIPT), "check")
    assert out.returncode == 2 and "cannot reach the Receiver" in out.stderr
    assert "Traceback" not in out.stderr


def test_train_ppo_example_runs_as_written(make_server, gold_by_question):
    # Right only with some advice: the PPO Advisor must learn to send one.
    server = make_server(lambda m: f"The answer is {gold_by_question[question_of(m)] if advice_of(m) else -1}.")
    out = run(sys.executable, "examples/train_ppo_gsm8k.py", "--receiver", f"openai:scripted@{server.url}",
              "--train-items", "40", "--test-items", "20", "--timesteps", "512", "--featurizer", "hashed")
    assert out.returncode == 0, out.stderr
    lines = dict(line.strip().rsplit(None, 1) for line in out.stdout.splitlines() if line.startswith("  "))
    assert "random signal" in lines
    assert float(lines["no signal"]) == 0.0
    assert float(lines["PPO Advisor"]) == 1.0
    assert any(name.startswith("best fixed") and float(v) == 1.0 for name, v in lines.items())
    assert "Receiver calls:" in out.stdout


def test_check_and_record_a_code_env(make_server, tmp_path):
    server = make_server(lambda m: "```python\ndef has_close_elements(numbers, threshold):\n"
                                   "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n```")
    spec = f"openai:scripted@{server.url}"
    out = run(str(SCRIPT), "check", "--env", "Persuasion-HumanEval-v0", "--split", "all", "--receiver", spec)
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["item_id"] == "HumanEval/0" and shown["correct"] is True and shown["verdict"] == "passed"
    assert shown["sandbox"] in ("bubblewrap", "rlimits") and shown["prompt"].startswith("from typing import List")
    out = run(str(SCRIPT), "record", "--env", "Persuasion-HumanEval-v0", "--split", "all", "--n-items", "2",
              "--receiver", spec, "--out", str(tmp_path / "he.npz"))
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["cells"] == 20 and summary["values"]["oracle"] == 0.5  # right on HumanEval/0 only


def test_demo_records_benchmarks_and_trains_the_lm_advisor_then_reruns_for_free(make_server, tmp_path):
    """The main job end to end on its reasoning-gym task, against a scripted Receiver that is right
    when advised to check its answer (one library signal) and with a tiny LM Advisor, so it runs in
    seconds."""
    import pytest

    pytest.importorskip("reasoning_gym")
    from testkit import build_tiny_advisor

    from persuasion_agents.commands.demo import DEMO_TASK
    from persuasion_gym.tasks import ReasoningGymTask

    config = {k: v for k, v in DEMO_TASK.items() if k not in ("dataset", "size", "seed")}
    task = ReasoningGymTask(DEMO_TASK["dataset"], size=DEMO_TASK["size"], seed=DEMO_TASK["seed"], **config)
    gold = {item.text.strip(): item.gold for split in ("train", "test") for item in task.load(split).items}
    server = make_server(lambda m: f"Answer: {gold[question_of(m).strip()] if 'check' in advice_of(m) else 'no idea'}")
    out = tmp_path / "demo"
    command = [str(SCRIPT), "demo", "--receiver", f"openai:scripted@{server.url}", "--train-items", "4",
               "--test-items", "4", "--policies", "none,best-fixed,oracle,ucb", "--timesteps", "200",
               "--featurizer", "hashed", "--advisor", str(build_tiny_advisor(tmp_path / "tiny")),
               "--advisor-steps", "1", "--out", str(out)]
    first = run(*command)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (out / "train.npz").is_file() and (out / "test.npz").is_file() and (out / "bench" / "accuracy.png").is_file()
    rows = {r["policy"]: r for r in json.loads((out / "bench" / "results.json").read_text())["rows"]}
    assert rows["none"]["accuracy"] == 0.0 and rows["oracle"]["accuracy"] == rows["best-fixed"]["accuracy"] == 1.0
    assert f"recording train: 4 {DEMO_TASK['dataset']} questions x 10 signals" in first.stderr
    assert "| 6 | Before giving the answer, check it" in first.stdout and "| 1.000 | 1.000 | +100.0 |" in first.stdout
    assert "signal before training" in first.stdout and "LM Advisor: 1 steps" in first.stdout
    assert (out / "lm-advisor" / "advisor" / "advisor.json").is_file()
    asked = server.count
    again = run(*command)
    assert again.returncode == 0, again.stderr[-3000:]
    assert server.count == asked  # tables from the cache, the Advisor from its checkpoint
    assert "trained for 1 steps already" in again.stdout


def test_demo_runs_on_gsm8k_a_flag_away(make_server, gold_by_question, tmp_path):
    server = make_server(lambda m: f"The answer is "
                                   f"{gold_by_question[question_of(m)] if 'unit' in advice_of(m) else -1}.")
    out = tmp_path / "demo"
    done = run(str(SCRIPT), "demo", "--task", "gsm8k", "--receiver", f"openai:scripted@{server.url}", "--train-items",
               "3", "--test-items", "3", "--policies", "none,best-fixed,oracle", "--featurizer", "hashed",
               "--advisor-steps", "0", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "recording test: 3 GSM8K questions x 10 signals" in done.stderr
    rows = {r["policy"]: r for r in json.loads((out / "bench" / "results.json").read_text())["rows"]}
    assert rows["none"]["accuracy"] == 0.0 and rows["best-fixed"]["accuracy"] == 1.0
