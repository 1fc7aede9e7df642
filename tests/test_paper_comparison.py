"""The paper's comparison and the posterior protocol's claims, pinned on a scripted Receiver:
the prior arm is u_test · mu_0, lift in percent is relative to none, a fully revealing Advisor
earns the oracle value and one whose signal ignores the item earns the prior value (mu_g = mu_0),
each Advisor arm is trained under its own protocol, states tie-break at random (seeded) and the
ties are counted, and a NaN log-likelihood is an error naming the scheme."""

import json
import zlib

import gymnasium as gym
import numpy as np
import pytest

from persuasion_agents.evaluation import best_fixed_signal, cell_outcomes, rewards_of, spent
from persuasion_agents.lm_advisor import AdvisorInfo, AdvisorTemplate, LMAdvisor
from persuasion_agents.lm_advisor.compare import paper_comparison
from persuasion_agents.lm_advisor.grpo_config import AdvisorTraining
from persuasion_gym.errors import ConfigError
from persuasion_gym.persuasion import TextPosteriorProtocol, bayes
from persuasion_gym.persuasion.protocols import StateEstimate
from persuasion_gym.tasks import GSM8KTask

from testkit import advice_of, build_tiny_advisor, question_of, synthetic_table

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

ITEMS = ["", "use plan A", "use plan B", "use plan C"]
# What helps a question, by its kind: one item, two (a tie), none (every item ties), or the
# empty signal and one item (a tie; and what makes `none` right sometimes).
KINDS = [{"use plan A"}, {"use plan B"}, {"use plan C"}, {"use plan A", "use plan B"}, set(), {"", "use plan C"}]


def helps(question: str) -> set[str]:
    return KINDS[zlib.crc32(question.encode()) % len(KINDS)]


def utilities(questions) -> np.ndarray:
    return np.array([[float(x in helps(q)) for x in ITEMS] for q in questions])


@pytest.fixture
def item_server(make_server, gold_by_question):
    """Right when the item the Receiver reads (the advice's last line, if it is an item) helps."""
    def reply(messages):
        question = question_of(messages)
        last = advice_of(messages).split("\n")[-1]
        read = last if last in ITEMS else ""
        return f"The answer is {gold_by_question[question] if read in helps(question) else -1}."
    return make_server(reply)


class Revealing:
    """An Advisor-like scheme whose signal names the item it observes (``x=K``), so
    pi(g | q, x) = [g names x]: fully revealing. Its direct signals name nothing."""

    def __init__(self):
        self.info = AdvisorInfo("revealing", AdvisorTemplate(), {"receiver": {"kind": "scripted"},
                                                                  "protocol": "posterior"})
        self.identity = {"kind": "revealing", "source": "test"}
        self.template = self.info.template

    def write(self, questions, items=None, sample=False, seed=0, temperature=1.0, **kwargs):
        if items is None:
            return ["signal: no item"] * len(questions)
        return [f"signal: x={ITEMS.index(x)}" for x in items]

    def log_likelihoods(self, questions, signals, items):
        named = np.array([int(s.split("x=")[1]) if "x=" in s else -1 for s in signals])
        return np.where(np.arange(len(items))[None, :] == named[:, None], 0.0, -np.inf)


def rows_of(out):
    results = json.loads((out / "results.json").read_text())
    return {r["policy"]: r for r in results["rows"]}, next(iter(results["provenance"].values()))


def test_prior_arm_lift_and_a_fully_revealing_advisor_at_the_oracle(item_server, tmp_path):
    n = 24
    train_q = GSM8KTask().load("train", max_items=n).texts
    test_q = GSM8KTask().load("test", max_items=n).texts
    u_train, u_test = utilities(train_q), utilities(test_q)
    prior = bayes.state_prior(bayes.states(u_train, 3), len(ITEMS))
    out = tmp_path / "paper"
    rows = {r["policy"]: r for r in paper_comparison(
        "Persuasion-GSM8K-v0", f"openai:scripted@{item_server.url}", Revealing(), out, n_items=n, train_items=n,
        seed=3, progress=False, signals=ITEMS)}
    none = u_test[:, 0].mean()
    assert 0 < none < 1
    assert rows["none"]["accuracy"] == pytest.approx(none)
    assert rows["prior"]["accuracy"] == pytest.approx(float(np.mean(u_test @ prior)))  # u_test · mu_0, exact
    assert rows["oracle"]["accuracy"] == pytest.approx(u_test.max(axis=1).mean())
    assert rows["best-fixed"]["accuracy"] == pytest.approx(u_test[:, best_fixed_signal(u_train)].mean())
    # Fully revealing: mu_g is a point mass on x* = theta(q), so the Receiver reads the best item.
    post = rows["posterior (lm-advisor)"]
    assert post["accuracy"] == pytest.approx(rows["oracle"]["accuracy"]) and post["posterior_on_state"] == 1.0
    for row in rows.values():  # lift in points (absolute) and in percent (relative to none)
        assert row["lift_points"] == pytest.approx(100 * (row["accuracy"] - none))
        assert row["lift_percent"] == pytest.approx(100 * (row["accuracy"] - none) / none)
    assert rows["oracle"]["lift_percent"] == pytest.approx(100 * (u_test.max(axis=1).mean() / none - 1))
    # One Advisor serves both arms here, and the results say which protocol trained it.
    assert post["trained_under"] == rows["direct (lm-advisor)"]["trained_under"] == "posterior"
    _, provenance = rows_of(out)
    comparison = provenance["comparison"]
    assert comparison["advisors"]["one_advisor_for_both"] is True
    assert comparison["prior"] == pytest.approx(prior.tolist())
    assert comparison["states"]["training_ties"] == int(bayes.tied(u_train).sum()) > 0
    assert comparison["states"]["held_out_ties"] == int(bayes.tied(u_test).sum()) > 0
    assert comparison["signals"]["posterior"].startswith("sampled (seed 3")


