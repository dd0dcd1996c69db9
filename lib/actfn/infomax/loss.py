"""The design's loss, L = -sum_j log(Var(a_j) + eps) + lambda ||Corr(A) - I||_F^2, with its gradient in
closed form, and the reconstruction baseline's loss."""
from __future__ import annotations

import torch

from .setting import bf16_products

EPS = 1e-6           # the eps of log(Var + eps)


def covariance(a: torch.Tensor) -> torch.Tensor:
    """Sample covariance of the columns of ``a`` (..., N, K) -> (..., K, K) (divisor N - 1)."""
    c = a - a.mean(-2, keepdim=True)
    return c.transpose(-1, -2) @ c / (a.shape[-2] - 1)


def correlation_from_covariance(cov: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    sd = torch.sqrt(torch.diagonal(cov, dim1=-2, dim2=-1).clamp_min(eps))
    return cov / (sd.unsqueeze(-1) * sd.unsqueeze(-2))


def correlation_matrix(a: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Correlation matrix of the columns of ``a`` (..., N, K) -> (..., K, K)."""
    return correlation_from_covariance(covariance(a), eps)


def infomax_loss(a: torch.Tensor, lam, eps: float = EPS) -> torch.Tensor:
    """-sum_j log(Var(a_j) + eps) + lam ||Corr(A) - I||_F^2 for ``a`` (..., N, K) -> (...).

    ``lam`` is a number or a tensor broadcastable to the leading dimensions (one lambda per model).
    Var is the diagonal of the same covariance the correlation comes from (one pass over A).  The
    gradient is written out (:class:`InfoMaxLoss`) rather than left to autograd, whose backward through
    the covariance, the square roots and the division is a dozen passes over the batch.
    """
    lam = torch.as_tensor(lam, dtype=a.dtype, device=a.device)
    return InfoMaxLoss.apply(a, lam, eps)


def _infomax_parts(c: torch.Tensor, lam: torch.Tensor, eps: float):
    """From centred activations c (..., N, K): loss (...), and the pieces its gradient needs."""
    cov = c.transpose(-1, -2) @ c / (c.shape[-2] - 1)
    var = torch.diagonal(cov, dim1=-2, dim2=-1)
    sd = torch.sqrt(var.clamp_min(1e-8))
    corr = cov / (sd.unsqueeze(-1) * sd.unsqueeze(-2))
    off = corr - torch.eye(c.shape[-1], dtype=c.dtype, device=c.device)
    loss = -torch.log(var + eps).sum(-1) + lam * off.pow(2).sum((-2, -1))
    return loss, var, sd, corr, off


class InfoMaxLoss(torch.autograd.Function):
    """The InfoMax loss with its gradient in closed form.

    With C = c^T c / (N - 1) (c: the centred activations), R_ij = C_ij / (s_i s_j), s_i = sqrt(C_ii):

        dL/dC_ij = 2 lam (R_ij - d_ij) / (s_i s_j)
                   + d_ij [ -1 / (C_ii + eps) - (2 lam / s_i^2) sum_k (R_ik - d_ik) R_ik ]

    (the second line is the variance term and the square roots' share), and dL/dA = 2 c G / (N - 1) for
    that symmetric G: the centring drops out because c's columns already have mean zero.
    Tested against autograd of the same formula.
    """

    @staticmethod
    def forward(ctx, a, lam, eps):
        c = a - a.mean(-2, keepdim=True)
        loss, var, sd, corr, off = _infomax_parts(c, lam, eps)
        ctx.save_for_backward(c, lam, var, sd, corr, off)
        ctx.eps = eps
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        c, lam, var, sd, corr, off = ctx.saved_tensors
        lam2 = (2 * lam * grad_loss).unsqueeze(-1)                          # (..., 1)
        g = lam2.unsqueeze(-1) * off / (sd.unsqueeze(-1) * sd.unsqueeze(-2))
        through_sd = (var > 1e-8).to(c.dtype) * lam2 * (off * corr).sum(-1) / sd.pow(2)
        diag = -grad_loss.unsqueeze(-1) / (var + ctx.eps) - through_sd
        g = g + torch.diag_embed(diag)
        grad_a = c @ g * (2.0 / (c.shape[-2] - 1))
        return grad_a, None, None


class ReconstructionLoss(torch.autograd.Function):
    """The reconstruction baseline's loss mean_n ||x_n - W' a_n||^2 for R models per seed, (S, R).

    Inputs: a (S, R, B, K), the decoders stored as W'^T (S, R, K, D), x (S, B, D).  Expanded as
    ||x||^2 - 2 a.(W'^T x) + a^T (W'^T W') a so that the (S, R, B, D) reconstructions never exist; the
    gradients in closed form (tested against autograd):

        dL/da   = (2/B) (a W'^T W' - W'^T x)
        dL/dW'^T = (2/B) ((a^T a) W'^T - a^T x)        (one product accumulated into another)
    """

    @staticmethod
    def forward(ctx, a, dec, x, bf16: bool):
        s, r, b, k = a.shape
        d = dec.shape[-1]
        with bf16_products(x, bf16):
            proj = torch.bmm(x, dec.reshape(s, r * k, d).transpose(1, 2)).to(a.dtype)
        proj = proj.view(s, b, r, k).transpose(1, 2)                     # W'^T x (S, R, B, K)
        a_gram = a @ (dec @ dec.transpose(-1, -2))                         # a W'^T W'
        rec = (torch.linalg.vecdot(x, x).unsqueeze(1) - 2 * torch.linalg.vecdot(a, proj)
               + torch.linalg.vecdot(a_gram, a)).mean(-1)
        ctx.save_for_backward(a, dec, x, proj, a_gram)
        ctx.bf16 = bf16
        return rec

    @staticmethod
    def backward(ctx, grad_rec):
        a, dec, x, proj, a_gram = ctx.saved_tensors
        s, r, b, k = a.shape
        d = dec.shape[-1]
        scale = (2.0 / b) * grad_rec.view(s, r, 1, 1)
        grad_a = scale * (a_gram - proj)
        sa = scale * a
        gram_part = (sa.transpose(-1, -2) @ a) @ dec                      # (a^T a) W'^T, scaled
        sa_t = sa.transpose(-1, -2).reshape(s, r * k, b)
        with bf16_products(x, ctx.bf16):
            grad_dec = torch.baddbmm(gram_part.reshape(s, r * k, d), sa_t, x, alpha=-1).to(dec.dtype)
        return grad_a, grad_dec.view(s, r, k, d), None, None


def independent_correlation_floor(k: int, n: int) -> float:
    """E||Corr(A) - I||_F^2 for K independent units over n samples: K(K-1)/(n-1).

    Each off-diagonal sample correlation of independent columns has variance ~1/(n-1), so a
    minibatch of 128 can never show Corr = I; the loss and the metric sit on this floor at best.
    """
    return k * (k - 1) / (n - 1)
