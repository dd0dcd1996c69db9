"""Benchmarks for the foundation (issue 2): ratios measured side by side in one process.

    python benchmarks/unit_benchmarks.py            # activation + trainer ratios (about a minute)
    python benchmarks/unit_benchmarks.py --build    # also the book's cold and cached build times

Prints a table and writes results/benchmarks.json.  Timings are medians of interleaved repeats (the
activation rows: each side's fastest of several rounds of them, see activation_rows).
"""
from __future__ import annotations

import argparse
import logging
import platform
import re
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
from actfn.process import recycled_memory
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


def rounds_note(ratios: list[float], digits: int = 1) -> str:
    """The spread of a ratio's rounds, " (rounds a to b)", shown beside their median (nothing for one round)."""
    return f" (rounds {min(ratios):.{digits}f} to {max(ratios):.{digits}f})" if len(ratios) > 1 else ""


def saved_bytes(fn, x) -> int:
    total = []

    def pack(t):
        total.append(t.numel() * t.element_size())
        return t

    x = x.detach().requires_grad_()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x)
    return sum(total)


# SiLU's fastest round over ReLU's: about 1.2 where SiLU ran at its own speed in a round, 2.5-3.0 where
# one of the Intel VM's slow spells covered every round; above this, the SiLU goal gets no verdict
SILU_SPELL = 2.0


def activation_rows(shapes=((128, 64, 16, 16), (256, 512, 4, 4)), rounds: int = 5, repeats: int = 11):
    """PWL against SiLU and ReLU, forward+backward, per shape and mode, in ``rounds`` rounds of
    interleaved repeats (every case once a round, so that each case's rounds are spread over the whole
    benchmark).  Each activation's time is the fastest of its rounds' medians, and each ratio the ratio
    of those; the row gives the range of the rounds' own ratios.  A slow spell of the machine only ever
    adds time, and it need not hit both sides of a ratio alike: on an Intel Xeon VM, nn.SiLU's kernels
    (and torch.sigmoid's) ran 3x slower for spells of seconds to minutes while ReLU's, the PWL kernels,
    torch.exp's, torch.tanh's and torch.reciprocal's did not."""
    torch.manual_seed(0)
    silu, relu = nn.SiLU(), nn.ReLU()
    cases = []
    for shape, mode in ((s, m) for s in shapes for m in ("shared", "per_channel")):
        act = actfn.PiecewiseLinearActivation(num_channels=shape[1] if mode == "per_channel" else None)
        cases.append((shape, mode, torch.randn(*shape) * 2, act))
    medians = [{"silu": [], "relu": [], "pwl": []} for _ in cases]
    # malloc keeps freed blocks (actfn.process): on this kind of VM the page faults of fresh ~8 MB
    # outputs cost more than the activations themselves and would add the same time to both sides
    with recycled_memory():
        for _ in range(rounds):
            for (shape, mode, x, act), times in zip(cases, medians):
                med = interleaved_median({"silu": silu, "relu": relu, "pwl": act}, x, repeats=repeats)
                for key in times:
                    times[key].append(med[key])
    rows = []
    for (shape, mode, x, act), times in zip(cases, medians):
        ref = lambda t, a=act: piecewise_linear_reference(t, a.values, a.lo, a.hi)
        # the naive reference apart: its large temporaries between the others' runs would disturb them
        slow = interleaved_median({"silu": silu, "reference": ref}, x, repeats=5, warmup=1)
        per_round = [p / s for p, s in zip(times["pwl"], times["silu"])]
        silu_over_relu = min(times["silu"]) / min(times["relu"])
        row = {"what": f"PWL fwd+bwd / SiLU, {'x'.join(map(str, shape))} float32, {mode}{rounds_note(per_round, 2)}",
               "ratio": min(times["pwl"]) / min(times["silu"])}
        if silu_over_relu > SILU_SPELL:
            row["what"] += f"; no verdict: SiLU took {silu_over_relu:.1f}x ReLU's time in every round (a slow spell)"
        else:
            row.update(goal=1.5, goal_kind="max")
        rows.append(row)
        rows.append({"what": "  PWL / ReLU, same", "ratio": min(times["pwl"]) / min(times["relu"])})
        rows.append({"what": "  SiLU / ReLU, same", "ratio": silu_over_relu})
        rows.append({"what": "  eager gather reference / SiLU, same", "ratio": slow["reference"] / slow["silu"]})
        # the goal: no more than SiLU saves (its input) plus the knots themselves
        rows.append({"what": "  bytes saved for backward / (SiLU's + the knots), same",
                     "ratio": saved_bytes(act, x) / (saved_bytes(silu, x) + act.values.numel() * act.values.element_size()),
                     "goal": 1.0, "goal_kind": "max"})
    return rows


def steps_to_reach(curve, target) -> int | None:
    hit = [i for i, v in enumerate(curve) if v <= target]
    return hit[0] + 1 if hit else None


