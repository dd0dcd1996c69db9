"""The compiled CPU kernel of the piecewise-linear activation, and which path is in use.

The kernel (``csrc/pwl_cpu.cpp``) is compiled on first use with :func:`torch.utils.cpp_extension.load`
(g++ and ninja; about 25 s once, then cached in ``TORCH_EXTENSIONS_DIR``, by default
``~/.cache/torch_extensions``).  ``ACTFN_PWL_BACKEND`` chooses the path:

* ``auto`` (default): the compiled kernel on CPU tensors; if it cannot be built, a warning says
  why and the PyTorch path (the same math in eager tensor ops, several times slower) is used.
* ``cpp``: the compiled kernel or an error.
* ``torch``: always the PyTorch path.

GPU tensors always take the PyTorch path.  :func:`backend` says which path CPU tensors take.
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import torch

BACKENDS = ("auto", "cpp", "torch")
SOURCE = Path(__file__).with_name("csrc") / "pwl_cpu.cpp"

_state: dict = {}


class KernelUnavailable(RuntimeError):
    """The compiled kernel was asked for (``ACTFN_PWL_BACKEND=cpp``) but cannot be built."""


def requested_backend() -> str:
    value = os.environ.get("ACTFN_PWL_BACKEND", "auto").strip().lower()
    if value not in BACKENDS:
        raise ValueError(f"ACTFN_PWL_BACKEND must be one of {BACKENDS}, got {value!r}")
    return value


def _simd_flags() -> tuple[str, list[str]]:
    # AVX2 + FMA paths only where this CPU has them (no -march=native: the cache may be shared)
    capability = torch.backends.cpu.get_cpu_capability()
    if capability in ("AVX2", "AVX512"):
        return "avx2", ["-mavx2", "-mfma"]
    return "generic", []


def _build():
    variant, flags = _simd_flags()
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)  # "No CUDA runtime is found" (said on import): irrelevant on the CPU
    try:
        from torch.utils import cpp_extension

        module = cpp_extension.load(
            name=f"actfn_pwl_cpu_{variant}", sources=[str(SOURCE)],
            extra_cflags=["-O3", "-fopenmp", *flags], extra_ldflags=["-fopenmp"], verbose=False)
    finally:
        logger.setLevel(level)
    return module, f"cpp-{variant}"


def cpu_kernel():
    """The compiled module, or ``None`` when the PyTorch path is to be used (see the module doc)."""
    requested = requested_backend()
    if requested == "torch":
        return None
    if requested not in _state:
        try:
            _state[requested] = _build()
        except Exception as err:  # no compiler, no ninja, a build error: say so, once
            if requested == "cpp":
                raise KernelUnavailable(f"ACTFN_PWL_BACKEND=cpp but the CPU kernel {SOURCE.name} "
                                        f"could not be built: {err}") from err
            warnings.warn(f"actfn: the compiled CPU kernel could not be built ({type(err).__name__}: "
                          f"{str(err).strip().splitlines()[-1] if str(err).strip() else err}); using the "
                          "PyTorch path, which is several times slower. Install g++ and ninja to fix this.",
                          RuntimeWarning, stacklevel=3)
            _state[requested] = (None, "torch (compiled kernel unavailable)")
    return _state[requested][0]


def backend() -> str:
    """Which path CPU tensors take: ``cpp-avx2``, ``cpp-generic`` or ``torch ...``."""
    if cpu_kernel() is None:
        return _state.get(requested_backend(), (None, "torch (ACTFN_PWL_BACKEND=torch)"))[1]
    return _state[requested_backend()][1]
