"""The learned activation as a layer (seed 000, section 3.2): 33 knots on [-3, 3] by default, one f per
layer or one per channel, with the projection that fixes the objective's gauge."""
from __future__ import annotations

import math

import torch
from torch import nn

from .op import piecewise_linear

INITS = ("relu", "identity", "swish")


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
