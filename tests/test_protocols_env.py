"""The Bayesian protocols inside the envs: posterior beliefs, the online scheme, live and table."""

import gymnasium as gym
import numpy as np
import pytest

from persuasion_gym.errors import ConfigError
from persuasion_gym.persuasion import bayes
from persuasion_gym.tasks import GSM8KTask

from testkit import advice_of, synthetic_table


@pytest.fixture
def state_table(tmp_path):
    """Each item is served by exactly one information item (its state), the others fail."""
    items = GSM8KTask().load("test", max_items=40)
    theta = np.arange(40) % 4
    scores = np.zeros((40, 4, 1), np.float32)
    scores[np.arange(40), theta, 0] = 1
    path = tmp_path / "states.npz"
    synthetic_table(items, ["", "p", "q", "r"], scores).save(path)
    return path, theta


def test_posterior_info_and_fully_revealing_scheme(state_table):
    path, theta = state_table
    env = gym.make("Persuasion-Table-v0", table=str(path), featurizer="hashed", protocol="posterior", scheme=np.eye(4))
    for seed in range(20):
        _, info = env.reset(seed=seed)
        g = int(theta[info["item_index"]])
        _, reward, _, _, info = env.step(g)  # the Advisor reveals the state
        np.testing.assert_allclose(info["posterior"], np.eye(4)[g])
        assert info["information_index"] == g and info["information_item"] == ["", "p", "q", "r"][g]
        assert reward == 1.0


def test_uninformative_advisor_leaves_the_prior(state_table):
    path, _ = state_table
    env = gym.make("Persuasion-Table-v0", table=str(path), featurizer="hashed", protocol="posterior")
    env.reset(seed=0)
    for _ in range(200):
        env.reset()
        info = env.step(1)[4]
    # always signal 1: the online scheme learns sigma(1 | x) -> 1 for every state, mu_1 -> prior
    np.testing.assert_allclose(info["posterior"], env.unwrapped.protocol.prior, atol=0.05)
    np.testing.assert_allclose(env.unwrapped.protocol.prior, [0.25] * 4)


def test_online_scheme_converges_to_the_committed_scheme(state_table):
    path, theta = state_table
    env = gym.make("Persuasion-Table-v0", table=str(path), featurizer="hashed", protocol="posterior",
                   n_signals=2, alpha=1.0)
    assert env.action_space.n == 2  # K < m: the Advisor pools states
    policy = (theta >= 2).astype(int)  # states 0,1 -> signal 0; states 2,3 -> signal 1
    env.reset(seed=1)
    for _ in range(3000):
        _, info = env.reset()
        env.step(int(policy[info["item_index"]]))
    exact = bayes.scheme_of_policy(bayes.as_policy(policy, 2), theta, 4)
    np.testing.assert_allclose(env.unwrapped.protocol.scheme, exact, atol=0.01)
    # the posterior after signal 0 splits between states 0 and 1
    np.testing.assert_allclose(bayes.posterior(env.unwrapped.protocol.prior, exact, 0), [0.5, 0.5, 0, 0])


def test_online_state_estimate_on_a_live_receiver(make_server, gold_by_question):
    from testkit import question_of

    # Right only with hint "p": the state of every question is "p" (index 1).
    server = make_server(lambda m: f"The answer is {gold_by_question[question_of(m)] if advice_of(m) == 'p' else -1}.")
    env = gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{server.url}", featurizer="hashed",
                   max_items=5, signals=["", "p", "q"], protocol="posterior", n_signals=2)
    env.reset(seed=0)
    for _ in range(150):
        env.reset()
        info = env.step(0)[4]
        if not env.unwrapped.last_outcomes[0].cached:  # the Receiver saw the sampled information item
            assert advice_of(server.requests[-1]["messages"]) == info["information_item"]
    protocol = env.unwrapped.protocol
    assert (protocol.state_of(np.arange(5)) == 1).all()
    assert protocol.counts[1, 0] > 100 and protocol.counts[[0, 2]].sum() < 20


def test_prior_and_none_protocols(state_table, make_server):
    path, _ = state_table
    env = gym.make("Persuasion-Table-v0", table=str(path), featurizer="hashed", protocol="prior",
                   prior=[0.0, 0.0, 1.0, 0.0])
    env.reset(seed=0)
    info = env.step(3)[4]
    assert info["information_item"] == "q" and info["prior"].tolist() == [0, 0, 1, 0]
    none = gym.make("Persuasion-Table-v0", table=str(path), featurizer="hashed", protocol="none")
    _, info = none.reset(seed=0, options={"item_index": 0})  # item 0's state is the empty signal
    assert none.step(2)[1] == 1.0
    with pytest.raises(ConfigError, match="prior must be a distribution"):
        gym.make("Persuasion-Table-v0", table=str(path), featurizer="hashed", protocol="prior", prior=[1, 1, 0, 0])
    with pytest.raises(ConfigError, match="scheme has shape"):
        gym.make("Persuasion-Table-v0", table=str(path), featurizer="hashed", protocol="posterior", scheme=np.eye(3))
    with pytest.raises(ConfigError, match="apply to the posterior protocol"):
        gym.make("Persuasion-Table-v0", table=str(path), featurizer="hashed", n_signals=2)


def test_a_seeded_reset_starts_the_online_scheme_afresh(state_table):
    path, theta = state_table
    env = gym.make("Persuasion-Table-v0", table=str(path), featurizer="hashed", protocol="posterior")
    protocol = env.unwrapped.protocol
    env.reset(seed=0)
    first = env.step(1)[4]
    for _ in range(20):
        env.reset()  # an unseeded reset keeps learning: online persuasion over the env's life
        env.step(1)
    assert protocol.counts.sum() == 21
    env.reset(seed=0)  # a fresh run: the same seed, the same episode as the first
    assert protocol.counts.sum() == 0
    assert (protocol.state_of(np.arange(40)) == theta).all()  # a table's states are given, not learned
    again = env.step(1)[4]
    np.testing.assert_array_equal(again["posterior"], first["posterior"])
    assert again["information_index"] == first["information_index"]
    # The native vector env shares the protocol: its seeded reset restarts it as well.
    envs = gym.make_vec("Persuasion-Table-v0", num_envs=4, table=str(path), featurizer="hashed", protocol="posterior")
    shared = envs.unwrapped.env.protocol
    envs.reset(seed=0)
    envs.step(np.ones(4, dtype=np.int64))
    envs.reset()
    assert shared.counts.sum() == 4
    envs.reset(seed=1)
    assert shared.counts.sum() == 0


def test_a_seeded_reset_forgets_the_online_state_estimates(make_server, gold_by_question):
    from testkit import question_of

    server = make_server(lambda m: f"The answer is {gold_by_question[question_of(m)]}.")
    env = gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{server.url}", featurizer="hashed",
                   max_items=5, signals=["", "p", "q"], protocol="posterior", scheme=np.eye(3))
    protocol = env.unwrapped.protocol
    env.reset(seed=0, options={"item_index": 0})
    env.step(1)
    env.reset()
    assert protocol.state_of(np.array([0]))[0] >= 0  # one cell of item 0 seen: its state estimated
    env.reset(seed=0)
    assert (protocol.state_of(np.arange(5)) == -1).all()
    np.testing.assert_array_equal(protocol.scheme, np.eye(3))  # a given scheme stays
