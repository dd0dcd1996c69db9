"""Piecewise-linear activation on a uniform knot grid (seed 000, section 3.2).

f is given by its values ``y_0 .. y_{N-1}`` at uniform knots ``t_i = lo + i h`` on ``[lo, hi]``
and continues *linearly* outside the range with the slope of the end segments, so that the
closed-form Gaussian integrals of :mod:`actfn.gaussian` have two unbounded end segments.

The forward/backward pair is a custom :class:`torch.autograd.Function` that saves only the
input and the knot values.  The segment index is a floor (the grid is uniform, so no search) and
the knot gradient is a weighted histogram over the segments, recomputed in backward.
"""
from __future__ import annotations

import math

import torch
from torch import nn

INITS = ("relu", "identity", "swish")


def _segment_and_fraction(x: torch.Tensor, lo: float, h: float, n_knots: int):
    """Segment index ``i`` in ``[0, N-2]`` and position ``u = (x - t_i)/h`` (outside [0, 1] off-grid)."""
    s = (x - lo) / h
    # NaN inputs get segment 0 so that indexing is safe; their output is NaN through u.
    idx = torch.nan_to_num(torch.floor(s), nan=0.0).clamp_(0, n_knots - 2)
    u = s - idx
    return idx.long(), u


def _channel_offsets(x: torch.Tensor, n_knots: int) -> torch.Tensor:
    """For per-channel knots: flat offset ``c * N`` broadcastable against ``x`` (channels on dim 1)."""
    c = x.shape[1]
    shape = [1] * x.dim()
    shape[1] = c
    return (torch.arange(c, device=x.device) * n_knots).view(shape)


class PiecewiseLinearFunction(torch.autograd.Function):
    """``f(x)`` for knot values ``y`` of shape ``(N,)`` (shared) or ``(C, N)`` (channel dim 1 of x)."""

    @staticmethod
    def forward(ctx, x, y, lo: float, hi: float):
        n = y.shape[-1]
        h = (hi - lo) / (n - 1)
        idx, u = _segment_and_fraction(x, lo, h, n)
        if y.dim() == 2:
            idx = idx + _channel_offsets(x, n)
        # torch.take on the flat knot table is a plain gather (faster than advanced indexing)
        y_left = torch.take(y, idx)
        slope = torch.take(y, idx + 1) - y_left
        out = y_left + slope * u
        ctx.save_for_backward(x, y)
        ctx.lo, ctx.hi = lo, hi
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, y = ctx.saved_tensors
        lo, hi = ctx.lo, ctx.hi
        n = y.shape[-1]
        h = (hi - lo) / (n - 1)
        idx, u = _segment_and_fraction(x, lo, h, n)
        grad_x = grad_y = None
        if ctx.needs_input_grad[0]:
            slopes = (y[..., 1:] - y[..., :-1]) / h          # (N-1,) or (C, N-1): one gather, not two
            seg = idx + _channel_offsets(x, n - 1) if y.dim() == 2 else idx
            grad_x = grad_out * torch.take(slopes, seg)
        if ctx.needs_input_grad[1]:
            # d out / d y_i = 1 - u,  d out / d y_{i+1} = u : two weighted histograms over the segments
            flat = (idx + _channel_offsets(x, n) if y.dim() == 2 else idx).reshape(-1)
            g = grad_out.reshape(-1)
            size = y.numel()
            total = torch.bincount(flat, weights=g, minlength=size)          # sum of g per segment
            right = torch.bincount(flat, weights=g * u.reshape(-1), minlength=size)  # sum of g u
            grad_y = total - right
            grad_y[1:] += right[:-1]
            grad_y = grad_y.view_as(y).to(y.dtype)
        return grad_x, grad_y, None, None


def piecewise_linear(x: torch.Tensor, y: torch.Tensor, lo: float = -3.0, hi: float = 3.0) -> torch.Tensor:
    """Evaluate the piecewise-linear function with knot values ``y`` on ``[lo, hi]`` at ``x``."""
    return PiecewiseLinearFunction.apply(x, y, float(lo), float(hi))


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


def initial_knot_values(knots: torch.Tensor, init: str) -> torch.Tensor:
    if init == "relu":
        return knots.clamp(min=0)
    if init == "identity":
        return knots.clone()
    if init == "swish":
        return knots * torch.sigmoid(knots)
    raise ValueError(f"init must be one of {INITS}, got {init!r}")


class PiecewiseLinearActivation(nn.Module):
    """Learnable activation: values at ``num_knots`` uniform knots on ``x_range``, linear outside.

    ``PiecewiseLinearActivation()`` is the seed's default: 33 knots on [-3, 3], one set shared by
    the whole layer, initialised as ReLU.  ``num_channels=C`` gives every channel (dim 1) its own
    knots.  :meth:`project_` is the post-step projection (left knot anchored to zero, optional
    L2 normalisation of the knot values).
    """

    def __init__(self, num_knots: int = 33, x_range: tuple[float, float] = (-3.0, 3.0),
                 num_channels: int | None = None, init: str = "relu"):
        super().__init__()
        if not isinstance(num_knots, int) or num_knots < 2:
            raise ValueError(f"num_knots must be an integer >= 2, got {num_knots!r}")
        lo, hi = (float(v) for v in x_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"x_range must be finite with lo < hi, got {x_range!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        if num_channels is not None and (not isinstance(num_channels, int) or num_channels < 1):
            raise ValueError(f"num_channels must be None or a positive integer, got {num_channels!r}")
        self.lo, self.hi, self.num_knots, self.num_channels, self.init = lo, hi, num_knots, num_channels, init
        self.register_buffer("knots", torch.linspace(lo, hi, num_knots), persistent=False)
        y = initial_knot_values(self.knots, init)
        if num_channels is not None:
            y = y.expand(num_channels, num_knots).clone()
        self.values = nn.Parameter(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.num_channels is not None and (x.dim() < 2 or x.shape[1] != self.num_channels):
            raise ValueError(f"per-channel activation expects {self.num_channels} channels on dim 1, "
                             f"got input of shape {tuple(x.shape)}")
        return piecewise_linear(x, self.values.to(x.dtype), self.lo, self.hi)

    @torch.no_grad()
    def project_(self, normalize: bool = False) -> None:
        """Anchor the left knot to zero and, if asked, scale the knot values to unit L2 norm.

        The correlation objective is invariant to ``f -> a f + b`` (a > 0), so this fixes the gauge
        without changing the objective.
        """
        v = self.values
        v -= v[..., :1].clone()
        if normalize:
            v /= v.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    def extra_repr(self) -> str:
        mode = "shared" if self.num_channels is None else f"per_channel={self.num_channels}"
        return f"num_knots={self.num_knots}, x_range=({self.lo}, {self.hi}), {mode}, init={self.init}"
