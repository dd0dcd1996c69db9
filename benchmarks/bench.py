"""`make bench`: every benchmark of the book in one run, one table, results/benchmarks.json.

    python benchmarks/bench.py               # everything, including two book builds (~20 min here)
    python benchmarks/bench.py --no-build    # without the build times (a few minutes)

Ratios are measured side by side in one process (medians of interleaved repeats), so the machine's
speed cancels; rows with a goal (issue 5) say whether they meet it.  The benchmarks chapter of the
book shows the file this writes, with the machine it ran on.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

import deep_benchmarks  # noqa: E402
import infomax_benchmarks  # noqa: E402
import unit_benchmarks  # noqa: E402
from actfn import kernels  # noqa: E402
from actfn.results import results_dir, write_json_atomic  # noqa: E402


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "python": platform.python_version(), "gpu": gpu}


def meets(row: dict):
    if "goal_value" in row:
        return row["value"] <= row["goal_value"]
    if "goal" not in row or "ratio" not in row:
        return None
    return row["ratio"] <= row["goal"] if row["goal_kind"] == "max" else row["ratio"] >= row["goal"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-build", action="store_true", help="skip the cold and cached book builds")
    args = ap.parse_args()
    sections = [
        ("The learned activation (CPU, float32)", unit_benchmarks.activation_rows),
        ("torch.compile and torch.export", unit_benchmarks.compile_rows),
        ("Deep networks: one training step", deep_benchmarks.deep_rows),
        ("Unit trainers", unit_benchmarks.trainer_rows),
        ("InfoMax trainer", lambda: infomax_benchmarks.infomax_rows() + infomax_benchmarks.design_time_estimate()),
    ]
    if not args.no_build:
        sections.append(("Book build", unit_benchmarks.build_rows))
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']} ({info['torch_threads']} threads, "
          f"{info['cpu_capability']}); PWL path on the CPU: {kernels.backend()}")
    rows = []
    for title, fn in sections:
        print(f"\n{title}", flush=True)
        for r in fn():
            r = {"section": title, **r, "meets_goal": meets({**r})}
            rows.append(r)
            val = f"{r['ratio']:.2f}x" if "ratio" in r else f"{r['value']:.3g}"
            goal = "" if r["meets_goal"] is None else f"  goal {'met' if r['meets_goal'] else 'NOT met'}"
            if "goal" in r:
                goal += f" ({'<=' if r['goal_kind'] == 'max' else '>='} {r['goal']:g}x)"
            print(f"  {r['what']:<78s} {val:>9s}{goal}", flush=True)
    out = results_dir() / "benchmarks.json"
    write_json_atomic(out, {"machine": info, "pwl_path": kernels.backend(),
                            "date": dt.datetime.now().isoformat(timespec="seconds"),
                            "command": "make bench" + (" (--no-build)" if args.no_build else ""), "rows": rows})
    print("\nwrote", out)


if __name__ == "__main__":
    main()
