"""The models of the InfoMax study (seed 002), apart from their seeds: their activation, objective,
lambda and constraint (:class:`Setting`), and the initial weights."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..activations import REGISTRY
from ..checks import require

# the design's six activations, with identity and the learned one; a Setting takes any name of the
# registry (actfn.activations)
ACTIVATIONS = ("identity", "relu", "softmax", "tanh", "leaky_relu", "softplus", "swish", "pwl")
OBJECTIVES = ("infomax", "variance_only", "reconstruction", "random")
CONSTRAINTS = ("none", "unit_rows")
# "bfloat16": the layer's matrix products (W x, W' x and their gradients) take bfloat16 operands with
# float32 accumulation (torch.autocast); weights, Adam state and every statistic stay float32
MATMUL_PRECISIONS = ("float32", "bfloat16")


def check_matmul_precision(value: str) -> bool:
    """Refuse an unknown ``matmul_precision`` by name; True for bfloat16."""
    require(value in MATMUL_PRECISIONS, "matmul_precision", value, f"must be one of {MATMUL_PRECISIONS}")
    return value == "bfloat16"


def bf16_products(x: torch.Tensor, enabled: bool = True):
    """The context in which the layer's matrix products take bfloat16 operands (float32 sums)."""
    return torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=enabled)


@dataclass(frozen=True)
class Setting:
    """One model of a bank, apart from its seed."""
    activation: str
    objective: str = "infomax"
    lam: float = 1.0
    constraint: str = "none"

    def __post_init__(self):
        require(self.activation in REGISTRY, "activations", self.activation, f"must be one of {tuple(REGISTRY)}")
        require(self.objective in OBJECTIVES, "objectives", self.objective, f"must be one of {OBJECTIVES}")
        require(self.constraint in CONSTRAINTS, "constraints", self.constraint, f"must be one of {CONSTRAINTS}")
        require(isinstance(self.lam, (int, float)) and math.isfinite(self.lam) and self.lam >= 0, "lambdas",
                self.lam, "must hold numbers >= 0")


def xavier_weights(seed: int, k: int, d: int) -> torch.Tensor:
    """Xavier-uniform (K, D) weights from the seed alone, so that every setting of a seed starts equal."""
    gen = torch.Generator().manual_seed(int(seed))
    bound = math.sqrt(6.0 / (d + k))
    return (torch.rand(k, d, generator=gen) * 2 - 1) * bound
