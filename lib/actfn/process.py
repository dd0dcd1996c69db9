"""Process-wide settings that long training runs may ask for; nothing in ``actfn`` sets them by itself.

Each is a ``with`` block that restores the previous state when it ends, and :func:`long_runs` takes
both.  The chapters, scripts and benchmarks that train for long wrap their training in it, and the
pages say so.

* :func:`recycled_memory`: a training step frees and reallocates the same large tensors every step.
  glibc serves large blocks with fresh ``mmap`` pages, which the kernel zero-fills on first touch;
  on a small virtual machine that page-faulting can cost as much as the arithmetic.  This makes
  malloc keep such blocks on its heap, so a step reuses the last step's pages, and restores glibc's
  defaults afterwards.  Elsewhere (not Linux/glibc) it does nothing.
* :func:`denormals_as_zero`: denormal floats read and written as zero (x86).  No effect on any number
  the book shows; it changes the last bits of a run that produces denormals.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util

import torch

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") else None
    except OSError:
        return None


@contextlib.contextmanager
def recycled_memory():
    libc = _libc()
    if libc is None:
        yield
        return
    libc.mallopt(M_MMAP_MAX, 0)                  # no mmap: large blocks come from (and return to) the heap
    libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)    # and the heap is not trimmed back between steps (int max)
    try:
        yield
    finally:
        libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
        libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
        libc.malloc_trim(0)


@contextlib.contextmanager
def denormals_as_zero():
    """Denormal floats (below 1.2e-38 in magnitude) read and written as zero inside a ``with`` block, in
    this thread and every thread of torch's CPU pool; the previous setting afterwards.

    Long InfoMax runs saturate softmax, sigmoid and softplus, and their tiny outputs and gradients are
    denormals, on which x86 arithmetic takes microcode assists (``benchmarks/`` measures the cost).
    Numbers that small lie far below the precision of any result in the book.  Every thread of the
    pool needs the compiled InfoMax kernel (``torch.set_flush_denormal`` sets the calling thread only);
    without it, the calling thread only, or nothing off x86."""
    from .kernels import infomax_kernel

    kernel = infomax_kernel()
    if kernel is not None:
        previous = kernel.flush_denormals(True)
        restore = lambda: kernel.flush_denormals(previous)
    else:
        supported = torch.set_flush_denormal(True)
        restore = lambda: supported and torch.set_flush_denormal(False)
    try:
        yield
    finally:
        restore()


@contextlib.contextmanager
def long_runs(denormals: bool = True):
    """Both settings for the duration of a ``with`` block (``denormals=False``: malloc's only)."""
    with recycled_memory(), (denormals_as_zero() if denormals else contextlib.nullcontext()):
        yield
