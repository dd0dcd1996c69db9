"""Fitting shape families to a learned activation (seed 000, section 4.3).

Because the correlation objective is invariant to f -> a f + c, every family carries an amplitude
``a`` and an offset ``c``:

    swish:   a (x - x0) sigmoid(beta (x - x0)) + c
    sigmoid: a sigmoid(beta (x - x0)) + c
    relu:    a max(0, x - x0) + c

The fit is least squares on the knot values (the points that define f).  The uncertainty of beta
is the asymptotic standard error of that fit (residual variance times the inverse Gauss-Newton
matrix): it says how tightly the *shape* pins beta, not how much beta varies between runs.
"""
from __future__ import annotations

import itertools
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import expit


def swish(x, a, beta, x0, c):
    z = x - x0
    return a * z * expit(beta * z) + c


def sigmoid_shape(x, a, beta, x0, c):
    return a * expit(beta * (x - x0)) + c


def relu_shape(x, a, x0, c):
    return a * np.maximum(x - x0, 0.0) + c


BETA_BOUNDS = (1e-3, 1e3)
AT_BOUND = 0.01      # a beta within 1 % (in log scale, of the bound) of a bound is at the bound
RESOLVABLE = 5.0     # beta x point spacing above this: sigmoid(beta h) > 0.993, a kink at the points' resolution


@dataclass
class ShapeFit:
    family: str
    params: dict
    r2: float
    beta_se: float = float("nan")
    # False when the data do not pin beta (see beta_identified) or x0 sits at its bound: the values
    # and standard errors then mean nothing, and summaries leave the fit out
    identified: bool = True
    x0_se: float = float("nan")

    def as_dict(self):
        return asdict(self)


