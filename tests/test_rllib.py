"""RLlib PPO as the index Advisor: learning on a table, a live Receiver batched per env
runner, checkpoints and --resume, and the benchmark, on the session's one local Ray."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

from persuasion_gym.tables import baseline_values, load_table, policy_value

from testkit import question_of

pytest.importorskip("ray.rllib")
pytestmark = pytest.mark.timeout(600)


@pytest.mark.slow
def test_rllib_ppo_reaches_95_percent_of_the_oracle_on_held_out_items(ray_local, rule_tables, tmp_path):
    from persuasion_agents.rllib_ppo import RLlibPPOPolicy

    train, test = rule_tables
    policy = RLlibPPOPolicy(num_env_runners=2, num_envs_per_env_runner=32)
    policy.bind(4, 1024, seed=0)
    policy.fit(gym.make("Persuasion-Table-v0", table=str(train), featurizer="hashed"), 16_384, seed=0)
    held_out = gym.make("Persuasion-Table-v0", table=str(test), featurizer="hashed").unwrapped
    actions = policy.greedy(held_out.features, {})
    table = load_table(test)
    values = baseline_values(table)
    assert values["best_fixed"] < 0.6  # a single signal cannot do it: the policy must read the item
    assert policy_value(table, actions) >= 0.95 * values["oracle"]
    assert policy.steps >= 16_384 and policy.curve[-1][0] == policy.steps
    # A checkpoint acts the same without the algorithm (and without its runners).
    saved = policy.save(tmp_path / "checkpoint")
    policy.close()
    loaded = RLlibPPOPolicy.load(saved)
    np.testing.assert_array_equal(loaded.greedy(held_out.features, {}), actions)


@pytest.mark.parametrize(("model", "spec"), [("plain", "openai:plain@{url}"),
                                            ("on-ray", "ray:openai:on-ray@{url}?replicas=2")])
def test_each_env_runner_batches_its_live_receiver_calls(ray_local, make_server, gold_by_question, model, spec):
    """Also with a Ray Receiver: the env runners find its replicas by name and share them. (A
    model name per case: the workers' cache is the session's, and identities are the inner ones.)"""
    from persuasion_agents.rllib_ppo import RLlibPPOPolicy

    server = make_server(lambda m: f"The answer is {gold_by_question[question_of(m)]}.", latency_s=0.02, model=model)
    env = gym.make("Persuasion-GSM8K-v0", receiver=spec.format(url=server.url), max_items=40,
                   featurizer="hashed", split="test")
    policy = RLlibPPOPolicy(num_env_runners=1, num_envs_per_env_runner=8, minibatch_size=64)
    policy.bind(10, 1024, seed=0)
    policy.fit(env, 64, seed=0)
    policy.close()
    assert server.max_in_flight == 8, "a runner's 8 envs asked the Receiver as one concurrent batch"
    # Next-step resets cost nothing: no more requests than scored steps (the cache serves repeats).
    assert 0 < server.count <= policy.steps
    assert policy.curve[-1][1] == 1.0  # this Receiver is always right


def test_train_cli_checkpoints_resumes_and_bench_compares(ray_local, rule_tables, tmp_path):
    from persuasion_gym.cli.main import main

    train, test = rule_tables
    out = tmp_path / "run"
    common = ["train", "--algo", "rllib-ppo", "--env", "Persuasion-Table-v0", "--receiver", f"table:{train}",
              "--featurizer", "hashed", "--num-env-runners", "1", "--n-envs", "16", "--eval-freq", "1024",
              "--out", str(out)]
    assert main([*common, "--timesteps", "1024"]) == 0
    first = json.loads((out / "training.json").read_text())
    assert first["timesteps"] >= 1024 and first["resumed_from"] is None and (out / "checkpoint").is_dir()
    assert main([*common, "--timesteps", "3072", "--resume", "--n-envs", "8"]) == 0
    second = json.loads((out / "training.json").read_text())
    assert second["resumed_from"] == str(out / "checkpoint") and second["timesteps"] >= 3072
    assert second["num_envs_per_env_runner"] == 16  # the checkpoint's config ran, and the record says so
    assert second["curve"][: len(first["curve"])] == first["curve"]  # continued, not restarted

    assert main(["bench", "--env", "Persuasion-Table-v0", "--receiver", f"table:{test}", "--train-receiver",
                 f"table:{train}", "--policies", "none,oracle,rllib-ppo", "--timesteps", "1024", "--featurizer",
                 "hashed", "--num-env-runners", "1", "--n-envs", "16", "--out", str(tmp_path / "bench")]) == 0
    by = {row["policy"]: row for row in json.loads((tmp_path / "bench" / "results.json").read_text())["rows"]}
    assert set(by) == {"none", "oracle", "rllib-ppo"} and by["rllib-ppo"]["n_items"] == 500
    assert by["rllib-ppo"]["receiver_calls"] == 0  # a table: every reward is exact and free


def test_a_live_env_waits_for_its_samples_a_table_times_out(make_server, gold_by_question, rule_tables):
    """RLlib discards samples that come late: on a live Receiver they are paid for, so no timeout."""
    from persuasion_agents.rllib_ppo import RLlibPPOPolicy

    server = make_server(lambda m: f"The answer is {gold_by_question[question_of(m)]}.")
    live = gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{server.url}", max_items=4,
                    featurizer="hashed", split="test")
    table = gym.make("Persuasion-Table-v0", table=str(rule_tables[0]), featurizer="hashed")
    assert RLlibPPOPolicy().algorithm_config(live).sample_timeout_s is None
    assert RLlibPPOPolicy().algorithm_config(table).sample_timeout_s == 300.0
    assert RLlibPPOPolicy(sample_timeout_s=5).algorithm_config(live).sample_timeout_s == 5
    assert server.count == 0  # building the config asks the Receiver nothing