def test_an_advisor_whose_signal_ignores_the_item_earns_the_prior_and_each_arm_is_trained_under_its_protocol(
        item_server, tmp_path):
    # A real LM Advisor whose prompt never shows the item: pi(g | q, x) is the same for every x.
    ignoring = AdvisorTemplate(observed="", max_new_tokens=6)
    advisor = LMAdvisor.load(str(build_tiny_advisor(tmp_path / "tiny")), template=ignoring)
    n = 16
    out = tmp_path / "paper"
    training = AdvisorTraining(steps=1, items_per_step=1, num_generations=2, save_steps=1)
    rows = {r["policy"]: r for r in paper_comparison(
        "Persuasion-GSM8K-v0", f"openai:scripted@{item_server.url}", advisor, out, n_items=n, train_items=n,
        progress=False, training=training, signals=ITEMS)}
    assert rows["direct (lm-advisor)"]["trained_under"] == "direct"
    assert rows["posterior (lm-advisor)"]["trained_under"] == "posterior"
    for folder, protocol in (("lm-advisor", "direct"), ("lm-advisor-posterior", "posterior")):
        assert LMAdvisor.load(str(out / folder / "advisor")).info.trained_on["protocol"] == protocol
    _, provenance = rows_of(out)
    assert provenance["comparison"]["advisors"]["one_advisor_for_both"] is False
    # mu_g = mu_0 for every signal: the mean belief on the state is E_q mu_0(theta(q)) exactly,
    # and the arm's mean is the prior arm's within its sampling error.
    test_q = GSM8KTask().load("test", max_items=n).texts
    u_test = utilities(test_q)
    theta = bayes.states(u_test, 0)
    prior = np.array(provenance["comparison"]["prior"])
    post = rows["posterior (lm-advisor)"]
    assert post["posterior_on_state"] == pytest.approx(prior[theta].mean(), abs=1e-6)
    values = u_test @ prior
    se = np.sqrt(np.mean(values * (1 - values)) / n)
    assert abs(post["accuracy"] - rows["prior"]["accuracy"]) < 3.5 * se + 1e-9


def test_a_real_lm_advisor_that_ignores_the_item_leaves_the_prior_in_the_env(item_server, tmp_path):
    advisor = LMAdvisor.load(str(build_tiny_advisor(tmp_path / "tiny")),
                             template=AdvisorTemplate(observed="", max_new_tokens=6))
    env = gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{item_server.url}", split="test", max_items=6,
                   featurizer="hashed", action_type="text", signals=ITEMS, protocol="posterior", scheme=advisor,
                   prior=[0.1, 0.2, 0.3, 0.4])
    envs = env.unwrapped
    batch = envs.play(np.arange(6), advisor.write(envs.dataset.texts, items=["use plan A"] * 6, sample=True),
                      np.random.default_rng(0))
    np.testing.assert_allclose(batch.beliefs, np.tile([0.1, 0.2, 0.3, 0.4], (6, 1)), atol=1e-6)


def test_states_break_ties_at_random_seeded_and_count_them():
    u = np.zeros((400, 4))  # no item helps: every item ties
    u[:100, 2] = 1  # these have one best item
    theta = bayes.states(u)
    assert (theta[:100] == 2).all()
    counts = np.bincount(theta[100:], minlength=4)
    assert (counts > 40).all()  # spread over the tied items, not piled onto index 0 (the empty signal)
    assert bayes.tied(u).sum() == 300 and not bayes.tied(u)[:100].any()
    np.testing.assert_array_equal(bayes.states(u), theta)  # seeded: the same states again
    np.testing.assert_array_equal(bayes.states(u[:150]), theta[:150])  # row by row: a prefix agrees
    assert not np.array_equal(bayes.states(u, seed=1), theta)
    assert (bayes.states(u, seed=None)[100:] == 0).all()  # the old rule, on request
    # The prior follows: the indifferent questions spread their mass.
    assert bayes.state_prior(theta, 4)[0] < 0.3


