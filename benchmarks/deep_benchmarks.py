"""Deep-network benchmark (issue 3): one training step with the learned activation ÷ the same with ReLU.

    python benchmarks/deep_benchmarks.py [--width 1.0] [--batch 128]

Steps interleaved in one process (PWL, ReLU, SiLU, PWL, ...) on random 32x32 inputs (the cost does
not depend on the data), with malloc recycling large blocks as the deep trainer runs them
(actfn.process); each ratio is the median over repeats of the ratio within one interleaved round, so a
drift of the machine's speed between rounds cancels.  Prints ratios and writes them into
results/benchmarks_deep.json.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from actfn import kernels
from actfn.process import recycled_memory
from actfn.deep.models import build_model
from actfn.results import results_dir, write_json_atomic


def step_fn(model):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def deep_rows(width=1.0, batch=128, repeats=9) -> list[dict]:
    torch.manual_seed(0)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    rows = []
    for name in ("vgg11", "resnet10"):
        steps = {act: step_fn(build_model(name, activation=act, width=width)) for act in ("pwl", "relu", "silu")}
        times = {act: [] for act in steps}
        with recycled_memory():
            for act, s in steps.items():
                s(x, y)  # warm-up
            for _ in range(repeats):
                for act, s in steps.items():
                    t = time.perf_counter()
                    s(x, y)
                    times[act].append(time.perf_counter() - t)
        ratio = {act: statistics.median(a / r for a, r in zip(times[act], times["relu"])) for act in ("pwl", "silu")}
        rows.append({"what": f"{name} (width {width}, batch {batch}) train step, PWL / ReLU",
                     "ratio": ratio["pwl"], "goal": 1.15, "goal_kind": "max"})
        rows.append({"what": f"{name} (width {width}, batch {batch}) train step, SiLU / ReLU",
                     "ratio": ratio["silu"]})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    rows = deep_rows(args.width, args.batch, args.repeats)
    print(f"PWL path on the CPU: {kernels.backend()}")
    for r in rows:
        print(f"  {r['what']:<62s} {r['ratio']:6.2f}x")
    out = results_dir() / "benchmarks_deep.json"
    write_json_atomic(out, {"threads": torch.get_num_threads(), "pwl_path": kernels.backend(), "rows": rows})
    print("wrote", out)


if __name__ == "__main__":
    main()
