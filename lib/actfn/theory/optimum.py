"""What the optimum of the correlation objective looks like (the theory chapter, "the optimal f").

Stationarity in function space.  Write m_k = E[f|k], m = E f, s^2 = Var f and J = -L = sum_k rho_k|rho_k|.
With dm_k/df(x) = p(x|k), dm/df(x) = p(x), ds^2/df(x) = 2 (f(x) - m) p(x), setting dJ/df(x) = 0 gives

    f(x) - m  =  (c s / J) * sum_k |rho_k| (p(x|k)/p(x) - 1),      c = sqrt(p/(1-p)) (equal priors)

i.e. an optimal f is an affine image of  sum_k |rho_k| P(k|x) / p_k : a *non-negative mixture of
the class posteriors*, weighted by the magnitudes of the correlations it produces.  This module
computes that optimum numerically (weights w_k over the posteriors, Gauss-Hermite quadrature for
the class expectations) so that the chapters can compare it with the learned piecewise-linear f.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .correlation import correlations_from_class_moments, signed_objective


def class_posteriors(x: torch.Tensor, means: torch.Tensor, sigma: float) -> torch.Tensor:
    """P(k | x) for the equal-prior mixture, shape ``x.shape + (K,)``."""
    logits = -(x[..., None] - means) ** 2 / (2 * sigma ** 2)
    return torch.softmax(logits, dim=-1)


def gaussian_smoothing(f, x: np.ndarray, sigma: float, nodes: int = 80) -> np.ndarray:
    """(phi_sigma * f)(x) = E[f(x + sigma Z)]: for a Gaussian class, E[f | k] is this at mu_k."""
    t, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    return (f(x[:, None] + sigma * t[None, :]) * w).sum(-1)


@dataclass
class PosteriorOptimum:
    weights: np.ndarray       # w_k of f(x) = sum_k w_k P(k|x) (up to an affine map)
    correlations: np.ndarray  # rho_k of that f
    objective: float          # L of that f
    means: np.ndarray
    sigma: float

    def __call__(self, x) -> np.ndarray:
        xt = torch.as_tensor(np.asarray(x, dtype=float))
        post = class_posteriors(xt, torch.as_tensor(self.means), self.sigma)
        return (post @ torch.as_tensor(self.weights)).numpy()

    def derivative(self, x) -> np.ndarray:
        """f'(x) in closed form: dP_k/dx = P_k (a_k - sum_j P_j a_j) with a_k = mu_k / sigma^2.

        (Finite differences lose the far-left tail, where f is flat to many digits.)
        """
        post = class_posteriors(torch.as_tensor(np.asarray(x, dtype=float)), torch.as_tensor(self.means), self.sigma).numpy()
        a = self.means / self.sigma ** 2
        return (post * (a - (post * a).sum(-1, keepdims=True))) @ self.weights


def posterior_mixture_objective(w: torch.Tensor, means: torch.Tensor, sigma: float, nodes: int = 64):
    """Exact (quadrature) rho_k and L of f(x) = sum_j w_j P(j|x) on the mixture."""
    t, q = np.polynomial.hermite_e.hermegauss(nodes)
    t = torch.as_tensor(t, dtype=w.dtype)
    q = torch.as_tensor(q / q.sum(), dtype=w.dtype)
    x = means[:, None] + sigma * t[None, :]          # (K, nodes): quadrature points of each class
    f = class_posteriors(x, means, sigma) @ w         # (K, nodes)
    class_mean = (f * q).sum(-1)
    class_second = (f * f * q).sum(-1)
    k = means.shape[0]
    rho = correlations_from_class_moments(class_mean, class_second, torch.full((k,), 1.0 / k, dtype=w.dtype))
    return rho, signed_objective(rho)


def posterior_optimum(means, sigma: float, iterations: int = 400, seed: int = 0) -> PosteriorOptimum:
    """Minimise L over the weights of a posterior mixture (the family every optimum lies in).

    Starts from increasing weights (f increasing, like the ReLU-initialised PWL trainer) and runs
    L-BFGS in float64; the weights are centred and normalised at the end (the gauge).
    """
    means = torch.as_tensor(means, dtype=torch.float64)
    k = means.shape[0]
    torch.manual_seed(seed)
    w = torch.linspace(-1, 1, k, dtype=torch.float64).clamp_min(0).requires_grad_()
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=iterations, tolerance_grad=1e-12, tolerance_change=1e-15,
                            history_size=50, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        _, loss = posterior_mixture_objective(w, means, sigma)
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        w -= w.min()
        w /= w.norm().clamp_min(1e-12)
        rho, loss = posterior_mixture_objective(w, means, sigma)
    return PosteriorOptimum(w.detach().numpy(), rho.numpy(), float(loss), means.numpy(), float(sigma))


def stationarity_residual(opt: PosteriorOptimum) -> float:
    """How far the weights are from the stationarity condition w_k = A |rho_k| + B (0 at an optimum).

    Returns 1 - R^2 of the least-squares line of w on |rho|.
    """
    r = np.abs(opt.correlations)
    A = np.vstack([r, np.ones_like(r)]).T
    coef, *_ = np.linalg.lstsq(A, opt.weights, rcond=None)
    resid = opt.weights - A @ coef
    tot = ((opt.weights - opt.weights.mean()) ** 2).sum()
    return float((resid ** 2).sum() / tot) if tot > 0 else float("nan")


def left_tail_rate(means, sigma: float) -> float:
    """Predicted decay rate of f'(x) as x -> -inf: lambda = (mu_2 - mu_1) / sigma^2.

    Far left, P(2|x)/P(1|x) = exp(lambda x + const) dominates every other posterior ratio, so
    f(x) - f(-inf) ~ (w_2 - w_1) exp(lambda x): the slope decays exponentially with rate lambda.
    """
    m = np.sort(np.asarray(means, dtype=float))
    return float((m[1] - m[0]) / sigma ** 2)


def stationarity_by_iterations(means, sigma: float, iterations=(50, 200, 800)) -> list[dict]:
    """The optimum found with more and more L-BFGS iterations: its objective and its stationarity
    residual.  A residual that falls as the optimiser runs longer, while L has stopped moving, is the
    optimiser stopping short on a flat objective, not a failure of the stationarity condition."""
    rows = []
    for n in iterations:
        opt = posterior_optimum(means, sigma, iterations=n)
        rows.append({"iterations": n, "objective": opt.objective, "residual": stationarity_residual(opt)})
    return rows


def optimum_profile(opt: PosteriorOptimum) -> dict:
    """What the optimum looks like against the one-class-detector bound: how many classes it
    correlates positively with, and what share of the ceiling -L <= (K-2)/(K-1) it reaches."""
    k = len(opt.means)
    return {"classes": k, "positive": int((opt.correlations > 0).sum()),
            "ceiling_fraction": float(-opt.objective / ((k - 2) / (k - 1))) if k > 2 else float("nan")}


def dip_location(opt: PosteriorOptimum, grid: np.ndarray) -> dict:
    """Where the optimum dips: the minimum of f on ``grid``, the class with the smallest |rho_k| (the
    boundary between negatively and positively correlated classes) and the class with the smallest
    weight, and the distance from the minimum of f to the boundary class in class spacings."""
    m = np.sort(opt.means)
    spacing = float(m[1] - m[0]) if len(m) > 1 else float("nan")
    f_min = float(grid[np.argmin(opt(grid))])
    boundary = float(opt.means[np.argmin(np.abs(opt.correlations))])
    return {"f_min_at": f_min, "boundary_class_mean": boundary,
            "smallest_weight_mean": float(opt.means[np.argmin(opt.weights)]), "spacing": spacing,
            "spacings_from_boundary": (f_min - boundary) / spacing}


def best_swish(means, sigma: float, knots) -> dict:
    """The Swish-shaped f = (x - x0) sigmoid(beta (x - x0)) on ``knots`` (piecewise linear between
    them) with the best objective L, over beta and x0 (the amplitude and offset are the gauge): how
    well the outline's "Swish is optimal" holds, against the best piecewise-linear f on the same knots."""
    from scipy.optimize import minimize

    from .correlation import MixtureCorrelation
    from .fitting import swish

    kn = torch.as_tensor(np.asarray(knots, dtype=float))
    mix = MixtureCorrelation(kn, torch.as_tensor(np.asarray(means, dtype=float)), float(sigma))
    x = kn.numpy()

    def loss(p):
        return float(mix.objective(torch.as_tensor(swish(x, 1.0, float(np.exp(p[0])), p[1], 0.0))))

    best = min((minimize(loss, [np.log(b), x0], method="Nelder-Mead",
                         options={"xatol": 1e-7, "fatol": 1e-13, "maxiter": 4000})
                for b in (0.5, 2.0, 8.0) for x0 in (-1.0, 0.0, 1.0)), key=lambda r: r.fun)
    return {"beta": float(np.exp(best.x[0])), "x0": float(best.x[1]), "objective": float(best.fun)}
