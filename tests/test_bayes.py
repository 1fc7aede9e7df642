import numpy as np
import pytest

from persuasion_gym.persuasion import bayes


def test_bayes_rule_on_a_hand_computed_case():
    prior = np.array([0.3, 0.7])  # guilty, innocent
    scheme = np.array([[1.0, 0.0], [3 / 7, 4 / 7]])  # the prosecutor's optimal scheme
    mu = bayes.posteriors(prior, scheme)
    # P(g=0) = 0.3 + 0.3 = 0.6; mu_0 = (0.3, 0.3) / 0.6
    np.testing.assert_allclose(mu[0], [0.5, 0.5])
    np.testing.assert_allclose(mu[1], [0.0, 1.0])
    np.testing.assert_allclose(bayes.posterior(prior, scheme, 0), [0.5, 0.5])
    # Bayes-plausibility: posteriors average back to the prior
    p_signal = prior @ scheme
    np.testing.assert_allclose(p_signal @ mu, prior)


def test_three_states_by_hand():
    prior = np.array([0.5, 0.25, 0.25])
    scheme = np.array([[0.8, 0.2], [0.5, 0.5], [0.0, 1.0]])
    # g=1: weights 0.1, 0.125, 0.25 -> total 0.475
    np.testing.assert_allclose(bayes.posterior(prior, scheme, 1), np.array([0.1, 0.125, 0.25]) / 0.475)


def test_fully_revealing_recovers_the_state_and_uninformative_leaves_the_prior():
    rng = np.random.default_rng(0)
    prior = rng.dirichlet(np.ones(5))
    np.testing.assert_allclose(bayes.posteriors(prior, np.eye(5)), np.eye(5))
    uninformative = np.tile(rng.dirichlet(np.ones(3)), (5, 1))
    for g in range(3):
        np.testing.assert_allclose(bayes.posterior(prior, uninformative, g), prior)


def test_unsent_signal_leaves_the_prior():
    prior = np.array([0.6, 0.4])
    scheme = np.array([[1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(bayes.posterior(prior, scheme, 1), prior)


def test_states_prior_and_schemes():
    u = np.array([[0.1, 0.9, 0.9], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.2, 0.8, 0.0]])
    theta = bayes.states(u, seed=None)
    assert theta.tolist() == [1, 0, 2, 1]  # seed=None: ties to the lowest index
    np.testing.assert_allclose(bayes.state_prior(theta, 3), [0.25, 0.5, 0.25])
    np.testing.assert_allclose(bayes.scheme_from_counts(np.array([[2, 0], [0, 0]]), alpha=1.0), [[0.75, 0.25], [0.5, 0.5]])
    np.testing.assert_allclose(bayes.scheme_from_counts(np.array([[0, 0]]), alpha=0.0), [[0.5, 0.5]])
    policy = bayes.as_policy(np.array([0, 1, 1, 1]), 2)
    np.testing.assert_allclose(bayes.scheme_of_policy(policy, theta, 3), [[0, 1], [0.5, 0.5], [0, 1]])
    with pytest.raises(ValueError, match="probability distribution"):
        bayes.as_policy(np.array([[0.5, 0.6]]), 2)


def test_values_of_the_special_cases():
    rng = np.random.default_rng(1)
    u = rng.random((50, 4))
    theta = bayes.states(u)
    prior = bayes.state_prior(theta, 4)
    # fully revealing Advisor (g = theta(q), K = m): the oracle value
    revealing = bayes.as_policy(theta, 4)
    scheme = bayes.scheme_of_policy(revealing, theta, 4)
    assert bayes.posterior_value(u, revealing, prior, scheme) == pytest.approx(u.max(axis=1).mean())
    # uninformative Advisor: the prior value
    constant = bayes.as_policy(np.zeros(50, dtype=int), 4)
    scheme = bayes.scheme_of_policy(constant, theta, 4)
    assert bayes.posterior_value(u, constant, prior, scheme) == pytest.approx(bayes.prior_value(u, prior))
