"""The bank: every model of one K as stacked tensors, S seeds x G settings, trained at once."""
from __future__ import annotations

import torch

from ..checks import require
from ..activations import PWL_KNOTS, PWL_RANGE, activate, kernel_index
from .fast_path import (InfoMaxBlocks, bank_kernel, ProductRows, ReconstructionBlocks, StackedLinear,
                        fused_products, fused_weight_grads_, reconstruction_blocks, reconstruction_terms,
                        stacked_products, stacked_weight_grad_)
from .loss import EPS, ReconstructionLoss, infomax_loss
from .setting import Setting, check_matmul_precision, xavier_weights

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
        # each model's branch of the compiled kernel; a bank with an activation the kernel has no branch
        # for takes the PyTorch path throughout
        kinds = [kernel_index(s.activation) for s in settings]
        self.kernel_branches = all(i is not None for i in kinds)
        self.register_buffer("kinds", torch.tensor([-1 if i is None else i for i in kinds]))
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
        kernel = bank_kernel() if x.device.type == "cpu" and self.kernel_branches else None     # (z^T is float32 either way)
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
                if kernel is not None:
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
        return x.device.type == "cpu" and self.kernel_branches and bank_kernel() is not None

    @torch.no_grad()
    def loss_and_grad_(self, x: torch.Tensor, rows: ProductRows | None = None) -> torch.Tensor:
        """The per-model losses (S, G) of :meth:`losses`, with the gradient of their sum written into
        the parameters' ``.grad`` (the weight's into ``rows.grad`` with bfloat16 ``rows``), without autograd.

        The compiled kernels compute every gradient with the loss, so autograd had only to carry
        them to the parameters, and this skips its graph and its slicing of the biases and knots.  The same numbers as ``losses(x, rows).sum().backward()`` (tested).
        Needs :meth:`compiled_step`.

        With ``rows`` (:class:`ProductRows`: each seed's weights and decoders in one storage) and a
        batch shared by each seed's models, the products are fused: one per seed gives every model's z
        and every decoder's W'^T x^T (:func:`fused_products`), one per seed every weight gradient and
        the decoders' a x term (:func:`fused_weight_grads_`), and the kernels read and write their parts
        of those products' operands in place (bfloat16 ones widened and narrowed model by model in
        cache).  Otherwise each span of models takes its own.
        """
        kernel = bank_kernel()
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
        kernel = bank_kernel()
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
