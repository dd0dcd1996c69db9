"""Records: a chapter's results at full scale, committed under ``records/`` with their provenance.

A record is the results file of a chapter at a full setting, aggregated from a sweep's run files
(``python -m actfn.sweep ... --record NAME``, see :mod:`actfn.sweep`) by the same code the chapter
writes its results with, slimmed to what its page shows, together with where it came from: the
commit and code version, the command, the parameters, the dataset and its checksums, the machine,
the torch version and the wall time of every invocation (a long run may be interrupted and resumed).

A page that shows a record first *replays* it: it retrains one recorded model for a short prefix
with the code of that build and compares the loss with the recorded one
(:func:`check_replay`).  A record that no longer replays stops the build, so a page cannot show
numbers that its code no longer produces.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

FORMAT = 1
PROVENANCE = ("commit", "dirty", "code_version", "command", "parameters", "dataset", "source", "data_checksum",
              "machine", "torch", "python", "wall_seconds", "wall_seconds_meaning", "invocations", "created")
REPLAY_RTOL = 1e-4


class RecordError(ValueError):
    """A record that is missing, malformed, or no longer reproduced by the code."""


def git_commit(root: str | os.PathLike) -> tuple[str, bool]:
    """(HEAD's hash, whether tracked files differ from it) of the repository at ``root``."""
    run = lambda *args: subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout
    try:
        return run("rev-parse", "HEAD").strip(), bool(run("status", "--porcelain", "--untracked-files=no").strip())
    except (OSError, subprocess.CalledProcessError) as err:
        raise RecordError(f"a record needs the commit of the code that made it, and {root} is not a git "
                          f"checkout ({err})") from err


def machine() -> dict:
    """The machine in words: CPU model and cores, OS, and the GPU when one is visible."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    out = {"cpu": cpu, "cores": os.cpu_count(), "os": platform.system(), "gpu": None}
    try:
        import torch

        if torch.cuda.is_available():
            out["gpu"] = torch.cuda.get_device_name(0)
    except Exception:      # (a record is still made on a machine whose CUDA is broken)
        pass
    return out


def rounded(obj, digits: int = 6):
    """``obj`` with every float rounded to ``digits`` significant digits (a record is read, not resumed)."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded(v, digits) for v in obj]
    return obj


def provenance_of(results: dict, root: str | os.PathLike, command: str, runs: list[dict]) -> dict:
    """The provenance of a chapter's ``results`` made at ``root`` by a sweep of ``runs`` (one entry per
    run, with its own ``seconds``)."""
    import torch

    commit, dirty = git_commit(root)
    made_by = results.get("made_by") or {}
    return {"commit": commit, "dirty": dirty, "code_version": made_by.get("code"), "command": command,
            "parameters": made_by.get("parameters"), "dataset": results.get("dataset"),
            "source": results.get("source"), "data_checksum": results.get("data_checksum"), "machine": machine(),
            "torch": torch.__version__, "python": platform.python_version(),
            "wall_seconds": round(sum(r["seconds"] for r in runs), 1),
            "wall_seconds_meaning": "the runs' own times, summed (runs may have run side by side)", "invocations": runs,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def write(path: str | os.PathLike, chapter: str, results: dict, provenance: dict) -> Path:
    """Write a record atomically (floats to 6 significant digits)."""
    from .results import plain, write_atomic

    missing = [k for k in PROVENANCE if k not in provenance]
    if missing:
        raise RecordError(f"a record's provenance needs {missing}")
    body = {"format": FORMAT, "chapter": chapter, "provenance": provenance, "results": rounded(plain(results))}
    text = json.dumps(body, separators=(",", ":"), allow_nan=False)
    return write_atomic(path, lambda f: f.write(text.encode()))


def load(path: str | os.PathLike, chapter: str) -> dict:
    """A record, checked for its format, chapter and provenance; stops naming what is wrong."""
    path = Path(path)
    try:
        body = json.loads(path.read_text())
    except FileNotFoundError:
        raise RecordError(f"record {path.name}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RecordError(f"record {path.name} is not valid JSON ({err})") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise RecordError(f"record {path.name}: format {body.get('format') if isinstance(body, dict) else None!r}, "
                          f"this code reads format {FORMAT}")
    if body.get("chapter") != chapter:
        raise RecordError(f"record {path.name} is of chapter {body.get('chapter')!r}, not {chapter!r}")
    missing = [k for k in PROVENANCE if k not in (body.get("provenance") or {})]
    if missing or not isinstance(body.get("results"), dict):
        raise RecordError(f"record {path.name} lacks {missing or ['results']}: a record without its provenance "
                          f"is not shown")
    return body


def path_of(chapter: str, record: str) -> Path:
    """The file of a chapter's ``record`` parameter: a name in ``records/<chapter>/``, or a .json path."""
    from .results import repo_root

    return Path(record) if record.endswith(".json") else repo_root() / "records" / chapter / f"{record}.json"


def check_data(results: dict, here: dict) -> None:
    """Stop unless the checksums of the data here (``{"train": ..., "test": ...}``) are the record's."""
    if here != results["data_checksum"]:
        raise RecordError(f"the record was made on {results['dataset']} with checksums {results['data_checksum']}; "
                          f"the files here give {here}: not the same data, so the record cannot be replayed")


def relative_difference(recorded: float, replayed: float) -> float:
    return abs(replayed - recorded) / max(abs(recorded), 1e-12)


def check_replay(what: str, recorded: float, replayed: float, rtol: float = REPLAY_RTOL) -> float:
    """The relative difference of a replayed number from its record; stops when it exceeds ``rtol``."""
    diff = relative_difference(recorded, replayed)
    if not diff <= rtol:
        raise RecordError(f"the record no longer replays: {what} is {replayed:.7g} with this code, "
                          f"{recorded:.7g} in the record (relative difference {diff:.1e} > {rtol:g}). The code "
                          f"changed what it computes: make the record again (python -m actfn.sweep ... --record NAME), or find "
                          f"the change")
    return diff


def python_command(argv: list[str]) -> str:
    """``argv`` as the command a reader types (the interpreter as ``python``, no machine folder)."""
    from .results import repo_root

    root = str(repo_root().resolve())
    import shlex

    args = [a.replace(root + os.sep, "") for a in argv]
    return "python " + shlex.join(args)   # (quoted as a shell needs: -p 'seed=[0, 1]')


def _wall_time(prov: dict) -> str:
    hours, parts = f"{prov['wall_seconds'] / 3600:.2f} h", prov["invocations"]
    resumed = sum(p.get("invocations", 1) > 1 for p in parts)      # (one entry per run of the sweep)
    return (f"{hours}: its {len(parts)} runs' own times, summed (a sweep's runs may run side by side)"
            + (f"; {resumed} of them resumed after a stop, counted over every invocation" if resumed else ""))


def provenance_rows(prov: dict, dataset: str, parameters: str, replayed: str) -> list[dict]:
    """The rows ``{what, value}`` of a record's provenance table, as every chapter shows it; ``dataset``,
    ``parameters`` and ``replayed`` are the chapter's own descriptions."""
    m = prov["machine"]
    rows = (("commit", f"`{prov['commit'][:12]}`" + (" (with uncommitted changes)" if prov["dirty"] else "")),
            ("code version", prov["code_version"]), ("command", f"`{prov['command']}`"), ("dataset", dataset),
            ("data checksums", ", ".join(f"{k} {v}" for k, v in prov["data_checksum"].items())),
            ("parameters", parameters),
            ("machine", f"{m['cpu']}, {m['cores']} cores" + (f", {m['gpu']}" if m["gpu"] else ", no GPU")
                        + f"; torch {prov['torch']}, Python {prov['python']}"),
            ("wall time", _wall_time(prov)),
            ("replayed here", replayed))
    return [{"what": k, "value": v} for k, v in rows]
