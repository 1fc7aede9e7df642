"""Exact values of signaling policies on a recorded table (no sampling).

u[q, x] is a cell's mean recorded score. Under ``direct`` the value of a policy pi is
E_q sum_g pi(g|q) u(q, g); under ``posterior`` it is E_q sum_g pi(g|q) sum_x mu_g(x) u(q, x),
with the prior and the committed scheme exact from the table and the policy.
"""

from __future__ import annotations

import numpy as np

from persuasion_gym.errors import ConfigError
from persuasion_gym.persuasion import bayes
from persuasion_gym.tables.table import ResponseTable


def policy_value(
    table: ResponseTable,
    policy: np.ndarray,
    protocol: str = "direct",
    prior: np.ndarray | None = None,
    scheme: np.ndarray | None = None,
) -> float:
    """The expected reward of ``policy`` (per-item actions, or an (items, K) matrix).

    For ``posterior``, ``prior`` defaults to the state frequencies of the table's items and
    ``scheme`` to the policy's exact committed scheme; K may differ from the number of signals.
    """
    u = table.utilities
    m = u.shape[1]
    if protocol == "direct":
        return float(np.mean(np.sum(bayes.as_policy(policy, m) * u, axis=1)))
    theta = bayes.states(u)
    prior = bayes.state_prior(theta, m) if prior is None else np.asarray(prior, dtype=np.float64)
    if protocol == "prior":
        return bayes.prior_value(u, prior)
    if protocol == "none":
        return no_signal_value(table)
    if protocol == "posterior":
        array = np.asarray(policy)
        k = int(array.max()) + 1 if array.ndim == 1 else array.shape[1]
        if scheme is not None:
            k = max(k, np.asarray(scheme).shape[1])
        pi = bayes.as_policy(array, k)
        scheme = bayes.scheme_of_policy(pi, theta, m) if scheme is None else np.asarray(scheme, dtype=np.float64)
        return bayes.posterior_value(u, pi, prior, scheme)
    raise ConfigError(f"unknown protocol {protocol!r}: use direct, posterior, prior or none")


def no_signal_value(table: ResponseTable) -> float:
    if "" not in table.signals:
        raise ConfigError("the table has no empty signal, so it holds no no-signal baseline")
    return float(table.utilities[:, table.signals.index("")].mean())


def baseline_values(table: ResponseTable) -> dict[str, float]:
    """The reference values: the per-item oracle (the upper bound), the best fixed signal
    (with its index), no signal (if recorded), uniformly random."""
    u = table.utilities
    per_signal = u.mean(axis=0)
    values = {
        "oracle": float(u.max(axis=1).mean()),
        "best_fixed": float(per_signal.max()),
        "best_fixed_signal": int(per_signal.argmax()),
        "uniform_random": float(per_signal.mean()),
    }
    if "" in table.signals:
        values["no_signal"] = no_signal_value(table)
    return values
