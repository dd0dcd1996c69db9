"""Paired comparisons across seeds: tests, multiple-comparison correction, effect sizes.

Seeds pair the runs (every objective of a seed starts from the same Xavier W and sees the same
minibatches), so a comparison is about the per-pair differences d_i.  With n pairs, an exact
sign-flip (or Wilcoxon) test cannot give a two-sided p below 2 / 2^n — 0.25 for 3 seeds, 0.002
for 10 — which after correcting for dozens of comparisons can never reach significance.  The
primary test is therefore the paired t-test (its p is not floored by n), corrected by Holm's
step-down method; the exact sign-flip p and its floor are reported beside it, and the effect size
is the mean difference with its 95 % t-interval and Cohen's d_z = mean(d) / sd(d).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import stats


def sign_flip_p(d: np.ndarray, exact_limit: int = 16, draws: int = 20000, seed: int = 0) -> float:
    """Two-sided sign-flip permutation p of mean(d) = 0 (exact up to 2^16 flips, Monte Carlo above)."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    observed = abs(d.mean())
    if n <= exact_limit:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(draws, n))
    means = np.abs(signs @ d / n)
    return float(np.mean(means >= observed - 1e-12 * max(1.0, observed)))


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


def paired_comparison(a, b) -> dict:
    """Compare paired samples ``a`` and ``b`` (a - b): t-test, sign-flip p and its floor, effect sizes."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = a - b
    n = len(d)
    mean, sd = float(d.mean()), float(d.std(ddof=1)) if n > 1 else float("nan")
    if n > 1 and sd > 0:
        t = mean / (sd / math.sqrt(n))
        p = float(2 * stats.t.sf(abs(t), n - 1))
        half = float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n))
    else:  # identical differences: no spread to test against
        t, p, half = (float("inf") if mean else 0.0), (0.0 if mean else 1.0), 0.0
    return {"n": n, "mean_difference": mean, "ci_low": mean - half, "ci_high": mean + half,
            "effect_size": mean / sd if sd and sd > 0 else (float("inf") if mean else 0.0),
            "statistic": float(t), "p_value": p, "sign_flip_p": sign_flip_p(d), "sign_flip_floor": 2.0 / 2 ** n}
