"""The verifiers environment (``persuasion-verifiers``), run by verifiers' own evaluation: ``vf-eval``
in a process of its own, with one scripted loopback server on 127.0.0.1 as the policy model (it writes
the signals) and another as the Receiver. Its rewards are the Gymnasium env's for the same items and
signals; identical (item, signal) pairs are asked once; bad env ids and Receiver specs fail with
errors that name the fix; no API key reaches the output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

pytest.importorskip("verifiers.v1", reason="needs the [verifiers] extra and verifiers itself (see README)")

from testkit import advice_of, question_of  # noqa: E402

from persuasion_gym.errors import ConfigError  # noqa: E402
from persuasion_gym.signals import MATH_SIGNALS  # noqa: E402
from persuasion_verifiers import PersuasionTask, load_environment  # noqa: E402

STEP = MATH_SIGNALS[1]  # "Think step by step: ...": the scripted Receiver answers right only with it
OTHER = "Guess the answer quickly."
POLICY_KEY, RECEIVER_KEY = "sk-policy-do-not-log-1234", "sk-receiver-do-not-log-5678"
N_ITEMS, GROUP = 8, 2
VF_EVAL = str(Path(sys.executable).parent / "vf-eval")


def advisor_signal(question: str) -> str:
    """The scripted policy's signal: the helpful one for "how many" questions only (its second line is dropped)."""
    return (STEP if "how many" in question.lower() else OTHER) + "\nThis second line is not sent."


def vf_eval(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """``vf-eval persuasion-verifiers`` on the test's caches, HOME (verifiers' own cache and the Prime
    config) and output folder; the keys come from the environment only."""
    env = {**os.environ, "HOME": str(tmp_path), "OPENAI_API_KEY": RECEIVER_KEY, "POLICY_KEY": POLICY_KEY}
    command = [VF_EVAL, "persuasion-verifiers", "--env.taskset.env-id", "Persuasion-GSM8K-v0",
               "--env.taskset.split", "test", "--env.taskset.max-items", str(N_ITEMS), "--model", "advisor",
               "--client.api-key-var", "POLICY_KEY", "--no-push", "--no-rich", "-o", str(tmp_path / "out"),
               "--run.name", "run", *flags]
    return subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_vf_eval_rewards_are_the_gym_envs(tmp_path, make_server, gold_by_question, monkeypatch):
    receiver = make_server(
        lambda m: f"The answer is {gold_by_question[question_of(m)] if 'step' in advice_of(m) else -1}.",
        api_key=RECEIVER_KEY, latency_s=0.2)
    policy = make_server(lambda m: advisor_signal(m[-1]["content"].removeprefix("Problem: ")), model="advisor",
                         api_key=POLICY_KEY, latency_s=0.05)
    spec = f"openai:scripted@{receiver.url}?max_concurrency=32"
    done = vf_eval(tmp_path, "--env.taskset.receiver", spec, "--client.base-url", policy.url, "-r", str(GROUP))
    assert done.returncode == 0, done.stderr[-3000:]

    traces = [trace for line in (tmp_path / "out" / "run" / "traces.jsonl").read_text().splitlines()
              for trace in json.loads(line)["traces"]]
    assert len(traces) == N_ITEMS * GROUP and all(trace["ok"] for trace in traces)
    assert policy.count == N_ITEMS * GROUP
    # One Receiver call per distinct (item, signal): a group's repeats come from the batch or the cache.
    assert receiver.count == N_ITEMS
    assert max(trace["info"]["persuasion"]["batch_size"] for trace in traces) > 1  # concurrent rewards, one batch

    # The same items and signals through the Gymnasium env, without the cache: the same rewards.
    monkeypatch.setenv("OPENAI_API_KEY", RECEIVER_KEY)
    env = gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{receiver.url}", split="test",
                   max_items=N_ITEMS, action_type="text", observation="text", cache=False)
    expected = {}
    for index in range(N_ITEMS):
        _, info = env.reset(options={"item_index": index})
        signal = advisor_signal(info["question"]).splitlines()[0]
        _, reward, _, _, step_info = env.step(signal)
        expected[info["item_id"]] = (signal, reward, step_info["response"])
    env.close()
    rewards = {expected_id: set() for expected_id in expected}
    for trace in traces:
        played = trace["info"]["persuasion"]
        signal, reward, response = expected[played["item_id"]]
        assert (played["signal"], played["response"]) == (signal, response)
        assert trace["rewards"]["receiver_reward"]["score"] == reward
        assert trace["metrics"]["correct"] == reward
        rewards[played["item_id"]].add(reward)
    assert {r for values in rewards.values() for r in values} == {0.0, 1.0}  # the signal matters on these items

    # Neither key is written anywhere: the console, the traces, the saved config, the logs.
    written = done.stdout + done.stderr + "".join(
        path.read_text(errors="replace") for path in (tmp_path / "out").rglob("*") if path.is_file())
    assert POLICY_KEY not in written and RECEIVER_KEY not in written


def test_bad_env_id_and_receiver_spec_fail_before_any_rollout(tmp_path):
    done = vf_eval(tmp_path, "--env.taskset.env-id", "Persuasion-GSM8k-v0",
                   "--env.taskset.receiver", "openai:scripted@http://127.0.0.1:9/v1")
    said = " ".join((done.stdout + done.stderr).replace("\u2502", " ").split())  # unwrapped from rich's box
    assert done.returncode != 0 and "receiver_reward" not in said
    assert "unknown env id 'Persuasion-GSM8k-v0': did you mean Persuasion-GSM8K-v0?" in said

    with pytest.raises(ConfigError, match="did you mean Persuasion-GSM8K-v0"):
        load_environment(env_id="Persuasion-GSM8k-v0", receiver="openai:scripted@http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match="unknown receiver spec 'opnai:scripted'"):
        load_environment(receiver="opnai:scripted")
    with pytest.raises(ConfigError, match="bad option 'temprature=0'"):
        load_environment(receiver="openai:scripted@http://127.0.0.1:9/v1?temprature=0")
    with pytest.raises(ConfigError, match="'direct' protocol"):
        load_environment(receiver="openai:scripted@http://127.0.0.1:9/v1", split="test", max_items=2,
                         protocol="prior")


def test_load_environment_prompts_the_advisor_for_each_item():
    env = load_environment(receiver="openai:scripted@http://127.0.0.1:9/v1", split="test", max_items=3)
    tasks = list(env.taskset)
    assert [task.data.id for task in tasks] == ["gsm8k/test/0", "gsm8k/test/1", "gsm8k/test/2"]
    assert all(isinstance(task, PersuasionTask) for task in tasks)
    assert tasks[1].data.prompt.startswith("Problem: A robe takes 2 bolts")
    assert "hint" in tasks[1].data.system_prompt and tasks[1].data.item_index == 1
