"""Gymnasium's and SB3's env checkers on fresh envs with cold caches: every registered env, in
every action mode it has, as a new user runs them first."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import persuasion_gym
from persuasion_gym.tasks import GSM8KTask

from testkit import synthetic_table

CASES = [
    ("Persuasion-GSM8K-v0", "index"), ("Persuasion-GSM8K-v0", "text"),
    ("Persuasion-HumanEval-v0", "index"), ("Persuasion-HumanEval-v0", "text"),
    ("Persuasion-MBPP-v0", "index"), ("Persuasion-MBPP-v0", "text"),
    ("Persuasion-MATH-v0", "index"), ("Persuasion-MATH-v0", "text"),
    ("Persuasion-ReasoningGym-v0", "index"), ("Persuasion-ReasoningGym-v0", "text"),
    ("Persuasion-Table-v0", "index"),  # a table answers only its own signals: no text mode
    ("Persuasion-Prosecutor-v0", "index"), ("Persuasion-Classic-v0", "index"),  # no Receiver, no text
]
MBPP = {"task_id": 601, "text": "Write a function to add two numbers.", "code": "def add(a, b):\n    return a + b",
        "test_list": ["assert add(1, 2) == 3"], "test_setup_code": "", "challenge_test_list": []}


def reply(messages: list[dict[str, str]]) -> str:
    """Some right, some wrong, whatever the task: the checkers look at the interface."""
    return "```python\ndef add(a, b):\n    return a + b\n```\nThe answer is 2."


class FixedScheme:
    """A text scheme that reads nothing: the same finite log-likelihoods for every signal."""

    def log_likelihoods(self, questions, signals, items) -> np.ndarray:
        return np.tile(np.log(np.linspace(1.0, 2.0, len(items))), (len(signals), 1))


# Every protocol besides the default (``direct``, in CASES), on the envs a protocol applies to:
# the online ones (``posterior``) learn across episodes, which a seeded reset must start afresh.
PROTOCOL_CASES = [
    *[("Persuasion-GSM8K-v0", protocol, action_type) for protocol in ("none", "prior", "posterior")
      for action_type in ("index", "text")],
    *[("Persuasion-Table-v0", protocol, "index") for protocol in ("none", "prior", "posterior")],
]


def protocol_kwargs(protocol: str, action_type: str) -> dict:
    # Text signals under ``posterior`` take the Advisor as the committed scheme.
    scheme = {"scheme": FixedScheme()} if protocol == "posterior" and action_type == "text" else {}
    return {"protocol": protocol, **scheme}


def fresh_env(env_id: str, action_type: str, url: str, tmp_path, **kwargs) -> gym.Env:
    receiver = f"openai:scripted@{url}"
    common = {"featurizer": "hashed", "action_type": action_type, **kwargs}
    if env_id == "Persuasion-GSM8K-v0":
        return gym.make(env_id, receiver=receiver, split="test", max_items=6, **common)
    if env_id == "Persuasion-HumanEval-v0":
        return gym.make(env_id, receiver=receiver, max_items=3, isolation="rlimits", timeout_s=5, **common)
    if env_id == "Persuasion-MBPP-v0":
        (tmp_path / "mbpp.jsonl").write_text(json.dumps(MBPP) + "\n")
        return gym.make(env_id, receiver=receiver, data_path=str(tmp_path / "mbpp.jsonl"), isolation="rlimits",
                        **common)
    if env_id == "Persuasion-MATH-v0":
        (tmp_path / "math.jsonl").write_text(json.dumps({"problem": "What is $1+1$?", "answer": "2"}) + "\n")
        return gym.make(env_id, receiver=receiver, data_path=str(tmp_path / "math.jsonl"), **common)
    if env_id == "Persuasion-ReasoningGym-v0":
        pytest.importorskip("reasoning_gym")
        return gym.make(env_id, dataset="basic_arithmetic", size=6, max_terms=3, max_digits=1, receiver=receiver,
                        **common)
    if env_id == "Persuasion-Table-v0":
        items = GSM8KTask().load("test", max_items=6)
        scores = np.random.default_rng(0).integers(0, 2, size=(6, 3, 2)).astype(np.float32)
        synthetic_table(items, ["", "a", "b"], scores).save(tmp_path / "table.npz")
        return gym.make(env_id, table=str(tmp_path / "table.npz"), featurizer="hashed", **kwargs)
    return gym.make(env_id)


def test_every_registered_env_is_checked():
    assert {env_id for env_id, _ in CASES} == set(persuasion_gym.ENV_IDS)


@pytest.mark.filterwarnings("ignore:.*sandbox.*:RuntimeWarning")
@pytest.mark.parametrize(("env_id", "action_type"), CASES)
def test_gymnasium_checker_passes_on_a_fresh_env(env_id, action_type, make_server, tmp_path):
    server = make_server(reply)
    env = fresh_env(env_id, action_type, server.url, tmp_path)
    check_env(env.unwrapped, skip_render_check=True)  # the cache starts empty (a test's own folder)
    if env_id not in ("Persuasion-Table-v0", "Persuasion-Prosecutor-v0", "Persuasion-Classic-v0"):
        assert server.count > 0  # the checker's steps were real Receiver calls, then cache hits


@pytest.mark.filterwarnings("ignore:.*sandbox.*:RuntimeWarning")
@pytest.mark.parametrize(("env_id", "action_type"), [case for case in CASES if case[1] == "index"])
def test_sb3_checker_passes_on_a_fresh_env(env_id, action_type, make_server, tmp_path):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    server = make_server(reply)
    sb3_check_env(fresh_env(env_id, action_type, server.url, tmp_path).unwrapped, warn=True)


@pytest.mark.parametrize(("env_id", "protocol", "action_type"), PROTOCOL_CASES)
def test_gymnasium_checker_passes_on_a_fresh_env_under_every_protocol(env_id, protocol, action_type, make_server,
                                                                      tmp_path):
    server = make_server(reply)
    env = fresh_env(env_id, action_type, server.url, tmp_path, **protocol_kwargs(protocol, action_type))
    check_env(env.unwrapped, skip_render_check=True)  # a seeded reset restarts what the protocol learned
    if env_id != "Persuasion-Table-v0":
        assert server.count > 0


@pytest.mark.parametrize(("env_id", "protocol", "action_type"),
                         [case for case in PROTOCOL_CASES if case[2] == "index"])
def test_sb3_checker_passes_on_a_fresh_env_under_every_protocol(env_id, protocol, action_type, make_server, tmp_path):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    server = make_server(reply)
    env = fresh_env(env_id, action_type, server.url, tmp_path, **protocol_kwargs(protocol, action_type))
    sb3_check_env(env.unwrapped, warn=True)


@pytest.mark.filterwarnings("ignore:.*sandbox.*:RuntimeWarning")
@pytest.mark.parametrize("env_id", [env_id for env_id, action_type in CASES if action_type == "text"])
def test_sb3_checker_in_text_mode_passes_all_but_its_nan_probe(env_id, make_server, tmp_path):
    """SB3 has no text action spaces: its checker's last probe (``VecCheckNan``) calls ``np.isnan``
    on the batch of sampled actions, which no string passes. Every check before it passes; the
    probe's failure is pinned here, so the day SB3 takes strings this test says so."""
    from stable_baselines3.common import env_checker as sb3

    server = make_server(reply)
    env = fresh_env(env_id, "text", server.url, tmp_path).unwrapped
    sb3._check_spaces(env)
    env.reset(seed=0)
    sb3._check_returned_values(env, env.observation_space, env.action_space)
    with pytest.raises(TypeError, match="isnan"):
        sb3.check_env(env, warn=True)
