"""InfoMax across activations (seed 002): one linear layer, many small models trained at once.

One layer z = W x + b, a = f(z) (K units), trained to minimise the batch InfoMax loss

    L = - sum_j log(Var(a_j) + eps) + lambda * ||Corr(A) - I||_F^2

(:func:`infomax_loss`), or one of the design's baselines: ``variance_only`` (lambda = 0),
``reconstruction`` (an untied linear decoder, ||x - W' a||^2) and ``random`` (Xavier W, untrained).

:class:`InfoMaxBank` holds every model of one K as stacked tensors: ``S`` seeds x ``G`` settings
(activation, objective, lambda, constraint).  The models of one seed see the same minibatches, so
the forward pass is one batched matrix product per seed, and since Adam is elementwise each model's
optimiser state stays its own: training the bank is training each model alone, all at once.
Seeds pair the runs: seed ``s`` gives the same initial W to every setting (and to ``random``).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .checks import require, require_learning_rate
from .kernels import flushed_denormals, infomax_backend, infomax_kernel, onednn_matmul, warm_up
from .memory import recycled_memory
from .pwl import PiecewiseLinearActivation, piecewise_linear
from . import checkpoints

ACTIVATIONS = ("identity", "relu", "softmax", "tanh", "leaky_relu", "softplus", "swish", "pwl")
OBJECTIVES = ("infomax", "variance_only", "reconstruction", "random")
CONSTRAINTS = ("none", "unit_rows")
# "bfloat16": the layer's matrix products (W x, W' x and their gradients) take bfloat16 operands with
# float32 accumulation (torch.autocast); weights, Adam state and every statistic stay float32
MATMUL_PRECISIONS = ("float32", "bfloat16")
EPS = 1e-6           # the eps of log(Var + eps)
PWL_KNOTS = 33
PWL_RANGE = (-3.0, 3.0)
CHECKPOINT_FORMAT = 4   # 2: the decoders' Adam state with the weights'; 3: the biases' and knots' too (BankAdam);
                        # 4: tensors and plain values only (weights_only), keyed by the code too


def check_matmul_precision(value: str) -> bool:
    """Refuse an unknown ``matmul_precision`` by name; True for bfloat16."""
    require(value in MATMUL_PRECISIONS, "matmul_precision", value, f"must be one of {MATMUL_PRECISIONS}")
    return value == "bfloat16"


def bf16_products(x: torch.Tensor, enabled: bool = True):
    """The context in which the layer's matrix products take bfloat16 operands (float32 sums)."""
    return torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=enabled)


def float32_cpu_products(*tensors: torch.Tensor):
    """oneDNN's float32 product (:func:`actfn.kernels.onednn_matmul`) if every tensor is float32 on the
    CPU and it loaded, else None (use torch's products)."""
    if all(t.dtype == torch.float32 and t.device.type == "cpu" for t in tensors):
        return onednn_matmul()
    return None


def activate(z: torch.Tensor, kind: str, knots: torch.Tensor | None = None) -> torch.Tensor:
    """f(z) over the last dimension (the K units); ``knots`` (models, 33) for ``pwl``, models on dim 0."""
    if kind == "identity":
        return z
    if kind == "relu":
        return torch.relu(z)
    if kind == "softmax":
        return torch.softmax(z, dim=-1)
    if kind == "tanh":
        return torch.tanh(z)
    if kind == "leaky_relu":
        return F.leaky_relu(z, 0.01)
    if kind == "softplus":
        return F.softplus(z)
    if kind == "swish":
        return F.silu(z)
    if kind == "pwl":
        # per-model knots: the model index must be dim 1 for the per-channel activation
        moved = z.movedim(0, 1)
        return piecewise_linear(moved, knots, *PWL_RANGE).movedim(1, 0)
    raise ValueError(f"parameter 'activations' must hold values from {ACTIVATIONS}, got {kind!r}")


def activation_gain(z: torch.Tensor, kind: str, knots: torch.Tensor | None = None) -> torch.Tensor:
    """|d a_j / d z_j| for each unit (the diagonal of the Jacobian for softmax)."""
    z = z.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        if kind == "softmax":
            a = torch.softmax(z, dim=-1)
            return (a * (1 - a)).detach()
        a = activate(z, kind, knots)
        (g,) = torch.autograd.grad(a.sum(), z)
    return g.abs()


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


class ReconstructionBlocks(torch.autograd.Function):
    """f and the reconstruction loss of R models per seed from their pre-activations z^T (S, R K, B)
    -> (S, R): the compiled path of the bank's reconstruction baseline (CPU).

    The expansion of :class:`ReconstructionLoss`: its two products with the inputs (W'^T x^T, and a x
    in the decoder's gradient) one per seed, by oneDNN in float32, or with ``bf16`` on bfloat16
    operands as :class:`ReconstructionLoss` takes them under autocast (the rest stays float32 either
    way; before this path took bfloat16 banks too, their reconstruction models were a sixth of a K = 16
    step); the Gram matrices W'^T W' batched; the rest
    per model in ``reconstruction_blocks`` (``csrc/infomax_cpu.cpp``): a = f(z), the loss, dL/dz
    through f (and into the knots for ``pwl``), and the factors (2/B) a a^T and -(2/B) a of the
    decoder's gradient.  As in :class:`InfoMaxBlocks`, the gradients are computed with the loss (for
    ``grad_loss = 1``) and scaled in backward only if some model's ``grad_loss`` is not 1.  In
    PyTorch the same is some eighty small operations a step (an activation per model group, its
    derivative, the concatenations); the reconstruction models, a ninth of the bank, took a third of
    its step.  ``dec`` (S, R, K, D) holds W'^T; ``knots`` (S, R, 33); ``kinds`` (R,).  Tested against
    :func:`activate` + :class:`ReconstructionLoss` under autograd.
    """

    @staticmethod
    def forward(ctx, zt, dec, knots, x, kinds, bf16: bool = False):
        need_grad = any(ctx.needs_input_grad[:3])
        loss, *grads = reconstruction_blocks(zt, dec, knots, x, kinds, bf16, need_grad)
        if need_grad:
            ctx.save_for_backward(*grads)
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        grad_zt, grad_dec, grad_knots = ctx.saved_tensors
        if not bool((grad_loss == 1).all()):
            s, r = grad_loss.shape
            grad_zt = grad_zt.view(s, r, -1).mul(grad_loss.unsqueeze(-1)).view(grad_zt.shape)
            grad_dec = grad_dec.mul(grad_loss.view(s, r, 1, 1))
            grad_knots = grad_knots.mul(grad_loss.unsqueeze(-1))
        return grad_zt, grad_dec, grad_knots, None, None, None


def reconstruction_blocks(zt, dec, knots, x, kinds, bf16: bool, need_grad: bool = True, x_low=None):
    """The computation of :class:`ReconstructionBlocks`: loss (S, R), and if ``need_grad`` the
    gradients of its sum with respect to z^T, W'^T and the knots.  ``x_low``: the bfloat16 copy of
    ``x`` if the caller has one."""
    s, rk, b = zt.shape
    d = dec.shape[-1]
    mm = onednn_matmul()
    if bf16:     # the two products with the inputs take bfloat16 operands, as under autocast
        x_low = x.to(torch.bfloat16) if x_low is None else x_low
        dec_low = dec.to(torch.bfloat16)
        proj = torch.stack([torch.mm(dec_low[i].view(rk, d), x_low[i].T) for i in range(s)]).float()
    else:
        proj = torch.empty(s, rk, b)
        for i in range(s):
            mm.matmul_into(dec[i].view(rk, d), x[i].T, proj[i], 0.0)      # W'^T x^T
    loss, grad_zt, grad_knots, na, aat = reconstruction_terms(zt, proj, dec, knots, x, kinds, need_grad)
    if not need_grad:
        return loss, None, None, None
    grad_dec = seed_by_seed(torch.matmul, aat, dec)                          # (2/B) (a a^T) W'^T
    for i in range(s):                                                       # - (2/B) a x
        if bf16:
            grad_dec[i].view(rk, d).add_(torch.mm(na[i].to(torch.bfloat16), x_low[i]))
        else:
            mm.matmul_into(na[i], x[i], grad_dec[i].view(rk, d), 1.0)
    return loss, grad_zt, grad_dec, grad_knots


