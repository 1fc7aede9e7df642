"""Text actions (``action_type="text"``) and the posterior protocol with text signals."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from persuasion_gym.envs.text_space import SignalText
from persuasion_gym.errors import ConfigError, InvalidActionError
from persuasion_gym.persuasion import TextScheme, bayes
from persuasion_gym.receivers import make_receiver
from persuasion_gym.tables import record
from persuasion_gym.tasks import GSM8KTask

from testkit import advice_of, question_of

ITEMS = ["use plan A", "use plan B", "use plan C"]


def make(server, **kwargs):
    kwargs.setdefault("featurizer", "hashed")
    kwargs.setdefault("max_items", 20)
    kwargs.setdefault("action_type", "text")
    return gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{server.url}", **kwargs)


@pytest.fixture
def minutes_server(make_server, gold_by_question):
    """Right only when the advice mentions minutes: a property a signal writer can find."""
    return make_server(lambda m: f"The answer is {gold_by_question[question_of(m)] if 'minute' in advice_of(m) else -1}.")


def test_a_text_action_is_the_signal(minutes_server):
    env = make(minutes_server, split="test")
    assert isinstance(env.action_space, SignalText) and env.action_space.max_length == 512
    assert env.action_space.contains("Convert hours to minutes first.")
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step("Convert hours to minutes first.")
    assert (reward, terminated) == (1.0, True)
    assert info["signal"] == info["context"] == "Convert hours to minutes first."
    assert advice_of(minutes_server.requests[-1]["messages"]) == "Convert hours to minutes first."
    env.reset(seed=0)
    assert env.step("Think in hours.")[1] == 0.0
    env.reset(seed=0)
    again = env.step("Convert hours to minutes first.")[4]  # the same text again: the cache answers
    assert again["signal"] == "Convert hours to minutes first."
    assert env.unwrapped.last_outcomes[0].cached is True and minutes_server.count == 2
    assert env.unwrapped.provenance()["action_type"] == "text"


def test_the_native_vector_env_sends_n_texts_as_one_batch(make_server, gold_by_question):
    server = make_server(lambda m: f"The answer is {gold_by_question[question_of(m)] if 'minute' in advice_of(m) else -1}.",
                         latency_s=0.2)
    envs = gym.make_vec("Persuasion-GSM8K-v0", num_envs=8, receiver=f"openai:scripted@{server.url}",
                        featurizer="hashed", max_items=20, action_type="text")
    envs.reset(seed=0, options={"item_indices": np.arange(8)})
    texts = tuple("in minutes" if k % 2 else f"hint {k}" for k in range(8))
    _, rewards, terminated, _, info = envs.step(texts)
    assert rewards.tolist() == [0.0, 1.0] * 4 and terminated.all()
    assert list(info["signal"]) == list(texts) and not any(o.cached for o in envs.env.last_outcomes)
    assert server.max_in_flight == 8  # one concurrent batch
    envs.reset(seed=0, options={"item_indices": np.arange(8)})
    envs.step(texts)
    assert all(o.cached for o in envs.env.last_outcomes) and server.count == 8
    with pytest.raises(InvalidActionError, match="are not 8 signal texts"):
        envs.step(("one", "two"))
    with pytest.raises(InvalidActionError, match="is not text"):
        envs.step(np.arange(8))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_gymnasium_vector_envs_take_texts(minutes_server, mode):
    envs = gym.make_vec("Persuasion-GSM8K-v0", num_envs=2, vectorization_mode=mode,
                        receiver=f"openai:scripted@{minutes_server.url}", featurizer="hashed", max_items=5,
                        action_type="text")
    envs.reset(seed=0)
    rewards = envs.step(("minutes, please", "no hint"))[1]
    assert rewards.tolist() == [1.0, 0.0]
    envs.close()


def test_bad_text_actions_name_the_fix(minutes_server, tmp_path):
    env = make(minutes_server, max_signal_length=20)
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match=r"action 3 is not text.*action_type='index'"):
        env.step(3)
    with pytest.raises(InvalidActionError, match=r"25 characters is over this env's limit of 20.*max_signal_length=25"):
        env.step("x" * 25)
    with pytest.raises(InvalidActionError, match=r"outside the action space's charset: '\\x0bж'.*signal_charset="):
        env.step("ж\x0b")
    assert env.step("fine in minutes")[1] == 1.0  # the episode survived the bad actions
    index_env = gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{minutes_server.url}", featurizer="hashed",
                         max_items=5)
    index_env.reset(seed=0)
    with pytest.raises(InvalidActionError, match=r"is text.*action_type='text'"):
        index_env.step("in minutes")
    wide = make(minutes_server, signal_charset="abcж ")
    wide.reset(seed=0)
    assert wide.step("ж")[1] == 0.0
    with pytest.raises(ConfigError, match="action_type='words'"):
        make(minutes_server, action_type="words")


def test_text_actions_on_a_table_are_refused(tmp_path, minutes_server):
    receiver = make_receiver(f"openai:scripted@{minutes_server.url}")
    dataset = GSM8KTask().load("test", max_items=3)
    path = tmp_path / "t.npz"
    record(GSM8KTask(), receiver, dataset, ["", "in minutes"], out=path)
    for make_env in (lambda: gym.make("Persuasion-Table-v0", table=str(path), action_type="text"),
                     lambda: gym.make("Persuasion-GSM8K-v0", receiver=f"table:{path}", split="test", max_items=3,
                                      action_type="text")):
        with pytest.raises(ConfigError, match="a table only knows its own signals.*use a live Receiver"):
            make_env()
    table_env = gym.make("Persuasion-Table-v0", table=str(path), featurizer="hashed").unwrapped
    with pytest.raises(ConfigError, match="only knows its own signals"):
        table_env.evaluate(["in minutes"] * 3)


def test_evaluate_scores_texts_in_one_batch(minutes_server):
    for action_type in ("text", "index"):  # texts can be scored whatever the step's action type
        env = gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{minutes_server.url}", featurizer="hashed",
                       max_items=4, action_type=action_type).unwrapped
        outcomes = env.evaluate(["minutes", "hours", "minutes", ""])
        assert [o.reward for o in outcomes] == [1.0, 0.0, 1.0, 0.0]
        assert [o.context for o in outcomes] == ["minutes", "hours", "minutes", ""]


def test_gymnasium_checker_passes_in_text_mode_on_a_cold_cache(minutes_server):
    env = make(minutes_server).unwrapped
    check_env(env, skip_render_check=True)  # its seeded steps: a Receiver call, then its cache hit


# -- the posterior protocol with text signals --------------------------------------------------

class Revealing:
    """Writes "x=K" observing item K; the signal names the item, so it is fully revealing."""

    identity = {"kind": "revealing"}

    def log_likelihoods(self, questions, signals, items):
        named = [int(s.removeprefix("x=")) for s in signals]
        return np.where(np.arange(len(items))[None, :] == np.array(named)[:, None], 0.0, -np.inf)


class Uninformative:
    """The same distribution over signals whatever the item."""

    def log_likelihoods(self, questions, signals, items):
        return np.full((len(signals), len(items)), -7.5)


class Known:
    """pi(g | x) = LIKELIHOODS[x], for any g: Bayes' rule checked by hand."""

    LIKELIHOODS = np.array([0.5, 0.25, 0.25])

    def log_likelihoods(self, questions, signals, items):
        return np.tile(np.log(self.LIKELIHOODS), (len(signals), 1))


