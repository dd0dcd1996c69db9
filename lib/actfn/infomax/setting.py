"""The models of the InfoMax study (seed 002), apart from their seeds: their activation, objective,
lambda and constraint (:class:`Setting`), the activations themselves, and the initial weights."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..checks import require
from ..pwl import piecewise_linear

ACTIVATIONS = ("identity", "relu", "softmax", "tanh", "leaky_relu", "softplus", "swish", "pwl")
OBJECTIVES = ("infomax", "variance_only", "reconstruction", "random")
CONSTRAINTS = ("none", "unit_rows")
# "bfloat16": the layer's matrix products (W x, W' x and their gradients) take bfloat16 operands with
# float32 accumulation (torch.autocast); weights, Adam state and every statistic stay float32
MATMUL_PRECISIONS = ("float32", "bfloat16")
PWL_KNOTS = 33
PWL_RANGE = (-3.0, 3.0)


def check_matmul_precision(value: str) -> bool:
    """Refuse an unknown ``matmul_precision`` by name; True for bfloat16."""
    require(value in MATMUL_PRECISIONS, "matmul_precision", value, f"must be one of {MATMUL_PRECISIONS}")
    return value == "bfloat16"


def bf16_products(x: torch.Tensor, enabled: bool = True):
    """The context in which the layer's matrix products take bfloat16 operands (float32 sums)."""
    return torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=enabled)


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
