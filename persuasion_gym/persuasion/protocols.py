"""Protocols: what the Receiver sees when the Advisor sends a signal (``protocols.md``).

Every protocol maps a batch of (task item, action) pairs to an **information item** per
episode (an index into the env's information items, by default the signal library's texts;
-1 for no context) and, for the Bayesian protocols, the Receiver's belief over them.

- ``direct``: the signal text itself is the context (the default; K = m).
- ``none``: the question alone, whatever the action.
- ``prior``: an information item drawn from the prior mu_0, whatever the action.
- ``posterior``: the signal g moves the Receiver's belief to mu_g(x) ∝ mu_0(x) sigma(g | x)
  under the Advisor's committed scheme sigma; the context is drawn from mu_g.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from persuasion_gym.errors import ConfigError
from persuasion_gym.persuasion import bayes


def _draw(beliefs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of a (N, m) matrix of distributions (inverse CDF, vectorised)."""
    cdf = np.cumsum(beliefs, axis=1)
    u = rng.random(len(beliefs))[:, None] * cdf[:, -1:]
    return np.minimum((u >= cdf).sum(axis=1), beliefs.shape[1] - 1)


class Protocol(ABC):
    """Chooses the context of each episode. ``m`` is the number of information items."""

    name: str

    def __init__(self, m: int):
        self.m = m

    @property
    def n_actions(self) -> int:
        return self.m

    @abstractmethod
    def choose(
        self, actions: np.ndarray, items: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Information-item index per episode (-1: no context), and beliefs (N, m) or None."""

    def observe(self, items: np.ndarray, actions: np.ndarray, chosen: np.ndarray, rewards: np.ndarray) -> None:
        """Learn from the scored episodes (the online protocols do)."""


class DirectProtocol(Protocol):
    name = "direct"

    def choose(self, actions, items, rng):
        return np.asarray(actions, dtype=np.int64), None


class NoContextProtocol(Protocol):
    name = "none"

    def choose(self, actions, items, rng):
        return np.full(len(actions), -1, dtype=np.int64), None


class PriorProtocol(Protocol):
    name = "prior"

    def __init__(self, m: int, prior: np.ndarray):
        super().__init__(m)
        self.prior = np.asarray(prior, dtype=np.float64)

    def choose(self, actions, items, rng):
        beliefs = np.tile(self.prior, (len(actions), 1))
        return _draw(beliefs, rng), beliefs


class PosteriorProtocol(Protocol):
    """The paper's protocol, with an online or a given committed scheme.

    Args:
        m: information items; n_signals: K, the Advisor's signals (default m; K < m makes
            the Advisor pool states).
        prior: mu_0 over the information items.
        scheme: a fixed (m, K) committed scheme, or None to estimate it online as the
            Dirichlet(alpha)-smoothed counts of (state, signal) over past episodes.
        states: theta(q) per task item when known (from a table), else None: then theta(q) is
            estimated as the information item with the best running mean reward seen for q
            (ties to the lowest index); episodes whose state is still unknown do not update
            the scheme. The estimate only knows the cells the env has sampled, which the
            posterior itself steers, so early on it favours the items the scheme reveals.
    """

    name = "posterior"

    def __init__(self, m: int, prior: np.ndarray, n_signals: int | None = None, scheme: np.ndarray | None = None,
                 alpha: float = 1.0, states: np.ndarray | None = None, n_items: int = 0):
        super().__init__(m)
        self.k = n_signals or m
        self.prior = np.asarray(prior, dtype=np.float64)
        self.alpha = alpha
        self.fixed_scheme = None if scheme is None else np.asarray(scheme, dtype=np.float64)
        if self.fixed_scheme is not None and self.fixed_scheme.shape != (m, self.k):
            raise ConfigError(f"scheme has shape {self.fixed_scheme.shape}; expected (information items, signals) = ({m}, {self.k})")
        self.counts = np.zeros((m, self.k))
        self.states = None if states is None else np.asarray(states, dtype=np.int64)
        # Running sums of rewards per (task item, information item), for the online state estimate.
        self._sums = np.zeros((n_items, m)) if states is None else None
        self._seen = np.zeros((n_items, m)) if states is None else None

    @property
    def n_actions(self) -> int:
        return self.k

    @property
    def scheme(self) -> np.ndarray:
        """sigma(g | x) as the Receiver knows it now."""
        return self.fixed_scheme if self.fixed_scheme is not None else bayes.scheme_from_counts(self.counts, self.alpha)

    def choose(self, actions, items, rng):
        beliefs = bayes.posteriors(self.prior, self.scheme)[np.asarray(actions, dtype=np.int64)]
        return _draw(beliefs, rng), beliefs

    def state_of(self, items: np.ndarray) -> np.ndarray:
        """theta(q) per item, -1 where unknown."""
        if self.states is not None:
            return self.states[items]
        seen = self._seen[items]
        means = np.where(seen > 0, self._sums[items] / np.maximum(seen, 1), -np.inf)
        return np.where(seen.any(axis=1), means.argmax(axis=1), -1)

    def observe(self, items, actions, chosen, rewards):
        items, actions = np.asarray(items), np.asarray(actions)
        if self._sums is not None:
            np.add.at(self._sums, (items, chosen), rewards)
            np.add.at(self._seen, (items, chosen), 1)
        theta = self.state_of(items)
        known = theta >= 0
        np.add.at(self.counts, (theta[known], actions[known]), 1)


PROTOCOLS = ("direct", "posterior", "prior", "none")


def make_protocol(
    protocol: str | Protocol,
    m: int,
    prior: np.ndarray | None = None,
    n_signals: int | None = None,
    scheme: np.ndarray | None = None,
    alpha: float = 1.0,
    states: np.ndarray | None = None,
    n_items: int = 0,
) -> Protocol:
    """A protocol by name over ``m`` information items (``prior`` defaults to uniform)."""
    if isinstance(protocol, Protocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
    if protocol in ("direct", "none") and (n_signals not in (None, m) or scheme is not None):
        raise ConfigError(f"n_signals and scheme apply to the posterior protocol, not {protocol!r}")
    prior = np.full(m, 1.0 / m) if prior is None else np.asarray(prior, dtype=np.float64)
    if prior.shape != (m,) or (prior < 0).any() or not np.isclose(prior.sum(), 1.0):
        raise ConfigError(f"prior must be a distribution over the {m} information items")
    if protocol == "direct":
        return DirectProtocol(m)
    if protocol == "none":
        return NoContextProtocol(m)
    if protocol == "prior":
        return PriorProtocol(m, prior)
    return PosteriorProtocol(m, prior, n_signals, scheme, alpha, states, n_items)
