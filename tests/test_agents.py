"""Signaling policies, statistics and the benchmark harness, on tables and a live Receiver."""

import inspect
import json

import gymnasium as gym
import numpy as np
import pytest

from persuasion_agents.bandits import UCB1, EpsilonGreedy, LinUCB, ThompsonSampling
from persuasion_agents.baselines import BestFixed, NoSignal, Oracle, UniformRandom
from persuasion_agents.benchmark import Setting, run_benchmark
from persuasion_agents.sb3_policies import SB3Policy
from persuasion_agents.statistics import bootstrap_ci, paired_p_value
from persuasion_agents.training import train_online
from persuasion_gym.tables import baseline_values, load_table, policy_value
from persuasion_gym.tasks import GSM8KTask

from testkit import question_of, rule_table, synthetic_table

SIGNALS = ["", "one", "two", "three"]



@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("tables")
    return rule_table("train", 1500, root / "train.npz"), rule_table("test", 200, root / "test.npz", seed=1)


def table_env(path):
    return gym.make("Persuasion-Table-v0", table=str(path), featurizer="hashed")


def bound(policy, env, seed=0):
    policy.bind(env.action_space.n, env.observation_space.shape[0], seed)
    return policy


def test_baselines(tables):
    train, test = tables
    env = table_env(test)
    features, n = env.unwrapped.features, 200
    info = {"item_index": np.arange(n)}
    none = bound(NoSignal(), env)
    none.fit(env)
    assert (none.act(features, info) == 0).all()
    random_actions = bound(UniformRandom(), env).act(features, info)
    assert set(random_actions.tolist()) == {0, 1, 2, 3}
    best = bound(BestFixed(), env)
    best.fit(table_env(train))
    train_means = load_table(train).utilities.mean(axis=0)
    assert best.index == int(train_means.argmax())
    oracle = bound(Oracle(), env)
    oracle.fit(env)
    table = load_table(test)
    assert policy_value(table, oracle.act(features, info)) == pytest.approx(baseline_values(table)["oracle"])


@pytest.mark.parametrize("policy", [UCB1(), ThompsonSampling(), EpsilonGreedy(0.1)], ids=lambda p: p.name)
def test_bandits_find_the_best_arm(tmp_path, policy):
    items = GSM8KTask().load("test", max_items=100)
    rng = np.random.default_rng(0)
    scores = (rng.random((100, 4, 4)) < np.array([0.2, 0.3, 0.8, 0.4])[None, :, None]).astype(np.float32)
    env = table_env(synthetic_table(items, SIGNALS, scores).save(tmp_path / "arms.npz"))
    bound(policy, env)
    curve = train_online(policy, env, 3000, n_envs=16)
    assert policy.greedy(np.zeros((1, 1)), {})[0] == 2
    assert curve[-1][1] > curve[0][1]  # it learned


def test_linucb_learns_the_contextual_rule(tables):
    train, test = tables
    policy = bound(LinUCB(), table_env(train))
    train_online(policy, table_env(train), 8000, n_envs=16)
    env = table_env(test)
    table = load_table(test)
    value = policy_value(table, policy.greedy(env.unwrapped.features, {}))
    assert value > 0.85 > baseline_values(table)["best_fixed"]


def test_every_policy_trains_through_one_fit_verb(tmp_path):
    """bench calls fit(env, timesteps, seed=, progress=) alike for every policy; an online
    learner of one's own (it overrides update) learns through the default fit."""
    from persuasion_agents.gepa_search import GEPAPolicy
    from persuasion_agents.lm_advisor.policy import LMAdvisorPolicy
    from persuasion_agents.policy import Policy
    from persuasion_agents.prompted_advisor import PromptedAdvisor
    from persuasion_agents.registry import POLICIES, make_policy

    kinds = {type(make_policy(name)) for name in [*POLICIES, "fixed-1"]} | {GEPAPolicy, PromptedAdvisor,
                                                                              LMAdvisorPolicy}
    for kind in kinds:
        parameters = inspect.signature(kind.fit).parameters
        assert list(parameters)[:3] == ["self", "env", "timesteps"], kind
        assert all(parameters[p].kind is inspect.Parameter.KEYWORD_ONLY for p in ("seed", "progress")), kind

    class Counting(Policy):
        needs_training = True
        episodes = 0

        def act(self, observations, info):
            return np.zeros(len(observations), dtype=np.int64)

        def update(self, observations, actions, rewards, info):
            self.episodes += len(rewards)

    items = GSM8KTask().load("test", max_items=20)
    env = table_env(synthetic_table(items, SIGNALS, np.ones((20, 4, 1), np.float32)).save(tmp_path / "ones.npz"))
    policy = bound(Counting(), env)
    policy.fit(env, 512, seed=0)
    assert policy.episodes == 512 and [reward for _, reward in policy.curve] == [1.0, 1.0]


