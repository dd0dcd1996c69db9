"""Checkpoints of long runs: written atomically, read without running code, resumed only by the run
that wrote them.

* **No load runs code.**  A checkpoint holds tensors and plain values only (numpy arrays are stored as
  tensors, tagged, and given back as arrays), and is read with ``torch.load(weights_only=True)``:
  a file that holds anything else -- a pickle payload planted under a predictable name -- is
  refused, naming the file, before any of it is used.
* **Keyed by what made it.**  Each checkpoint stores a *key*: the checkpoint format, the run's full
  configuration, a fingerprint of its data and the version of this package's code
  (:func:`code_version`).  Resuming compares the stored key with the run's and refuses a mismatch,
  naming the field that differs and the file.
* **One run at a time.**  :func:`claimed` locks a checkpoint for the run that uses it; a second run
  on the same file stops with a message instead of interleaving its epochs with the first's.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import pickle
from pathlib import Path

import numpy as np
import torch

from .results import plain, remove_stale_temps, write_atomic

_ARRAY = "__ndarray__"
ADVICE = "delete it, or rerun with resume False (parameter) to start again"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, unsafe, or written by another run."""


class CheckpointBusy(RuntimeError):
    """Another running process holds the checkpoint."""


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """A digest of this package's sources (Python, C++ and CUDA): changes whenever the code does."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        if f.suffix in (".py", ".cpp", ".h", ".cu") and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def fingerprint(*tensors: torch.Tensor) -> str:
    """A digest of tensors' shapes, dtypes and values (a checkpoint is resumed only on its own data)."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(f"{tuple(t.shape)} {t.dtype}".encode())
        h.update(t.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _to_safe(obj):
    if isinstance(obj, np.ndarray):
        return {_ARRAY: torch.from_numpy(np.ascontiguousarray(obj))}
    if isinstance(obj, dict):
        return {k: _to_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_safe(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _from_safe(obj):
    if isinstance(obj, dict):
        if set(obj) == {_ARRAY}:
            return obj[_ARRAY].cpu().numpy()
        return {k: _from_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_from_safe(v) for v in obj]
    return obj


def save(path: str | os.PathLike, key: dict, state: dict) -> Path:
    """Write ``state`` (tensors, numpy arrays and plain values) with its ``key`` atomically to ``path``."""
    buffer = io.BytesIO()
    torch.save({"key": plain(key), "state": _to_safe(state)}, buffer)
    return write_atomic(path, lambda fh: fh.write(buffer.getbuffer()))


def difference(saved, expected, where: str = "", holder: str = "the checkpoint") -> str | None:
    """The first field where two keys differ, as ``"field: A in the checkpoint, B now"`` (None: equal)."""
    if isinstance(saved, dict) and isinstance(expected, dict):
        for name in list(expected) + [n for n in saved if n not in expected]:
            field = f"{where}.{name}" if where else str(name)
            if name not in saved or name not in expected:
                return f"{field}: {'absent' if name not in saved else repr(saved[name])} in {holder}, " \
                       f"{'absent' if name not in expected else repr(expected[name])} now"
            found = difference(saved[name], expected[name], field, holder)
            if found:
                return found
        return None
    if isinstance(saved, list) and isinstance(expected, list) and len(saved) == len(expected):
        for i, (a, b) in enumerate(zip(saved, expected)):
            found = difference(a, b, f"{where}[{i}]", holder)
            if found:
                return found
        return None
    return None if saved == expected else f"{where or 'key'}: {saved!r} in {holder}, {expected!r} now"


def load(path: str | os.PathLike, key: dict, map_location=None) -> dict:
    """The state saved at ``path`` by :func:`save`, if its key equals ``key``; else :class:`CheckpointError`
    naming the file and the first field that differs."""
    path = Path(path)
    try:
        saved = torch.load(path, weights_only=True, map_location=map_location)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"checkpoint {path} holds objects other than tensors and plain values (planted, or written by an "
            f"older version of this code) and was not loaded: {ADVICE}. ({str(err).splitlines()[0]})") from None
    except Exception as err:      # truncated or damaged: torch's zip reader, EOFError, ...
        raise CheckpointError(f"checkpoint {path} is damaged or truncated ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else ''}): {ADVICE}") from None
    if not isinstance(saved, dict) or set(saved) != {"key", "state"}:
        raise CheckpointError(f"checkpoint {path} is not in this code's format (written by an older version?): {ADVICE}")
    found = difference(saved["key"], plain(key))
    if found:
        raise CheckpointError(f"checkpoint {path} was written by another run ({found}): {ADVICE}")
    return _from_safe(saved["state"])


@contextlib.contextmanager
def claimed(path: str | os.PathLike | None):
    """Hold an exclusive lock on checkpoint ``path`` (``PATH.lock``) for the ``with`` block, after removing
    the temporary files that killed writers left beside it; a second process stops at once with
    :class:`CheckpointBusy`.  The lock goes with the process, so a killed run leaves none behind."""
    if path is None:
        yield
        return
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise CheckpointBusy(f"checkpoint {path} is in use by another run (process {holder}); wait for it to "
                                 f"finish, or give this run another checkpoint folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        remove_stale_temps(path.parent)
        yield
    finally:
        os.close(fd)      # (releases the lock)