def seed_by_seed(op, *tensors: torch.Tensor) -> torch.Tensor:
    """``op`` on each seed's slice (dim 0), stacked.  For the decoders, which in training are views of
    :class:`ProductRows`' storage with the seeds apart: a batched product over (S, R, ...) would first
    copy them to merge S and R (measured: 1 ms of a K = 64 step)."""
    return torch.stack([op(*(t[i] for t in tensors)) for i in range(tensors[0].shape[0])])


def reconstruction_terms(zt, proj, dec, knots, x, kinds, need_grad: bool = True, grad_out=None, na_out=None,
                         row_sums=None):
    """The compiled kernel's part of :func:`reconstruction_blocks`, given the decoders' products with
    the inputs ``proj`` = W'^T x^T (S, R K, B): loss (S, R), dL/dz^T, dL/dknots, and the two factors
    of the decoders' gradient, -(2/B) a (S, R K, B) and (2/B) a a^T (S, R, K, K).  ``grad_out``,
    ``na_out``: views to write dL/dz^T and -(2/B) a into (each seed's rows contiguous), in ``zt``'s dtype;
    ``row_sums`` (S, R K): where dL/dz^T's sums over the batch go."""
    gram = seed_by_seed(torch.matmul, dec, dec.transpose(-1, -2))            # W'^T W'
    s, b = x.shape[0], x.shape[-2]
    flat = x.reshape(s, 1, -1)       # mean_n ||x_n||^2 as one dot product per seed (vecdot: two passes)
    xx = torch.bmm(flat, flat.transpose(1, 2)).view(s) / b
    return infomax_kernel().reconstruction_blocks(zt, proj, gram, xx, kinds, knots, *PWL_RANGE, need_grad, grad_out,
                                                  na_out, row_sums)


def fused_products(rows: ProductRows, bias: torch.Tensor, x_in: torch.Tensor) -> torch.Tensor:
    """z^T of every model and W'^T x^T of every decoder, one product per seed: (S, (G + R) K, B), rows in
    the order of ``rows.rows``, in their dtype (bfloat16 as under autocast, bias included; float32 by
    oneDNN where it loads).  Before, each seed took a product per span of models and one for the
    decoders: the same arithmetic in three calls, two of them with few rows (measured: the fused
    product saves about 0.1 ms per seed and direction at K = 16, 6 % of a bfloat16 step)."""
    s, gr, k, d = rows.rows.shape
    gk = bias.shape[1] * k
    out = torch.empty(s, gr * k, x_in.shape[-2], dtype=rows.rows.dtype)
    mm = float32_cpu_products(rows.rows, x_in)
    if mm is not None:
        out[:, :gk] = bias.reshape(s, gk, 1)
        out[:, gk:] = 0
        for i in range(s):
            mm.matmul_into(rows.rows[i].view(gr * k, d), x_in[i].T, out[i], 1.0)
        return out
    b = torch.zeros(s, gr * k, 1, dtype=rows.rows.dtype)
    b[:, :gk] = bias.reshape(s, gk, 1)
    for i in range(s):
        torch.addmm(b[i], rows.rows[i].view(gr * k, d), x_in[i].T, out=out[i])
    return out


def fused_weight_grads_(rows: ProductRows, grad_all: torch.Tensor, x_in: torch.Tensor):
    """The backward of :func:`fused_products`: ``grad_all`` (S, (G + R) K, B) @ x, one product per seed,
    into ``rows.rows_grad``: grad_W of every model, and for the decoders their -(2/B) a x term."""
    mm = float32_cpu_products(grad_all, x_in)
    for i in range(x_in.shape[0]):
        out = rows.rows_grad[i].view(-1, x_in.shape[-1])
        if mm is not None:
            mm.matmul_into(grad_all[i], x_in[i], out, 0.0)
        else:
            torch.mm(grad_all[i], x_in[i], out=out)


class InfoMaxBlocks(torch.autograd.Function):
    """f and the InfoMax loss of M models per seed from their pre-activations z^T (S, M K, B) -> (S, M).

    The compiled path of the bank (``csrc/infomax_cpu.cpp``): per model, a = f(z), the loss and its
    gradient (the closed form of :class:`InfoMaxLoss`, through f, and into the knots for ``pwl``) in
    one pass over the model's K x B block while it is in cache.  The gradient is computed with the
    loss (for ``grad_loss = 1``) and scaled in backward only if some model's ``grad_loss`` is not 1.
    ``knots`` (S, M, 33), ``kinds`` (M,) indices into :data:`ACTIVATIONS`, ``lam`` (M,).
    Tested against :func:`activate` + :func:`infomax_loss` under autograd.
    """

    @staticmethod
    def forward(ctx, zt, knots, kinds, lam):
        need_grad = bool(ctx.needs_input_grad[0] or ctx.needs_input_grad[1])
        loss, grad_zt, grad_knots = infomax_kernel().infomax_blocks(zt, kinds, lam, knots, EPS, *PWL_RANGE,
                                                                    need_grad)
        if need_grad:
            ctx.save_for_backward(grad_zt, grad_knots)
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        grad_zt, grad_knots = ctx.saved_tensors
        if not bool((grad_loss == 1).all()):
            s, m = grad_loss.shape
            grad_zt = grad_zt.view(s, m, -1).mul_(grad_loss.unsqueeze(-1)).view(grad_zt.shape)
            grad_knots = grad_knots.mul_(grad_loss.unsqueeze(-1))
        return grad_zt, grad_knots, None, None


def independent_correlation_floor(k: int, n: int) -> float:
    """E||Corr(A) - I||_F^2 for K independent units over n samples: K(K-1)/(n-1).

    Each off-diagonal sample correlation of independent columns has variance ~1/(n-1), so a
    minibatch of 128 can never show Corr = I; the loss and the metric sit on this floor at best.
    """
    return k * (k - 1) / (n - 1)


@dataclass(frozen=True)
class Setting:
    """One model of a bank, apart from its seed."""
    activation: str
    objective: str = "infomax"
    lam: float = 1.0
    constraint: str = "none"

    def __post_init__(self):
        require(self.activation in ACTIVATIONS, "activations", self.activation, f"must be one of {ACTIVATIONS}")
        require(self.objective in OBJECTIVES, "objectives", self.objective, f"must be one of {OBJECTIVES}")
        require(self.constraint in CONSTRAINTS, "constraints", self.constraint, f"must be one of {CONSTRAINTS}")
        require(isinstance(self.lam, (int, float)) and math.isfinite(self.lam) and self.lam >= 0, "lambdas",
                self.lam, "must hold numbers >= 0")


def xavier_weights(seed: int, k: int, d: int) -> torch.Tensor:
    """Xavier-uniform (K, D) weights from the seed alone, so that every setting of a seed starts equal."""
    gen = torch.Generator().manual_seed(int(seed))
    bound = math.sqrt(6.0 / (d + k))
    return (torch.rand(k, d, generator=gen) * 2 - 1) * bound


class StackedLinear(torch.autograd.Function):
    """z^T = W x^T + b for the models ``lo .. hi`` of a bank's stacked weights W (S, G, K, D) (``bias``:
    their biases, (S, g, K)): (S, g K, B) for g = hi - lo, one product per seed (inputs x (S, B, D), a
    batch per seed), or one per model (x (S, G, B, D), per-model inputs).  The bank calls it once per span of models that share a loss
    (:meth:`InfoMaxBank.losses`): each span's z^T is its own tensor, so no split of one product's
    output, and no concatenation of the spans' gradients in backward.

    The backward pass *writes* the weight gradient grad_z^T x into rows ``lo .. hi`` of
    ``weight.grad`` (allocated once) instead of returning it: a fresh tensor the size of all the
    weights every step cost more than the product itself here (the pages of a new block are
    zero-filled by the kernel on first touch).  So the weight's gradient is not accumulated across
    backward passes: one backward per zero_grad, which is how :func:`train_bank` uses it.  With
    ``low`` (bfloat16 products, compiled optimizer: :class:`ProductRows`), the forward pass
    reads the bfloat16 copy of the weights that the optimizer keeps, and the backward pass writes the
    bfloat16 gradient into ``low.grad`` for it.
    """

    @staticmethod
    def forward(ctx, weight, bias, x, bf16: bool, low=None, lo: int = 0, hi: int | None = None):
        hi = weight.shape[1] if hi is None else hi
        if bf16:
            x = x.to(torch.bfloat16)         # (saved in bfloat16 for the backward product)
        ctx.save_for_backward(x)
        ctx.weight, ctx.low, ctx.span = weight, (low if bf16 else None), (lo, hi)
        return stacked_products(weight, bias, x, bf16, low, lo, hi)

    @staticmethod
    def backward(ctx, grad_zt):
        (x,) = ctx.saved_tensors
        weight, low, (lo, hi) = ctx.weight, ctx.low, ctx.span
        s, _, k, _ = weight.shape
        gb = grad_zt.sum(-1).view(s, hi - lo, k)
        stacked_weight_grad_(weight, low, grad_zt, x, lo, hi)
        return None, gb, None, None, None, None, None


