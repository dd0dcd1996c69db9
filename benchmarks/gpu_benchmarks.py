"""GPU rows of the benchmark (issue 5): the learned activation on a CUDA GPU ÷ SiLU (and ÷ ReLU).

    python benchmarks/gpu_benchmarks.py [--repeats 50]

The CPU benchmark's shapes x 8 in batch (1024x64x16x16 and 2048x512x4x4), shared and per-channel
knots, float32 and bfloat16 inputs (knots, and so the knot gradients' accumulation, in float32);
forward + backward (input and knot gradients) timed with CUDA events, as replayed CUDA graphs (the
GPU's time alone: the goal's measure) and eagerly (with Python's and the kernel launches' overhead,
which at these sizes on a fast GPU is most of the time), the activations interleaved in one process
and each ratio the median over rounds of the ratio within one round.  Also the eager gather
reference ÷ SiLU, for scale.  `make bench` includes these rows when a GPU is visible;
this script prints them alone and writes results/benchmarks_gpu.json.
"""
from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F

from actfn import kernels, piecewise_linear, piecewise_linear_reference
from actfn.results import results_dir, write_json_atomic

SHAPES = ((1024, 64, 16, 16), (2048, 512, 4, 4))


def _fwd_bwd(fn, xs, g):
    out = fn(xs)
    out.backward(g)


def graphed(fn, x, g):
    """A CUDA graph of one forward + backward of ``fn`` (replaying it measures GPU time alone,
    without Python's and the launches' overhead); warmed up on a side stream as CUDA graphs require."""
    xs = x.detach().clone().requires_grad_()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            _fwd_bwd(fn, xs, g)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        _fwd_bwd(fn, xs, g)
    return graph


def _ms(run, times: int) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(times):
        run()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / times


def interleaved_ratios(fns: dict, x, g, repeats: int, times: int = 20) -> dict:
    """Per round, every function ``times`` times back to back, as a replayed CUDA graph ("graph") and
    eagerly ("eager": with Python's and the launches' overhead); per mode, the median over rounds of
    (time / SiLU's time), and the median milliseconds."""
    graphs = {k: graphed(f, x, g) for k, f in fns.items()}
    xs = x.detach().clone().requires_grad_()
    runs = {("graph", k): gr.replay for k, gr in graphs.items()}
    runs |= {("eager", k): (lambda f=f: _fwd_bwd(f, xs, g)) for k, f in fns.items()}
    for run in runs.values():
        _ms(run, 3)
    rounds = [{key: _ms(run, times) for key, run in runs.items()} for _ in range(repeats)]
    out = {}
    for mode in ("graph", "eager"):
        for k in fns:
            out[mode, k] = statistics.median(r[mode, k] / r[mode, "silu"] for r in rounds)
            out[mode, k, "ms"] = statistics.median(r[mode, k] for r in rounds)
    return out


def gpu_activation_rows(repeats: int = 15, reference: bool = True) -> list[dict]:
    if not torch.cuda.is_available():
        return []
    dev = torch.device("cuda")
    gen = torch.Generator(device=dev).manual_seed(0)
    rows = []
    for shape in SHAPES:
        for dtype in (torch.float32, torch.bfloat16):
            x = (torch.randn(shape, generator=gen, device=dev) * 2).to(dtype)
            g = torch.randn(shape, generator=gen, device=dev).to(dtype)
            for mode in ("shared", "per_channel"):
                base = torch.relu(torch.linspace(-3, 3, 33, device=dev))
                y = (base.expand(shape[1], 33).clone() if mode == "per_channel" else base.clone()).requires_grad_()
                fns = {"silu": F.silu, "relu": F.relu, "pwl": lambda t, y=y: piecewise_linear(t, y)}
                r = interleaved_ratios(fns, x, g, repeats)
                name = "x".join(map(str, shape))
                dt = "float32" if dtype == torch.float32 else "bfloat16 (knots float32)"
                rows.append({"what": f"GPU PWL fwd+bwd / SiLU, {name} {dt}, {mode} (CUDA graph: GPU time)",
                             "ratio": r["graph", "pwl"], "goal": 1.2, "goal_kind": "max",
                             "pwl_ms": r["graph", "pwl", "ms"], "silu_ms": r["graph", "silu", "ms"]})
                rows.append({"what": "  GPU PWL / ReLU, same", "ratio": r["graph", "pwl"] / r["graph", "relu"]})
                rows.append({"what": "  GPU PWL / SiLU, same, eager (with Python's and the launches' overhead)",
                             "ratio": r["eager", "pwl"], "pwl_ms": r["eager", "pwl", "ms"],
                             "silu_ms": r["eager", "silu", "ms"]})
                if reference:     # (eager, timed apart: seconds at this size)
                    ref = lambda t, y=y: piecewise_linear_reference(t, y.to(t.dtype))
                    xs = x.detach().clone().requires_grad_()
                    slow = statistics.median(_ms(lambda: _fwd_bwd(ref, xs, g), 1) for _ in range(3))
                    fast = statistics.median(_ms(lambda: _fwd_bwd(F.silu, xs, g), 1) for _ in range(3))
                    rows.append({"what": "  GPU eager gather reference / SiLU (eager), same", "ratio": slow / fast})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--out", default=None, help="where to write the json (default results/benchmarks_gpu.json)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU is visible: the GPU rows need one")
    path = kernels.cuda_backend()
    print(f"GPU: {torch.cuda.get_device_name(0)}; PWL path on CUDA tensors: {path}")
    rows = gpu_activation_rows(args.repeats)
    for r in rows:
        extra = f"   ({r['pwl_ms']:.3f} ms vs SiLU {r['silu_ms']:.3f} ms)" if "pwl_ms" in r else ""
        print(f"  {r['what']:<70s} {r['ratio']:6.2f}x{extra}", flush=True)
    out = args.out or results_dir() / "benchmarks_gpu.json"
    write_json_atomic(out, {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "pwl_path": path,
                            "rows": rows})
    print("wrote", out)


if __name__ == "__main__":
    main()