def trainer_rows(steps=500, sample_steps=1000):
    """Analytic (closed-form Gaussian integrals) vs sample-based (10k samples a step) unit trainers:
    time per step, and time until the exact objective is within 1 % (of the way from the start) of the
    analytic run's final value."""
    an = [actfn.train_unit(classes=20, sigma=1.0, mode="analytic", steps=steps) for _ in range(3)]
    sa = actfn.train_unit(classes=20, sigma=1.0, mode="sample", steps=sample_steps)
    t_an = statistics.median(r.seconds / steps for r in an)
    t_sa = sa.seconds / sample_steps
    run = an[0]
    target = run.final_loss + 0.01 * abs(run.initial_loss - run.final_loss)
    n_an, n_sa = steps_to_reach(run.loss, target), steps_to_reach(sa.loss, target)
    rows = [{"what": "analytic unit trainer, K=20: time per step (ms)", "value": 1e3 * t_an},
            {"what": "sample unit trainer, K=20, 10k samples: time per step (ms)", "value": 1e3 * t_sa},
            {"what": "sample / analytic, time per step", "ratio": t_sa / t_an}]
    if n_sa is None:
        rows.append({"what": f"sample / analytic, time to the analytic final loss (not reached in {sample_steps} steps)",
                     "ratio": (sample_steps * t_sa) / (n_an * t_an), "lower_bound": True})
    else:
        rows.append({"what": f"sample / analytic, time to the analytic final loss ({n_sa} vs {n_an} steps)",
                     "ratio": (n_sa * t_sa) / (n_an * t_an)})
    return rows


def compile_rows(repeats=10):
    """torch.compile (inductor, fullgraph=True: any graph break is an error) and torch.export of a
    small conv net with the learned activation; compiled ÷ eager forward+backward."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), actfn.PiecewiseLinearActivation(num_channels=32),
                          nn.Conv2d(32, 32, 3, padding=1), actfn.PiecewiseLinearActivation(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    x = torch.randn(64, 3, 32, 32)
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)   # "No CUDA runtime is found": irrelevant on the CPU
    rows = []
    try:
        t = time.perf_counter()
        compiled = torch.compile(model, fullgraph=True)
        compiled(x).sum().backward()
        compile_s = time.perf_counter() - t
        med = interleaved_median({"eager": lambda v: model(v).sum(), "compiled": lambda v: compiled(v).sum()},
                                 x, repeats=repeats)
        rows += [{"what": "conv net with PWL: torch.compile(fullgraph=True), no graph break; compile time (s)",
                  "value": compile_s, "passed": True},
                 {"what": "  compiled / eager, forward+backward", "ratio": med["compiled"] / med["eager"]}]
    except Exception as err:   # a graph break (fullgraph=True) or no C++ compiler for inductor: a finding
        reason = str(err).strip().splitlines()[0][:120] if str(err).strip() else ""
        rows.append({"what": f"conv net with PWL: torch.compile(fullgraph=True) failed: {type(err).__name__}: {reason}",
                     "text": "failed", "passed": False})
    finally:
        logger.setLevel(level)
    exported = torch.export.export(model, (x,))
    ops = sum(str(n.target) == "actfn.pwl.default" for n in exported.graph.nodes)
    same = torch.allclose(exported.module()(x), model(x), atol=1e-5)
    return rows + [{"what": f"  torch.export: PWL kept as one operator, actfn.pwl ({ops} of 2 nodes), same output",
                    "text": "yes" if same and ops == 2 else "no", "passed": bool(same and ops == 2)}]


ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*: \S")


def build_failure_hint(output: str) -> str:
    """Why a book build failed, in one line: the page and the exception its cell raised (myst-nb
    prints the cell's traceback, in colour, above jupyter-book's closing "There was an error in
    building your book"), else the build's last line that mentions an error."""
    lines = [ln.strip() for ln in ANSI_CODE.sub("", output).splitlines() if ln.strip()]
    page = next((ln.split(": WARNING")[0] for ln in lines if "Executing notebook failed" in ln), None)
    cell = next((i for i, ln in enumerate(lines) if ln.startswith("nbclient.exceptions.CellExecutionError")), None)
    if cell is not None:
        trace = next((i for i in range(cell, len(lines)) if "Traceback (most recent call last)" in lines[i]), None)
        if trace is not None:
            raised = next((ln for ln in lines[trace + 1:] if EXCEPTION_LINE.match(ln)), None)
            if raised is not None:
                return f"{Path(page).name}: {raised}" if page else raised
    return next((ln for ln in reversed(lines) if "Error" in ln or "error" in ln), lines[-1] if lines else "")


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
            done = subprocess.run(cmd, cwd=dst, capture_output=True, text=True)
            if done.returncode != 0:
                # a failed build is a row that says why, not a lost table (offline, the chapters need
                # ACTFN_DATASET / ACTFN_INFOMAX_DATASET set, as for `make book`)
                hint = build_failure_hint(done.stdout + done.stderr)
                return [{"what": f"book build failed (exit {done.returncode}): {hint[:200]}", "text": "failed",
                         "passed": False}]
            times.append(time.perf_counter() - t)
    return [{"what": "book build, cold (minutes; goal <= 20)", "value": times[0] / 60, "goal_value": 20},
            {"what": "book build, cached (minutes; goal <= 1)", "value": times[1] / 60, "goal_value": 1},
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