def stacked_products(weight, bias, x, bf16: bool, low=None, lo: int = 0, hi: int | None = None) -> torch.Tensor:
    """The forward product of :class:`StackedLinear`: z^T (S, g K, B), float32, for the models
    ``lo .. hi`` of ``weight`` (S, G, K, D) and their biases ``bias`` (S, g, K)."""
    s, _, k, d = weight.shape
    hi = weight.shape[1] if hi is None else hi
    g, n = hi - lo, x.shape[-2]
    w, b = weight[:, lo:hi], bias.reshape(s, g * k, 1)
    if bf16:
        # what autocast does (bfloat16 operands, bias included, a bfloat16 product), with each
        # operand cast once for all seeds rather than once per product
        w = low.weight[:, lo:hi] if low is not None else w.to(torch.bfloat16)
        b, x = b.to(torch.bfloat16), x.to(torch.bfloat16)
    zt = torch.empty(s, g * k, n, device=w.device)
    mm = float32_cpu_products(w, x)
    for i in range(s):
        # (per seed: MKL runs one large product faster than a batched one)
        z = torch.empty(g * k, n, dtype=w.dtype, device=w.device) if bf16 else zt[i]
        if x.dim() == 4:         # per-model inputs (S, G, B, D): one small product per model
            torch.baddbmm(b[i].view(g, k, 1), w[i], x[i, lo:hi].transpose(1, 2), out=z.view(g, k, n))
        elif mm is not None:     # float32 on the CPU: oneDNN's product (actfn.kernels.onednn_matmul)
            z.copy_(b[i].expand(g * k, n))
            mm.matmul_into(w[i].view(g * k, d), x[i].T, z, 1.0)
        else:
            torch.addmm(b[i], w[i].view(g * k, d), x[i].T, out=z)
        if bf16:
            zt[i].copy_(z)
    return zt


def stacked_weight_grad_(weight, low, grad_zt, x, lo: int, hi: int):
    """The backward product of :class:`StackedLinear`: grad_W = grad_z^T x written into rows
    ``lo .. hi`` of ``weight.grad`` (allocated once), or of ``low.grad`` (bfloat16) if ``low``."""
    s, _, k, d = weight.shape
    g = hi - lo
    if low is None and (weight.grad is None or weight.grad.shape != weight.shape):
        weight.grad = torch.empty_like(weight)
    if x.dtype == torch.bfloat16:        # bfloat16 products
        grad_zt = grad_zt.to(torch.bfloat16)
        gw_low = (low.grad[:, lo:hi] if low is not None else
                  torch.empty(s, g, k, d, dtype=torch.bfloat16, device=weight.device))
        _weight_grad(grad_zt, x, gw_low, lo)
        if low is None:
            weight.grad[:, lo:hi].copy_(gw_low)
    else:
        _weight_grad(grad_zt, x, weight.grad[:, lo:hi], lo)


def _weight_grad(grad_zt, x, out, lo: int):
    """grad_W = grad_z^T x into ``out`` (S, g, K, D), each seed's block contiguous: per seed, or per
    model for inputs (S, G, B, D) (models ``lo .. lo + g`` of them)."""
    s, g, k, d = out.shape
    mm = float32_cpu_products(out, x)
    for i in range(s):
        if x.dim() == 4:
            torch.bmm(grad_zt[i].view(g, k, -1), x[i, lo:lo + g], out=out[i])
        elif mm is not None:
            mm.matmul_into(grad_zt[i], x[i], out[i].view(g * k, d), 0.0)
        else:
            torch.mm(grad_zt[i], x[i], out=out[i].view(g * k, d))


class ProductRows:
    """What the bank's fused products read and write (:meth:`InfoMaxBank.loss_and_grad_`): each seed's
    weight rows followed by its decoder rows, ``rows`` (S, G + R, K, D), and their gradients likewise,
    ``rows_grad``; ``weight``, ``grad`` (S, G, K, D) and ``decoder``, ``decoder_grad`` (S, R, K, D) are
    views of them.  ``master``: the float32 parameters, moved into one storage of that layout
    (``bank.weight`` and ``bank.decoder`` become views of it), which :class:`BankAdam` updates.

    float32 products read ``master`` itself and write the gradients of both parameters
    (``bank.weight.grad`` and ``bank.decoder.grad`` are views of ``rows_grad``).  bfloat16 products
    read a bfloat16 copy, rewritten by the optimizer after each step, and write a bfloat16 gradient
    that the optimizer reads: no cast pass over all the weights either way (the decoders' gradient
    is completed in float32, in ``bank.decoder.grad``).
    """

    def __init__(self, bank: "InfoMaxBank"):
        g = bank.weight.shape[1]
        self.master = torch.cat([bank.weight.detach(), bank.decoder.detach()], 1)
        bank.weight.data, bank.decoder.data = self.master[:, :g], self.master[:, g:]
        if bank.bf16:
            self.rows = self.master.to(torch.bfloat16)
            self.rows_grad = torch.empty_like(self.rows)
        else:
            self.rows, self.rows_grad = self.master, torch.zeros_like(self.master)
            bank.weight.grad, bank.decoder.grad = self.rows_grad[:, :g], self.rows_grad[:, g:]
        self.weight, self.grad = self.rows[:, :g], self.rows_grad[:, :g]
        self.decoder, self.decoder_grad = self.rows[:, g:], self.rows_grad[:, g:]


@torch.no_grad()
def unit_rows_(w: torch.Tensor):
    """The norm-constrained variant's projection: every row of W (last dim) to length 1, in place."""
    w /= w.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _runs(indices: list[int]) -> list[tuple[int, int]]:
    """Sorted indices as half-open runs of consecutive values: [1, 2, 3, 7] -> [(1, 4), (7, 8)]."""
    runs = []
    for i in indices:
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


