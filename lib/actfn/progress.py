"""Progress bars for the log, never for the page.

Inside a notebook kernel, ``sys.stderr`` is what the page shows; its ``fileno()`` is the kernel
process's own stderr, the log of whatever started the kernel (jupyter-book, papermill, a terminal).
Text bars go there, so a built page holds no progress widgets or bars.
"""
from __future__ import annotations

import os
import sys

_stream = None


def log_stream():
    """A text stream on the process's own stderr (see the module doc); ``sys.stderr`` where there is none."""
    global _stream
    if _stream is None:
        try:
            _stream = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
        except (AttributeError, OSError, ValueError):    # (a stream without a file descriptor)
            return sys.stderr
    return _stream


def progress(iterable=None, **kwargs):
    """A ``tqdm`` text bar on :func:`log_stream`.  ``ACTFN_PROGRESS=off`` silences them."""
    from tqdm import tqdm

    if os.environ.get("ACTFN_PROGRESS", "auto") == "off":
        kwargs["disable"] = True
    kwargs.setdefault("mininterval", 1.0)
    kwargs.setdefault("file", log_stream())
    return tqdm(iterable, **kwargs)
