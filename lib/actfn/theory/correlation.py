"""The correlation objective (seed 000, section 2.1), from a batch and from a mixture in closed form.

Class-wise correlation of a unit's output f(x) with the class indicator 1[y = k]:

    rho_k = Corr(f(x), 1[y=k]) = sqrt(p_k / (1 - p_k)) * (E[f | k] - E[f]) / sd(f)

Signed objective (minimised):

    L = sum_{k: rho_k < 0} rho_k^2 - sum_{k: rho_k > 0} rho_k^2 = - sum_k rho_k |rho_k|

It is invariant to f -> a f + b for a > 0, which is why "Var f = 1" is a gauge, not a constraint.
"""
from __future__ import annotations

import torch

from .gaussian import gaussian_segment_moments, pwl_class_moments, segment_edges

EPS = 1e-12


def correlations_from_class_moments(class_mean: torch.Tensor, class_second: torch.Tensor,
                                    priors: torch.Tensor) -> torch.Tensor:
    """rho_k from E[f|k], E[f^2|k] and p_k (all over the last dimension)."""
    mean = (priors * class_mean).sum(-1, keepdim=True)
    var = (priors * class_second).sum(-1, keepdim=True) - mean * mean
    scale = torch.sqrt(priors / (1.0 - priors).clamp_min(EPS))
    return scale * (class_mean - mean) / torch.sqrt(var.clamp_min(EPS))


def signed_objective(rho: torch.Tensor) -> torch.Tensor:
    """L = sum_{rho<0} rho^2 - sum_{rho>0} rho^2 (summed over the last dimension)."""
    return -(rho * rho.abs()).sum(-1)


def max_signed_objective(classes: int) -> float:
    """The ceiling of -L for equal priors, (K - 2) / (K - 1): one class separated perfectly from the rest."""
    return (classes - 2) / (classes - 1)


def batch_classwise_correlations(f: torch.Tensor, labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Pearson correlations of each unit with each class indicator over a batch.

    ``f`` has shape ``(B,)`` or ``(B, U)`` (U units); returns ``(K,)`` or ``(U, K)``.
    A class absent from the batch has correlation 0 (its indicator has no variance).
    """
    squeeze = f.dim() == 1
    if squeeze:
        f = f[:, None]
    onehot = torch.nn.functional.one_hot(labels, classes).to(f.dtype)  # (B, K)
    n = f.shape[0]
    p = onehot.mean(0)  # (K,)
    f_mean = f.mean(0)  # (U,)
    fc = f - f_mean
    f_sd = torch.sqrt((fc * fc).mean(0).clamp_min(EPS))  # (U,)
    cov = fc.T @ onehot / n  # (U, K): E[(f - Ef) 1_k]
    ind_sd = torch.sqrt(p * (1.0 - p))
    rho = cov / (f_sd[:, None] * ind_sd.clamp_min(EPS)[None, :])
    rho = torch.where(ind_sd[None, :] > 0, rho, torch.zeros_like(rho))
    return rho[0] if squeeze else rho


def correlation_objective(f: torch.Tensor, labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Sample-based signed objective of a batch, summed over units (the local-correlation loss)."""
    return signed_objective(batch_classwise_correlations(f, labels, classes)).sum()


class MixtureCorrelation:
    """Closed-form class-wise correlations of a PWL f on a Gaussian mixture with fixed knots.

    The truncated moments depend only on the knots and the mixture, so they are computed once;
    each call costs two small matrix-vector products.
    """

    def __init__(self, knots: torch.Tensor, means: torch.Tensor, sigma: float, priors: torch.Tensor | None = None):
        self.knots = knots
        self.moments = gaussian_segment_moments(segment_edges(knots), means, sigma)
        k = means.shape[0]
        self.priors = priors if priors is not None else torch.full((k,), 1.0 / k, dtype=knots.dtype)

    def class_moments(self, y: torch.Tensor):
        return pwl_class_moments(y, self.knots, self.moments)

    def correlations(self, y: torch.Tensor) -> torch.Tensor:
        return correlations_from_class_moments(*self.class_moments(y), self.priors)

    def objective(self, y: torch.Tensor) -> torch.Tensor:
        return signed_objective(self.correlations(y))
