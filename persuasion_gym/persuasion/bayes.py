"""The Bayesian-persuasion math, in one place (see ``docs/protocols.md``).

Notation: m information items x (the states), K signals g, n task items q.
- ``utilities`` u: (n, m), u[q, x] = expected score of the Receiver answering q with x.
- state theta(q) = argmax_x u[q, x]; ties (frequent with 0/1 rewards) are broken at random,
  seeded (``TIE_SEED``): see ``states``.
- prior mu_0: (m,), the frequency of each state.
- scheme sigma: (m, K), sigma[x, g] = P(g | theta(q) = x), the Advisor's committed scheme.
- policy pi: (n, K), pi[q, g] = P(g | q).
"""

from __future__ import annotations

import numpy as np

TIE_SEED = 0  # the seed of the tie-break among items that serve a question equally well
TIE_BREAK = "seeded random: among the items with the best utility, the one with the largest key of a uniform draw"


def tie_keys(shape: tuple[int, int], seed: int | None = TIE_SEED) -> np.ndarray | None:
    """The tie-break keys of an (n, m) utility matrix: row r is the r-th row of one seeded
    uniform draw, so the same items in the same order get the same keys, whatever n.
    ``seed=None``: no keys (ties to the lowest index)."""
    if seed is None:
        return None
    return np.random.default_rng(seed).random(shape)  # filled row by row: a prefix of rows is the same


def argmax_with_ties(values: np.ndarray, keys: np.ndarray | None) -> np.ndarray:
    """The argmax of each row; among the entries equal to the row's maximum, the one with the
    largest key (``keys=None``: the lowest index). -inf entries can win only an all -inf row."""
    values = np.asarray(values, dtype=np.float64)
    if keys is None:
        return np.argmax(values, axis=1)
    best = values == values.max(axis=1, keepdims=True)
    return np.where(best, keys, -1.0).argmax(axis=1)


def tied(utilities: np.ndarray) -> np.ndarray:
    """Per row, whether more than one item attains its maximum (a state decided by the tie-break)."""
    u = np.asarray(utilities, dtype=np.float64)
    if u.size == 0:
        return np.zeros(len(u), dtype=bool)
    return np.asarray((u == u.max(axis=1, keepdims=True)).sum(axis=1) > 1)


def states(utilities: np.ndarray, seed: int | None = TIE_SEED) -> np.ndarray:
    """theta(q) for each row of ``utilities``: the item with the best utility. Ties (common
    where rewards are 0/1: a question no item helps ties every item) are broken at random,
    seeded: row r takes, among its best items, the one with the largest of the r-th row of
    uniform keys drawn from ``seed`` (``tie_keys``), so the same items in the same order get
    the same states, and an indifferent question's state is spread over its tied items
    instead of piling onto index 0 (the empty signal). ``seed=None``: ties to the lowest
    index. ``tied`` says which rows tied."""
    u = np.asarray(utilities, dtype=np.float64)
    return argmax_with_ties(u, tie_keys(u.shape, seed)).astype(np.int64)


def state_prior(state_of: np.ndarray, m: int) -> np.ndarray:
    """mu_0: how often each of the m states occurs among ``state_of``."""
    counts = np.bincount(np.asarray(state_of, dtype=np.int64), minlength=m).astype(np.float64)
    if counts.sum() == 0:
        return np.full(m, 1.0 / m)
    return counts / counts.sum()


def posteriors(prior: np.ndarray, scheme: np.ndarray) -> np.ndarray:
    """mu_g for every signal: (K, m), row g proportional to mu_0(x) * sigma(g | x).

    A signal the scheme never sends (probability 0 under the prior) leaves the prior: the
    Receiver has nothing to update on.
    """
    prior, scheme = np.asarray(prior, dtype=np.float64), np.asarray(scheme, dtype=np.float64)
    joint = prior[:, None] * scheme  # (m, K)
    totals = joint.sum(axis=0)  # P(g)
    result = np.where(totals > 0, joint / np.where(totals > 0, totals, 1.0), prior[:, None])
    return result.T


