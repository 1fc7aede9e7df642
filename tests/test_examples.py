"""Every example runs as written (quick sizes), against a scripted loopback Receiver."""

import subprocess
import sys

import pytest

from testkit import REPO, question_of


def run(*args, timeout=600):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


@pytest.fixture
def receiver(make_server, gold_by_question):
    server = make_server(lambda m: f"The answer is {gold_by_question[question_of(m)] if 'step' in m[-1]['content'] else 0}.")
    return f"openai:scripted@{server.url}"


def test_custom_signals(receiver):
    out = run("examples/custom_signals.py", "--receiver", receiver, "--items", "4")
    assert out.returncode == 0, out.stderr
    assert "Discrete(4)" in out.stdout and "(no signal)" in out.stdout


def test_custom_policy(receiver, tmp_path):
    out = run("examples/custom_policy.py", "--receiver", receiver, "--items", "6", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "| long-steps |" in out.stdout


def test_custom_receiver():
    out = run("examples/custom_receiver.py", "--items", "5")
    assert out.returncode == 0, out.stderr
    assert "5 answers came from the cache, 5 were generated" in out.stdout


def test_record_then_train(receiver, tmp_path):
    out = run("examples/record_then_train.py", "--receiver", receiver, "--train-items", "20", "--test-items", "10",
              "--timesteps", "2000", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "PPO on the test table:" in out.stdout and "oracle: 1.000" in out.stdout


def test_benchmark_policies(receiver, tmp_path):
    out = run("examples/benchmark_policies.py", "--receiver", receiver, "--test-items", "8", "--train-items", "8",
              "--timesteps", "256", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "| oracle |" in out.stdout and (tmp_path / "accuracy.png").is_file()


def test_custom_task(make_server):
    server = make_server(lambda m: "The answer is 350." if "3.5 metres" in m[-1]["content"] else "The answer is 1.")
    out = run("examples/custom_task.py", "--receiver", f"openai:scripted@{server.url}")
    assert out.returncode == 0, out.stderr
    assert "vector env, one signal each: rewards [" in out.stdout
    assert server.count >= 4
