"""Persuasion-GSM8K-v0 through the Gymnasium API, against a real loopback Receiver."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import persuasion_gym
from persuasion_gym.envs import GSM8KEnv
from persuasion_gym.errors import (
    ConfigError, InvalidActionError, PersuasionGymError, ReceiverError, ReceiverUnavailableError,
)
from persuasion_gym.signals import MATH_SIGNALS
from persuasion_gym.tasks import GSM8KTask

from testkit import advice_of, free_port


def make(server, **kwargs):
    kwargs.setdefault("featurizer", "hashed")
    kwargs.setdefault("max_items", 30)
    return gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{server.url}", **kwargs)


def test_registered_under_both_ids(gold_server):
    assert "Persuasion-GSM8K-v0" in persuasion_gym.ENV_IDS
    for env_id in ("Persuasion-GSM8K-v0", "persuasion_gym:Persuasion-GSM8K-v0"):
        env = gym.make(env_id, receiver=f"openai:scripted@{gold_server.url}", featurizer="hashed", max_items=3)
        assert isinstance(env.unwrapped, GSM8KEnv)
        env.close()


def test_unknown_env_id_is_a_clear_error():
    with pytest.raises(gym.error.VersionNotFound, match="Persuasion-GSM8K"):
        gym.make("Persuasion-GSM8K-v9")
    with pytest.raises(gym.error.NameNotFound, match="Persuasion-GSM9K"):
        gym.make("Persuasion-GSM9K-v0")


def test_one_episode(gold_server):
    env = make(gold_server, split="test")
    assert env.action_space == gym.spaces.Discrete(len(MATH_SIGNALS))
    assert env.observation_space == gym.spaces.Box(-1, 1, (1024,), np.float32)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert set(info) >= {"question", "item_id", "gold"} and info["item_id"].startswith("gsm8k/test/")
    obs2, reward, terminated, truncated, step_info = env.step(2)
    assert (reward, terminated, truncated) == (1.0, True, False)
    np.testing.assert_array_equal(obs, obs2)
    assert step_info["signal"] == MATH_SIGNALS[2] and step_info["context"] == MATH_SIGNALS[2]
    assert step_info["answer"] == info["gold"] and step_info["correct"] is True
    assert step_info["response"].startswith("Let me think.")
    assert step_info["usage"]["total_tokens"] == step_info["usage"]["prompt_tokens"] + step_info["usage"]["completion_tokens"] > 0
    assert step_info["latency_s"] > 0 and "cached" not in step_info
    assert env.unwrapped.last_outcomes[0].cached is False
    assert advice_of(gold_server.requests[-1]["messages"]) == MATH_SIGNALS[2]
    env.reset(seed=0)
    again = env.step(2)[4]
    assert env.unwrapped.last_outcomes[0].cached is True and gold_server.count == 1
    assert again == step_info  # a cache hit reports what the call did (usage, latency_s)


def test_wrong_answers_score_zero(make_server):
    server = make_server(lambda m: "The answer is -1.")
    env = make(server)
    env.reset(seed=1)
    reward, info = env.step(0)[1::3]
    assert reward == 0.0 and info["answer"] == "-1" and info["correct"] is False


def test_seeding_is_reproducible_and_item_index_picks(gold_server):
    env = make(gold_server, max_items=50)
    draws = [env.reset(seed=s)[1]["item_id"] for s in (3, 4, 3)]
    assert draws[0] == draws[2]
    sequence = lambda: [env.reset(seed=11 if k == 0 else None)[1]["item_id"] for k in range(10)]  # noqa: E731
    assert sequence() == sequence()
    assert len(set(sequence())) > 3
    assert env.reset(options={"item_index": 7})[1]["item_id"] == "gsm8k/train/7"
    with pytest.raises(ConfigError, match=r"item_index.*=50: this split holds items 0..49"):
        env.reset(options={"item_index": 50})


@pytest.mark.parametrize("action", [-1, 10, 1.5, "2", None, [1, 2]])
def test_invalid_actions(gold_server, action):
    env = make(gold_server).unwrapped
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match=r"pass an integer in 0..9"):
        env.step(action)


def test_numpy_actions_are_accepted(gold_server):
    env = make(gold_server).unwrapped
    for action in (np.int64(3), np.array(3), np.array([3])):
        env.reset(seed=0)
        assert env.step(action)[4]["action"] == 3


def test_step_needs_a_fresh_episode(gold_server):
    env = GSM8KEnv(receiver=f"openai:scripted@{gold_server.url}", featurizer="hashed", max_items=5)
    with pytest.raises(PersuasionGymError, match="call reset"):
        env.step(0)
    env.reset(seed=0)
    env.step(0)
    with pytest.raises(PersuasionGymError, match="episode is over"):
        env.step(0)


def test_check_env_gymnasium_and_sb3(gold_server):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = make(gold_server, max_items=20).unwrapped
    # Warm the cache: check_env compares the info of two seeded steps, and `cached` flips
    # from False to True on a cell's second visit.
    for action in range(env.action_space.n):
        env.evaluate([action] * 20)
    check_env(env)
    sb3_check_env(env, warn=True)


def test_bad_receiver_specs_and_unreachable_endpoint():
    with pytest.raises(TypeError, match="reciever"):
        gym.make("Persuasion-GSM8K-v0", reciever="openai:m@http://127.0.0.1:1/v1")
    with pytest.raises(ConfigError, match="unknown receiver spec 'gpt-4'"):
        gym.make("Persuasion-GSM8K-v0", receiver="gpt-4", featurizer="hashed", max_items=2)
    url = f"http://127.0.0.1:{free_port()}/v1"
    env = gym.make("Persuasion-GSM8K-v0", receiver=f"openai:m@{url}?max_retries=0", featurizer="hashed", max_items=2)
    env.reset(seed=0)
    with pytest.raises(ReceiverUnavailableError, match="cannot reach the Receiver"):
        env.step(0)


def test_receiver_error_raises_and_the_step_can_be_retried(gold_server):
    env = gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{gold_server.url}?max_retries=0",
                   featurizer="hashed", max_items=5, samples_per_cell=2)
    _, info = env.reset(seed=0)
    gold_server.fail_next(1, 503)
    with pytest.raises(ReceiverError, match="HTTP 503"):
        env.step(1)
    _, reward, _, _, retried = env.step(1)
    assert reward == 1.0 and retried["item_id"] == info["item_id"] and retried["sample"] == 0
    assert len(env.unwrapped.receiver.cache) == 1


def test_receiver_error_can_score_zero_without_losing_the_episode(gold_server):
    env = gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{gold_server.url}?max_retries=0",
                   featurizer="hashed", max_items=5, on_receiver_error="zero")
    env.reset(seed=0)
    gold_server.fail_next(1, 500)
    reward, terminated, _, info = env.step(1)[1:]
    assert reward == 0.0 and terminated and "HTTP 500" in info["receiver_error"] and info["response"] == ""
    env.reset(seed=0)
    reward, _, _, info = env.step(1)[1:]
    assert reward == 1.0 and "receiver_error" not in info and env.unwrapped.last_outcomes[0].cached is False


def test_custom_signals_and_protocol_none(gold_server):
    env = make(gold_server, signals=["", "Use algebra."])
    assert env.action_space.n == 2
    env.reset(seed=0)
    assert env.step(1)[4]["signal"] == "Use algebra."
    assert advice_of(gold_server.requests[-1]["messages"]) == "Use algebra."
    quiet = make(gold_server, protocol="none")
    quiet.reset(seed=5)
    info = quiet.step(4)[4]
    assert info["signal"] == MATH_SIGNALS[4] and info["context"] == ""
    assert advice_of(gold_server.requests[-1]["messages"]) == ""
    with pytest.raises(ConfigError, match="unknown protocol 'loud'"):
        make(gold_server, protocol="loud")
    with pytest.raises(ConfigError, match="same text"):
        make(gold_server, signals=["a", "a"])


def test_samples_per_cell_cycles_and_bounds_calls(gold_server):
    env = make(gold_server, samples_per_cell=2).unwrapped
    samples = []
    for _ in range(5):
        env.reset(options={"item_index": 0})
        samples.append(env.step(1)[4]["sample"])
    assert samples == [0, 1, 0, 1, 0]
    assert gold_server.count == 2


def test_text_observations_admit_every_question(gold_server, gsm8k_dir):
    env = make(gold_server, observation="text", max_items=None, split="test").unwrapped
    assert isinstance(env.observation_space, gym.spaces.Text)
    for split in ("train", "test"):
        for item in GSM8KTask().load(split, str(gsm8k_dir)).items:
            assert env.observation_space.contains(item.text), item.item_id
    obs, info = env.reset(seed=0)
    assert obs == info["question"]


def test_vector_envs_sync_and_async(gold_server):
    kwargs = dict(receiver=f"openai:scripted@{gold_server.url}", featurizer="hashed", max_items=20)
    for mode in ("sync", "async"):
        envs = gym.make_vec("Persuasion-GSM8K-v0", num_envs=3, vectorization_mode=mode, **kwargs)
        obs, info = envs.reset(seed=0)
        assert obs.shape == (3, 1024)
        _, rewards, terminated, _, info = envs.step(np.array([0, 1, 2]))
        assert rewards.tolist() == [1.0, 1.0, 1.0] and terminated.all()
        assert list(info["signal"]) == list(MATH_SIGNALS[:3])
        envs.close()


def test_async_text_observations_need_shared_memory_off(gold_server):
    kwargs = dict(receiver=f"openai:scripted@{gold_server.url}", observation="text", max_items=20)
    envs = gym.make_vec("Persuasion-GSM8K-v0", num_envs=2, vectorization_mode="async",
                        vector_kwargs={"shared_memory": False}, **kwargs)
    obs, info = envs.reset(seed=0)
    assert list(obs) == list(info["question"])
    assert envs.step(np.array([1, 2]))[1].tolist() == [1.0, 1.0]
    envs.close()
    with pytest.raises(ConfigError, match=r"vector_kwargs=\{'shared_memory': False\}"):
        gym.make_vec("Persuasion-GSM8K-v0", num_envs=2, vectorization_mode="async", **kwargs)


def test_evaluate_scores_a_batch_and_provenance(gold_server):
    env = make(gold_server, max_items=12).unwrapped
    gold_server.latency_s = 0.05  # long enough that a concurrent batch overlaps even on a loaded machine
    outcomes = env.evaluate([k % 10 for k in range(12)])
    assert len(outcomes) == 12 and all(o.correct for o in outcomes)
    assert [o.context for o in outcomes[:3]] == list(MATH_SIGNALS[:3])
    assert gold_server.max_in_flight > 1  # one concurrent batch, not a loop of calls
    meta = env.provenance()
    assert meta["receiver"]["model"] == "scripted" and meta["dataset"]["n_items"] == 12
    assert meta["signals"] == list(MATH_SIGNALS) and len(meta["dataset"]["sha256"]) == 64
    assert meta["package_version"] == persuasion_gym.__version__


def test_render_ansi(gold_server):
    env = make(gold_server, render_mode="ansi")
    env.reset(seed=0)
    assert env.render() == "(no step yet)"
    env.step(1)
    text = env.render()
    assert "signal: " + MATH_SIGNALS[1] in text and "reward: 1.0" in text