def posterior(prior: np.ndarray, scheme: np.ndarray, signal: int) -> np.ndarray:
    """mu_g(x) proportional to mu_0(x) * sigma(g | x), for one signal g."""
    return posteriors(prior, scheme)[signal]


def scheme_from_counts(counts: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """sigma from (state, signal) counts with a symmetric Dirichlet(alpha) prior per state;
    a state never seen (and alpha = 0) gets the uniform distribution."""
    counts = np.asarray(counts, dtype=np.float64) + alpha
    totals = counts.sum(axis=1, keepdims=True)
    k = counts.shape[1]
    return np.where(totals > 0, counts / np.where(totals > 0, totals, 1.0), 1.0 / k)


def scheme_of_policy(policy: np.ndarray, state_of: np.ndarray, m: int) -> np.ndarray:
    """The exact committed scheme of a policy: sigma(g | x) = mean of pi(g | q) over the q
    whose state is x (uniform for a state no item has)."""
    policy = np.asarray(policy, dtype=np.float64)
    sums = np.zeros((m, policy.shape[1]))
    np.add.at(sums, np.asarray(state_of), policy)
    return scheme_from_counts(sums, alpha=0.0)


def as_policy(actions_or_policy: np.ndarray, k: int) -> np.ndarray:
    """A policy matrix (n, K) from per-item actions (n,) or an existing matrix."""
    array = np.asarray(actions_or_policy)
    if array.ndim == 1:
        return np.eye(k)[array.astype(np.int64)]
    if array.ndim != 2 or array.shape[1] != k:
        raise ValueError(f"a policy is (items,) actions or an (items, {k}) matrix, got shape {array.shape}")
    if not np.allclose(array.sum(axis=1), 1.0) or (array < 0).any():
        raise ValueError("each row of a stochastic policy must be a probability distribution")
    return array.astype(np.float64)


def posterior_value(utilities: np.ndarray, policy: np.ndarray, prior: np.ndarray, scheme: np.ndarray) -> float:
    """Expected reward under ``posterior``: E_q sum_g pi(g|q) sum_x mu_g(x) u(q, x)."""
    mu = posteriors(prior, scheme)  # (K, m)
    return float(np.mean(np.sum(policy * (np.asarray(utilities) @ mu.T), axis=1)))


def prior_value(utilities: np.ndarray, prior: np.ndarray) -> float:
    """Expected reward under ``prior``: E_q sum_x mu_0(x) u(q, x)."""
    return float(np.mean(np.asarray(utilities) @ np.asarray(prior)))


def posteriors_from_log_likelihoods(prior: np.ndarray, log_likelihoods: np.ndarray) -> np.ndarray:
    """mu_g(x) ∝ mu_0(x) pi(g | q, x) per row, from log pi (N, m), in log space (log-sum-exp:
    the probabilities of whole texts underflow as raw products). A row where no item with
    prior mass can have sent the signal (every term -inf) leaves the prior. A NaN or +inf
    log-likelihood is no likelihood at all: a ``ValueError``, never the prior."""
    log_likelihoods = np.asarray(log_likelihoods, dtype=np.float64)
    bad = np.isnan(log_likelihoods) | (log_likelihoods == np.inf)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise ValueError(f"log-likelihoods hold NaN or +inf in {len(rows)} of {len(log_likelihoods)} rows "
                         f"(first: row {rows[0]}): a log-likelihood is a number <= 0 or -inf")
    with np.errstate(divide="ignore"):
        log_joint = np.log(np.asarray(prior, dtype=np.float64))[None, :] + log_likelihoods
    top = log_joint.max(axis=1, keepdims=True)
    finite = np.isfinite(top)
    weights = np.exp(log_joint - np.where(finite, top, 0.0))
    weights = np.where(finite, weights, np.asarray(prior, dtype=np.float64)[None, :])
    return weights / weights.sum(axis=1, keepdims=True)
