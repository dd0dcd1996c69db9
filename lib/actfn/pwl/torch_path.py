"""The PyTorch path: the learned activation in eager tensor ops with its backward pass written out.

Used where no compiled kernel runs (``ACTFN_KERNELS=off``, no compiler, other devices): it saves only
the input and the knot values, as SiLU saves its input, and computes the knot gradient as a weighted
histogram over the segments instead of autograd's scatter-add through a gather.  Tested against
:func:`.reference.piecewise_linear_reference`; the operator's CUDA implementation falls back to it
for inputs its kernels do not take.
"""
from __future__ import annotations

import torch

from .reference import _flat_index, _segment_and_fraction, _segment_tables


_GPU_HISTOGRAM_BLOCKS = 2048


def segment_histogram(index: torch.Tensor, weights: torch.Tensor, size: int, blocks: int = 1) -> torch.Tensor:
    """``out[j] = sum of weights[index == j]`` for ``j < size``.

    A scatter_add_ into a zeroed table: serial (so deterministic) on the CPU, and unlike bincount
    it neither scans for the min/max index nor converts the weights to float64.  On a GPU the
    atomic adds of millions of elements into ~32 addresses serialise, so with ``blocks > 1``
    consecutive runs of elements add into their own copy of the table and the copies are summed.
    """
    if blocks <= 1 or index.numel() < 4 * blocks:
        return torch.zeros(size, dtype=weights.dtype, device=weights.device).scatter_add_(0, index, weights)
    n = index.numel()
    block_of = torch.arange(n, device=index.device).mul_(blocks).div_(n, rounding_mode="floor")
    table = torch.zeros(blocks * size, dtype=weights.dtype, device=weights.device)
    table.scatter_add_(0, index + block_of * size, weights)
    return table.view(blocks, size).sum(0)


def _torch_forward(x, y, lo: float, hi: float):
    """f(x), in tensor ops."""
    n = y.shape[-1]
    h = (hi - lo) / (n - 1)
    idx, u = _segment_and_fraction(x, lo, h, n)
    idx = _flat_index(x, idx, y)
    left, rise = _segment_tables(y)
    # torch.take on the small flat tables is a plain gather (faster than advanced indexing)
    return torch.addcmul(torch.take(left, idx), torch.take(rise, idx), u)


def _torch_backward(grad_out, x, y, lo: float, hi: float, need_x: bool, need_y: bool):
    n = y.shape[-1]
    h = (hi - lo) / (n - 1)
    idx, u = _segment_and_fraction(x, lo, h, n)
    idx = _flat_index(x, idx, y)
    grad_x = grad_y = None
    if need_x:
        _, rise = _segment_tables(y)
        grad_x = grad_out * torch.take(rise / h, idx)
    if need_y:
        # out = left_i + rise_i u: d/d left_i = 1, d/d rise_i = u, two weighted histograms over segments
        flat = idx.reshape(-1)
        g = grad_out.reshape(-1)
        size = y.numel() - (y.shape[0] if y.dim() == 2 else 1)  # number of segments in the tables
        blocks = 1 if g.device.type == "cpu" else _GPU_HISTOGRAM_BLOCKS
        g_left = segment_histogram(flat, g, size, blocks)
        g_rise = segment_histogram(flat, g * u.reshape(-1), size, blocks)
        g_left, g_rise = g_left.view(*y.shape[:-1], n - 1), g_rise.view(*y.shape[:-1], n - 1)
        # left_i = y_i, rise_i = y_{i+1} - y_i
        grad_y = torch.zeros_like(y, dtype=g_left.dtype)
        grad_y[..., :-1] += g_left - g_rise
        grad_y[..., 1:] += g_rise
        grad_y = grad_y.to(y.dtype)
    return grad_x, grad_y


class PiecewiseLinearFunction(torch.autograd.Function):
    """``f(x)`` for knot values ``y`` of shape ``(N,)`` (shared) or ``(C, N)`` (channel dim 1 of x), on
    the PyTorch path."""

    @staticmethod
    def forward(ctx, x, y, lo: float, hi: float):
        ctx.save_for_backward(x, y)
        ctx.lo, ctx.hi = lo, hi
        return _torch_forward(x, y, lo, hi)

    @staticmethod
    def backward(ctx, grad_out):
        x, y = ctx.saved_tensors
        need_x, need_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        gx, gy = _torch_backward(grad_out, x, y, ctx.lo, ctx.hi, need_x, need_y)
        return (gx if need_x else None), (gy if need_y else None), None, None
