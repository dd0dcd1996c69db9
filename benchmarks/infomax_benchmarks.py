"""InfoMax trainer benchmark (issues 4 and 5): the batched bank ÷ training one model at a time.

    python benchmarks/infomax_benchmarks.py [--ks 16 32 64] [--seeds 3] [--n N] [--epochs 2]

The models: the chapter's settings for one K (every activation x objective x lambda x constraint,
80 of them, 72 trained) x 3 seeds, on the same data (4,000 Gaussian 784-d inputs, the chapter's default
training-set size; batch 128).  Three trainers of the same models:

* the bank (``train_bank``): all models of one K at once;
* the conventional loop (``train_one_model``): nn.Linear + torch.optim.Adam, one model after the
  other -- the "Python loop over runs" the bank replaces (the tests check they give the same weights);
* the bank's own code with a bank of one model, one after the other (the stricter baseline: it already
  has the bank's fused Adam and closed-form loss gradient).

Timed in rounds, one per seed (the whole bank, then that seed's models in each loop); each ratio is the
median of the rounds' ratios.

The figure is model-epochs per second, batched ÷ each loop, with float32 matrix products and with
bfloat16 ones (float32 accumulation; both trainers use the same precision in each comparison).  Also: the
depth follow-up's bank of second layers ÷ training them one at a time, and the design's full setting's
estimated time (``--design``).  Writes results/benchmarks_infomax.json.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from actfn import infomax as im
from actfn.process import long_runs
from actfn import kernels
from actfn.results import results_dir, write_json_atomic
from unit_benchmarks import rounds_note


def benchmark_settings() -> list:
    """The chapter's settings for one K: every activation x objective x lambda (0.1, 1, 10) x constraint."""
    return im.study_settings(im.ACTIVATIONS, [0.1, 1.0, 10.0], im.CONSTRAINTS)


