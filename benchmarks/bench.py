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
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

import deep_benchmarks  # noqa: E402
import gpu_benchmarks  # noqa: E402
import infomax_benchmarks  # noqa: E402
import sweep_benchmarks  # noqa: E402
import unit_benchmarks  # noqa: E402
from actfn import kernels  # noqa: E402
from actfn.results import results_dir, write_json_atomic  # noqa: E402


def machine() -> dict:
    """actfn.records.machine (CPU, cores, GPU), with torch's view of the CPU."""
    from actfn.records import machine as described

    m = described()
    return {"cpu": m["cpu"], "cores": m["cores"], "torch_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "python": platform.python_version(), "gpu": m["gpu"]}


def describe(info: dict) -> str:
    gpu = f", GPU: {info['gpu']}" if info.get("gpu") else ""
    return (f"machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']} "
            f"({info['torch_threads']} threads, {info['cpu_capability']}){gpu}")


def meets(row: dict):
    if "passed" in row:
        return row["passed"]
    if "goal_value" in row:
        return row["value"] <= row["goal_value"]
    if "goal" not in row or "ratio" not in row:
        return None
    return row["ratio"] <= row["goal"] if row["goal_kind"] == "max" else row["ratio"] >= row["goal"]


SECTIONS = {
    "activation": ("The learned activation (CPU, float32)", unit_benchmarks.activation_rows),
    "gpu": ("The learned activation on the GPU (CUDA kernels)", gpu_benchmarks.gpu_activation_rows),
    "compile": ("torch.compile and torch.export", unit_benchmarks.compile_rows),
    "deep": ("Deep networks: one training step", deep_benchmarks.deep_rows),
    "trainers": ("Unit trainers", unit_benchmarks.trainer_rows),
    "infomax": ("InfoMax trainer", lambda: infomax_benchmarks.infomax_rows() + infomax_benchmarks.depth_rows()
                + infomax_benchmarks.design_time_estimate()),
    "sweep": ("Sweeps: throughput and projections", sweep_benchmarks.sweep_rows),
    "build": ("Book build", unit_benchmarks.build_rows),
}


def run_sections(names, echo=False) -> list[dict]:
    rows = []
    for name in names:
        title, fn = SECTIONS[name]
        if echo:
            print(f"\n{title}", flush=True)
        for r in fn():
            r = {"section": title, **r}
            r["meets_goal"] = meets(r)
            rows.append(r)
            if echo:
                print(f"  {r['what']:<78s} {result(r):>9s}  {goal(r)}", flush=True)
    return rows


def result(r: dict) -> str:
    if "text" in r:
        return r["text"]
    if "ratio" in r:
        return f"{r['ratio']:.2f}×" if r["ratio"] >= 0.1 else f"{r['ratio']:.2g}×"
    return f"{r['value']:,.0f}" if abs(r["value"]) >= 1000 else f"{r['value']:.3g}"


def goal(r: dict) -> str:
    if r.get("meets_goal") is None:
        return ""
    if "passed" in r:
        return "works: " + ("met" if r["meets_goal"] else "not met")
    bound = (f"{'≤' if r['goal_kind'] == 'max' else '≥'} {r['goal']:g}×" if "goal" in r else f"≤ {r['goal_value']:g}")
    return f"{bound}: {'met' if r['meets_goal'] else 'not met'}"


GOAL_COLUMNS = [("section", "section"), ("what", "measured"), ("result", "result"), ("goal", "goal"),
                ("source", "measured by")]


def goal_rows(live: list[dict], saved: dict | None) -> tuple[list[dict], list[str]]:
    """The benchmarks with a goal, one row each -- from ``live`` (this build's rows) for the sections it
    ran, else from the ``make bench`` table ``saved`` -- and the titles of the sections neither measured."""
    out, unmeasured = [], []
    saved_rows = saved["rows"] if saved else []
    for title, _ in SECTIONS.values():
        here = [r for r in live if r["section"] == title]
        there = [r for r in saved_rows if r["section"] == title]
        source, section = (("this build", here) if here else
                           (f"make bench, {saved['date'][:10]}" if saved else "", there))
        if not section:
            unmeasured.append(title)
        last = None
        for r in section:
            met = meets(r)
            if met is not None:
                out.append({"section": title if title != last else "", "what": r["what"].strip(), "result": result(r),
                            "goal": goal({**r, "meets_goal": met}), "source": source, "met": met})
                last = title
    return out, unmeasured


TABLE_COLUMNS = [("section", "section"), ("what", "measured"), ("result", "result"), ("goal", "goal")]
SECTION_COLUMNS = [("what", "measured"), ("result", "result"), ("goal", "goal")]


def by_section(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    """(section title, its table rows) in order: one small table per section for a page."""
    out = []
    for r in table_rows(rows):
        if r["section"]:
            out.append((r["section"], []))
        out[-1][1].append(r)
    return out


TABLE_FIELDS = ("machine", "pwl_path", "date", "command", "rows")
ROW_FIELDS = ("section", "what")


def read_table(path: Path) -> tuple[dict | None, str | None]:
    """The table ``make bench`` wrote to ``path``, or (None, what is wrong with the file): a damaged or
    partial file is reported by the page that shows it, never fatal to the book's build."""
    import json

    try:
        saved = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"it is not readable JSON ({type(err).__name__}: {err})"
    if not isinstance(saved, dict):
        return None, "it holds no table"
    missing = [f for f in TABLE_FIELDS if f not in saved]
    if missing:
        return None, f"it lacks the field{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
    wrong = [f for f in ("date", "command", "pwl_path") if not isinstance(saved[f], str)]
    if wrong:
        return None, f"its field {wrong[0]} is not text"
    if not isinstance(saved["rows"], list) or not all(isinstance(r, dict) and all(f in r for f in ROW_FIELDS)
                                                     for r in saved["rows"]):
        return None, f"its rows are not rows of a table (each needs {', '.join(ROW_FIELDS)})"
    if not isinstance(saved["machine"], dict) or not all(k in saved["machine"] for k in
                                                         ("cpu", "cores", "torch", "torch_threads", "cpu_capability")):
        return None, "its machine description is incomplete"
    try:
        table_rows(saved["rows"])
        list(by_section(saved["rows"]))
    except (KeyError, TypeError, ValueError) as err:
        return None, f"a row cannot be shown ({type(err).__name__}: {err})"
    return saved, None


def table_rows(rows: list[dict]) -> list[dict]:
    """Rows for a markdown table: the section named once, results and goals as text."""
    out, last = [], None
    for r in rows:
        out.append({"section": r["section"] if r["section"] != last else "", "what": r["what"].strip(),
                    "result": result(r), "goal": goal(r)})
        last = r["section"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-build", action="store_true", help="skip the cold and cached book builds")
    args = ap.parse_args()
    names = [n for n in SECTIONS if not (args.no_build and n == "build") and (n != "gpu" or torch.cuda.is_available())]
    info = machine()
    print(describe(info) + f"; PWL path on the CPU: {kernels.cpu_path()}, on CUDA tensors: {kernels.cuda_backend()}; "
          f"InfoMax bank path: {kernels.infomax_backend()}, float32 products: {kernels.products_backend()}")
    rows = run_sections(names, echo=True)
    out = results_dir() / "benchmarks.json"
    write_json_atomic(out, {"machine": info, "pwl_path": kernels.backend(), "pwl_backward_lanes": kernels.backward_lanes(),
                            "pwl_cuda_path": kernels.cuda_backend(),
                            "infomax_path": kernels.infomax_backend(),
                            "products": kernels.products_backend(), "date": dt.datetime.now().isoformat(timespec="seconds"),
                            "command": "make bench" + (" BENCH_ARGS=--no-build" if args.no_build else ""), "rows": rows})
    print("\nwrote", out)


if __name__ == "__main__":
    main()