@pytest.mark.parametrize("algo", ["a2c", "dqn"])
def test_sb3_algorithms_train_save_and_load(tables, algo, tmp_path):
    train, test = tables
    policy = bound(SB3Policy(algo), table_env(train))
    policy.fit(table_env(train), 15_000, seed=0)
    env = table_env(test)
    actions = policy.greedy(env.unwrapped.features, {})
    table = load_table(test)
    assert policy_value(table, actions) > baseline_values(table)["best_fixed"] + 0.1
    policy.save(tmp_path / "model.zip")
    loaded = SB3Policy.load(tmp_path / "model.zip", algo)
    np.testing.assert_array_equal(loaded.greedy(env.unwrapped.features, {}), actions)


def test_statistics():
    values = np.random.default_rng(0).random(200)
    low, high = bootstrap_ci(values, seed=3)
    assert low < values.mean() < high and (low, high) == bootstrap_ci(values, seed=3)
    a, b = np.r_[np.ones(10), np.zeros(30)], np.zeros(40)
    assert paired_p_value(a, b) == pytest.approx(2 * 0.5**10)  # McNemar exact: 10 discordant pairs
    assert paired_p_value(a, a) == 1.0
    x = np.linspace(0, 1, 30)
    assert paired_p_value(x + 0.5 + 0.01 * np.sin(np.arange(30)), x) < 1e-6


def test_benchmark_on_tables_writes_results_and_resumes(tables, tmp_path):
    train, test = tables
    setting = Setting("Persuasion-Table-v0", f"table:{test}", train_receiver=f"table:{train}")
    out = tmp_path / "bench"
    rows = run_benchmark([setting], ["none", "random", "best-fixed", "oracle", "ucb", "fixed-2"], out, timesteps=2000,
                         featurizer="hashed", progress=False)
    by = {r["policy"]: r for r in rows}
    assert by["fixed-2"]["accuracy"] == pytest.approx(load_table(test).utilities[:, 2].mean())
    table = load_table(test)
    values = baseline_values(table)
    assert by["oracle"]["accuracy"] == pytest.approx(values["oracle"]) and by["oracle"]["regret"] == pytest.approx(0)
    assert by["none"]["accuracy"] == pytest.approx(values["no_signal"])
    assert by["best-fixed"]["lift_points"] == pytest.approx(100 * (by["best-fixed"]["accuracy"] - by["none"]["accuracy"]))
    assert by["oracle"]["ci_low"] <= by["oracle"]["accuracy"] <= by["oracle"]["ci_high"]
    assert by["best-fixed"]["p_vs_none"] < 0.01
    for name in ("results.json", "results.csv", "results.md", "accuracy.png", "learning_curves.png"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "results.json").read_text())
    assert saved["provenance"][f"Persuasion-Table-v0|table:{test}"]["receiver"] == {"kind": "synthetic"}
    assert "| oracle |" in (out / "results.md").read_text()
    # Resume: finished runs are read back, a missing one is run again.
    runs = sorted((out / "runs").glob("*.json"))
    before = {p.name: p.stat().st_mtime_ns for p in runs}
    runs[0].unlink()
    run_benchmark([setting], ["none", "random", "best-fixed", "oracle", "ucb", "fixed-2"], out, timesteps=2000,
                  featurizer="hashed", progress=False)
    after = {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")}
    assert set(after) == set(before)
    assert sum(before[k] != after[k] for k in before) == 1


def test_benchmark_on_a_live_receiver_never_pays_twice(make_server, gold_by_question, tmp_path):
    server = make_server(lambda m: f"The answer is {gold_by_question[question_of(m)] if 'step' in m[-1]['content'] else 0}.")
    setting = Setting("Persuasion-GSM8K-v0", f"openai:scripted@{server.url}", split="test", n_items=10,
                      train_items=10)
    policies = ["none", "best-fixed", "oracle"]
    rows = run_benchmark([setting], policies, tmp_path / "a", featurizer="hashed", progress=False)
    by = {r["policy"]: r for r in rows}
    assert by["oracle"]["accuracy"] == 1.0 and by["none"]["accuracy"] == 0.0
    assert by["oracle"]["tokens"] > 0 and "regret" not in by["oracle"]
    paid = server.count
    run_benchmark([setting], policies, tmp_path / "b", featurizer="hashed", progress=False)  # a new out dir
    assert server.count == paid, "every cell came from the cache"
