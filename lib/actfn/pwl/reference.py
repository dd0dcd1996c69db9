"""The specification of the learned activation, in plain PyTorch.

f is given by its values ``y_0 .. y_{N-1}`` at uniform knots ``t_i = lo + i h`` on ``[lo, hi]`` and
continues *linearly* outside the range with the slope of the end segments (so the closed-form
Gaussian integrals of :mod:`actfn.theory.gaussian` have two unbounded end segments).  Knot values
are ``(N,)`` (one f for the whole tensor) or ``(C, N)`` (one per channel, dim 1 of x).

:func:`piecewise_linear_reference` is the definition: a segment index, a gather and an
interpolation, differentiated by autograd.  Every faster implementation (:mod:`.torch_path`, the
compiled kernels behind :mod:`.op`) is tested against it.
"""
from __future__ import annotations

import torch


def _segment_and_fraction(x: torch.Tensor, lo: float, h: float, n_knots: int):
    """Segment index ``i`` in ``[0, N-2]`` and position ``u = (x - t_i)/h`` (outside [0, 1] off-grid).

    Four passes over x: s = (x - lo)/h as one fused multiply-add, floor+clamp (in place), u, and the
    integer index.  NaN inputs get segment 0 so that indexing is safe; their output is NaN through u.
    """
    s = torch.addcmul(torch.tensor(-lo / h, dtype=x.dtype, device=x.device), x,
                      torch.tensor(1.0 / h, dtype=x.dtype, device=x.device))
    idx = s.floor().clamp_(0, n_knots - 2)
    u = s - idx
    return idx.nan_to_num_(0.0).long(), u


def _channel_offsets(x: torch.Tensor, stride: int) -> torch.Tensor:
    """For per-channel tables: flat offset ``c * stride`` broadcastable against ``x`` (channels on dim 1)."""
    c = x.shape[1]
    shape = [1] * x.dim()
    shape[1] = c
    return (torch.arange(c, device=x.device) * stride).view(shape)


def _segment_tables(y: torch.Tensor):
    """Per segment: left value ``y_i`` and rise ``y_{i+1} - y_i`` (f = left + rise * u on segment i)."""
    return y[..., :-1].contiguous(), (y[..., 1:] - y[..., :-1]).contiguous()


def _flat_index(x, idx, y):
    return idx + _channel_offsets(x, y.shape[-1] - 1) if y.dim() == 2 else idx


def piecewise_linear_reference(x: torch.Tensor, y: torch.Tensor, lo: float = -3.0, hi: float = 3.0) -> torch.Tensor:
    """Plain-autograd version of :func:`piecewise_linear` (gather + autograd); the tests' reference."""
    n = y.shape[-1]
    h = (hi - lo) / (n - 1)
    idx, u = _segment_and_fraction(x, lo, h, n)
    flat_y = y.reshape(-1)
    if y.dim() == 2:
        idx = idx + _channel_offsets(x, n)
    y_left = flat_y[idx]
    return y_left + (flat_y[idx + 1] - y_left) * u