class InfoMaxBank(torch.nn.Module):
    """``len(seeds) x len(settings)`` one-layer models of K units on D inputs, as stacked tensors.

    Parameters: ``weight`` (S, G, K, D), ``bias`` (S, G, K), ``decoder`` (S, R, K, D) (W'^T, one per
    reconstruction setting) and ``knots`` (S, G, 33) (used by the ``pwl`` models only).
    """

    def __init__(self, settings: list[Setting], seeds: list[int], k: int, d: int, matmul_precision: str = "float32"):
        super().__init__()
        self.bf16 = check_matmul_precision(matmul_precision)
        self.matmul_precision = matmul_precision
        require(len(settings) >= 1, "settings", settings, "must not be empty")
        require(len(set(seeds)) == len(seeds) and len(seeds) >= 1, "seeds", seeds, "must be distinct and non-empty")
        require(isinstance(k, int) and k >= 2, "Ks", k, "must hold integers >= 2")
        self.settings, self.seeds, self.k, self.d = list(settings), [int(s) for s in seeds], k, d
        w0 = torch.stack([xavier_weights(s, k, d) for s in self.seeds])          # (S, K, D)
        g = len(settings)
        self.weight = torch.nn.Parameter(w0.unsqueeze(1).repeat(1, g, 1, 1))    # (S, G, K, D)
        self.bias = torch.nn.Parameter(torch.zeros(len(seeds), g, k))
        self.recon = [i for i, s in enumerate(settings) if s.objective == "reconstruction"]
        # decoders W' (D x K) of the reconstruction models only, stored transposed (K x D) like W, and
        # starting equal to it (a tied start, untied afterwards)
        self.decoder = torch.nn.Parameter(w0.unsqueeze(1).repeat(1, len(self.recon), 1, 1))
        relu_knots = torch.linspace(*PWL_RANGE, PWL_KNOTS).clamp(min=0)
        self.knots = torch.nn.Parameter(relu_knots.expand(len(seeds), g, PWL_KNOTS).clone())
        # contiguous runs of settings with the same activation share one call of f
        self.groups = []
        for i, s in enumerate(settings):
            if self.groups and self.groups[-1][0] == s.activation and self.groups[-1][2] == i:
                self.groups[-1] = (s.activation, self.groups[-1][1], i + 1)
            else:
                self.groups.append((s.activation, i, i + 1))
        # contiguous runs of reconstruction / InfoMax-loss settings (study_settings puts the former last)
        recon_runs = _runs(self.recon)
        edges = sorted({0, g, *[e for run in recon_runs for e in run]})
        self.spans = [(lo, hi, lo in self.recon) for lo, hi in zip(edges, edges[1:])]
        self.register_buffer("lam", torch.tensor([s.lam if s.objective == "infomax" else 0.0 for s in settings]))
        self.register_buffer("kinds", torch.tensor([ACTIVATIONS.index(s.activation) for s in settings]))
        self.unit_row_runs = _runs([i for i, s in enumerate(settings) if s.constraint == "unit_rows"])

    def activations(self, z: torch.Tensor, lo: int = 0) -> torch.Tensor:
        """z (S, B, g, K) of the settings lo .. lo + g -> a = f(z) (S, g, B, K), each model's batch
        contiguous for its statistics."""
        hi = lo + z.shape[2]
        groups = [(kind, max(a, lo), min(b, hi)) for kind, a, b in self.groups if a < hi and b > lo]
        parts = []
        # split, not slicing: its backward is one concatenation, not a zero-filled copy per group
        for (kind, a, b), zz in zip(groups, z.split([b - a for _, a, b in groups], dim=2)):
            zz = zz.transpose(1, 2)                                    # (S, g, B, K), a strided view
            if kind == "pwl":
                s, gg, n, k = zz.shape
                out = activate(zz.reshape(s * gg, n, k), kind, self.knots[:, a:b].reshape(s * gg, -1))
                parts.append(out.view(s, gg, n, k))
            else:
                parts.append(activate(zz, kind))
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0].contiguous()

    def losses(self, x: torch.Tensor, low: ProductRows | None = None) -> torch.Tensor:
        """Per-model training loss (S, G) on one batch ``x`` (S, B, D), one seed's batch each.

        Span by span of settings (the InfoMax-loss models, the reconstruction models): one matrix
        product per seed for the span's models (:class:`StackedLinear`) gives their z^T (S, g K, B);
        then the InfoMax loss (:class:`InfoMaxBlocks`, compiled) or the reconstruction loss
        (:class:`ReconstructionBlocks`, compiled), or either in PyTorch.  ``low``: see
        :class:`StackedLinear`.  Differentiable by autograd; where the compiled kernels run, the
        training loop takes :meth:`loss_and_grad_` instead (the same numbers, without the graph).
        """
        kernel = infomax_kernel() if x.device.type == "cpu" else None     # (z^T is float32 either way)
        out = []
        for lo, hi, recon in self.spans:
            part = StackedLinear.apply(self.weight, self.bias[:, lo:hi], x, self.bf16, low, lo, hi)
            s, _, b = part.shape
            if not recon and kernel is not None:
                out.append(InfoMaxBlocks.apply(part, self.knots[:, lo:hi], self.kinds[lo:hi], self.lam[lo:hi]))
                continue
            if recon:
                # (the whole decoder tensor when the span has them all: no slice for autograd to undo)
                dec = self.decoder if hi - lo == len(self.recon) else self.decoder[:, self.decoder_rows(lo, hi)]
                if kernel is not None and float32_cpu_products(x, dec) is not None:
                    out.append(ReconstructionBlocks.apply(part, dec, self.knots[:, lo:hi], x, self.kinds[lo:hi], self.bf16))
                    continue
            a = self.activations(part.transpose(1, 2).view(s, b, hi - lo, self.k), lo)
            if not recon:
                out.append(infomax_loss(a, self.lam[lo:hi].view(1, -1)))
                continue
            out.append(ReconstructionLoss.apply(a, dec, x, self.bf16))
        return torch.cat(out, 1) if len(out) > 1 else out[0]

    def decoder_rows(self, lo: int, hi: int) -> slice:
        """The decoders (dim 1 of ``decoder``) of the reconstruction settings ``lo .. hi`` (a span)."""
        r0 = self.recon.index(lo)
        return slice(r0, r0 + hi - lo)

    def compiled_step(self, x: torch.Tensor) -> bool:
        """Whether :meth:`loss_and_grad_` can take this bank's step on inputs ``x`` (the compiled
        kernels on the CPU)."""
        return (x.device.type == "cpu" and infomax_kernel() is not None
                and (not self.recon or onednn_matmul() is not None))

    @torch.no_grad()
    def loss_and_grad_(self, x: torch.Tensor, rows: ProductRows | None = None) -> torch.Tensor:
        """The per-model losses (S, G) of :meth:`losses`, with the gradient of their sum written into
        the parameters' ``.grad`` (the weight's into ``rows.grad`` with bfloat16 ``rows``), without autograd.

        The compiled kernels compute every gradient with the loss, so autograd had only to carry
        them to the parameters; its graph, and its slicing of the biases and knots, cost 5 % of a
        bfloat16 K = 16 step here.  The same numbers as ``losses(x, rows).sum().backward()`` (tested).
        Needs :meth:`compiled_step`.

        With ``rows`` (:class:`ProductRows`: each seed's weights and decoders in one storage) and a
        batch shared by each seed's models, the products are fused: one per seed gives every model's z
        and every decoder's W'^T x^T (:func:`fused_products`), one per seed every weight gradient and
        the decoders' a x term (:func:`fused_weight_grads_`), and the kernels read and write their parts
        of those products' operands in place (bfloat16 ones widened and narrowed model by model in
        cache).  Otherwise each span of models takes its own.
        """
        kernel = infomax_kernel()
        for p in (self.bias, self.decoder, self.knots):
            if p.grad is None or p.grad.shape != p.shape:
                p.grad = torch.zeros_like(p)
        x_in = x.to(torch.bfloat16) if self.bf16 else x       # (cast once for every product)
        k, g = self.k, self.weight.shape[1]
        fused = rows is not None and x.dim() == 3
        if not fused:
            return self._span_loss_and_grad_(x, x_in, rows if self.bf16 else None)
        require(rows.decoder.shape == self.decoder.shape, "rows", tuple(rows.rows.shape),
                "must hold the bank's weights and decoders: ProductRows(bank)")
        if not self.bf16:     # (the backward product writes the weights' gradient where BankAdam reads it)
            self.weight.grad = rows.grad
        z_all = fused_products(rows, self.bias, x_in)                     # (S, (G + R) K, B)
        # the backward product's operand, in the products' dtype: the kernels read their z from z_all's
        # rows and write their gradients straight into it (in bfloat16 they widen and narrow in cache)
        grad_all = torch.empty_like(z_all)
        losses, gram_terms = [], []
        for lo, hi, recon in self.spans:
            zt, grad_out = z_all[:, lo * k:hi * k], grad_all[:, lo * k:hi * k]
            bias_grad = self.bias.grad[:, lo:hi].view(x.shape[0], -1)     # (the kernels sum dL/dz over the batch)
            if recon:
                dec_rows = self.decoder_rows(lo, hi)
                at = slice((g + dec_rows.start) * k, (g + dec_rows.stop) * k)        # their W'^T x^T in z_all
                dec = self.decoder[:, dec_rows]
                loss, _, grad_knots, _, aat = reconstruction_terms(
                    zt, z_all[:, at], dec, self.knots[:, lo:hi], x, self.kinds[lo:hi],
                    grad_out=grad_out, na_out=grad_all[:, at], row_sums=bias_grad)
                gram_terms.append((dec_rows, aat, dec))
            else:
                loss, _, grad_knots = kernel.infomax_blocks(zt, self.kinds[lo:hi], self.lam[lo:hi],
                                                            self.knots[:, lo:hi], EPS, *PWL_RANGE, True, grad_out,
                                                            bias_grad)
            self.knots.grad[:, lo:hi] = grad_knots
            losses.append(loss)
        fused_weight_grads_(rows, grad_all, x_in)
        for dec_rows, aat, dec in gram_terms:    # the decoders' gradient: the Gram term + the a x term
            for i in range(x.shape[0]):         # (seed by seed: no copies of the strided views)
                grad, ax = self.decoder.grad[i, dec_rows], rows.decoder_grad[i, dec_rows]
                if grad.data_ptr() != ax.data_ptr():     # (in float32 they are one storage, see ProductRows)
                    grad.copy_(ax)
                grad.baddbmm_(aat[i], dec[i])
        return torch.cat(losses, 1) if len(losses) > 1 else losses[0]

    def _span_loss_and_grad_(self, x: torch.Tensor, x_in: torch.Tensor, low) -> torch.Tensor:
        """:meth:`loss_and_grad_` span by span of models, each span with its own products (``low``: the
        bfloat16 copy of the weights, if any)."""
        kernel = infomax_kernel()
        losses = []
        for lo, hi, recon in self.spans:
            zt = stacked_products(self.weight, self.bias[:, lo:hi], x_in, self.bf16, low, lo, hi)
            if recon:
                dec_rows = self.decoder_rows(lo, hi)
                loss, grad_zt, grad_dec, grad_knots = reconstruction_blocks(
                    zt, self.decoder[:, dec_rows], self.knots[:, lo:hi], x, self.kinds[lo:hi], self.bf16,
                    x_low=x_in if self.bf16 else None)
                self.decoder.grad[:, dec_rows] = grad_dec
            else:
                loss, grad_zt, grad_knots = kernel.infomax_blocks(zt, self.kinds[lo:hi], self.lam[lo:hi],
                                                                  self.knots[:, lo:hi], EPS, *PWL_RANGE, True)
            self.knots.grad[:, lo:hi] = grad_knots
            self.bias.grad[:, lo:hi] = grad_zt.sum(-1).view(zt.shape[0], hi - lo, self.k)
            stacked_weight_grad_(self.weight, low, grad_zt, x_in, lo, hi)
            losses.append(loss)
        return torch.cat(losses, 1) if len(losses) > 1 else losses[0]

    @torch.no_grad()
    def project_(self):
        """Norm-constrained variant: rows of W back to unit length after every step."""
        for lo, hi in self.unit_row_runs:       # in place, run by run: no copy of the constrained weights
            unit_rows_(self.weight[:, lo:hi])


