"""Recording response tables, replaying them as envs, and their exact values."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import persuasion_gym
from persuasion_gym.errors import DataError
from persuasion_gym.signals import MATH_SIGNALS
from persuasion_gym.tables import baseline_values, load_table, policy_value
from persuasion_gym.tasks import GSM8KTask

from testkit import REPO, advice_of, question_of, synthetic_table

SCRIPT = Path(sys.executable).with_name("persuasion-gym")


def scripted_reply(gold_by_question):
    """Deterministic: right when the hint's length and the question's length agree mod 3."""
    def reply(messages):
        question, advice = question_of(messages), advice_of(messages)
        right = (len(question) + len(advice)) % 3 == 0
        return f"Working... The answer is {gold_by_question[question] if right else -7}."
    return reply


def record_cli(server, out, n_items=6, samples=2, env=None):
    return subprocess.Popen(
        [str(SCRIPT), "record", "--receiver", f"openai:scripted@{server.url}?max_concurrency=4",
         "--n-items", str(n_items), "--samples", str(samples), "--out", str(out)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def test_record_writes_a_self_describing_table(make_server, gold_by_question, tmp_path):
    server = make_server(scripted_reply(gold_by_question))
    out = tmp_path / "t.npz"
    proc = record_cli(server, out)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["cells"] == 6 * len(MATH_SIGNALS) * 2 == server.count == summary["receiver_calls"]
    table = load_table(out)
    assert table.scores.shape == (6, len(MATH_SIGNALS), 2)
    assert table.signals == list(MATH_SIGNALS) and table.item_ids[0] == "gsm8k/test/0"
    meta = table.meta
    assert meta["receiver"]["model"] == "scripted" and meta["receiver"]["temperature"] == 0.0
    assert meta["receiver"]["max_tokens"] == 512
    assert meta["dataset"]["name"] == "gsm8k" and len(meta["dataset"]["sha256"]) == 64
    assert meta["package_version"] == persuasion_gym.__version__ and meta["created"].startswith("20")
    assert meta["samples"] == 2 and "{signal}" in json.dumps(meta["prompt_example"])
    # the cells hold what the Receiver said, scored
    reply = scripted_reply(gold_by_question)
    task = GSM8KTask()
    item = task.load("test", max_items=6).items[3]
    expected = reply(task.build_messages(item, MATH_SIGNALS[4]))
    assert table.responses[3][4] == [expected, expected]
    assert table.scores[3, 4, 0] == float(str(item.gold) in expected)
    np.testing.assert_allclose(summary["values"]["oracle"], table.utilities.max(axis=1).mean())
    # recorded again: every cell comes from the cache
    proc = record_cli(server, tmp_path / "again.npz")
    assert proc.wait(timeout=120) == 0 and server.count == summary["cells"]
    np.testing.assert_array_equal(load_table(tmp_path / "again.npz").scores, table.scores)


def test_an_interrupted_recording_resumes_without_paying_twice(make_server, gold_by_question, tmp_path):
    server = make_server(scripted_reply(gold_by_question), latency_s=0.05)
    out = tmp_path / "t.npz"
    proc = record_cli(server, out, n_items=8, samples=1)
    cells = 8 * len(MATH_SIGNALS)
    deadline = time.time() + 60
    while server.count < cells // 3 and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    paid = server.count
    assert 0 < paid < cells and not out.exists()
    proc = record_cli(server, out, n_items=8, samples=1)
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    # Only requests holding one of the 4 concurrency slots at the kill can be paid but unstored.
    assert cells <= server.count <= cells + 4
    assert json.loads(stdout)["cache_hits"] >= paid - 4
    reference = make_server(scripted_reply(gold_by_question))
    proc = record_cli(reference, tmp_path / "ref.npz", n_items=8, samples=1,
                      env={**__import__("os").environ, "PERSUASION_GYM_CACHE_DIR": str(tmp_path / "other")})
    assert proc.wait(timeout=120) == 0
    assert load_table(out).responses == load_table(tmp_path / "ref.npz").responses


@pytest.fixture
def test_items():
    return GSM8KTask().load("test", max_items=20)


@pytest.fixture
def table_file(test_items, tmp_path):
    rng = np.random.default_rng(0)
    scores = (rng.random((20, 4, 3)) < np.linspace(0.2, 0.8, 4)[None, :, None]).astype(np.float32)
    path = tmp_path / "synthetic.npz"
    synthetic_table(test_items, ["", "a", "b", "c"], scores).save(path)
    return path


def test_table_round_trip(table_file, test_items):
    table = load_table(table_file)
    assert table.n_items == 20 and table.n_samples == 3 and table.signals == ["", "a", "b", "c"]
    assert table.dataset.items == test_items.items
    np.testing.assert_allclose(table.utilities, table.scores.mean(axis=2))


def test_live_env_id_replays_a_table(table_file):
    table = load_table(table_file)
    env = gym.make("Persuasion-GSM8K-v0", receiver=f"table:{table_file}", split="test", max_items=20,
                   featurizer="hashed")
    assert env.unwrapped.receiver is None and env.action_space.n == 4
    rewards = []
    for seed in range(30):
        _, info = env.reset(seed=seed)
        _, reward, terminated, _, info = env.step(2)
        i, s = info["item_index"], info["sample"]
        assert reward == table.scores[i, 2, s] and terminated
        assert info["response"] == table.responses[i][2][s] and env.unwrapped.last_outcomes[0].cached is True
        assert info["usage"]["total_tokens"] == 56 and info["signal"] == "b"
        rewards.append(reward)
    assert env.unwrapped.provenance()["receiver"] == {"kind": "synthetic"}
    mean_env = gym.make("Persuasion-GSM8K-v0", receiver=f"table:{table_file}", split="test", max_items=20,
                        featurizer="hashed", table_reward="mean")
    mean_env.reset(seed=0, options={"item_index": 5})
    assert mean_env.step(3)[1] == pytest.approx(table.utilities[5, 3])


def test_table_mismatches_are_clear_errors(table_file):
    kwargs = dict(featurizer="hashed", receiver=f"table:{table_file}")
    with pytest.raises(DataError, match="signals differ from the table's"):
        gym.make("Persuasion-GSM8K-v0", split="test", max_items=20, signals=list(MATH_SIGNALS), **kwargs)
    with pytest.raises(DataError, match="item gsm8k/test/20 is not in the table"):
        gym.make("Persuasion-GSM8K-v0", split="test", max_items=21, signals=["", "a", "b", "c"], **kwargs)
    with pytest.raises(DataError, match="recorded on gsm8k .*record a table for this data set"):
        gym.make("Persuasion-GSM8K-v0", split="train", max_items=5, signals=["", "a", "b", "c"], **kwargs)
    with pytest.raises(DataError, match="no table at"):
        gym.make("Persuasion-Table-v0", table=str(table_file) + ".missing", featurizer="hashed")


def test_table_env_needs_no_data(table_file, monkeypatch):
    monkeypatch.delenv("PERSUASION_GYM_DATA_DIR")
    env = gym.make("Persuasion-Table-v0", table=str(table_file), featurizer="hashed", max_items=10)
    obs, info = env.reset(seed=3)
    assert obs.shape == (1024,) and info["item_id"].startswith("gsm8k/test/")
    assert len(env.unwrapped.dataset) == 10


def test_exact_values_by_hand(test_items):
    scores = np.zeros((4, 3, 2), np.float32)
    scores[0, 1] = 1          # item 0: signal 1 always right
    scores[1, 2] = [1, 0]     # item 1: signal 2 right half the time
    scores[2, 0] = 1          # item 2: the empty signal right
    scores[3, :, 0] = 1       # item 3: anything right half the time
    table = synthetic_table(GSM8KTask().load("test", max_items=4), ["", "x", "y"], scores)
    values = baseline_values(table)
    assert values["oracle"] == pytest.approx((1 + 0.5 + 1 + 0.5) / 4)
    assert values["no_signal"] == pytest.approx((0 + 0 + 1 + 0.5) / 4)
    assert values["best_fixed"] == pytest.approx(max(1.5, 1.5, 1.0) / 4) and values["best_fixed_signal"] == 0
    assert values["uniform_random"] == pytest.approx(np.mean([1 / 3, 1 / 6, 1 / 3, 1 / 2]))
    assert policy_value(table, np.array([1, 2, 0, 0])) == pytest.approx(values["oracle"])
    stochastic = np.array([[0.5, 0.5, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]])
    assert policy_value(table, stochastic) == pytest.approx((0.5 + 0.5 + 1 + 0.5) / 4)


@pytest.mark.parametrize("protocol", ["direct", "posterior", "prior", "none"])
def test_exact_value_matches_seeded_monte_carlo(table_file, protocol):
    table = load_table(table_file)
    policy = np.random.default_rng(1).integers(4, size=20)  # a fixed deterministic policy
    kwargs = {}
    if protocol == "posterior":  # the Receiver knows the policy's exact committed scheme
        from persuasion_gym.persuasion import bayes

        theta = bayes.states(table.utilities)
        kwargs["scheme"] = bayes.scheme_of_policy(bayes.as_policy(policy, 4), theta, 4)
    exact = policy_value(table, policy, protocol, scheme=kwargs.get("scheme"))
    env = gym.make("Persuasion-Table-v0", table=str(table_file), featurizer="hashed", protocol=protocol, **kwargs)
    env.reset(seed=123)
    rewards = []
    for _ in range(6000):
        _, info = env.reset()
        rewards.append(env.step(int(policy[info["item_index"]]))[1])
    mean, se = np.mean(rewards), np.std(rewards) / np.sqrt(len(rewards))
    assert abs(mean - exact) < 3.5 * se + 1e-9, (protocol, mean, exact, se)
