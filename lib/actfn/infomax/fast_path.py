"""The bank's compiled path on the CPU: the stacked and fused matrix products, the compiled loss
blocks (``csrc/infomax_cpu.cpp``) and the compiled Adam.  Every piece here computes what the plain
PyTorch of :mod:`.loss` and :mod:`.reference` computes, and is tested against it."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..activations import KERNEL_KINDS, PWL_RANGE
from ..kernels import infomax_kernel, onednn_matmul
from .loss import EPS

if TYPE_CHECKING:
    from .bank import InfoMaxBank

_checked: set[int] = set()


def bank_kernel():
    """The compiled InfoMax kernel (:func:`actfn.kernels.infomax_kernel`), or None; the first time, its
    activation branches are checked against the registry's :data:`actfn.activations.KERNEL_KINDS`,
    so that a branch added on one side only stops here rather than training the wrong f."""
    kernel = infomax_kernel()
    if kernel is not None and id(kernel) not in _checked:
        kinds = tuple(kernel.kinds())
        if kinds != KERNEL_KINDS:
            raise RuntimeError(f"csrc/infomax_cpu.cpp's activation branches {kinds} differ from "
                               f"actfn.activations.KERNEL_KINDS {KERNEL_KINDS}: change both together")
        _checked.add(id(kernel))
    return kernel


class TorchProducts:
    """``matmul_into(a, b, out, beta)``: out = a b + beta out by torch's own product (the default)."""

    @staticmethod
    def matmul_into(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, beta: float) -> None:
        if beta == 0:
            torch.mm(a, b, out=out)
        else:
            out.addmm_(a, b, beta=beta)


def float32_cpu_products(*tensors: torch.Tensor):
    """The float32 product into a given output if every tensor is float32 on the CPU: oneDNN's where it
    is asked for and loads (:func:`actfn.kernels.onednn_matmul`), else torch's; None otherwise."""
    if all(t.dtype == torch.float32 and t.device.type == "cpu" for t in tensors):
        return onednn_matmul() or TorchProducts
    return None


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
    mm = onednn_matmul() or TorchProducts
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
    copy them to merge S and R."""
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
    return bank_kernel().reconstruction_blocks(zt, proj, gram, xx, kinds, knots, *PWL_RANGE, need_grad, grad_out,
                                                  na_out, row_sums)


def fused_products(rows: ProductRows, bias: torch.Tensor, x_in: torch.Tensor) -> torch.Tensor:
    """z^T of every model and W'^T x^T of every decoder, one product per seed: (S, (G + R) K, B), rows in
    the order of ``rows.rows``, in their dtype (bfloat16 as under autocast, bias included; float32 by
    oneDNN where it loads): one large product rather than one per span of models and one for the
    decoders, two of them with few rows."""
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
    ``knots`` (S, M, 33), ``kinds`` (M,) the activations' kernel branches (:data:`actfn.activations.KERNEL_KINDS`), ``lam`` (M,).
    Tested against :func:`activate` + :func:`infomax_loss` under autograd.
    """

    @staticmethod
    def forward(ctx, zt, knots, kinds, lam):
        need_grad = bool(ctx.needs_input_grad[0] or ctx.needs_input_grad[1])
        loss, grad_zt, grad_knots = bank_kernel().infomax_blocks(zt, kinds, lam, knots, EPS, *PWL_RANGE,
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


class BankAdam:
    """Adam (torch.optim.Adam's update, betas 0.9 and 0.999, eps 1e-8) on every parameter of a bank in
    the compiled kernel (``adam_rows`` of csrc/infomax_cpu.cpp).  Each row of the weights is updated,
    projected back to unit length if its model is norm-constrained, and copied to bfloat16 for the
    next step's products if they are bfloat16 -- one pass over the rows instead of four.  It keeps the
    weights and decoders as :class:`ProductRows` (``rows``), the layout of the bank's fused products.
    The biases and knots, small, take the same kernel (torch's fused Adam spends most of its time on
    such small tensors outside the arithmetic).  :func:`train_bank` uses it with AVX-512 builds of the
    kernel.  (Tested
    against torch.optim.Adam followed by :func:`unit_rows_`.)"""

    def __init__(self, bank: "InfoMaxBank", lr: float):
        self.bank, self.lr, self.t = bank, lr, 0
        self.kernel = bank_kernel()
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