@dataclass
class BankRun:
    bank: InfoMaxBank
    losses: np.ndarray                     # (epochs, S, G): mean training loss per epoch
    weight_norms: np.ndarray               # (epochs + 1, S, G): mean row norm of W
    seconds: float = 0.0
    steps: int = 0
    initial_weight: torch.Tensor = field(default=None, repr=False)   # (S, K, D)


def seed_batches(x: torch.Tensor, seeds: list[int], epoch: int, batch_size: int):
    """Per epoch, one shuffled order per seed; yields (S, B, D) batches of the shared inputs ``x``
    (N, D), or (S, G, B, D) of per-model inputs (S, G, N, D) (the last partial batch dropped, so that
    every step sees B samples and the batch statistics mean the same thing)."""
    n = x.shape[-2]
    # (drawn on the CPU whatever the device: the same seed gives the same batches everywhere)
    orders = torch.stack([torch.randperm(n, generator=torch.Generator().manual_seed(s * 1_000_003 + epoch))
                          for s in seeds]).to(x.device)
    for start in range(0, n - batch_size + 1, batch_size):
        if x.dim() == 4:     # each seed's order, applied to the inputs of every model of that seed
            yield torch.stack([x[i][:, orders[i, start:start + batch_size]] for i in range(len(seeds))])
        else:       # (index_select: a fifth of the time of x[orders[:, ...]]'s advanced indexing)
            yield torch.index_select(x, 0, orders[:, start:start + batch_size].reshape(-1)).view(len(seeds), batch_size, -1)


def train_bank(settings: list[Setting], seeds: list[int], k: int, x: torch.Tensor, epochs: int,
               batch_size: int = 128, lr: float = 1e-3, show_progress: bool = False, desc: str = "",
               matmul_precision: str = "float32", checkpoint: str | os.PathLike | None = None,
               device: str | torch.device | None = None) -> BankRun:
    """Train every (seed, setting) model on ``x`` with Adam; the random models stay at init.

    ``x``: the inputs every model sees, (N, D), or each model's own inputs, (S, G, N, D) for
    ``len(seeds)`` x ``len(settings)`` models (the depth follow-up: each second layer reads its own
    first layer's outputs); either way the seed fixes the initial W and the order of the batches.

    ``checkpoint``: a file written (atomically) after every epoch; if it exists, training continues
    from it and ends exactly where the uninterrupted run would (the batches depend only on seed and
    epoch).  A checkpoint of other settings, seeds, data or hyperparameters is refused by name.

    ``device``: where the models train (default: ``x``'s device); the returned bank is on the CPU.
    The initial weights and the batches come from the CPU's generators, so a GPU trains the same
    models on the same batches.
    """
    require(isinstance(epochs, int) and epochs >= 1, "epochs", epochs, "must be an integer >= 1")
    require_learning_rate("lr", lr)
    require(x.dim() == 2 or (x.dim() == 4 and tuple(x.shape[:2]) == (len(seeds), len(settings))), "x",
            tuple(x.shape), f"must be (N, D), or (S, G, N, D) = ({len(seeds)}, {len(settings)}, N, D): per-model inputs")
    require(x.dim() == 2 or all(s.objective != "reconstruction" for s in settings), "settings", settings,
            "must not hold reconstruction models when the inputs are per model")
    require(isinstance(batch_size, int) and 2 <= batch_size <= x.shape[-2], "batch_size", batch_size,
            f"must be an integer in [2, {x.shape[-2]}] (the training set size)")
    warm_up(infomax=True)      # a cold kernel cache builds here, not inside the timed training
    torch.manual_seed(0)
    bank = InfoMaxBank(settings, seeds, k, x.shape[-1], matmul_precision)
    # the random baseline never moves (its gradient is zero): only the other models are trained, as
    # a bank of their own, and copied into the full bank at the end
    trained_index = [j for j, s in enumerate(settings) if s.objective != "random"]
    initial = bank.weight[:, 0].detach().clone()
    bank.project_()
    norms = [bank.weight.detach().norm(dim=-1).mean(-1).numpy()]
    hist = np.full((epochs, len(seeds), len(settings)), np.nan, dtype=np.float32)
    t0 = time.perf_counter()
    steps = 0
    if trained_index:
        x_trained = x[:, trained_index] if x.dim() == 4 and len(trained_index) < len(settings) else x
        config = {"settings": [asdict(s) for s in settings], "seeds": list(seeds), "K": k, "epochs": epochs,
                  "batch_size": batch_size, "lr": lr, "matmul_precision": matmul_precision,
                  "data": checkpoints.fingerprint(x), "format": CHECKPOINT_FORMAT,
                  "code": checkpoints.code_version()} if checkpoint else None
        device = torch.device(device) if device is not None else x.device
        trained = InfoMaxBank([settings[j] for j in trained_index], seeds, k, x.shape[-1], matmul_precision).to(device)
        run = _train(trained, x_trained.to(device), epochs, batch_size, lr, show_progress,
                     desc or f"K={k}, {len(seeds) * len(settings)} models", Path(checkpoint) if checkpoint else None, config)
        run.bank.cpu()
        with torch.no_grad():
            for name in ("weight", "bias", "knots"):
                getattr(bank, name)[:, trained_index] = getattr(run.bank, name)
            bank.decoder.copy_(run.bank.decoder)
        hist[:, :, trained_index] = run.losses
        norms = np.repeat(np.array(norms), epochs + 1, axis=0)
        norms[:, :, trained_index] = run.weight_norms
        steps = run.steps
    seconds = run.seconds if trained_index else time.perf_counter() - t0   # (training time, resumed runs included)
    return BankRun(bank, hist, np.array(norms), seconds, steps, initial)


