"""Probe every chapter with bad parameters, as a skeptical user would, and count how each is refused.

    python benchmarks/probe_parameters.py [--out results/parameter_probes.json] [--only intro,theory]

Each probe executes a chapter through papermill with one bad value (the table ``BAD`` of
tests/test_params.py: one for every parameter of every chapter, plus the cases of issue 31) and
sorts the outcome:

* **at once**: stopped in the cell that checks the parameters, by a message that names the parameter;
* **late**: stopped later, by a message that names it;
* **silent**: the chapter ran to the end;
* **unnamed**: stopped by an error that does not name the parameter.

Not a test (it takes ~10 minutes); tests/test_params.py and tests/test_notebooks.py are the tests.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# issue 31's cases beyond one value a parameter (scalars for lists, types, follow-ups, huge rates)
EXTRA = [("infomax", "seeds", 0), ("infomax", "lr", 1e6), ("infomax", "train_size", 0),
         ("infomax", "synthetic_epochs", 0), ("deep_networks", "lr", 1e6), ("intro", "classes", "3"),
         ("unit_experiments", "sigmas", "abc"), ("theory", "mc_samples", 10), ("infomax", "Ks", [4, 4]),
         ("deep_networks", "train_size", 0), ("deep_networks", "model", 3), ("benchmarks", "live", ["warp"])]
# what a probe needs to run offline and fast when it is not refused
BASE = {"deep_networks": {"dataset": "fashion_mnist"}, "infomax": {"dataset": "mnist_subset"}}


def _bad_table() -> dict:
    spec = importlib.util.spec_from_file_location("test_params", ROOT / "tests" / "test_params.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BAD


def probe(chapter: str, name: str, value, workdir: Path) -> dict:
    import jupytext
    import papermill as pm
    import yaml

    smoke = yaml.safe_load((ROOT / "params" / chapter / "smoke.yaml").read_text()) or {}
    params = {**smoke, **BASE.get(chapter, {}), name: value}
    for folder in ("results_dir", "checkpoint_dir"):
        if folder != name and folder in _bad_table()[chapter]:
            params[folder] = str(workdir / folder)
    src, out = workdir / f"{chapter}.ipynb", workdir / f"{chapter}.out.ipynb"
    jupytext.write(jupytext.read(ROOT / "book" / f"{chapter}.md"), src)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(str(src), str(out), parameters=params, kernel_name="python3", cwd=str(ROOT / "book"),
                            progress_bar=False)
        outcome, message, cell = "silent", "", None
    except pm.PapermillExecutionError as err:
        message, cell = f"{err.ename}: {err.evalue}", err.exec_count
        named = f"'{name}'" in message
        # cells run in order: 1 the parameters, 2 papermill's injected ones, 3 the cell that checks them
        outcome = ("at once" if cell == 3 else "late") if named else "unnamed"
    return {"chapter": chapter, "parameter": name, "value": repr(value), "outcome": outcome,
            "seconds": round(time.perf_counter() - t0, 1), "message": message[:300]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "results" / "parameter_probes.json"))
    ap.add_argument("--only", default="", help="comma-separated chapters")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "lib"))
    from actfn.results import write_json_atomic

    cases = [(c, n, v) for c, table in _bad_table().items() for n, v in table.items()] + EXTRA
    if args.only:
        cases = [case for case in cases if case[0] in args.only.split(",")]
    rows = []
    for chapter, name, value in cases:
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(probe(chapter, name, value, Path(tmp)))
        r = rows[-1]
        print(f"{r['outcome']:8s} {chapter:17s} {name}={r['value']} ({r['seconds']} s) {r['message'][:100]}", flush=True)
        write_json_atomic(args.out, {"probes": rows})
    counts = {k: sum(r["outcome"] == k for r in rows) for k in ("at once", "late", "silent", "unnamed")}
    print(f"\n{len(rows)} probes: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
