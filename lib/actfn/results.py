"""Where results go and how they are written (atomically: a failed run never leaves half a file)."""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np


def repo_root() -> Path:
    """The repository root (the folder holding ``pyproject.toml`` above ``lib/actfn``), else the cwd."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def results_dir(path: str | os.PathLike | None = None) -> Path:
    """``path`` if given (a chapter's ``results_dir`` parameter), else ``<repo>/results``."""
    out = Path(path) if path else repo_root() / "results"
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)      # (left by a run killed while writing)
    return out


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None  # JSON has no NaN/inf
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a crash right after it keeps the new file, not neither)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:          # (not every file system lets a folder be opened)
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike, write) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path`` (a name of its own: ``.NAME.PID.XXXX.tmp``,
    so that two writers never share one), flush and fsync it, then rename it over ``path``.  A failure
    or an interruption leaves the previous ``path`` as it was and removes the temporary file; one left by
    a killed process is removed by :func:`remove_stale_temps`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)          # (mkstemp's 0600 -> what open() would have made)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:      # someone else's live process
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of :func:`write_atomic` whose writer is no longer running (killed
    mid-write), and the fixed-name ``*.tmp`` files of older versions; returns what was removed."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for f in folder.glob("*.tmp"):
        parts = f.name.split(".")           # ["", *NAME, PID, XXXX, "tmp"]
        pid = int(parts[-3]) if f.name.startswith(".") and len(parts) >= 5 and parts[-3].isdigit() else None
        if pid is not None and (pid == os.getpid() or _pid_alive(pid)):
            continue                         # (a write in progress)
        try:
            f.unlink()
            removed.append(f)
        except FileNotFoundError:
            pass
    return removed


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    """Serialise ``obj`` as JSON (NaN and inf as null) and write it with :func:`write_atomic`."""
    text = json.dumps(_plain(obj), indent=1, allow_nan=False)
    return write_atomic(path, lambda fh: fh.write(text.encode()))


def plain(obj):
    """``obj`` with numpy values as Python ones (and non-finite floats as None): JSON's types."""
    return _plain(obj)


def shown(path: str | os.PathLike) -> str:
    """``path`` as a page may print it: relative to the repository when inside it, else its name only
    (a page names no folder of the machine that built it)."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(repo_root().resolve()))
    except ValueError:
        return f"{path.name} (in results_dir)"
