"""Benchmarks for the foundation (issue 2): ratios measured side by side in one process.

    python benchmarks/unit_benchmarks.py            # activation + trainer ratios (about a minute)
    python benchmarks/unit_benchmarks.py --build    # also the book's cold and cached build times

Prints a table and writes results/benchmarks.json.  Timings are medians of interleaved repeats.
"""
from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import actfn
from actfn.pwl import piecewise_linear_reference
from actfn.results import repo_root, results_dir, write_json_atomic


def fwd_bwd(fn, x):
    x = x.detach().requires_grad_()
    out = fn(x)
    out.backward(torch.ones_like(out))


def interleaved_median(fns: dict, x, repeats: int = 15, warmup: int = 3) -> dict:
    times = {k: [] for k in fns}
    for _ in range(warmup):
        for f in fns.values():
            fwd_bwd(f, x)
    for _ in range(repeats):
        for k, f in fns.items():
            t = time.perf_counter()
            fwd_bwd(f, x)
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def saved_bytes(fn, x) -> int:
    total = []

    def pack(t):
        total.append(t.numel() * t.element_size())
        return t

    x = x.detach().requires_grad_()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x)
    return sum(total)


def activation_rows(shapes=((128, 64, 16, 16), (256, 512, 4, 4))):
    torch.manual_seed(0)
    silu = nn.SiLU()
    rows = []
    for shape, mode in ((s, m) for s in shapes for m in ("shared", "per_channel")):
        x = torch.randn(*shape) * 2
        act = actfn.PiecewiseLinearActivation(num_channels=shape[1] if mode == "per_channel" else None)
        ref = lambda t, a=act: piecewise_linear_reference(t, a.values, a.lo, a.hi)
        med = interleaved_median({"silu": silu, "pwl": act, "reference": ref}, x)
        rows.append({"what": f"PWL fwd+bwd / SiLU, {'x'.join(map(str, shape))} float32, {mode}",
                     "ratio": med["pwl"] / med["silu"]})
        rows.append({"what": "  eager gather reference / SiLU, same", "ratio": med["reference"] / med["silu"]})
        rows.append({"what": "  bytes saved for backward / SiLU's, same",
                     "ratio": saved_bytes(act, x) / saved_bytes(silu, x)})
    return rows


def trainer_rows():
    rows = []
    an = [actfn.train_unit(classes=20, sigma=1.0, mode="analytic", steps=500).seconds for _ in range(3)]
    sa = [actfn.train_unit(classes=20, sigma=1.0, mode="sample", steps=100).seconds / 100 for _ in range(3)]
    rows.append({"what": "analytic trainer, K=20, 500 steps (s)", "value": statistics.median(an)})
    rows.append({"what": "sample trainer, K=20, 10k samples: time per step (ms)", "value": 1e3 * statistics.median(sa)})
    rows.append({"what": "sample / analytic, time per step", "ratio": statistics.median(sa) / (statistics.median(an) / 500)})
    return rows


def build_rows():
    root = repo_root()
    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / "book"
        shutil.copytree(root, dst, symlinks=True,
                        ignore=shutil.ignore_patterns(".venv", "_build", "results", "runs", "wandb", ".git"))
        cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", "book/"]
        times = []
        for _ in range(2):
            t = time.perf_counter()
            subprocess.run(cmd, cwd=dst, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - t)
    return [{"what": "book build, cold (s)", "value": times[0]},
            {"what": "book build, cached (s)", "value": times[1]},
            {"what": "cached / cold build", "ratio": times[1] / times[0]}]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", action="store_true", help="also time a cold and a cached book build")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    rows = activation_rows() + trainer_rows() + (build_rows() if args.build else [])
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    print(f"machine: {machine}")
    print(f"PWL path on the CPU: {actfn.kernels.backend()}")
    for r in rows:
        val = f"{r['ratio']:.2f}x" if "ratio" in r else f"{r['value']:.3f}"
        print(f"  {r['what']:<62s} {val:>10s}")
    out = results_dir() / "benchmarks.json"
    write_json_atomic(out, {"machine": machine, "pwl_path": actfn.kernels.backend(), "rows": rows})
    print("wrote", out)


if __name__ == "__main__":
    main()
