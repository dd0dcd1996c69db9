"""Recycling large buffers during a training loop (glibc's malloc).

A training step frees and reallocates the same large tensors every step.  glibc serves blocks of
more than ~32 MB (less by default) with fresh ``mmap`` pages, which the kernel zero-fills on first
touch: on a small virtual machine that page-faulting costs as much as the arithmetic (the InfoMax
bank at K = 64 spent half its step there).  :func:`recycled_memory` makes malloc keep such blocks on
its heap for the duration of a ``with`` block, so a step reuses the last step's pages, and restores
glibc's defaults afterwards.  Elsewhere (not Linux/glibc) it does nothing.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util

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
