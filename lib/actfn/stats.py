"""Paired comparisons across seeds: tests, multiple-comparison correction, effect sizes.

The seed is the unit of replication: a comparison is about the per-seed differences d_i of two
conditions that share the seed's start and batches.  :func:`seed_test` tests mean(d) = 0 with the
exact sign-flip permutation test (scipy.stats.permutation_test, every one of the 2^n sign vectors),
gives the mean difference with a bootstrap interval over seeds and Cohen's d_z, and the smallest p
the test can reach with these differences: 2 / 2^m for m non-zero differences (0.25 for 3 seeds,
0.002 for 10).  :func:`holm_family` corrects a pre-specified family by Holm's step-down method and
calls a test *underpowered* when even its smallest p, multiplied by the family's size (Holm's first
step), cannot fall below alpha -- such a test can say nothing, and is never read as "no
difference".
"""
from __future__ import annotations

import numpy as np
from scipy import stats


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error), in the input order."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p)
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        adjusted[idx] = running
    return adjusted


def seed_test(a, b, confidence: float = 0.95, resamples: int = 9999, seed: int = 0, exact_limit: int = 16) -> dict:
    """Per-seed values ``a`` and ``b`` of two conditions, paired by seed (a - b): the sign-flip p --
    exact over all 2^n sign vectors up to ``exact_limit`` seeds, from 99,999 random ones above --
    its smallest attainable value, the mean difference with a BCa bootstrap interval over seeds
    (percentile where BCa is undefined, e.g. all differences equal), and d_z."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.ndim != 1 or len(d) < 1 or not np.all(np.isfinite(d)):
        raise ValueError(f"seed_test needs finite paired values, got differences {d!r}")
    n, nonzero = len(d), int(np.count_nonzero(d))
    if nonzero == 0 or n < 2:        # (one seed: its sign is all there is; 2/2^1 = 1)
        p = 1.0
    else:
        exact = n <= exact_limit
        p = float(stats.permutation_test((d,), np.mean, permutation_type="samples",
                                         n_resamples=np.inf if exact else 99_999, alternative="two-sided",
                                         random_state=np.random.default_rng(seed)).pvalue)
    low = high = float(d.mean())
    method = "none (one seed)" if n < 2 else "BCa bootstrap over seeds"
    if n >= 2 and np.ptp(d) > 0:
        rng = np.random.default_rng(seed)
        for kind in ("BCa", "percentile"):
            ci = stats.bootstrap((d,), np.mean, confidence_level=confidence, n_resamples=resamples, method=kind,
                                 random_state=rng).confidence_interval
            if np.isfinite(ci.low) and np.isfinite(ci.high):
                low, high, method = float(ci.low), float(ci.high), f"{kind} bootstrap over seeds"
                break
    sd = float(d.std(ddof=1)) if n > 1 else float("nan")
    return {"n": n, "mean_difference": float(d.mean()), "statistic": float(d.mean()), "ci_low": low, "ci_high": high, "ci_method": method,
            "effect_size": float(d.mean() / sd) if sd > 0 else (float("inf") * np.sign(d.mean()) if d.any() else 0.0),
            "p_value": p, "p_min": min(1.0, 2.0 / 2 ** nonzero) if nonzero else 1.0,
            "method": "exact sign-flip permutation over seeds" if n <= exact_limit
                      else "sign-flip permutation over seeds (99,999 random sign vectors)"}


def holm_family(tests: list[dict], alpha: float = 0.05) -> list[dict]:
    """Holm-adjust the ``p_value`` of every test in one pre-specified family (in place, and returned),
    and give each a ``verdict``: ``better`` / ``worse`` (significant, by its ``better_if`` direction),
    ``underpowered`` (family size x its smallest attainable p exceeds alpha: it could not have been
    significant), else ``no significant difference``."""
    adjusted = holm([t["p_value"] for t in tests]) if tests else []
    for t, p_adj in zip(tests, adjusted):
        t["p_adjusted"] = float(p_adj)
        t["family_size"] = len(tests)
        t["p_attainable"] = min(1.0, len(tests) * t["p_min"])
        good = (t["mean_difference"] > 0) == (t["better_if"] == "higher")
        if p_adj < alpha:
            t["verdict"] = "better" if good else "worse"
        elif t["p_attainable"] >= alpha:
            t["verdict"] = "underpowered"
        else:
            t["verdict"] = "no significant difference"
    return tests
