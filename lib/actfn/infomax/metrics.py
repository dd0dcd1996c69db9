"""The design's metrics of one trained layer, on a fixed held-out set (never on training minibatches:
see :func:`.loss.independent_correlation_floor`)."""
from __future__ import annotations

import numpy as np
import torch

from .loss import EPS, correlation_matrix, independent_correlation_floor, infomax_loss
from ..activations import activate, gain as activation_gain, get

def effective_rank(w: torch.Tensor) -> dict:
    """Two effective ranks of W from its singular values sigma.

    ``participation``: the design's (sum sigma)^2 / sum sigma^2, in [1, min(K, D)].
    ``entropy``: Roy & Vetterli (2007), exp(H(p)) with p_i = sigma_i / sum sigma, in [1, min(K, D)].
    """
    s = torch.linalg.svdvals(w.double())
    s = s[s > s.max() * 1e-12] if s.max() > 0 else s
    p = s / s.sum()
    return {"participation": float(s.sum() ** 2 / (s ** 2).sum()),
            "entropy": float(torch.exp(-(p * torch.log(p)).sum()))}


def weight_redundancy(w: torch.Tensor) -> float:
    """The design's R_W = ||G - I/K||_F^2 with G = W W^T / ||W||_F^2 (the K x K Gram of the rows of W
    scaled to trace 1).  0 when the rows are orthogonal and of equal length; 1 - 1/K when all rows are
    one vector.  (The design writes W^T W, which is D x D for W of shape K x D; the K x K Gram is meant.)

    Expanding the norm gives R_W = sum s^4 / (sum s^2)^2 - 1/K in the singular values s of W (tested):
    a function of the spectrum alone, so it says what the effective rank says, and nothing about the
    directions of the rows -- W -> U W with U orthogonal leaves it unchanged.  :func:`mean_sq_cosine`
    measures the directions."""
    w = w.double()
    g = w @ w.T / (w ** 2).sum()
    k = w.shape[0]
    return float(((g - torch.eye(k, dtype=g.dtype) / k) ** 2).sum())


def mean_abs_cosine(w: torch.Tensor) -> float:
    """Mean |cos| between distinct rows of W: redundancy of directions alone (row lengths ignored)."""
    u = w.double() / w.double().norm(dim=1, keepdim=True).clamp_min(1e-12)
    c = (u @ u.T).abs()
    k = w.shape[0]
    return float((c.sum() - c.diagonal().sum()) / (k * (k - 1)))


def mean_sq_cosine(w: torch.Tensor) -> float:
    """Mean cos^2 between distinct unit-normalised rows of W: redundancy of directions (0 for
    orthogonal rows, 1 for one direction; about 1/D for random rows in D dimensions)."""
    u = w.double() / w.double().norm(dim=1, keepdim=True).clamp_min(1e-12)
    c = (u @ u.T) ** 2
    k = w.shape[0]
    return float((c.sum() - c.diagonal().sum()) / (k * (k - 1)))


def gaussian_copula_tc(a: torch.Tensor, tol: float = 1e-6) -> dict:
    """Total correlation of the units by a Gaussian-copula estimate (not the training penalty).

    Each unit's values are replaced by normal scores Phi^-1(rank / (N + 1)); TC = -1/2 log det R of
    their correlation matrix R.  Tied values (a ReLU's zeros, a saturated unit's plateau) share their
    *average* rank: ranks in sample order (a stable sort) made units that are zero on different
    samples look dependent -- 16 independent half-zero units read 0.40 nats instead of ~0.  So for
    units with a point mass this measures the dependence of their normal scores, ties counted as one
    value each: exact for continuous units with a Gaussian copula, and zero, up to the sampling floor
    ``floor`` = K (K - 1) / (4 N), for independent units of any kind.  It sees monotone dependence,
    not every dependence (a unit and its square over a symmetric range read ~0).

    Constant units are left out (their entropy is not defined); so is a last unit that is an exact
    function of the others (softmax outputs sum to one, so one of them is determined and the TC of all
    K is infinite): the estimate is over the ``units`` that remain.
    """
    from scipy.stats import norm, rankdata

    x = a.double().numpy()
    keep = [j for j in range(x.shape[1]) if np.ptp(x[:, j]) > tol * max(1.0, np.abs(x[:, j]).max())]
    x = x[:, keep]
    n, k = x.shape
    if k < 2:
        return {"tc": 0.0, "units": k, "floor": 0.0}
    scores = norm.ppf(rankdata(x, method="average", axis=0) / (n + 1))
    r = np.corrcoef(scores, rowvar=False)
    sign, logdet = np.linalg.slogdet(r)
    return {"tc": float(-0.5 * logdet) if sign > 0 else float("inf"), "units": k, "floor": k * (k - 1) / (4 * n)}


