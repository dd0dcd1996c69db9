"""Closed-form Gaussian integrals of a piecewise-linear f (the theory chapter, section "closed forms").

For ``x ~ N(mu, sigma^2)`` and a segment ``[a, b]`` (``a`` may be ``-inf``, ``b`` may be ``+inf``),
with ``za = (a - mu)/sigma``, ``zb = (b - mu)/sigma``, ``phi``/``Phi`` the standard normal pdf/cdf:

    M0 = E[1{a<x<b}]     = Phi(zb) - Phi(za)
    M1 = E[x 1{a<x<b}]   = mu M0 + sigma (phi(za) - phi(zb))
    M2 = E[x^2 1{a<x<b}] = (mu^2 + sigma^2) M0 + 2 mu sigma (phi(za) - phi(zb))
                           + sigma^2 (za phi(za) - zb phi(zb))

These are the expressions that :mod:`actfn.theory.derivations` derives with sympy (the tests check the
two agree).  On segment j, f(x) = alpha_j + beta_j x, so

    E[f | k]   = sum_j alpha_j M0 + beta_j M1
    E[f^2 | k] = sum_j alpha_j^2 M0 + 2 alpha_j beta_j M1 + beta_j^2 M2.

The moments do not depend on the knot values, so a trainer computes them once.
"""
from __future__ import annotations

import math

import torch

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _phi(z):
    return torch.exp(-0.5 * z * z) * _INV_SQRT_2PI


def _Phi(z):
    return 0.5 * torch.erfc(-z / _SQRT2)


def _z_phi(z):
    # z * phi(z) with the limit 0 at z = +-inf (0 * inf would be NaN)
    return torch.where(torch.isfinite(z), z * _phi(z), torch.zeros_like(z))


def segment_edges(knots: torch.Tensor) -> torch.Tensor:
    """The N+2 edges -inf, t_0, ..., t_{N-1}, +inf of the N+1 linear pieces of f."""
    inf = torch.full((1,), math.inf, dtype=knots.dtype, device=knots.device)
    return torch.cat([-inf, knots, inf])


def gaussian_segment_moments(edges: torch.Tensor, mu: torch.Tensor, sigma: float | torch.Tensor):
    """``(M0, M1, M2)``, each of shape ``(K, S)``: truncated moments of N(mu_k, sigma^2) on the S segments.

    ``edges`` has S+1 increasing entries (the ends may be infinite); ``mu`` has shape ``(K,)``.
    """
    mu = torch.as_tensor(mu, dtype=edges.dtype, device=edges.device).reshape(-1, 1)
    sigma = torch.as_tensor(sigma, dtype=edges.dtype, device=edges.device)
    if sigma.dim() > 0:
        sigma = sigma.reshape(-1, 1)
    z = (edges.reshape(1, -1) - mu) / sigma
    za, zb = z[:, :-1], z[:, 1:]
    # Phi differences from the side where they do not cancel (upper tail uses erfc of the other sign)
    m0 = torch.where(za > 0, _Phi(-za) - _Phi(-zb), _Phi(zb) - _Phi(za))
    dphi = _phi(za) - _phi(zb)
    dzphi = _z_phi(za) - _z_phi(zb)
    m1 = mu * m0 + sigma * dphi
    m2 = (mu * mu + sigma * sigma) * m0 + 2.0 * mu * sigma * dphi + sigma * sigma * dzphi
    return m0, m1, m2


def pwl_segment_coefficients(y: torch.Tensor, knots: torch.Tensor):
    """``(alpha, beta)`` with f(x) = alpha_j + beta_j x on each of the N+1 pieces (linear tails)."""
    slopes = (y[..., 1:] - y[..., :-1]) / (knots[1:] - knots[:-1])
    beta = torch.cat([slopes[..., :1], slopes, slopes[..., -1:]], dim=-1)
    left = torch.cat([y[..., :1], y], dim=-1)  # f at the left edge of each piece (t_0 for the left tail)
    left_x = torch.cat([knots[:1], knots])
    alpha = left - beta * left_x
    return alpha, beta


def pwl_class_moments(y: torch.Tensor, knots: torch.Tensor, moments) -> tuple[torch.Tensor, torch.Tensor]:
    """``E[f | k]`` and ``E[f^2 | k]`` (each shape ``(K,)``) from precomputed segment moments."""
    m0, m1, m2 = moments
    alpha, beta = pwl_segment_coefficients(y, knots)
    mean = (m0 * alpha + m1 * beta).sum(-1)
    second = (m0 * alpha * alpha + 2.0 * m1 * alpha * beta + m2 * beta * beta).sum(-1)
    return mean, second


def class_means(classes: int, mean_range: float, dtype=torch.float64) -> torch.Tensor:
    """Class means evenly spaced on ``[-mean_range, mean_range]`` (the book's mixture convention)."""
    return torch.linspace(-mean_range, mean_range, classes, dtype=dtype)


def mass_outside(means: torch.Tensor, sigma: float, lo: float, hi: float) -> float:
    """P(x < lo or x > hi) under the equal-prior mixture: the share of inputs on the linear tails."""
    edges = torch.tensor([-math.inf, lo, hi, math.inf], dtype=torch.float64)
    m0, _, _ = gaussian_segment_moments(edges, torch.as_tensor(means, dtype=torch.float64), sigma)
    return float((m0[:, 0] + m0[:, 2]).mean())
