"""The learned activation as one operator, ``torch.ops.actfn.pwl``, and :func:`piecewise_linear`.

As in PyTorch's ``extension-cpp``: one schema, implementations registered by device, and the fake
(shape-only) implementation and the autograd formula registered once.

=====================  ==================================================================
schema, CPU, autograd  ``csrc/pwl_cpu.cpp`` (``register_op``), when its build loads
CUDA                   :func:`_pwl_cuda` below: ``csrc/pwl_cuda.cu``'s kernels
fake                   :func:`_pwl_fake` below, for ``torch.compile`` and ``torch.export``
specification          :func:`.reference.piecewise_linear_reference`, which the tests hold
                       every implementation to
=====================  ==================================================================

The operator exists once the compiled CPU kernel has loaded.  Where it cannot (``ACTFN_KERNELS=off``,
no compiler) :func:`piecewise_linear` takes the PyTorch path (:mod:`.torch_path`) instead, in eager
mode and under tracing alike.
"""
from __future__ import annotations

import torch

from ..kernels import cpu_kernel, cuda_kernel
from .torch_path import PiecewiseLinearFunction, _torch_backward, _torch_forward

_registered = False


def register() -> bool:
    """Register ``actfn::pwl`` once, if the compiled CPU kernel is on and loads; whether it is registered."""
    global _registered
    if _registered:
        return True
    kernel = cpu_kernel()
    if kernel is None:
        return False
    kernel.register_op()
    torch.library.register_fake("actfn::pwl")(_pwl_fake)
    torch.library.register_fake("actfn::pwl_backward")(_pwl_backward_fake)
    torch.library.impl("actfn::pwl", "cuda")(_pwl_cuda)
    torch.library.impl("actfn::pwl_backward", "cuda")(_pwl_backward_cuda)
    _registered = True
    return True


def _pwl_fake(x, y, lo, hi):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _pwl_backward_fake(grad, x, y, lo, hi, need_x, need_y):
    return (torch.empty_like(x, memory_format=torch.contiguous_format) if need_x else x.new_empty(0),
            torch.empty_like(y) if need_y else y.new_empty(0))


def _cuda_kernel_for(x, y):
    kernel = cuda_kernel(x.device)
    return kernel if kernel is not None and kernel.supports(x, y) else None


def _pwl_cuda(x, y, lo, hi):
    kernel = _cuda_kernel_for(x, y)
    return kernel.forward(x, y, lo, hi) if kernel is not None else _torch_forward(x, y, lo, hi)


def _pwl_backward_cuda(grad, x, y, lo, hi, need_x, need_y):
    kernel = _cuda_kernel_for(x, y)
    if kernel is not None:
        gx, gy = kernel.backward(grad, x, y, lo, hi, need_x, need_y)
    else:
        gx, gy = _torch_backward(grad, x, y, lo, hi, need_x, need_y)
    return (gx if gx is not None else x.new_empty(0)), (gy if gy is not None else y.new_empty(0))


def _uses_op(x: torch.Tensor) -> bool:
    if torch.compiler.is_compiling():       # (no kernel lookups inside a traced function)
        return _registered
    if x.device.type == "cuda":
        return cuda_kernel(x.device) is not None and register()
    # (cpu_kernel() first: ACTFN_KERNELS=off takes the PyTorch path even after the operator was registered)
    return x.device.type == "cpu" and cpu_kernel() is not None and register()


def piecewise_linear(x: torch.Tensor, y: torch.Tensor, lo: float = -3.0, hi: float = 3.0) -> torch.Tensor:
    """f(x) for knot values ``y`` (N,) or (C, N) (channel dim 1 of x) on ``[lo, hi]``."""
    lo, hi = float(lo), float(hi)
    if _uses_op(x):
        return torch.ops.actfn.pwl.default(x, y, lo, hi)
    return PiecewiseLinearFunction.apply(x, y, lo, hi)
