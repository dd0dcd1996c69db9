"""InfoMax trainer benchmark (issue 4): the batched bank ÷ a one-model-at-a-time loop.

    python benchmarks/infomax_benchmarks.py [--ks 16 32 64] [--seeds 3] [--n 2048] [--epochs 2]

Both train the same models (every activation x {infomax, variance_only, reconstruction}) on the
same data with the same code (a bank of one model is a model alone); the figure is model-epochs
per second, batched ÷ loop.  Writes results/benchmarks_infomax.json.
"""
from __future__ import annotations

import argparse
import time

import torch

from actfn import infomax as im
from actfn.results import results_dir, write_json_atomic


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ks", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    x = torch.randn(args.n, 784, generator=torch.Generator().manual_seed(0))
    settings = [im.Setting(a, o) for a in im.ACTIVATIONS for o in ("infomax", "variance_only", "reconstruction")]
    seeds = list(range(args.seeds))
    models = len(settings) * len(seeds)
    im.train_bank(settings[:2], seeds[:1], 16, x[:512], 1)  # warm-up (thread pool, allocator)
    rows = []
    for k in args.ks:
        t = time.perf_counter()
        im.train_bank(settings, seeds, k, x, args.epochs)
        batched = models * args.epochs / (time.perf_counter() - t)
        t = time.perf_counter()
        for seed in seeds:
            for s in settings:
                im.train_bank([s], [seed], k, x, args.epochs)
        loop = models * args.epochs / (time.perf_counter() - t)
        rows += [{"what": f"InfoMax batched trainer, K={k}, {models} models (model-epochs/s)", "value": batched},
                 {"what": "  one model at a time, same models (model-epochs/s)", "value": loop},
                 {"what": f"  batched / one at a time, K={k}", "ratio": batched / loop}]
    for r in rows:
        val = f"{r['ratio']:.2f}x" if "ratio" in r else f"{r['value']:.2f}"
        print(f"  {r['what']:<70s} {val:>10s}")
    write_json_atomic(results_dir() / "benchmarks_infomax.json", {"threads": torch.get_num_threads(), "rows": rows})


if __name__ == "__main__":
    main()
