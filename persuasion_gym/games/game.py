"""Finite Bayesian persuasion games (Kamenica and Gentzkow, 2011), with no language model.

A state x is drawn from the prior; the Sender (the Advisor) commits to a signaling scheme and
sends a signal; the Receiver forms its posterior and best-responds; both get utilities over
(state, action). The Receiver breaks ties in the Sender's favour, as in the standard model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from persuasion_gym.errors import ConfigError
from persuasion_gym.persuasion import bayes

TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Game:
    """``prior`` (m,), ``sender_utility`` and ``receiver_utility`` (m states x n actions)."""

    prior: np.ndarray
    sender_utility: np.ndarray
    receiver_utility: np.ndarray
    state_names: tuple[str, ...] = field(default=())
    action_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        prior = np.asarray(self.prior, dtype=np.float64)
        us, ur = np.asarray(self.sender_utility, np.float64), np.asarray(self.receiver_utility, np.float64)
        if prior.ndim != 1 or (prior < 0).any() or not np.isclose(prior.sum(), 1.0):
            raise ConfigError("prior must be a probability vector over the states")
        if us.shape != ur.shape or us.ndim != 2 or us.shape[0] != len(prior):
            raise ConfigError(
                f"utilities must both be (states, actions) = ({len(prior)}, n); got {us.shape}, {ur.shape}")
        object.__setattr__(self, "prior", prior)
        object.__setattr__(self, "sender_utility", us)
        object.__setattr__(self, "receiver_utility", ur)

    @property
    def n_states(self) -> int:
        return len(self.prior)

    @property
    def n_actions(self) -> int:
        return self.sender_utility.shape[1]

    def best_response(self, posterior: np.ndarray) -> int:
        """The Receiver's optimal action under ``posterior``; among ties, the Sender's favourite."""
        receiver = posterior @ self.receiver_utility
        candidates = np.flatnonzero(receiver >= receiver.max() - TIE_TOLERANCE)
        return int(candidates[np.argmax((posterior @ self.sender_utility)[candidates])])

    def scheme_value(self, scheme: np.ndarray) -> float:
        """The Sender's exact expected utility of a scheme (m states x K signals)."""
        scheme = np.asarray(scheme, dtype=np.float64)
        value = 0.0
        for g, posterior in enumerate(bayes.posteriors(self.prior, scheme)):
            weights = self.prior * scheme[:, g]  # P(x, g)
            if weights.sum() > 0:
                value += weights @ self.sender_utility[:, self.best_response(posterior)]
        return float(value)

    def as_dict(self) -> dict[str, Any]:
        return {"prior": self.prior.copy(), "sender_utility": self.sender_utility.copy(),
                "receiver_utility": self.receiver_utility.copy()}


def prosecutor(prior_guilty: float = 0.3) -> Game:
    """The prosecutor and the judge: the judge convicts when at least 0.5 sure of guilt and
    wants the right verdict; the prosecutor wants a conviction either way."""
    return Game(
        prior=np.array([prior_guilty, 1 - prior_guilty]),
        sender_utility=np.array([[0.0, 1.0], [0.0, 1.0]]),  # (guilty, innocent) x (acquit, convict)
        receiver_utility=np.array([[0.0, 1.0], [1.0, 0.0]]),
        state_names=("guilty", "innocent"), action_names=("acquit", "convict"),
    )


def random_game(n_states: int = 3, n_actions: int = 3, seed: int = 0) -> Game:
    """A game with a Dirichlet(1) prior and uniform [0, 1] utilities, from ``seed``."""
    if n_states < 2 or n_actions < 2:
        raise ConfigError(f"n_states={n_states}, n_actions={n_actions}: a game needs at least 2 of each")
    rng = np.random.default_rng(seed)
    return Game(rng.dirichlet(np.ones(n_states)), rng.random((n_states, n_actions)), rng.random((n_states, n_actions)))