def _train(bank: InfoMaxBank, x: torch.Tensor, epochs: int, batch_size: int, lr: float, show_progress: bool,
           desc: str, checkpoint: Path | None = None, config: dict | None = None) -> BankRun:
    """Train every model of ``bank`` on ``x`` with Adam: the loop of :func:`train_bank`."""
    bank.project_()
    # Adam is elementwise: each model keeps its own state.  The compiled optimizer where it is
    # vectorised (:class:`BankAdam`; its other builds are plain loops, slower than torch's), else
    # torch's fused Adam.
    compiled_step = bank.compiled_step(x)      # (no autograd: InfoMaxBank.loss_and_grad_)
    bank_opt = BankAdam(bank, lr) if compiled_step and infomax_backend() == "cpp-avx512" else None
    opt = torch.optim.Adam(bank.parameters(), lr=lr, fused=True) if bank_opt is None else None
    norms = [bank.weight.detach().norm(dim=-1).mean(-1).cpu().numpy()]
    with checkpoints.claimed(checkpoint):
        return _train_epochs(bank, x, epochs, batch_size, desc, show_progress, checkpoint, config, compiled_step,
                             bank_opt, opt, norms)


def _train_epochs(bank, x, epochs, batch_size, desc, show_progress, checkpoint, config, compiled_step, bank_opt,
                  opt, norms) -> BankRun:
    """The epochs of :func:`_train`, resumed from ``checkpoint`` (keyed by ``config``) if it exists."""
    seeds = bank.seeds
    optimizer = bank_opt or opt      # (the one whose state a checkpoint keeps)
    on_cpu = x.device.type == "cpu"
    hist = []
    steps = 0
    seconds = 0.0
    if checkpoint is not None and checkpoint.is_file():
        state = checkpoints.load(checkpoint, config, map_location=bank.weight.device)
        bank.load_state_dict(state["bank"])
        optimizer.load_state_dict(state["optimizer"])
        hist, norms, steps, seconds = state["losses"], state["weight_norms"], state["steps"], state["seconds"]
    t0 = time.perf_counter()
    epoch_iter = range(len(hist), epochs)
    if show_progress:
        from .progress import progress
        epoch_iter = progress(epoch_iter, desc=desc, leave=False, initial=len(hist), total=epochs)
    # see actfn.memory (a step reuses the last step's pages) and kernels.flushed_denormals (saturated
    # activations would otherwise slow a long run's steps ~3x)
    with recycled_memory(), flushed_denormals():
        for epoch in epoch_iter:
            total = torch.zeros(len(seeds), len(bank.settings), device=x.device)
            count = 0
            for xb in seed_batches(x, seeds, epoch, batch_size):
                # the models are independent: the sum's gradient is each model's own gradient
                if compiled_step:
                    loss = bank.loss_and_grad_(xb, bank_opt.rows if bank_opt is not None else None)
                else:
                    loss = bank.losses(xb)
                    for p in (bank.bias, bank.decoder, bank.knots):
                        p.grad = None        # (the weight's gradient is overwritten: see StackedLinear)
                    loss.sum().backward()
                if on_cpu:    # (on a GPU, once an epoch below: a check every step would wait for the GPU)
                    _require_finite(loss, seeds, bank.settings, epoch, checkpoint)
                if bank_opt is not None:
                    bank_opt.step()      # Adam, the unit-row projection and the bfloat16 copy
                else:
                    opt.step()
                    bank.project_()
                total += loss.detach()
                count += 1
                steps += 1
            _require_finite(total, seeds, bank.settings, epoch, checkpoint)
            hist.append((total / count).cpu().numpy())
            norms.append(bank.weight.detach().norm(dim=-1).mean(-1).cpu().numpy())
            if checkpoint is not None:
                checkpoints.save(checkpoint, config, {
                    "bank": bank.state_dict(), "optimizer": optimizer.state_dict(), "losses": hist,
                    "weight_norms": norms, "steps": steps, "seconds": seconds + time.perf_counter() - t0})
    return BankRun(bank, np.array(hist), np.array(norms), seconds + time.perf_counter() - t0, steps)


def _require_finite(loss: torch.Tensor, seeds, settings, epoch: int, checkpoint):
    """Stop with the models whose loss is not finite (``loss`` (S, G)), and where the last good state is."""
    if not torch.isfinite(loss).all():
        bad = [(seeds[i], settings[j]) for i, j in zip(*torch.nonzero(~torch.isfinite(loss)).T.tolist())]
        raise FloatingPointError(f"non-finite InfoMax loss at epoch {epoch + 1} for {bad[:3]}; the last "
                                 f"good checkpoint is {checkpoint if checkpoint else 'not kept (no checkpoint path)'}")


class BankAdam:
    """Adam (torch.optim.Adam's update, betas 0.9 and 0.999, eps 1e-8) on every parameter of a bank in
    the compiled kernel (``adam_rows`` of csrc/infomax_cpu.cpp).  Each row of the weights is updated,
    projected back to unit length if its model is norm-constrained, and copied to bfloat16 for the
    next step's products if they are bfloat16 -- one pass over the rows instead of four (measured: a
    bfloat16 bank step 10-15 % faster, a float32 one about the same).  It keeps the weights and
    decoders as :class:`ProductRows` (``rows``), the layout of the bank's fused products.  The biases
    and knots, small, take the same kernel: torch's fused Adam spent most of its 0.3 ms a step (K = 16)
    outside the arithmetic.  :func:`train_bank` uses it with AVX-512 builds of the kernel.  (Tested
    against torch.optim.Adam followed by :func:`unit_rows_`.)"""

    def __init__(self, bank: "InfoMaxBank", lr: float):
        self.bank, self.lr, self.t = bank, lr, 0
        self.kernel = infomax_kernel()
        self.rows = ProductRows(bank)
        self.exp_avg = torch.zeros_like(self.rows.master)
        self.exp_avg_sq = torch.zeros_like(self.rows.master)
        self.small = {name: (torch.zeros_like(getattr(bank, name)), torch.zeros_like(getattr(bank, name)))
                      for name in ("bias", "knots")}
        unit = torch.zeros(bank.weight.shape[:3], dtype=torch.uint8)
        for lo, hi in bank.unit_row_runs:
            unit[:, lo:hi] = 1
        self.unit = unit if bank.unit_row_runs else None

    def state_dict(self) -> dict:
        return {"t": self.t, "exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq,
                "low_rows": self.rows.rows if self.bank.bf16 else None,
                **{f"{name}_moments": moments for name, moments in self.small.items()}}

    def load_state_dict(self, state: dict):
        self.t = state["t"]
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])
        for name, (m, v) in self.small.items():
            m.copy_(state[f"{name}_moments"][0])
            v.copy_(state[f"{name}_moments"][1])
        if self.bank.bf16:
            self.rows.rows.copy_(state["low_rows"])

    @torch.no_grad()
    def step(self):
        g, low = self.bank.weight.shape[1], (self.rows.rows if self.bank.bf16 else None)
        weight_grad = self.rows.grad if low is not None else self.bank.weight.grad
        parts = [(slice(0, g), weight_grad, self.unit)]
        if self.bank.decoder.shape[1] and self.bank.decoder.grad is not None:
            parts.append((slice(g, None), self.bank.decoder.grad, None))
        self.t += 1
        adam = lambda p, grad, m, v, unit, lo: self.kernel.adam_rows(p, grad, m, v, unit, lo, self.lr, 0.9, 0.999,
                                                                      1e-8, self.t)
        for i in range(self.rows.master.shape[0]):       # seed by seed: each seed's rows are contiguous
            for at, grad, unit in parts:
                adam(self.rows.master[i, at], grad[i], self.exp_avg[i, at], self.exp_avg_sq[i, at],
                     unit[i] if unit is not None else None, low[i, at] if low is not None else None)
        for name, (m, v) in self.small.items():
            p = getattr(self.bank, name)
            adam(p.data, p.grad, m, v, None, None)


class OneLayer(torch.nn.Module):
    """One model the conventional way (nn.Linear, an activation module, a decoder if it reconstructs).

    :func:`train_one_model` trains it with ``torch.optim.Adam`` over the same minibatches a bank sees:
    the plain one-run-at-a-time loop that the bank replaces, kept as its readable reference (the
    tests check that both give the same weights) and as the benchmark's baseline.
    """

    def __init__(self, setting: Setting, seed: int, k: int, d: int, matmul_precision: str = "float32"):
        super().__init__()
        self.setting, self.bf16 = setting, check_matmul_precision(matmul_precision)
        self.linear = torch.nn.Linear(d, k)
        with torch.no_grad():
            self.linear.weight.copy_(xavier_weights(seed, k, d))
            self.linear.bias.zero_()
        self.pwl = PiecewiseLinearActivation(PWL_KNOTS, PWL_RANGE) if setting.activation == "pwl" else None
        self.decoder = None
        if setting.objective == "reconstruction":
            self.decoder = torch.nn.Linear(k, d, bias=False)     # W', starting tied to W
            with torch.no_grad():
                self.decoder.weight.copy_(self.linear.weight.T)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with bf16_products(x, self.bf16):
            z = self.linear(x).float()
        return self.pwl(z) if self.pwl is not None else activate(z, self.setting.activation)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        a = self(x)
        if self.decoder is not None:
            with bf16_products(x, self.bf16):
                x_hat = self.decoder(a).float()
            return (x - x_hat).pow(2).sum(-1).mean()
        return infomax_loss(a, self.setting.lam if self.setting.objective == "infomax" else 0.0)