@pytest.fixture
def state_server(make_server):
    """Right only when the item the Receiver reads (the advice's last line) is the question's state."""
    questions = GSM8KTask().load("test", max_items=30).items
    theta = {q.text: (3 * k + k // 4) % 3 for k, q in enumerate(questions)}
    gold = {q.text: q.gold for q in questions}

    def reply(messages):
        question = question_of(messages)
        last = advice_of(messages).split("\n")[-1]
        return f"The answer is {gold[question] if last == ITEMS[theta[question]] else -1}."

    return make_server(reply), np.array([theta[q.text] for q in questions])


@pytest.fixture
def states_path(state_server, tmp_path):
    server, _ = state_server
    path = tmp_path / "states.npz"
    record(GSM8KTask(), make_receiver(f"openai:scripted@{server.url}"), GSM8KTask().load("test", max_items=30),
           ITEMS, out=path)
    return path


def posterior_env(server, scheme, **kwargs):
    return gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{server.url}", split="test", max_items=30,
                    featurizer="hashed", action_type="text", signals=ITEMS, protocol="posterior", scheme=scheme,
                    **kwargs)


def test_bayes_rule_by_hand_with_known_likelihoods(state_server):
    server, _ = state_server
    env = posterior_env(server, Known(), prior=[0.5, 0.3, 0.2])
    env.reset(seed=0)
    info = env.step("whatever the Advisor writes")[4]
    # mu(x) ∝ mu_0(x) pi(g | x) = [0.25, 0.075, 0.05] / 0.375
    np.testing.assert_allclose(info["posterior"], [2 / 3, 0.2, 2 / 15])
    np.testing.assert_allclose(info["log_likelihoods"], np.log(Known.LIKELIHOODS))
    assert info["context"] == f"whatever the Advisor writes\n{info['information_item']}"
    assert advice_of(server.requests[-1]["messages"]) == info["context"]
    assert env.unwrapped.provenance()["scheme"] == "Known"


def test_log_space_posterior_survives_tiny_likelihoods():
    # Whole texts have likelihoods far below what a float holds: exp(-5000) is 0.
    log_l = np.array([[-5000.0, -5001.0, -np.inf], [-np.inf, -np.inf, -np.inf]])
    mu = bayes.posteriors_from_log_likelihoods(np.array([0.5, 0.5, 0.0]), log_l)
    np.testing.assert_allclose(mu[0], [np.e / (np.e + 1), 1 / (np.e + 1), 0])
    np.testing.assert_allclose(mu[1], [0.5, 0.5, 0.0])  # no item can have sent it: the prior stays


def test_a_fully_revealing_advisor_earns_the_oracle_value(state_server, states_path):
    server, theta = state_server
    env = posterior_env(server, Revealing(), state_table=str(states_path))
    rewards = []
    env.reset(seed=0)
    for _ in range(60):
        _, info = env.reset()
        assert info["observed_index"] == theta[info["item_index"]] and info["observed_known"]
        assert info["observed_item"] == ITEMS[info["observed_index"]]
        _, reward, _, _, info = env.step(f"x={info['observed_index']}")
        np.testing.assert_allclose(info["posterior"], np.eye(3)[info["observed_index"]])
        rewards.append(reward)
    assert np.mean(rewards) == 1.0  # the oracle: every question answered with its state


def test_a_signal_independent_advisor_earns_the_prior_value(state_server, states_path):
    server, theta = state_server
    env = posterior_env(server, Uninformative(), state_table=str(states_path))
    prior = env.unwrapped.protocol.prior
    np.testing.assert_allclose(prior, bayes.state_prior(theta, 3))
    exact = bayes.prior_value(np.eye(3)[theta], prior)  # E_q mu_0(theta(q))
    env.reset(seed=5)
    rewards = []
    for _ in range(400):
        _, info = env.reset()
        _, reward, _, _, info = env.step(f"x={info['observed_index']}")
        np.testing.assert_allclose(info["posterior"], prior)
        rewards.append(reward)
    se = np.std(rewards) / np.sqrt(len(rewards))
    assert abs(np.mean(rewards) - exact) < 3.5 * se


def test_online_states_are_drawn_from_the_prior_until_seen(state_server):
    server, theta = state_server
    env = posterior_env(server, Revealing())
    envs = gym.make_vec("Persuasion-GSM8K-v0", num_envs=30, receiver=f"openai:scripted@{server.url}", split="test",
                        max_items=30, featurizer="hashed", action_type="text", signals=ITEMS, protocol="posterior",
                        scheme=Revealing())
    _, info = envs.reset(seed=0, options={"item_indices": np.arange(30)})
    assert not info["observed_known"].any()  # nothing seen yet: x* is a draw from mu_0
    assert len(set(info["observed_index"].tolist())) > 1
    # Each episode shows the item it names; those that were right fix their question's state.
    _, _, _, _, step = envs.step(tuple(f"x={x}" for x in info["observed_index"]))
    right = step["information_index"] == theta
    assert list(step["information_item"]) == [ITEMS[x] for x in step["information_index"]]
    np.testing.assert_array_equal(step["log_likelihoods"], Revealing().log_likelihoods(
        None, [f"x={x}" for x in info["observed_index"]], ITEMS))
    protocol = envs.unwrapped.env.protocol
    assert (protocol.estimate.state_of(np.arange(30))[right] == theta[right]).all()
    assert env.reset(seed=0)[1]["observed_known"] is False


def test_text_posterior_needs_a_text_scheme(state_server):
    server, _ = state_server
    with pytest.raises(ConfigError, match="needs the Advisor as its committed scheme"):
        posterior_env(server, None)
    with pytest.raises(ConfigError, match="needs the Advisor as its committed scheme"):
        posterior_env(server, np.eye(3))
    with pytest.raises(ConfigError, match="needs text actions"):
        gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{server.url}", split="test", max_items=5,
                 featurizer="hashed", signals=ITEMS, protocol="posterior", scheme=Known())
    assert isinstance(Known(), TextScheme) and not isinstance(object(), TextScheme)