def gating(z: torch.Tensor, b: torch.Tensor, off: float = 0.1, on: float = 0.9) -> dict:
    """How the biases gate the units, from the pre-activations z (N, K) on held-out data: the biases'
    mean and spread, the units open (z > 0) on fewer than ``off`` or more than ``on`` of the samples,
    and the overlap of the units' open sets -- the mean Jaccard index over pairs of units, beside the
    mean it would have if the units opened independently with the same rates (p_i p_j / (p_i + p_j -
    p_i p_j)).  An overlap below its independent value means the units take turns."""
    open_ = (z > 0).double()
    p = open_.mean(0)
    both = open_.T @ open_ / z.shape[0]                           # P(i and j open)
    either = p[:, None] + p[None, :] - both
    k = z.shape[1]
    pairs = ~torch.eye(k, dtype=torch.bool)
    jaccard = torch.where(either > 0, both / either.clamp_min(1e-300), torch.ones_like(both))[pairs]
    indep = p[:, None] * p[None, :]
    indep_either = p[:, None] + p[None, :] - indep
    expected = torch.where(indep_either > 0, indep / indep_either.clamp_min(1e-300), torch.ones_like(indep))[pairs]
    return {"bias_mean": float(b.double().mean()), "bias_std": float(b.double().std()) if k > 1 else 0.0,
            "units_mostly_off": int((p < off).sum()), "units_mostly_on": int((p > on).sum()),
            "open_rate": float(p.mean()), "open_overlap": float(jaccard.mean()) if k > 1 else float("nan"),
            "open_overlap_independent": float(expected.mean()) if k > 1 else float("nan")}


