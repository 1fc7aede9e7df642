"""Honest comparisons: bootstrap confidence intervals and paired tests over task items."""

from __future__ import annotations

import numpy as np
from scipy import stats


def bootstrap_ci(values: np.ndarray, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, resampling items (seeded)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return float(values.mean()), float(values.mean())
    means = values[np.random.default_rng(seed).integers(len(values), size=(n_boot, len(values)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def paired_p_value(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value that two policies score the same items equally well: McNemar's exact
    test when both are 0/1 per item, else the paired t-test."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if np.array_equal(a, b):
        return 1.0
    binary = np.isin(a, (0.0, 1.0)).all() and np.isin(b, (0.0, 1.0)).all()
    if binary:
        a_only, b_only = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
        return float(stats.binomtest(a_only, a_only + b_only, 0.5).pvalue)
    p = stats.ttest_rel(a, b).pvalue
    return 1.0 if np.isnan(p) else float(p)
