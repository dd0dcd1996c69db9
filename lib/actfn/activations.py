"""The one registry of activations: every f the book trains with, read by the deep networks, the
InfoMax bank and the compiled kernels alike.

Each entry gives f itself (over the last dimension for softmax, elementwise otherwise), a factory of
its ``nn.Module`` for the networks, its largest gain max |f'| (for the dead-unit rule of the InfoMax
metrics) and, if the compiled InfoMax kernel has a branch for it, that branch's index
(``csrc/infomax_cpu.cpp``'s ``Kind``; the kernel lists its branches by name and is checked against
:data:`KERNEL_KINDS` when it loads).

Two seeds name one function twice: the InfoMax design's ``swish`` and the deep networks' ``silu`` are
both x sigmoid(x), registered under both names so that each study and its records keep their word.

Adding an activation is one :func:`register` call (or one entry below); a kernel branch is optional,
and an activation without one trains on the PyTorch path.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .pwl import PiecewiseLinearActivation, piecewise_linear

PWL_KNOTS = 33                 # the learned activation's default grid: 33 knots on [-3, 3]
PWL_RANGE = (-3.0, 3.0)


@dataclass(frozen=True)
class Activation:
    name: str
    f: Callable[[torch.Tensor], torch.Tensor]
    module: Callable[[int, bool, int], nn.Module]     # (channels, per_channel, num_knots) -> the layer
    max_gain: float | None = 1.0      # max |f'(z)|; None where it depends on learned parameters
    kernel: int | None = None         # the compiled InfoMax kernel's branch, if it has one
    learned: bool = False             # f has parameters (the knots): f(z, knots)


def _pwl_f(z: torch.Tensor, knots: torch.Tensor) -> torch.Tensor:
    # knots (models, P) with the model index on dim 0 of z: the per-channel activation wants it on dim 1
    return piecewise_linear(z.movedim(0, 1), knots, *PWL_RANGE).movedim(1, 0)


def _pwl_module(channels: int, per_channel: bool, num_knots: int) -> nn.Module:
    return PiecewiseLinearActivation(num_knots, PWL_RANGE, num_channels=channels if per_channel else None)


def _plain(module: type[nn.Module], *args) -> Callable[[int, bool, int], nn.Module]:
    return lambda channels, per_channel, num_knots: module(*args)


REGISTRY: dict[str, Activation] = {}


def register(activation: Activation) -> Activation:
    """Add an activation to the registry (refusing a name already taken)."""
    if activation.name in REGISTRY:
        raise ValueError(f"activation {activation.name!r} is registered already")
    REGISTRY[activation.name] = activation
    return activation


for _a in (
    Activation("identity", lambda z: z, _plain(nn.Identity), 1.0, kernel=0),
    Activation("relu", torch.relu, _plain(nn.ReLU), 1.0, kernel=1),
    Activation("softmax", lambda z: torch.softmax(z, dim=-1), _plain(nn.Softmax, -1), 0.25, kernel=2),
    Activation("tanh", torch.tanh, _plain(nn.Tanh), 1.0, kernel=3),
    Activation("leaky_relu", lambda z: F.leaky_relu(z, 0.01), _plain(nn.LeakyReLU, 0.01), 1.0, kernel=4),
    Activation("softplus", F.softplus, _plain(nn.Softplus), 1.0, kernel=5),
    Activation("swish", F.silu, _plain(nn.SiLU), 1.1, kernel=6),
    Activation("pwl", _pwl_f, _pwl_module, None, kernel=7, learned=True),
    Activation("silu", F.silu, _plain(nn.SiLU), 1.1, kernel=6),
):
    register(_a)

# the compiled kernel's branches by index (csrc/infomax_cpu.cpp's Kind enum, checked at load)
KERNEL_KINDS = ("identity", "relu", "softmax", "tanh", "leaky_relu", "softplus", "swish", "pwl")


def get(name: str, parameter: str = "activation") -> Activation:
    """The registry's entry for ``name``; an unknown name stops with the names there are."""
    if name not in REGISTRY:
        raise ValueError(f"parameter {parameter!r} must hold values from {tuple(REGISTRY)}, got {name!r}")
    return REGISTRY[name]


def activate(z: torch.Tensor, name: str, knots: torch.Tensor | None = None) -> torch.Tensor:
    """a = f(z); for the learned activation, ``knots`` (models, P) with the models on dim 0 of ``z``."""
    a = get(name)
    return a.f(z, knots) if a.learned else a.f(z)


def gain(z: torch.Tensor, name: str, knots: torch.Tensor | None = None) -> torch.Tensor:
    """|d a_j / d z_j| for each unit (the diagonal of the Jacobian for softmax)."""
    z = z.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        if name == "softmax":
            a = torch.softmax(z, dim=-1)
            return (a * (1 - a)).detach()
        a = activate(z, name, knots)
        (g,) = torch.autograd.grad(a.sum(), z)
    return g.abs()


def make_module(name: str, channels: int = 1, per_channel: bool = False, num_knots: int = PWL_KNOTS) -> nn.Module:
    """The activation's layer for a network of ``channels`` channels (own knots per channel if asked)."""
    return get(name).module(channels, per_channel, num_knots)


def kernel_index(name: str) -> int | None:
    return get(name).kernel
