"""Sweeps (``python -m actfn.sweep``): throughput of the local pool against one process, and the
wall time of the book's full settings on more workers, projected from the records' run times.

    python benchmarks/sweep_benchmarks.py [--runs 8]

Throughput: the same sweep of short deep-network runs (VGG-11, width 0.125, a few hundred
Fashion-MNIST images, one epoch) twice, in fresh folders: once as the local pool (one worker per
core, one thread each) and once as one process using every core.  Projections: each run's time on
this machine from the committed records (:func:`record_runs`), spread over 1, 8 and 64 workers of
this machine's speed (longest runs first; a GPU's per-run time is not measured here).
"""
from __future__ import annotations

import argparse
import heapq
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from actfn.sweep.launchers import cores  # noqa: E402

SHORT = """dataset: fashion_mnist
model: [vgg11]
mode: [backprop, local_correlation]
baselines: [relu, silu]
seed: {seeds}
epochs: 1
batch_size: 64
width: 0.125
train_size: 512
val_size: 64
test_size: 64
"""


def _sweep_seconds(folder: Path, runs: int, workers: int, threads: int) -> float:
    params = folder / "short.yaml"
    params.write_text(SHORT.format(seeds=list(range(max(1, runs // 4)))))
    cmd = [sys.executable, "-m", "actfn.sweep", str(params), "--chapter", "deep_networks", "--root", str(folder / "s"),
           "--workers", str(workers), "--threads", str(threads)]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, env={**os.environ, "ACTFN_PROGRESS": "off"})
    return time.perf_counter() - start


def throughput_rows(runs: int = 8) -> list[dict]:
    n = cores()
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        pool = _sweep_seconds(Path(a), runs, n, 1)
        one = _sweep_seconds(Path(b), runs, 1, n)
    done = 4 * max(1, runs // 4)
    return [{"what": f"sweep of {done} short deep-network runs: runs per hour, local pool ({n} workers × 1 thread)",
             "value": done * 3600 / pool},
            {"what": f"the same sweep: runs per hour, one process ({n} threads)", "value": done * 3600 / one},
            {"what": "the same sweep: local pool's throughput / one process's", "ratio": one / pool}]


def makespan(seconds: list[float], workers: int) -> float:
    """Wall time of ``seconds`` on ``workers`` identical workers, longest runs first."""
    ends = [0.0] * workers
    for s in sorted(seconds, reverse=True):
        heapq.heappush(ends, heapq.heappop(ends) + s)
    return max(ends)


def record_runs(root: Path = ROOT) -> dict[str, list[float]]:
    """Seconds per run of each committed record: the sweep that made it kept each run's own time (deep
    networks: per run; InfoMax: per bank of one K and seed)."""
    out = {}
    for path in sorted((root / "records").glob("*/*.json")):
        body = json.loads(path.read_text())
        unit = "runs" if body["chapter"] == "deep_networks" else "banks"
        seconds = [run["seconds"] for run in body["provenance"]["invocations"]]
        out[f"{body['chapter'].replace('_', ' ')}, {path.stem} ({len(seconds)} {unit})"] = seconds
    return out


def projection_rows(workers=(1, 8, 64)) -> list[dict]:
    rows = []
    for name, seconds in record_runs().items():
        text = ", ".join(f"{w}: {makespan(seconds, w) / 3600:.2g} h" for w in workers)
        rows.append({"what": f"{name}: wall time on 1, 8, 64 workers of this machine's speed", "text": text})
    return rows


def sweep_rows() -> list[dict]:
    return throughput_rows() + projection_rows()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=8)
    args = ap.parse_args(argv)
    for r in throughput_rows(args.runs) + projection_rows():
        shown = r.get("text") or (f"{r['ratio']:.2f}×" if "ratio" in r else f"{r['value']:.0f}")
        print(f"  {r['what']:<96s} {shown}")


if __name__ == "__main__":
    main()