def model_metrics(w: torch.Tensor, b: torch.Tensor, activation: str, x: torch.Tensor, lam: float = 1.0,
                  knots: torch.Tensor | None = None, dead_rate: float = 0.01, gain_floor: float = 0.05,
                  magnitude_eps: float = 1e-3) -> dict:
    """Every metric of the design for one trained layer (w (K, D), b (K,)) on held-out inputs x (N, D).

    Dead units, two ways:
    * ``dead_units`` (this book's definition): a unit is dead when it *responds* to its input on
      fewer than ``dead_rate`` of the held-out samples, where responding means a local gain
      |d a_j / d z_j| of at least ``gain_floor`` x the activation's largest gain.  For ReLU this is
      the usual "never positive"; for tanh it is "always saturated"; for softmax "never near winning";
      identity never has dead units.
    * ``dead_units_magnitude`` (the design's literal rule): activation rate P(|a_j| > eps) < dead_rate.
      It counts a tanh unit stuck at 0.3 as alive, so it is shown beside the other, not instead.

    ``survivor_mean_abs_cosine``: :func:`mean_abs_cosine` over the rows of the units that are not dead
    (by ``dead_units``' rule); None when fewer than two survive.
    """
    learned = get(activation).learned
    with torch.no_grad():
        z = x @ w.T + b
        kn = knots.view(1, -1) if knots is not None else None
        a = activate(z.unsqueeze(0), activation, kn).squeeze(0) if learned else activate(z, activation)
    gain = activation_gain(z.unsqueeze(0), activation, kn).squeeze(0) if learned else activation_gain(z, activation)
    # the largest gain f can have: the registry's, or this unit's own where f is learned
    max_gain = get(activation).max_gain or float(gain.max().clamp_min(1e-12))
    responsive = (gain >= gain_floor * max_gain).double().mean(0)
    magnitude = (a.abs() > magnitude_eps).double().mean(0)
    var = a.double().var(0)
    corr = correlation_matrix(a.double())
    k, n = a.shape[1], a.shape[0]
    out = {
        "effective_rank": effective_rank(w)["participation"],
        "effective_rank_entropy": effective_rank(w)["entropy"],
        "weight_redundancy": weight_redundancy(w),
        "mean_abs_cosine": mean_abs_cosine(w),
        "mean_sq_cosine": mean_sq_cosine(w),
        "weight_norm": float(w.norm(dim=1).mean()),
        "dead_units": int((responsive < dead_rate).sum()),
        # the design's "low redundancy among survivors": the rows of the units that are not dead
        "survivor_mean_abs_cosine": (mean_abs_cosine(w[responsive >= dead_rate])
                                     if int((responsive >= dead_rate).sum()) >= 2 else None),
        "dead_units_magnitude": int((magnitude < dead_rate).sum()),
        "activation_rate": float(responsive.mean()),
        "variance_ratio": float(var.max() / var.min().clamp_min(1e-300)),
        "output_correlation": float(((corr - torch.eye(k, dtype=corr.dtype)) ** 2).sum()),
        "correlation_floor": independent_correlation_floor(k, n),
        "heldout_loss": float(infomax_loss(a.double(), lam)),
        "responsibility_concentration": float(a.double().mean(0).max()) if activation == "softmax" else None,
    }
    tc = gaussian_copula_tc(a)
    if activation == "softmax" and tc["units"] == k:
        tc = gaussian_copula_tc(a[:, :-1])  # sum to one: the last unit is determined by the others
    out["total_correlation"], out["tc_units"], out["tc_floor"] = tc["tc"], tc["units"], tc["floor"]
    # the pre-activations' dependence: decorrelated outputs may come from gating, not diverse directions
    tc_z = gaussian_copula_tc(z)
    out["total_correlation_z"], out["tc_z_floor"] = tc_z["tc"], tc_z["floor"]
    out["tc_z_per_unit"] = tc_z["tc"] / max(1, tc_z["units"])
    out.update(gating(z, b))
    # scale-free versions, for comparisons pooled over K
    out["effective_rank_fraction"] = out["effective_rank"] / k
    out["mean_sq_correlation"] = out["output_correlation"] / (k * (k - 1))   # floor: 1 / (N - 1)
    out["tc_per_unit"] = out["total_correlation"] / max(1, tc["units"])
    out["mean_log_variance"] = float(torch.log(var + EPS).mean())           # the entropy term, per unit
    return out


def convergence_epoch(curve: np.ndarray, fraction: float = 0.9) -> int:
    """Epochs until the loss has covered ``fraction`` of its way from the first to the last epoch.

    The design's "epochs to reach 90 % of final loss" is ambiguous for losses that are negative or
    change sign (the InfoMax loss is both); the fraction of the distance travelled is not.
    """
    curve = np.asarray(curve, dtype=float)
    start, end = curve[0], curve[-1]
    if not np.isfinite(start - end) or start == end:
        return 1
    target = start + fraction * (end - start)
    reached = (curve <= target) if end < start else (curve >= target)
    return int(np.argmax(reached)) + 1


def converged_epoch(curve: np.ndarray, tol: float = 0.01) -> int | None:
    """The first epoch e after which every epoch's change of the loss is at most ``tol`` of the
    distance the loss has travelled since the first epoch (|L_t - L_{t-1}| <= tol |L_1 - L_t| for all
    t > e); None when no such e comes before the last epoch -- the run had not converged by its cap.
    (Unlike :func:`convergence_epoch`, which is always reached by construction.)"""
    curve = np.asarray(curve, dtype=float)
    if len(curve) < 2 or not np.all(np.isfinite(curve)):
        return None
    ok = [abs(curve[t] - curve[t - 1]) <= tol * abs(curve[0] - curve[t]) for t in range(1, len(curve))]
    for e in range(1, len(curve)):      # (1-based epoch e; ok[e - 1] is the change into epoch e + 1)
        if all(ok[e - 1:]):
            return e
    return None
