"""Make a chapter's record: run the chapter at a full setting, then keep its results with their provenance.

    python scripts/make_record.py infomax params/infomax/paper.yaml -p dataset=fashion_mnist -p download=false

runs ``book/<chapter>.md`` with papermill on the parameter file (``-p name=value`` overrides, values
read as YAML), with ``resume`` on: every bank is checkpointed after every epoch, and running the same
command again after an interruption continues where it stopped.  Each invocation's wall time and
machine are logged in ``runs/records/<chapter>-<name>/invocations.json``.  When the chapter finishes, its
results file becomes ``records/<chapter>/<name>.json`` (see :mod:`actfn.records`), which the chapter
then shows in its own section, after replaying it.

It can run in the background (``nohup ... &``); progress bars go to its stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import jupytext
import papermill as pm
import yaml

from actfn import checkpoints, records
from actfn.records import machine
from actfn.results import repo_root, write_json_atomic

SLIM = {"infomax": "curves of the reference-λ InfoMax runs only"}


def slim(chapter: str, results: dict) -> dict:
    """What a record keeps of a results file: all but the training curves its page does not draw."""
    if chapter != "infomax":
        return results
    from actfn.infomax.record import slim as slim_infomax
    return slim_infomax(results)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("chapter", help="the chapter, e.g. infomax")
    ap.add_argument("params", type=Path, help="a parameter file, e.g. params/infomax/paper.yaml")
    ap.add_argument("-p", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                    help="override one parameter (the value is read as YAML)")
    ap.add_argument("--name", default=None, help="the record's name (default: the parameter file's, plus the dataset)")
    ap.add_argument("--records", type=Path, default=None, help="where records go (default: records/)")
    ap.add_argument("--work", type=Path, default=None, help="the run's folder (default: runs/records/)")
    args = ap.parse_args(argv)
    root = repo_root()
    source = root / "book" / f"{args.chapter}.md"
    if not source.is_file():
        raise SystemExit(f"no chapter {args.chapter!r} (no {source.relative_to(root)})")
    if not args.params.is_file():
        raise SystemExit(f"parameter file {args.params} not found")
    params = yaml.safe_load(args.params.read_text()) or {}
    for item in args.overrides:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"-p {item!r}: write NAME=VALUE")
        params[name] = yaml.safe_load(value)
    name = args.name or f"{args.params.stem}-{params.get('dataset', 'default')}"
    work = (args.work or root / "runs" / "records").resolve() / f"{args.chapter}-{name}"
    for sub in ("results", "checkpoints"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    # (relative to the chapter's folder, where papermill runs it: a record names no folder of the machine)
    params.update(resume=True, results_dir=os.path.relpath(work / "results", root / "book"),
                  checkpoint_dir=os.path.relpath(work / "checkpoints", root / "book"))

    # one log of invocations per record: a resumed run adds to it, a run of other parameters does not
    log_path = work / "invocations.json"
    log = json.loads(log_path.read_text()) if log_path.is_file() else {"parameters": params, "invocations": []}
    found = checkpoints.difference(log["parameters"], params, "parameters", "the log")
    if found:
        raise SystemExit(f"{log_path} belongs to a run of other parameters ({found}): choose "
                         f"another --name, or delete {work} to start again")
    command = records.python_command(sys.argv if argv is None else [sys.argv[0], *argv])
    entry = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": 0.0, "finished": False,
             "machine": machine()}
    log["invocations"].append(entry)
    write_json_atomic(log_path, log)      # (logged at once: a killed invocation still shows)
    # SIGTERM (a session or job ending) as Ctrl-C, so that this invocation's time is logged
    signal.signal(signal.SIGTERM, _interrupt)
    notebook = work / f"{args.chapter}.ipynb"
    jupytext.write(jupytext.read(source), notebook)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(str(notebook), str(work / f"{args.chapter}.out.ipynb"), parameters=params,
                            kernel_name="python3", cwd=str(root / "book"), progress_bar=False)
        entry["finished"] = True
    finally:      # (an interrupted invocation's time counts too)
        entry["seconds"] = round(time.perf_counter() - t0, 1)
        write_json_atomic(log_path, log)
    results = json.loads((work / "results" / f"{args.chapter}.json").read_text())
    provenance = records.provenance_of(results, root, command, log["invocations"])
    out = records.write((args.records or root / "records") / args.chapter / f"{name}.json", args.chapter,
                        slim(args.chapter, results), provenance)
    print(f"record {out}: {provenance['wall_seconds'] / 3600:.2f} h in "
          f"{len(log['invocations'])} invocation(s), commit {provenance['commit'][:10]}"
          + (" (with uncommitted changes)" if provenance["dirty"] else ""))
    return out


if __name__ == "__main__":
    main()
