"""Piecewise-linear activation on a uniform knot grid (seed 000, section 3.2).

f is given by its values ``y_0 .. y_{N-1}`` at uniform knots ``t_i = lo + i h`` on ``[lo, hi]``
and continues *linearly* outside the range with the slope of the end segments, so that the
closed-form Gaussian integrals of :mod:`actfn.theory.gaussian` have two unbounded end segments.

The forward/backward pair is a custom :class:`torch.autograd.Function` that saves only the
input and the knot values (under torch.compile/export its two passes are registered operators; in
eager mode on the CPU the compiled kernel's own autograd node, written in C++, does the same).  The segment index is a floor (the grid is uniform, so no search) and
the knot gradient is a weighted histogram over the segments, recomputed in backward.  On CPU
tensors both run in one fused pass each in a compiled kernel, and on CUDA tensors in CUDA kernels
(:mod:`actfn.kernels`, :mod:`actfn.pwl_cuda`); elsewhere, or when a kernel cannot be built, in
eager tensor ops (the "PyTorch path").
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .kernels import cpu_kernel, cuda_kernel

INITS = ("relu", "identity", "swish")


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
    """The PyTorch path's forward (GPU tensors, or no compiled kernel)."""
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


def _kernel(x, y):
    """The compiled kernel for these tensors, or None (the PyTorch path)."""
    if x.device.type == "cpu":
        return cpu_kernel()
    if x.device.type == "cuda":
        kernel = cuda_kernel(x.device)
        return kernel if kernel is not None and kernel.supports(x, y) else None
    return None


def _eager_forward(x, y, lo: float, hi: float):
    kernel = _kernel(x, y)
    return kernel.forward(x, y, lo, hi) if kernel is not None else _torch_forward(x, y, lo, hi)


def _eager_backward(grad_out, x, y, lo: float, hi: float, need_x: bool, need_y: bool):
    kernel = _kernel(x, y)
    if kernel is not None:
        return kernel.backward(grad_out, x, y, lo, hi, need_x, need_y)
    return _torch_backward(grad_out, x, y, lo, hi, need_x, need_y)


# For torch.compile and torch.export the two passes are also registered operators (torch.library):
# traced code sees each as one opaque node with a "fake" implementation that gives the output's
# shape, instead of a call into the compiled extension that it cannot trace (a graph break).  Eager
# calls skip the operator layer, whose Python dispatch costs ~0.1 ms a call.

@torch.library.custom_op("actfn::pwl_forward", mutates_args=())
def pwl_forward(x: torch.Tensor, y: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """f(x) for knot values ``y`` (N,) or (C, N) (channel dim 1 of x), as an operator (no autograd)."""
    return _eager_forward(x, y, lo, hi)


@pwl_forward.register_fake
def _(x, y, lo, hi):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@torch.library.custom_op("actfn::pwl_backward", mutates_args=())
def pwl_backward(grad_out: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lo: float, hi: float,
                 need_x: bool, need_y: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(grad x, grad y) as an operator; a gradient that is not needed comes back empty."""
    gx, gy = _eager_backward(grad_out, x, y, lo, hi, need_x, need_y)
    return (gx if gx is not None else x.new_empty(0)), (gy if gy is not None else y.new_empty(0))


@pwl_backward.register_fake
def _(grad_out, x, y, lo, hi, need_x, need_y):
    return (torch.empty_like(x, memory_format=torch.contiguous_format) if need_x else x.new_empty(0),
            torch.empty_like(y) if need_y else y.new_empty(0))


def _traced(x: torch.Tensor) -> bool:
    # torch.compile (dynamo) or a tracer's tensor subclass (export, make_fx): use the operators
    return torch.compiler.is_compiling() or type(x) is not torch.Tensor


class PiecewiseLinearFunction(torch.autograd.Function):
    """``f(x)`` for knot values ``y`` of shape ``(N,)`` (shared) or ``(C, N)`` (channel dim 1 of x).
    Saves only the input and the knots, as SiLU saves its input."""

    @staticmethod
    def forward(ctx, x, y, lo: float, hi: float):
        ctx.save_for_backward(x, y)
        ctx.lo, ctx.hi = lo, hi
        return pwl_forward(x, y, lo, hi) if _traced(x) else _eager_forward(x, y, lo, hi)

    @staticmethod
    def backward(ctx, grad_out):
        x, y = ctx.saved_tensors
        need_x, need_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if _traced(x):
            gx, gy = pwl_backward(grad_out, x, y, ctx.lo, ctx.hi, need_x, need_y)
        else:
            gx, gy = _eager_backward(grad_out, x, y, ctx.lo, ctx.hi, need_x, need_y)
        return (gx if need_x else None), (gy if need_y else None), None, None


def piecewise_linear(x: torch.Tensor, y: torch.Tensor, lo: float = -3.0, hi: float = 3.0) -> torch.Tensor:
    """Evaluate the piecewise-linear function with knot values ``y`` on ``[lo, hi]`` at ``x``."""
    lo, hi = float(lo), float(hi)
    if x.device.type == "cpu" and not _traced(x):
        kernel = cpu_kernel()
        if kernel is not None:
            # the same kernels under an autograd node written in C++ (in-process A/B against the
            # Python Function: 22 us less a forward+backward of a 1x512x4x4 layer, 5-6 % less of a
            # 256x512x4x4 one with per-channel knots)
            return kernel.apply(x, y, lo, hi)
    return PiecewiseLinearFunction.apply(x, y, lo, hi)


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
