"""Bandit Advisors: epsilon-greedy, UCB1 and Thompson sampling over signals, and LinUCB, a
contextual bandit on the observation features. They learn online from every reward."""

from __future__ import annotations

import numpy as np

from persuasion_agents.policy import Policy


class _ArmStatistics(Policy):
    """Running count and mean reward per signal."""

    needs_training = True

    def bind(self, n_actions: int, observation_dim: int, seed: int = 0) -> None:
        super().bind(n_actions, observation_dim, seed)
        self.counts = np.zeros(n_actions)
        self.means = np.zeros(n_actions)

    def update(self, observations, actions, rewards, info):
        for action, reward in zip(np.asarray(actions), np.asarray(rewards, dtype=np.float64), strict=True):
            self.counts[action] += 1
            self.means[action] += (reward - self.means[action]) / self.counts[action]

    def greedy(self, observations, info):
        return np.full(len(observations), int(np.argmax(self.means)))


class EpsilonGreedy(_ArmStatistics):
    def __init__(self, epsilon: float = 0.1):
        self.epsilon, self.name = epsilon, "epsilon-greedy"

    def act(self, observations, info):
        n = len(observations)
        explore = self.rng.random(n) < self.epsilon
        return np.where(explore, self.rng.integers(self.n_actions, size=n), int(np.argmax(self.means)))


class UCB1(_ArmStatistics):
    """Auer et al. (2002): the arm maximising mean + sqrt(2 ln t / n); untried arms first."""

    name = "ucb"

    def act(self, observations, info):
        untried = np.flatnonzero(self.counts == 0)
        if len(untried):
            return untried[np.arange(len(observations)) % len(untried)]
        t = self.counts.sum()
        return np.full(len(observations), int(np.argmax(self.means + np.sqrt(2 * np.log(t) / self.counts))))


class ThompsonSampling(_ArmStatistics):
    """Beta(1, 1) priors on each signal's success rate (rewards in [0, 1] count fractionally)."""

    name = "thompson"

    def act(self, observations, info):
        successes = self.means * self.counts
        draws = self.rng.beta(1 + successes, 1 + self.counts - successes, size=(len(observations), self.n_actions))
        return draws.argmax(axis=1)


class LinUCB(Policy):
    """Li et al. (2010), disjoint LinUCB: a ridge regression of the reward on the features per
    signal, acting on the upper confidence bound theta_a.x + alpha sqrt(x' A_a^-1 x).

    Features wider than ``dim`` go through a seeded Gaussian random projection to ``dim``
    (Johnson-Lindenstrauss): each update costs O(dim^2), not O(d^2) on 1024-d hashed features
    (on the GSM8K rule of the tests, 256 dimensions keep 0.92 of the oracle, 64 keep 0.80).
    """

    name = "linucb"
    needs_training = True

    def __init__(self, alpha: float = 0.5, ridge: float = 1.0, dim: int = 256):
        self.alpha, self.ridge, self.dim = alpha, ridge, dim

    def bind(self, n_actions: int, observation_dim: int, seed: int = 0) -> None:
        super().bind(n_actions, observation_dim, seed)
        self.projection = None
        if observation_dim > self.dim:
            self.projection = self.rng.normal(size=(observation_dim, self.dim)) / np.sqrt(self.dim)
        d = self.dim if self.projection is not None else observation_dim
        self.a_inv = np.stack([np.eye(d) / self.ridge] * n_actions)
        self.b = np.zeros((n_actions, d))

    def _project(self, observations: np.ndarray) -> np.ndarray:
        x = np.asarray(observations, dtype=np.float64)
        return x @ self.projection if self.projection is not None else x

    def _scores(self, observations: np.ndarray, bonus: bool) -> np.ndarray:
        x = self._project(observations)
        theta = np.einsum("kij,kj->ki", self.a_inv, self.b)  # (K, d)
        scores = x @ theta.T  # (N, K)
        if bonus:
            widths = np.einsum("ni,kij,nj->nk", x, self.a_inv, x)
            scores = scores + self.alpha * np.sqrt(np.maximum(widths, 0))
        return scores

    def act(self, observations, info):
        return self._scores(observations, bonus=True).argmax(axis=1)

    def greedy(self, observations, info):
        return self._scores(observations, bonus=False).argmax(axis=1)

    def update(self, observations, actions, rewards, info):
        for x, a, r in zip(self._project(observations), np.asarray(actions), np.asarray(rewards), strict=True):
            inv = self.a_inv[a]
            v = inv @ x  # Sherman-Morrison: (A + x x')^-1 without a fresh inverse
            self.a_inv[a] = inv - np.outer(v, v) / (1.0 + x @ v)
            self.b[a] += r * x
