"""Where a sweep keeps its runs: one file per run under ``sweeps/<chapter>/``, named by its hash.

A run's hash covers its configuration, its seed, the code version and the dataset's checksum, so a
changed file of ``lib/``, another dataset or another setting is another run, never a stale result.

* ``<hash>.json``: the finished run -- its configuration, its result, its provenance -- written
  atomically (a reader sees the whole file or none);
* ``<hash>.failed.json``: the last failure of the run, with its error and traceback;
* ``<hash>.lock``: held (``flock``) by the process running it.  The lock goes with the process, so a
  killed worker leaves no claim behind, and a second sweep over the same folder skips a run that
  another one holds instead of running it twice.

A run that was stopped part way keeps its checkpoints under ``checkpoints/<hash>/`` and continues
from them; a finished run's checkpoints and lock file are removed, so a finished sweep is its
result files.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from ..results import remove_stale_temps, write_json_atomic

STATES = ("done", "running", "failed", "pending")


@dataclass(frozen=True)
class Run:
    """One configuration of one chapter with one seed: the unit a sweep schedules."""
    chapter: str
    config: dict = field(hash=False)
    seed: int = 0

    def label(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.config.items() if not isinstance(v, (list, dict)))
        return f"{self.chapter}[{shown}, seed={self.seed}]"


def run_hash(run: Run, code: str, data: str) -> str:
    """The run's name: a hash of its configuration, seed, code version and dataset checksum."""
    key = json.dumps({"chapter": run.chapter, "config": run.config, "seed": run.seed, "code": code, "data": data},
                     sort_keys=True, default=str)
    return hashlib.sha256(key.encode()).hexdigest()[:20]


class Store:
    """The folder of one chapter's sweep results."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def result(self, h: str) -> Path:
        return self.root / f"{h}.json"

    def failure(self, h: str) -> Path:
        return self.root / f"{h}.failed.json"

    def checkpoints(self, h: str) -> Path:
        return self.root / "checkpoints" / h

    def clock(self, h: str, every: float = 30.0) -> "Clock":
        return Clock(self.checkpoints(h) / "clock.json", every)

    def _lock(self, h: str) -> Path:
        return self.root / f"{h}.lock"

    @contextlib.contextmanager
    def claim(self, h: str):
        """Hold run ``h`` for the ``with`` block; yields False (and holds nothing) when another
        process holds it."""
        fd = os.open(self._lock(h), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{socket.gethostname()} {os.getpid()}".encode(), 0)
            remove_stale_temps(self.root)
            yield True
        finally:
            os.close(fd)

    def held(self, h: str) -> bool:
        """Is run ``h`` being run now (by any process that can lock this folder)?"""
        lock = self._lock(h)
        if not lock.exists():
            return False
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)                  # (closing releases a lock just taken)
        return False

    def load(self, h: str) -> dict | None:
        path = self.result(h)
        if not path.is_file():
            return None
        return json.loads(path.read_text())

    def state(self, h: str) -> str:
        if self.result(h).is_file():
            return "done"
        if self.held(h):
            return "running"
        return "failed" if self.failure(h).is_file() else "pending"

    def write_result(self, h: str, run: Run, result: dict, provenance: dict) -> Path:
        path = write_json_atomic(self.result(h), {"hash": h, "chapter": run.chapter, "config": run.config,
                                                  "seed": run.seed, "result": result, "provenance": provenance})
        self.failure(h).unlink(missing_ok=True)
        return path

    def finish(self, h: str) -> None:
        """After ``h``'s result is written, by the process holding its claim: its checkpoints and its
        lock file go (a process that opens the old lock file afterwards finds the result, and skips)."""
        import shutil
        shutil.rmtree(self.checkpoints(h), ignore_errors=True)
        with contextlib.suppress(OSError):      # (the folder of all checkpoints, once it is empty)
            self.checkpoints(h).parent.rmdir()
        self._lock(h).unlink(missing_ok=True)

    def write_failure(self, h: str, run: Run, error: BaseException, seconds: float) -> Path:
        return write_json_atomic(self.failure(h), {
            "hash": h, "chapter": run.chapter, "config": run.config, "seed": run.seed,
            "error": f"{type(error).__name__}: {error}",
            "traceback": "".join(traceback.format_exception(error)),
            "host": socket.gethostname(), "pid": os.getpid(), "seconds": round(seconds, 3),
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


class Clock:
    """A run's time over all its invocations.  A run stopped part way (a kill, a preempted Slurm task)
    continues from its checkpoints, so its time is that of every invocation: the seconds so far are
    kept in ``checkpoints/<hash>/clock.json``, saved on entry and then every ``every`` seconds by a
    daemon thread, so that a kill loses at most ``every`` seconds of the record's wall time."""

    def __init__(self, path: Path, every: float = 30.0):
        self.path, self.every = Path(path), every
        before = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.before = float(before.get("seconds", 0.0))
        self.invocations = int(before.get("invocations", 0)) + 1
        self._start, self._end = time.perf_counter(), None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def seconds(self) -> float:
        return self.before + (self._end or time.perf_counter()) - self._start

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, {"seconds": round(self.seconds(), 3), "invocations": self.invocations})

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            self.save()

    def __enter__(self) -> "Clock":
        self.save()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._end = time.perf_counter()
        self._stop.set()
        self._thread.join()