def median_seconds(fn, repeats: int = 15) -> float:
    """The median time of ``fn()`` over ``repeats`` calls after one warm-up call (a mean would let one
    slow call, common on these VMs, lower the ceiling)."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def matmul_seconds(rows: int, inner: int, cols: int, precision: str) -> float:
    """One product of this shape by the library the bank uses (float32: oneDNN where it loads)."""
    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
    a, b = torch.randn(rows, inner).to(dtype), torch.randn(inner, cols).to(dtype)
    out = torch.empty(rows, cols, dtype=dtype)
    mm = kernels.onednn_matmul() if dtype == torch.float32 else None
    product = (lambda: mm.matmul_into(a, b, out, 0.0)) if mm is not None else (lambda: torch.mm(a, b, out=out))
    return median_seconds(product)


def adam_seconds(rows: int, cols: int = 784) -> float:
    """One Adam update of a (rows, cols) float32 weight as the bank runs it (the compiled ``adam_rows``
    where it loads, else torch's fused Adam): a pass over the weights, their gradient and two moments
    (seven streams of the weights' size), which no batching removes."""
    gen = torch.Generator().manual_seed(0)
    w, g = torch.randn(rows, cols, generator=gen), torch.randn(rows, cols, generator=gen)
    m, v = torch.zeros_like(w), torch.zeros_like(w)
    kernel = kernels.infomax_kernel()
    if kernel is not None:
        update = lambda: kernel.adam_rows(w, g, m, v, None, None, 1e-3, 0.9, 0.999, 1e-8, 1)
    else:
        w.grad = g
        update = torch.optim.Adam([w], lr=1e-3, fused=True).step
    return median_seconds(update)


def ceiling_ratio(precision: str, plain_model_epochs_per_s: float, steps_per_epoch: int, trained: int,
                  weight_rows: int, seeds: int) -> float:
    """Upper bound of bank ÷ conventional: the conventional loop's time per model-step ÷ one trained
    model's share of what the bank cannot avoid per seed: its products with the batch, forward
    (rows x 784) @ (784 x 128) and weight gradient (rows x 128) @ (128 x 784), each timed in its own
    shape, and the Adam update of those weights, timed over all ``seeds``' weights at once as the bank
    runs it (one seed's alone fit in this CPU's L3 cache, and would flatter the ceiling).
    ``weight_rows``: the rows of W and of the decoders W'^T of one seed's ``trained`` models
    (72 x K + 8 x K for the chapter's settings), so the share is over the trained models, not over
    every row."""
    lone_step = 1.0 / (plain_model_epochs_per_s * steps_per_epoch)
    per_seed = (matmul_seconds(weight_rows, 784, 128, precision) + matmul_seconds(weight_rows, 128, 784, precision)
                + adam_seconds(seeds * weight_rows) / seeds)
    return lone_step / (per_seed / trained)


@long_runs()   # as the chapter trains: malloc keeps freed blocks, denormals count as zero
def infomax_rows(ks=(16, 32, 64), seeds=3, n=4000, epochs=2, precisions=("float32", "bfloat16")) -> list[dict]:
    """Per (precision, K): one round per seed, each timing the whole bank, then that seed's models in
    the conventional loop, then in the bank's code one at a time; the ratios are medians of the rounds'
    ratios (on these small VMs a loop's speed moves by a third between runs of one script, and a
    round's three timings, taken back to back, share most of it).

    ``n``: the chapter's default training-set size, 62 steps a call with 2 epochs.  Each call of a
    trainer includes its setup and teardown (a bank's took 25-30 ms at K = 16 on a 2-core Intel Xeon,
    mostly first touches of its weights' and Adam state's pages): 8-10 % of a 32-step call (n = 2,048,
    as this benchmark was before), 4-5 % of this one, 1 % of the chapter's default run (310 steps)."""
    x = torch.randn(n, 784, generator=torch.Generator().manual_seed(0))
    settings = benchmark_settings()
    trained = [s for s in settings if s.objective != "random"]   # the loops skip the untrained baseline
    seeds = list(range(seeds))
    models = len(trained) * len(seeds)
    rows = []
    for precision in precisions:
        for k in ks:
            # warm-up at this size (allocator, thread pool), of both sides: without the conventional
            # loop's, its first round was slower (measured: that round's ratio 1.4x, once 15x, the others')
            im.train_bank(settings, seeds, k, x[:512], 1, matmul_precision=precision)
            for activation in im.ACTIVATIONS:
                im.train_one_model(im.Setting(activation), 0, k, x[:512], 1, matmul_precision=precision)
            rates = {"batched": [], "plain": [], "alone": []}
            for seed in seeds:
                t = time.perf_counter()
                im.train_bank(settings, seeds, k, x, epochs, matmul_precision=precision)
                rates["batched"].append(models * epochs / (time.perf_counter() - t))
                t = time.perf_counter()
                for s in trained:
                    im.train_one_model(s, seed, k, x, epochs, matmul_precision=precision)
                rates["plain"].append(len(trained) * epochs / (time.perf_counter() - t))
                t = time.perf_counter()
                for s in trained:
                    im.train_bank([s], [seed], k, x, epochs, matmul_precision=precision)
                rates["alone"].append(len(trained) * epochs / (time.perf_counter() - t))
            batched, plain, alone = (statistics.median(rates[key]) for key in ("batched", "plain", "alone"))
            ratios = {key: [b / o for b, o in zip(rates["batched"], rates[key])] for key in ("plain", "alone")}
            over = lambda key: statistics.median(ratios[key])
            tag = f"K={k}, {precision} matmuls"
            # what no batching can beat: a lone model's step ÷ its share of one seed's products with the
            # batch (z = W x, grad_W; decoders included) at this CPU's rate, and of their Adam update
            ceiling = ceiling_ratio(precision, plain, len(x) // 128, len(trained),
                                    k * (len(trained) + sum(s.objective == "reconstruction" for s in trained)),
                                    len(seeds))
            rows += [
                {"what": f"InfoMax, {tag}: bank of {len(settings) * len(seeds)} models, {models} trained "
                         "(model-epochs/s)", "value": batched},
                {"what": "  conventional loop, one model at a time (model-epochs/s)", "value": plain},
                {"what": "  bank code, one model at a time (model-epochs/s)", "value": alone},
                {"what": f"  bank / conventional loop, {tag}{rounds_note(ratios['plain'])}", "ratio": over("plain"), "goal": 20.0,
                 "goal_kind": "min"},
                {"what": f"  bank / bank code one at a time, {tag}", "ratio": over("alone")},
                {"what": f"  ceiling: a lone model's step / its products at full speed + its Adam update, {tag}",
                 "ratio": ceiling},
            ]
    return rows


@long_runs()   # as the chapter trains: malloc keeps freed blocks, denormals count as zero
def depth_rows(seeds=3, k1=64, k2=32, n=2048, epochs=2) -> list[dict]:
    """The depth follow-up: every second layer (one per activation x seed, each on its own inputs) as
    one bank ÷ one model at a time (the bank's own code with a bank of one, as before batching).  In
    rounds like :func:`infomax_rows`: per seed, the whole bank, then that seed's second layers alone."""
    settings = [im.Setting(a, "infomax", 1.0) for a in im.ACTIVATIONS]
    seeds = list(range(seeds))
    h = torch.randn(len(seeds), len(settings), n, k1, generator=torch.Generator().manual_seed(1))
    im.train_bank(settings, seeds, k2, h[:, :, :512], 1)                  # warm-up
    ratios = []
    for i, seed in enumerate(seeds):
        t = time.perf_counter()
        im.train_bank(settings, seeds, k2, h, epochs)
        batched = len(settings) * len(seeds) * epochs / (time.perf_counter() - t)
        t = time.perf_counter()
        for j, s in enumerate(settings):
            im.train_bank([s], [seed], k2, h[i, j], epochs)
        ratios.append(batched / (len(settings) * epochs / (time.perf_counter() - t)))
    return [{"what": f"InfoMax depth follow-up ({len(settings) * len(seeds)} second layers, K2 = {k2} on K = {k1} "
                     f"outputs): one bank / one model at a time (model-epochs/s){rounds_note(ratios)}",
             "ratio": statistics.median(ratios)}]


@long_runs()   # as the chapter trains: malloc keeps freed blocks, denormals count as zero
def design_time_estimate(steps=6, precisions=("float32", "bfloat16")) -> list[dict]:
    """The design's full setting (params/infomax/paper.yaml: every setting x 10 seeds, 100 epochs of
    60,000 images, batch 128, metrics on the 10,000 test images), extrapolated from a few steps of
    each K's whole bank, a few steps of the depth follow-up's bank (8 activations x 10 seeds, K2 = 32
    on the K = 64 outputs), a linear probe's evaluations and one model's metrics at full size."""
    settings = im.study_settings(im.ACTIVATIONS, [0.1, 1.0, 10.0], im.CONSTRAINTS)
    seeds = list(range(10))
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(128 * (steps + 1), 784, generator=gen)
    steps_per_run = (60_000 // 128) * 100
    rows, train_hours = [], {}
    # (and on the GPU when one is visible: the banks train there, the follow-ups' estimate stays the CPU's)
    targets = [("cpu", p) for p in precisions] + [("cuda", p) for p in precisions if torch.cuda.is_available()]
    for device, precision in targets:
        total = 0.0
        for k in (16, 32, 64):
            im.train_bank(settings, seeds, k, x[:256], 1, matmul_precision=precision, device=device)    # warm-up
            run = im.train_bank(settings, seeds, k, x, 1, matmul_precision=precision, device=device)
            total += run.seconds / run.steps * steps_per_run
        train_hours[device, precision] = total / 3600
    # the follow-ups and the evaluation (float32, as the chapter runs them whatever the precision)
    depth_settings = [im.Setting(a, "infomax", 1.0) for a in im.ACTIVATIONS]
    h = torch.randn(len(seeds), len(depth_settings), 128 * (steps + 1), 64, generator=gen)
    im.train_bank(depth_settings, seeds, 32, h[:, :, :256], 1)
    run = im.train_bank(depth_settings, seeds, 32, h, 1)
    depth = run.seconds / run.steps * steps_per_run
    # the probes: L-BFGS stops when it converges, which depends on the features; the estimate takes
    # every probe to its cap of evaluations (an upper bound), each evaluation timed at full size (the
    # one probe on the raw pixels is left out: seconds)
    y = torch.randint(0, 10, (60_000,), generator=gen)
    f = torch.randn(60_000, 64, generator=gen, dtype=torch.float64)
    w, b = torch.zeros(10, 64, dtype=torch.float64), torch.zeros(10, dtype=torch.float64)
    f_t, onehot_t = f.T.contiguous(), torch.nn.functional.one_hot(y, 10).double().T.contiguous()
    im.logistic_loss_and_grad(w, b, f, f_t, onehot_t, 1e-4)                 # warm-up
    t = time.perf_counter()
    for _ in range(steps):
        im.logistic_loss_and_grad(w, b, f, f_t, onehot_t, 1e-4)
    evaluations = im.PROBE_ITERATIONS * 5 // 4                              # torch.optim.LBFGS's max_eval
    probes = (time.perf_counter() - t) / steps * evaluations * len(im.ACTIVATIONS) * len(im.OBJECTIVES) * len(seeds)
    x_eval = torch.rand(10_000, 784, generator=gen)
    metrics = 0.0
    for k in (16, 32, 64):
        w, b = im.xavier_weights(0, k, 784), torch.zeros(k)
        seconds = {}
        for act in ("relu", "softmax"):        # softmax's metrics cost about twice the others'
            t = time.perf_counter()
            im.model_metrics(w, b, act, x_eval)
            seconds[act] = time.perf_counter() - t
        share = 1 / len(im.ACTIVATIONS)
        metrics += (share * seconds["softmax"] + (1 - share) * seconds["relu"]) * len(settings) * len(seeds)
    follow = (depth + probes + metrics) / 3600
    for device, precision in targets:
        where = "" if device == "cpu" else f", banks on the GPU ({torch.cuda.get_device_name(0)})"
        rows.append({"what": f"InfoMax design's full setting ({len(settings) * len(seeds)} models per K, 3 K, "
                             f"100 epochs, follow-ups included), {precision}{where}: estimated hours",
                     "value": train_hours[device, precision] + follow})
    rows.append({"what": "  of which the follow-ups and evaluation (depth bank of 80 second layers, 320 linear "
                         "probes at their evaluation cap, metrics of 2,400 models on 10,000 images)", "value": follow})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ks", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n", type=int, default=None, help="training inputs (default: each benchmark's own)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--design", action="store_true", help="also estimate the design's full setting's time "
                                                          "(on the GPU too, when one is visible)")
    ap.add_argument("--design-only", action="store_true", help="only that estimate")
    args = ap.parse_args()
    print(f"InfoMax bank path: {kernels.infomax_backend()}, float32 products: {kernels.products_backend()}")
    n = {"n": args.n} if args.n else {}
    rows = [] if args.design_only else (infomax_rows(args.ks, args.seeds, epochs=args.epochs, **n)
                                        + depth_rows(args.seeds, epochs=args.epochs, **n))
    if args.design or args.design_only:
        rows += design_time_estimate()
    for r in rows:
        val = f"{r['ratio']:.2f}x" if "ratio" in r else f"{r['value']:.2f}"
        print(f"  {r['what']:<72s} {val:>10s}")
    write_json_atomic(results_dir() / "benchmarks_infomax.json", {"threads": torch.get_num_threads(),
                                                                   "infomax_path": kernels.infomax_backend(),
                                                                   "products": kernels.products_backend(), "rows": rows})


if __name__ == "__main__":
    main()