def train_one_model(setting: Setting, seed: int, k: int, x: torch.Tensor, epochs: int, batch_size: int = 128,
                    lr: float = 1e-3, matmul_precision: str = "float32") -> tuple[OneLayer, np.ndarray]:
    """Train one model alone, conventionally; returns the model and its per-epoch mean training loss."""
    model = OneLayer(setting, seed, k, x.shape[1], matmul_precision)
    if setting.objective == "random":
        return model, np.zeros(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    if setting.constraint == "unit_rows":
        unit_rows_(model.linear.weight)
    curve = []
    for epoch in range(epochs):
        total, count = 0.0, 0
        for (xb,) in seed_batches(x, [seed], epoch, batch_size):
            loss = model.loss(xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if setting.constraint == "unit_rows":
                unit_rows_(model.linear.weight)
            total, count = total + loss.item(), count + 1
        curve.append(total / count)
    return model, np.array(curve)


# ----------------------------------------------------------------------------------------------
# Metrics, on a fixed held-out set (never on training minibatches: see independent_correlation_floor)

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
    with torch.no_grad():
        z = x @ w.T + b
        kn = knots.view(1, -1) if knots is not None else None
        a = activate(z.unsqueeze(0), activation, kn).squeeze(0) if activation == "pwl" else activate(z, activation)
    gain = activation_gain(z.unsqueeze(0), activation, kn).squeeze(0) if activation == "pwl" else activation_gain(z, activation)
    max_gain = {"identity": 1.0, "relu": 1.0, "leaky_relu": 1.0, "softplus": 1.0, "tanh": 1.0, "softmax": 0.25,
                "swish": 1.1, "pwl": float(gain.max().clamp_min(1e-12))}[activation]
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


# ----------------------------------------------------------------------------------------------
# The study: every activation x objective x lambda x constraint x seed for each K

def study_settings(activations, lambdas, constraints=("none",), objectives=OBJECTIVES) -> list[Setting]:
    """The settings of one K, grouped by activation (the bank applies f once per group).

    InfoMax runs at every lambda and constraint; variance_only at every constraint; reconstruction
    and random unconstrained (their scale is not what the constraint is about).  The reconstruction
    models come last, together, so that the bank reads their activations as one slice.
    """
    out, recon = [], []
    for act in activations:
        for c in constraints:      # one constraint after the other: the bank projects contiguous runs
            if "infomax" in objectives:
                out += [Setting(act, "infomax", float(lam), c) for lam in lambdas]
            if "variance_only" in objectives:
                out.append(Setting(act, "variance_only", 0.0, c))
        if "random" in objectives:
            out.append(Setting(act, "random", 0.0, "none"))
        if "reconstruction" in objectives:
            recon.append(Setting(act, "reconstruction", 0.0, "none"))
    return out + recon


def check_study_parameters(activations, Ks, lambdas, seeds, epochs, constraints=("none",)):
    require(len(activations) >= 1 and all(a in ACTIVATIONS for a in activations), "activations", activations,
            f"must be a non-empty list of {ACTIVATIONS}")
    require(len(Ks) >= 1 and all(isinstance(k, int) and k >= 2 for k in Ks), "Ks", Ks, "must be a non-empty list of integers >= 2")
    require(len(lambdas) >= 1 and all(isinstance(v, (int, float)) and v >= 0 for v in lambdas), "lambdas", lambdas,
            "must be a non-empty list of numbers >= 0")
    require(len(seeds) >= 1 and all(isinstance(s, int) for s in seeds) and len(set(seeds)) == len(seeds), "seeds",
            seeds, "must be a non-empty list of distinct integers")
    require(isinstance(epochs, int) and epochs >= 1, "epochs", epochs, "must be an integer >= 1")
    require(len(constraints) >= 1 and all(c in CONSTRAINTS for c in constraints), "constraints", constraints,
            f"must be a non-empty list of {CONSTRAINTS}")


def _with_progress(items: list, show_progress: bool, desc: str):
    """``items``, behind a progress bar if asked (the metrics and the probes of the design's full
    setting take minutes per K)."""
    if show_progress:
        from .progress import progress
        return progress(items, desc=desc, leave=False)
    return items


def bank_records(run: BankRun, x_eval: torch.Tensor, show_progress: bool = False) -> list[dict]:
    """One record per (seed, setting) of a trained bank: the setting, the metrics on ``x_eval`` (N, D),
    or on each model's own (S, G, N, D), the curve."""
    bank = run.bank
    records = []
    models = [(i, seed, j, s) for i, seed in enumerate(bank.seeds) for j, s in enumerate(bank.settings)]
    for i, seed, j, s in _with_progress(models, show_progress, f"K={bank.k}: metrics"):
        w, b = bank.weight[i, j].detach(), bank.bias[i, j].detach()
        knots = bank.knots[i, j].detach() if s.activation == "pwl" else None
        m = model_metrics(w, b, s.activation, x_eval[i, j] if x_eval.dim() == 4 else x_eval, lam=s.lam if s.objective == "infomax" else 1.0, knots=knots)
        curve = run.losses[:, i, j]
        records.append({
            "activation": s.activation, "K": bank.k, "lambda": s.lam if s.objective == "infomax" else None,
            "seed": seed, "objective": s.objective, "constraint": s.constraint,
            "final_loss": float(curve[-1]) if s.objective != "random" else None,
            "convergence_epoch": convergence_epoch(curve) if s.objective != "random" else None,
            "converged_epoch": converged_epoch(curve) if s.objective != "random" else None,
            "weight_norm_start": float(run.weight_norms[0, i, j]), **m,
            "curve": [float(v) for v in curve] if s.objective != "random" else None,
            "weight_norm_curve": [float(v) for v in run.weight_norms[:, i, j]],
        })
    return records


def checkpoint_path(checkpoint_dir, name: str, settings, seeds, k, epochs, batch_size, lr, matmul_precision,
                    resume: bool) -> Path:
    """The checkpoint file of one bank, named by its settings and hyperparameters (the data are checked
    inside, by :func:`train_bank`); removed unless ``resume``."""
    import hashlib
    import json

    key = json.dumps([[asdict(s) for s in settings], list(seeds), k, epochs, batch_size, lr, matmul_precision],
                     sort_keys=True)
    path = Path(checkpoint_dir) / f"infomax_{name}_{hashlib.sha256(key.encode()).hexdigest()[:10]}.pt"
    if not resume and path.exists():
        path.unlink()
    return path


def run_study(x_train: torch.Tensor, x_eval: torch.Tensor, activations, Ks, lambdas, seeds, epochs: int,
              constraints=("none",), batch_size: int = 128, lr: float = 1e-3, show_progress: bool = True,
              matmul_precision: str = "float32", checkpoint_dir: str | os.PathLike | None = None,
              resume: bool = False, device: str | torch.device | None = None):
    """Train one bank per K on ``x_train``; returns (records, {K: BankRun}).

    With ``checkpoint_dir``, each K's bank writes a checkpoint there after every epoch (see
    :func:`train_bank`); ``resume=False`` removes an existing one of the same run first (the numbers
    come from this execution), ``resume=True`` continues from it.  ``device``: where the banks train
    (see :func:`train_bank`; the metrics are computed on the CPU).
    """
    check_study_parameters(activations, Ks, lambdas, seeds, epochs, constraints)
    settings = study_settings(activations, lambdas, constraints)
    records, banks = [], {}
    for k in Ks:
        ckpt = None
        if checkpoint_dir:
            ckpt = checkpoint_path(checkpoint_dir, f"K{k}", settings, seeds, k, epochs, batch_size, lr,
                                   matmul_precision, resume)
        run = train_bank(settings, list(seeds), k, x_train, epochs, batch_size, lr, show_progress=show_progress,
                         desc=f"K={k}: {len(settings) * len(seeds)} models", matmul_precision=matmul_precision,
                         checkpoint=ckpt, device=device)
        banks[k] = run
        records += bank_records(run, x_eval, show_progress)
    return records, banks


def layer_outputs(run: BankRun, seed_index: int, setting_index: int, x: torch.Tensor) -> torch.Tensor:
    """a = f(W x + b) of one model of a bank, for inputs ``x`` (N, D)."""
    bank = run.bank
    s = bank.settings[setting_index]
    with torch.no_grad():
        z = x @ bank.weight[seed_index, setting_index].T + bank.bias[seed_index, setting_index]
        if s.activation == "pwl":
            return activate(z.unsqueeze(0), "pwl", bank.knots[seed_index, setting_index].view(1, -1)).squeeze(0)
        return activate(z, s.activation)


def standardise_features(train: torch.Tensor, test: torch.Tensor):
    mean, sd = train.mean(0), train.std(0).clamp_min(1e-6)
    return (train - mean) / sd, (test - mean) / sd


def logistic_loss_and_grad(w: torch.Tensor, b: torch.Tensor, features: torch.Tensor, features_t: torch.Tensor,
                           onehot_t: torch.Tensor, weight_decay: float):
    """mean_n CE(W f_n + b, y_n) + weight_decay ||W||^2 and its gradients (dW, db), written out (tested
    against autograd).  The logits are laid out classes x samples (``features_t`` (D, N), ``onehot_t``
    (C, N); ``features`` (N, D) for the weight gradient): torch's log_softmax over rows of 10 classes
    took most of each L-BFGS evaluation, while the reductions across the 10 rows of this layout run at
    memory speed (the probes of the design's full setting: 320 fits on 60,000 images)."""
    n = features.shape[0]
    logits = torch.addmm(b.unsqueeze(1), w, features_t)                         # (C, N)
    logits -= logits.amax(0)
    log_p = logits.sub_(logits.exp().sum(0).log_())
    loss = -(log_p * onehot_t).sum() / n + weight_decay * w.pow(2).sum()
    residual = log_p.exp_().sub_(onehot_t).div_(n)                              # d loss / d logits
    return loss, torch.addmm(w, residual, features, beta=2 * weight_decay), residual.sum(1)


PROBE_ITERATIONS = 200     # L-BFGS iterations of a linear probe at most


def linear_probe(f_train: torch.Tensor, y_train: torch.Tensor, f_test: torch.Tensor, y_test: torch.Tensor,
                 weight_decay: float = 1e-4, iters: int = PROBE_ITERATIONS) -> float:
    """Test accuracy of multinomial logistic regression on frozen features (standardised; L-BFGS, full batch)."""
    f_train, f_test = standardise_features(f_train.double(), f_test.double())
    classes = int(max(y_train.max(), y_test.max())) + 1
    features_t = f_train.T.contiguous()
    onehot_t = F.one_hot(y_train, classes).double().T.contiguous()
    w = torch.zeros(classes, f_train.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iters, history_size=20, line_search_fn="strong_wolfe")

    @torch.no_grad()
    def closure():
        loss, w.grad, b.grad = logistic_loss_and_grad(w, b, f_train, features_t, onehot_t, weight_decay)
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float((torch.addmm(b, f_test, w.T).argmax(1) == y_test).double().mean())


SYNTHETIC_2D = ("gaussian_clusters", "uniform")


def synthetic_2d(kind: str, n: int = 4000, seed: int = 0, clusters: int = 5) -> torch.Tensor:
    """2-D inputs whose learned weight vectors can be drawn: ``gaussian_clusters`` (``clusters``
    isotropic Gaussians, sd 0.4, centred on a circle of radius 2) or ``uniform`` (the square
    [-sqrt 3, sqrt 3]^2, unit variance per coordinate)."""
    require(kind in SYNTHETIC_2D, "synthetic", kind, f"must be one of {SYNTHETIC_2D}")
    gen = torch.Generator().manual_seed(seed)
    if kind == "uniform":
        return (torch.rand(n, 2, generator=gen) * 2 - 1) * math.sqrt(3.0)
    angles = torch.arange(clusters) * (2 * math.pi / clusters)
    centres = 2.0 * torch.stack([angles.cos(), angles.sin()], 1)
    which = torch.randint(0, clusters, (n,), generator=gen)
    return centres[which] + 0.4 * torch.randn(n, 2, generator=gen)


# ----------------------------------------------------------------------------------------------
# Follow-ups of the design: depth (two stacked InfoMax layers) and transfer (a linear probe)

def setting_index(run: BankRun, activation: str, objective: str, lam: float | None = None,
                  constraint: str = "none") -> int:
    for j, s in enumerate(run.bank.settings):
        if (s.activation, s.objective, s.constraint) == (activation, objective, constraint) and \
                (objective != "infomax" or lam is None or s.lam == lam):
            return j
    raise KeyError(f"no setting {activation}/{objective}/lambda={lam}/{constraint} in this bank")


def depth_followup(run: BankRun, x_train, x_eval, activations, k2: int, epochs: int, lam: float = 1.0,
                   batch_size: int = 128, lr: float = 1e-3, show_progress: bool = False,
                   checkpoint_dir: str | os.PathLike | None = None, resume: bool = False,
                   device: str | torch.device | None = None) -> list[dict]:
    """Greedy stacking: a second InfoMax layer (K2 units, same activation) on the standardised outputs of
    each seed's trained first layer; metrics of both layers on held-out data, per activation and seed.

    Every second layer is trained at once, as one bank (seeds x activations) whose models each read
    their own first layer's outputs: the same models as training each one alone (tested)."""
    seeds = run.bank.seeds
    first = [setting_index(run, act, "infomax", lam) for act in activations]
    h_train, h_eval = [], []
    for i in range(len(seeds)):
        pairs = [standardise_features(layer_outputs(run, i, j, x_train), layer_outputs(run, i, j, x_eval)) for j in first]
        h_train.append(torch.stack([p[0] for p in pairs]))
        h_eval.append(torch.stack([p[1] for p in pairs]))
    settings, h_train = [Setting(act, "infomax", lam) for act in activations], torch.stack(h_train)
    ckpt = None
    if checkpoint_dir:
        ckpt = checkpoint_path(checkpoint_dir, f"depth_K{k2}", settings, seeds, k2, epochs, batch_size, lr, "float32",
                               resume)
    second = train_bank(settings, seeds, k2, h_train, epochs, batch_size, lr, show_progress=show_progress,
                        desc=f"depth: {len(activations) * len(seeds)} second layers", checkpoint=ckpt, device=device)
    records = bank_records(second, torch.stack(h_eval), show_progress)
    rows = []
    for g, (act, j) in enumerate(zip(activations, first)):
        for i, seed in enumerate(seeds):
            m2 = records[i * len(activations) + g]
            m1 = model_metrics(run.bank.weight[i, j].detach(), run.bank.bias[i, j].detach(), act, x_eval, lam,
                               run.bank.knots[i, j].detach() if act == "pwl" else None)
            rows.append({"activation": act, "seed": seed, "K1": run.bank.k, "K2": k2,
                         **{f"layer1_{m}": m1[m] for m in ("effective_rank", "output_correlation", "total_correlation", "dead_units")},
                         **{f"layer2_{m}": m2[m] for m in ("effective_rank", "output_correlation", "total_correlation", "dead_units")},
                         "layer2_floor": m2["correlation_floor"]})
    return rows


def probe_followup(run: BankRun, x_train, y_train, x_test, y_test, activations, lam: float = 1.0,
                   objectives=("infomax", "variance_only", "reconstruction", "random"),
                   show_progress: bool = False) -> list[dict]:
    """Linear-probe test accuracy on each model's frozen features, per activation, objective and seed."""
    probes = [(act, obj, setting_index(run, act, obj, lam), i, seed) for act in activations for obj in objectives
              for i, seed in enumerate(run.bank.seeds)]
    rows = []
    for act, obj, j, i, seed in _with_progress(probes, show_progress, f"K={run.bank.k}: linear probes"):
        acc = linear_probe(layer_outputs(run, i, j, x_train), y_train, layer_outputs(run, i, j, x_test), y_test)
        rows.append({"activation": act, "objective": obj, "seed": seed, "K": run.bank.k, "probe_accuracy": acc})
    return rows
