"""Classic Bayesian persuasion: the LP optimum on known cases, concavification, invariants,
and the environments."""

import gymnasium as gym
import numpy as np
import pytest

from persuasion_gym.games import full_disclosure_value, no_disclosure_value, prosecutor, random_game, solve


def test_prosecutor_judge():
    game = prosecutor()
    solution = solve(game)
    assert solution.value == pytest.approx(0.6)
    assert full_disclosure_value(game) == pytest.approx(0.3)
    assert no_disclosure_value(game) == pytest.approx(0.0)
    # guilty: always "convict"; innocent: "convict" with probability 3/7
    np.testing.assert_allclose(solution.scheme, [[0, 1], [4 / 7, 3 / 7]], atol=1e-7)
    np.testing.assert_allclose(solution.posteriors[1], [0.5, 0.5], atol=1e-7)
    assert game.scheme_value(solution.scheme) == pytest.approx(0.6)


def concavified_value(game, prior_x0: float) -> float:
    """The concave envelope of V(mu) at the prior, for binary states: the maximum over pairs
    of posteriors straddling the prior of the chord between them. The grid holds the
    Receiver's indifference points, where V jumps (with Sender-favourable ties)."""
    ur = game.receiver_utility
    points = set(np.linspace(0, 1, 2001).tolist())
    for a in range(game.n_actions):
        for b in range(a + 1, game.n_actions):
            # mu*ur[0,a] + (1-mu)*ur[1,a] = mu*ur[0,b] + (1-mu)*ur[1,b]
            denominator = (ur[0, a] - ur[1, a]) - (ur[0, b] - ur[1, b])
            if abs(denominator) > 1e-12:
                mu = (ur[1, b] - ur[1, a]) / denominator
                if 0 <= mu <= 1:
                    points.add(float(mu))
    mus = np.array(sorted(points))
    values = np.array([game.sender_utility[:, game.best_response(np.array([m, 1 - m]))] @ [m, 1 - m] for m in mus])
    best = values[np.isclose(mus, prior_x0)].max(initial=-np.inf)
    left, right = mus <= prior_x0, mus >= prior_x0
    for mu1, v1 in zip(mus[left], values[left]):
        for mu2, v2 in zip(mus[right], values[right]):
            if mu2 > mu1:
                best = max(best, v1 + (v2 - v1) * (prior_x0 - mu1) / (mu2 - mu1))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_concavification_on_random_binary_state_games(seed):
    game = random_game(2, 3, seed)
    assert solve(game).value == pytest.approx(concavified_value(game, game.prior[0]), abs=1e-6)


@pytest.mark.parametrize("seed", range(20))
def test_invariants_on_random_games(seed):
    game = random_game(2 + seed % 4, 2 + seed % 3, seed)
    solution = solve(game)
    assert solution.value >= full_disclosure_value(game) - 1e-9
    assert solution.value >= no_disclosure_value(game) - 1e-9
    # Bayes-plausible: the posteriors average back to the prior
    np.testing.assert_allclose(solution.signal_probabilities @ solution.posteriors, game.prior, atol=1e-8)
    # obedient: each recommendation is a best response to the posterior it induces
    for a, (p, posterior) in enumerate(zip(solution.signal_probabilities, solution.posteriors)):
        if p > 1e-9:
            receiver = posterior @ game.receiver_utility
            assert receiver[a] >= receiver.max() - 1e-7
    assert game.scheme_value(solution.scheme) == pytest.approx(solution.value, abs=1e-6)


def test_prosecutor_env_near_optimal_scheme_earns_near_the_optimum():
    env = gym.make("Persuasion-Prosecutor-v0")
    # The optimum leaves the judge exactly indifferent after "convict"; a Receiver that only
    # estimates the scheme needs a margin, so the Advisor convicts the innocent a little less.
    margin = 0.05
    scheme = np.array([[0, 1], [4 / 7 + margin, 3 / 7 - margin]])  # rows: guilty, innocent
    expected = 0.3 + 0.7 * (3 / 7 - margin)
    obs, info = env.reset(seed=0)
    rng = np.random.default_rng(2024)  # not the env's seed: equal streams would correlate state and signal
    rewards = []
    for _ in range(6000):
        state = info["state"]
        signal = rng.choice(2, p=scheme[state])
        obs, reward, terminated, _, step_info = env.step(signal)
        rewards.append(reward)
        obs, info = env.reset()
    assert np.mean(rewards[2000:]) == pytest.approx(expected, abs=0.03)
    assert step_info["optimal_value"] == pytest.approx(0.6)
    assert set(step_info["game"]) == {"prior", "sender_utility", "receiver_utility"}
    assert step_info["game"]["sender_utility"].shape == (2, 2)
    assert step_info["regret"] == pytest.approx(0.6 * 6000 - sum(rewards))


def test_full_disclosure_in_the_env_gets_its_value():
    env = gym.make("Persuasion-Prosecutor-v0")
    _, info = env.reset(seed=1)
    rewards = []
    for _ in range(3000):
        rewards.append(env.step(info["state"])[1])  # signal = state: the judge learns the truth
        _, info = env.reset()
    assert np.mean(rewards[500:]) == pytest.approx(0.3, abs=0.04)


def test_scheme_mode_and_repeated_game():
    env = gym.make("Persuasion-Classic-v0", n_states=3, n_actions=3, game_seed=4, action_mode="scheme")
    obs, _ = env.reset(seed=0)
    game = env.unwrapped.game
    np.testing.assert_allclose(obs, game.prior, atol=1e-6)
    _, reward, terminated, _, info = env.step(env.unwrapped.solution.scheme.astype(np.float32))
    assert terminated and reward == pytest.approx(env.unwrapped.optimal_value, abs=1e-5)
    assert info["regret"] == pytest.approx(0, abs=1e-5)
    repeated = gym.make("Persuasion-Classic-v0", horizon=50)
    repeated.reset(seed=0)
    steps = 0
    while True:
        _, _, terminated, _, info = repeated.step(0)
        steps += 1
        if terminated:
            break
    assert steps == 50 and info["rounds"] == 50
    repeated.reset()
    assert repeated.unwrapped.counts.sum() == 0  # a new repeated game starts afresh


def test_classic_env_checks():
    from gymnasium.utils.env_checker import check_env

    check_env(gym.make("Persuasion-Classic-v0", horizon=5).unwrapped, skip_render_check=True)
    with pytest.raises(ValueError, match="at least 2"):
        gym.make("Persuasion-Classic-v0", n_states=1)


def test_classic_bench_writes_regret_curves(tmp_path):
    from persuasion_agents.classic_bench import regret_curve, run_classic_benchmark

    rows = run_classic_benchmark(["Persuasion-Classic-v0"], ["random", "linucb"], 400, tmp_path)
    assert {r["policy"] for r in rows} == {"random", "linucb"}
    assert (tmp_path / "regret.png").is_file() and (tmp_path / "classic_results.md").is_file()
    curve = regret_curve("Persuasion-Prosecutor-v0", "random", 300)
    assert curve.shape == (300,)
    assert curve[-1] > 0  # random signalling never matches the LP optimum
