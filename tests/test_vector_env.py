"""The native vector env: one batch per step (live), numpy indexing (tables), and SB3 on top."""

import gymnasium as gym
import numpy as np
import pytest

from persuasion_gym.envs import PersuasionVectorEnv
from persuasion_gym.errors import InvalidActionError
from persuasion_gym.signals import MATH_SIGNALS
from persuasion_gym.tables import baseline_values, load_table, policy_value

from testkit import question_of


def test_make_vec_finds_the_native_vector_env_and_batches_live_calls(make_server, gold_by_question):
    server = make_server(lambda m: f"The answer is {gold_by_question[question_of(m)]}.", latency_s=0.2)
    envs = gym.make_vec("Persuasion-GSM8K-v0", num_envs=8, receiver=f"openai:scripted@{server.url}",
                        featurizer="hashed", max_items=50, split="test")
    assert isinstance(envs, PersuasionVectorEnv)
    obs, info = envs.reset(seed=0)
    assert obs.shape == (8, 1024) and envs.action_space.shape == (8,)
    first_items = info["item_index"]
    obs2, rewards, terminated, truncated, info = envs.step(np.arange(8) % len(MATH_SIGNALS))
    assert server.max_in_flight == 8, "the 8 signals went out as one concurrent batch"
    assert rewards.tolist() == [1.0] * 8 and terminated.all() and not truncated.any()
    np.testing.assert_array_equal(info["item_index"], first_items)
    np.testing.assert_array_equal(info["final_obs"], envs.env.features[first_items])
    np.testing.assert_array_equal(obs2, envs.env.features[info["next_item_index"]])  # same-step reset
    assert all(r.startswith("The answer is") for r in info["response"])
    assert not any(o.cached for o in envs.env.last_outcomes)
    with pytest.raises(InvalidActionError, match=r"shape \(8,\)"):
        envs.step(np.zeros(7, dtype=int))
    with pytest.raises(InvalidActionError, match="values in 0..9"):
        envs.step(np.full(8, 10))
    with pytest.raises(InvalidActionError, match=r"are texts.*action_type='text'"):
        envs.step(tuple("abcdefgh"))
    envs.close()


def test_table_vector_env_indexes_the_table(rule_tables):
    train, _ = rule_tables
    table = load_table(train)
    envs = gym.make_vec("Persuasion-Table-v0", num_envs=16, table=str(train), featurizer="hashed")
    _, info = envs.reset(seed=7)
    actions = np.random.default_rng(0).integers(4, size=16)
    _, rewards, _, _, step_info = envs.step(actions)
    np.testing.assert_array_equal(rewards, table.scores[info["item_index"], actions, 0])
    again = gym.make_vec("Persuasion-Table-v0", num_envs=16, table=str(train), featurizer="hashed")
    assert again.reset(seed=7)[1]["item_index"].tolist() == info["item_index"].tolist()


@pytest.mark.slow
def test_ppo_on_the_vector_env_reaches_95_percent_of_the_oracle_on_held_out_items(rule_tables):
    from stable_baselines3 import PPO

    from persuasion_agents.sb3_policies import PPO_DEFAULTS
    from persuasion_gym.envs.sb3 import as_sb3_vec_env

    train, test = rule_tables
    venv = as_sb3_vec_env(gym.make_vec("Persuasion-Table-v0", num_envs=64, table=str(train), featurizer="hashed"))
    model = PPO("MlpPolicy", venv, seed=0, verbose=0, **{**PPO_DEFAULTS, "n_steps": 8, "batch_size": 256})
    model.learn(150_000)
    held_out = gym.make("Persuasion-Table-v0", table=str(test), featurizer="hashed")
    actions = model.predict(held_out.unwrapped.features, deterministic=True)[0]
    table = load_table(test)
    values = baseline_values(table)
    assert values["best_fixed"] < 0.6
    assert policy_value(table, actions) >= 0.95 * values["oracle"]
