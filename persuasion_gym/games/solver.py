"""The Sender-optimal scheme by linear programming (scipy's HiGHS).

By the revelation principle it suffices to search direct schemes pi(a | x) that recommend
an action and are obedient: following a recommendation is a best response,
    sum_x mu0(x) pi(a|x) [u_R(x, a) - u_R(x, a')] >= 0   for all a, a'.
The LP maximises sum_x mu0(x) sum_a pi(a|x) u_S(x, a) subject to obedience and sum_a pi(a|x) = 1.
Weak obedience is the Sender-favourable tie-breaking of the standard model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from persuasion_gym.games.game import Game
from persuasion_gym.persuasion import bayes


@dataclass(frozen=True)
class Solution:
    value: float  # the Sender's optimal expected utility
    scheme: np.ndarray  # (states, actions): pi(recommend a | x)
    posteriors: np.ndarray  # (actions, states): the posterior each recommendation induces
    signal_probabilities: np.ndarray  # (actions,)


def solve(game: Game) -> Solution:
    m, n = game.n_states, game.n_actions
    prior, us, ur = game.prior, game.sender_utility, game.receiver_utility
    # Variables pi[x, a], flattened row-major: index x * n + a.
    cost = -(prior[:, None] * us).ravel()
    rows = []
    for a in range(n):
        for b in range(n):
            if a != b:
                row = np.zeros((m, n))
                row[:, a] = -prior * (ur[:, a] - ur[:, b])  # <= 0 form of obedience
                rows.append(row.ravel())
    equality = np.zeros((m, m * n))
    for x in range(m):
        equality[x, x * n:(x + 1) * n] = 1
    result = linprog(cost, A_ub=np.array(rows) if rows else None, b_ub=np.zeros(len(rows)) if rows else None,
                     A_eq=equality, b_eq=np.ones(m), bounds=(0, 1), method="highs")
    # The full-disclosure scheme is always feasible, so a failure (no solution) is a bug.
    if not result.success or result.x is None or result.fun is None:
        raise RuntimeError(f"the persuasion LP failed: {result.message}")
    scheme = np.clip(result.x.reshape(m, n), 0, 1)
    return Solution(float(-result.fun), scheme, bayes.posteriors(prior, scheme), prior @ scheme)


def full_disclosure_value(game: Game) -> float:
    """The Sender's utility when the Receiver learns the state."""
    return float(sum(p * game.sender_utility[x, game.best_response(np.eye(game.n_states)[x])]
                     for x, p in enumerate(game.prior)))


def no_disclosure_value(game: Game) -> float:
    """The Sender's utility when the Receiver acts on the prior alone."""
    return float(game.prior @ game.sender_utility[:, game.best_response(game.prior)])