def test_the_online_estimate_breaks_ties_by_the_same_rule():
    rng = np.random.default_rng(0)
    u = (rng.random((30, 4)) < 0.5).astype(float)
    estimate = StateEstimate(4, 30)
    items = np.repeat(np.arange(30), 4)
    chosen = np.tile(np.arange(4), 30)
    assert (estimate.state_of(np.arange(30)) == -1).all() and not estimate.tied_of(np.arange(30)).any()
    estimate.observe(items, chosen, u[items, chosen])
    np.testing.assert_array_equal(estimate.state_of(np.arange(30)), bayes.states(u))
    np.testing.assert_array_equal(estimate.tied_of(np.arange(30)), bayes.tied(u))


def test_a_state_table_counts_its_ties_and_each_episode_says_whether_x_star_tied(item_server, tmp_path):
    data = GSM8KTask().load("test", max_items=12)
    u = utilities(data.texts)
    path = tmp_path / "states.npz"
    synthetic_table(data, ITEMS, u[:, :, None]).save(path)
    env = gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{item_server.url}", split="test", max_items=12,
                   featurizer="hashed", action_type="text", signals=ITEMS, protocol="posterior", scheme=Revealing(),
                   state_table=str(path))
    core = env.unwrapped
    states = core.provenance()["states"]
    assert states["source"] == "state_table" and states["ties"] == int(bayes.tied(u).sum()) > 0
    for i in range(12):
        _, info = env.reset(options={"item_index": i})
        assert info["observed_index"] == bayes.states(u)[i] and info["observed_tie"] == bayes.tied(u)[i]
    table = gym.make("Persuasion-Table-v0", table=str(path), featurizer="hashed", protocol="posterior")
    assert table.unwrapped.provenance()["states"]["ties"] == states["ties"]


def test_observed_items_follow_the_online_estimate_one_x_star_per_item_and_call(item_server):
    env = gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{item_server.url}", split="test", max_items=12,
                   featurizer="hashed", action_type="text", signals=ITEMS, protocol="posterior", scheme=Revealing())
    core = env.unwrapped
    assert core.provenance()["states"]["source"] == "online"
    indices = np.repeat(np.arange(12), 4)  # a GRPO step: each item four times
    first = core.observed_items(indices, np.random.default_rng(0))
    assert not first["observed_known"].any()
    assert (first["observed_index"].reshape(12, 4) == first["observed_index"][::4, None]).all()  # one draw per item
    # Reveal item 1 ("use plan A") on every question: the estimate moves, and the next call reads it.
    core.play(np.arange(12), ["signal: x=1"] * 12, np.random.default_rng(0))
    again = core.observed_items(np.arange(12), np.random.default_rng(0))
    assert again["observed_known"].all()  # one cell of each seen: its estimate is that cell
    assert (again["observed_index"] == 1).all() and not again["observed_tie"].any()


def test_a_nan_log_likelihood_is_an_error_naming_the_scheme(item_server):
    class Broken:
        identity = {"kind": "broken-advisor", "source": "weights/nan"}

        def log_likelihoods(self, questions, signals, items):
            values = np.zeros((len(signals), len(items)))
            values[:, 2] = np.nan
            return values

    protocol = TextPosteriorProtocol(4, np.full(4, 0.25), Broken(), ITEMS, ["q0", "q1"])
    with pytest.raises(ConfigError, match=r"Broken\(kind=broken-advisor, source=weights/nan\).*NaN"):
        protocol.choose(["a", "b"], np.array([0, 1]), np.random.default_rng(0))
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        bayes.posteriors_from_log_likelihoods(np.full(2, 0.5), np.array([[0.0, np.nan]]))
    env = gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{item_server.url}", split="test", max_items=2,
                   featurizer="hashed", action_type="text", signals=ITEMS, protocol="posterior", scheme=Broken())
    env.reset(seed=0)
    with pytest.raises(ConfigError, match="broken-advisor"):
        env.step("any signal")


def test_cells_and_costs_are_the_ones_bench_uses(item_server):
    env = gym.make("Persuasion-GSM8K-v0", receiver=f"openai:scripted@{item_server.url}?price_in=1&price_out=2",
                   split="test", max_items=3, featurizer="hashed", signals=ITEMS)
    cells = cell_outcomes(env)
    np.testing.assert_array_equal(rewards_of(cells), utilities(env.unwrapped.dataset.texts))
    flat = [o for row in cells for o in row]
    paid = spent(flat, env.unwrapped.receiver)
    assert paid.calls == 12 and paid.cost_usd > 0 and paid.tokens == sum(o.usage.total_tokens for o in flat)
    # Cached: the tokens count, the calls and their cost do not.
    again = spent([o for row in cell_outcomes(env) for o in row], env.unwrapped.receiver)
    assert again.calls == 0 and again.cost_usd == 0 and again.tokens == paid.tokens
    half = spent(flat[:2], env.unwrapped.receiver, [0.5, 0.5])
    assert half.calls == 1.0