def r_squared(y, y_hat, weights=None) -> float:
    w = np.ones_like(y, dtype=float) if weights is None else np.asarray(weights, float)
    ss_res = float(np.sum(w * (y - y_hat) ** 2))
    ss_tot = float(np.sum(w * (y - np.average(y, weights=w)) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def _best_fit(func, x, y, starts, bounds, weights=None):
    # weights w: least squares of sum w (y - f)^2, i.e. curve_fit's sigma = 1 / sqrt(w)
    sigma = None if weights is None else 1.0 / np.sqrt(np.asarray(weights, float))
    best = None
    for p0 in starts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                popt, pcov = curve_fit(func, x, y, p0=p0, bounds=bounds, maxfev=20000, sigma=sigma)
        except (RuntimeError, ValueError):
            continue
        r2 = r_squared(y, func(x, *popt), weights)
        if best is None or r2 > best[2]:
            best = (popt, pcov, r2)
    if best is None:
        raise RuntimeError(f"no start of {func.__name__} converged")
    return best


def _starts(x, y):
    span = float(np.ptp(y)) or 1.0
    xspan = float(np.ptp(x)) or 1.0
    amp = span / xspan
    return amp, span, float(np.min(y))


def _fit_gated(func, family: str, x, y, amplitude: str, weights=None) -> ShapeFit:
    """Fit a four-parameter family (a, beta, x0, c) from a grid of starts; beta in [1e-3, 1e3]."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    slope, span, ymin = _starts(x, y)
    amp = slope if amplitude == "slope" else span
    lim = 3 * float(np.max(np.abs(x)))
    starts = [(s * amp, b, x0, ymin) for s, b, x0 in itertools.product((1, -1), (0.5, 1.5, 3.0, 8.0), (-1.0, 0.0, 1.0))]
    bounds = ([-np.inf, BETA_BOUNDS[0], -lim, -np.inf], [np.inf, BETA_BOUNDS[1], lim, np.inf])
    popt, pcov, r2 = _best_fit(func, x, y, starts, bounds, weights)
    se, x0_se = (float(np.sqrt(pcov[1, 1])), float(np.sqrt(pcov[2, 2]))) if np.all(np.isfinite(pcov)) else (float("nan"),) * 2
    spacing = float(np.min(np.diff(np.unique(x)))) if len(np.unique(x)) > 1 else None
    # (an x0 at its bound: the bend lies beyond the points, which then cannot place it)
    x0_inside = abs(float(popt[2])) < (1 - AT_BOUND) * lim
    return ShapeFit(family, dict(zip(("a", "beta", "x0", "c"), map(float, popt))), r2, se,
                    beta_identified(float(popt[1]), se, spacing) and x0_inside, x0_se)


def beta_identified(beta: float, se: float, spacing: float | None = None) -> bool:
    """Whether a fitted beta is pinned by the data.  Not when it sits at the lower bound of its range
    (f is then a line, and beta trades off against the amplitude), nor when beta times the spacing of
    the points exceeds :data:`RESOLVABLE` (the sigmoid then switches fully between two neighbouring
    points, so the points cannot tell beta from infinity: a kink -- and the fit's standard error,
    near 0 for such a perfect fit, means nothing), nor without a finite, positive standard error."""
    lo, hi = np.log(BETA_BOUNDS)
    margin = AT_BOUND * (hi - lo)
    resolvable = spacing is None or beta * spacing <= RESOLVABLE
    return bool(np.isfinite(beta) and beta > 0 and lo + margin < np.log(beta) < hi - margin and resolvable
                and np.isfinite(se) and se > 0)


def precision_summary(betas, ses, identified=None) -> dict:
    """A summary of several fitted betas that weights each by its precision (1 / s.e.²), leaving out
    the unidentified ones: the weighted median (robust to one wild fit) and the inverse-variance
    weighted mean with its standard error (which assumes one common beta); ``used`` and ``left_out``
    count the fits.  NaN values when no fit is usable."""
    b, se = np.asarray(betas, float), np.asarray(ses, float)
    ok = np.isfinite(b) & np.isfinite(se) & (se > 0)
    if identified is not None:
        ok &= np.asarray(identified, bool)
    out = {"used": int(ok.sum()), "left_out": int((~ok).sum()), "weighted_median": float("nan"),
           "weighted_mean": float("nan"), "weighted_mean_se": float("nan")}
    if ok.any():
        w = 1.0 / se[ok] ** 2
        out["weighted_median"] = float(np.quantile(b[ok], 0.5, weights=w, method="inverted_cdf"))
        out["weighted_mean"] = float(np.sum(w * b[ok]) / np.sum(w))
        out["weighted_mean_se"] = float(1.0 / np.sqrt(np.sum(w)))
    return out


def fit_swish(x, y, weights=None) -> ShapeFit:
    """Fit a (x - x0) sigmoid(beta (x - x0)) + c; x0 within three times the range of x.  ``weights``
    (one per point, e.g. the input density there) weight the squared errors and R²."""
    return _fit_gated(swish, "swish", x, y, amplitude="slope", weights=weights)


def fit_sigmoid(x, y) -> ShapeFit:
    """Fit a sigmoid(beta (x - x0)) + c."""
    return _fit_gated(sigmoid_shape, "sigmoid", x, y, amplitude="span")


def fit_relu(x, y) -> ShapeFit:
    x, y = np.asarray(x, float), np.asarray(y, float)
    amp, _, ymin = _starts(x, y)
    starts = [(s * amp, x0, ymin) for s, x0 in itertools.product((1, -1), np.linspace(x.min(), x.max(), 7))]
    popt, _, r2 = _best_fit(relu_shape, x, y, starts, (-np.inf, np.inf))
    return ShapeFit("relu", dict(zip(("a", "x0", "c"), map(float, popt))), r2)


def fit_shapes(x, y) -> dict[str, ShapeFit]:
    """All three families, keyed by name."""
    return {"swish": fit_swish(x, y), "sigmoid": fit_sigmoid(x, y), "relu": fit_relu(x, y)}
