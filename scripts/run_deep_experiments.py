"""Run the deep-network experiments of a parameter file without Jupyter, one summary per run.

    python scripts/run_deep_experiments.py params/deep_networks/paper.yaml --dataset fashion_mnist \
        --out results/deep_networks_paper.json [--device auto] [--minutes 9] [--order pwl-first]

For machines that have PyTorch but not the notebook stack (a rented GPU, a cluster node).  It calls
the same library functions as ``book/deep_networks.md`` and writes the same run summaries
(model, dataset, mode, activation, epochs, test_acc, per-layer Swish fits, Gaussianity).  The
output file is rewritten atomically after every run, and runs already in it are skipped, so a
second invocation continues where a time limit (``--minutes``) stopped the first.  A run is skipped
only when its full configuration matches one in the file; a file written with other parameters,
another dataset or another version of the code is refused (naming the field that differs), so that
runs of two settings never share one file under one label.  The book's page
itself is produced only by the papermill/jupyter-book commands of the README.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import yaml

from dataclasses import asdict

from actfn import checkpoints
from actfn import data as D
from actfn import kernels
from actfn.deep.trainer import DeepConfig, resolve_device, run_experiments
from actfn.process import long_runs
from actfn.results import plain, repo_root, write_json_atomic


def configs_from(params: dict, dataset: str, pwl_first: bool) -> list[DeepConfig]:
    as_list = lambda v: list(v) if isinstance(v, (list, tuple)) else [v]
    keys = ("epochs", "batch_size", "lr", "act_lr", "per_channel", "width", "train_size", "val_size", "test_size", "seed")
    common = {k: params[k] for k in keys if k in params}
    models, modes = as_list(params.get("model", "vgg11")), as_list(params.get("mode", "backprop"))
    pwl = [DeepConfig(model=m, mode=md, activation="pwl", dataset=dataset, **common) for m in models for md in modes]
    base = [DeepConfig(model=m, mode="backprop", activation=b, dataset=dataset, **common)
            for m in models for b in as_list(params.get("baselines") or [])]
    if pwl_first:
        return pwl + base
    return [c for m in models for c in pwl + base if c.model == m]


def existing(out: Path, made_by: dict) -> dict:
    """The runs already in ``out`` if it was written with the same parameters, dataset and code; else stop."""
    if not out.is_file():
        return {"runs": []}
    try:
        done = json.loads(out.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SystemExit(f"--out {out} is not valid JSON ({err}); delete it or choose another --out")
    found = (checkpoints.difference(done.get("made_by"), made_by, "made_by", "the file") if isinstance(done, dict)
             else "not a results file")
    if found or not isinstance(done.get("runs"), list):
        raise SystemExit(f"--out {out} holds runs made with other parameters, data or code ({found}); its runs are "
                         f"not mixed with these: choose another --out, or delete it to start again")
    return done


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("params", help="a papermill parameter file of the deep-network chapter")
    ap.add_argument("--dataset", default="cifar10", choices=D.DATASETS)
    ap.add_argument("--data-root", default=str(repo_root() / "data"))
    ap.add_argument("--fashion-mnist-source", default=str(D.FASHION_MNIST_SYSTEM_DIR),
                    help="folder with the four Fashion-MNIST IDX files (.gz or not)")
    ap.add_argument("--download", action="store_true", help="download the dataset when missing (online)")
    ap.add_argument("--device", default=None, help="cpu, cuda or auto (default: the parameter file's, else cpu)")
    ap.add_argument("--out", default=str(repo_root() / "results" / "deep_networks_script.json"))
    ap.add_argument("--checkpoint-dir", default=str(repo_root() / "checkpoints" / "deep_networks"))
    ap.add_argument("--minutes", type=float, default=None, help="start no new run after this many minutes")
    ap.add_argument("--order", choices=("pwl-first", "by-model"), default="pwl-first")
    args = ap.parse_args()

    params = yaml.safe_load(Path(args.params).read_text()) or {}
    device = resolve_device(args.device or params.get("device", "cpu"))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    configs = configs_from(params, args.dataset, args.order == "pwl-first")
    if args.dataset == "fashion_mnist":
        D.prepare_fashion_mnist(Path(args.data_root), Path(args.fashion_mnist_source))
    train = D.load_dataset(args.dataset, args.data_root, train=True, download=args.download)
    test = D.load_dataset(args.dataset, args.data_root, train=False, download=args.download)

    out = Path(args.out)
    made_by = plain({"params": params, "dataset": args.dataset, "code": checkpoints.code_version(),
                     "data": checkpoints.fingerprint(train.images, train.labels, test.images, test.labels)})
    done = existing(out, made_by)
    have = [r["config"] for r in done["runs"]]
    done.update(made_by=made_by, device=str(device), torch=torch.__version__, pwl_path_cpu=kernels.backend(),
                gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else None, params_file=args.params)
    start = time.perf_counter()
    for cfg in configs:
        if plain(asdict(cfg)) in have:
            continue
        if args.minutes is not None and time.perf_counter() - start > 60 * args.minutes:
            print(f"time limit: stopping before {cfg.model} {cfg.activation} {cfg.mode}")
            break
        with long_runs(denormals=False):      # malloc keeps freed blocks while it trains, as the chapter does
            summary = run_experiments([cfg], train, test, args.checkpoint_dir, resume=True, show_progress=False,
                                      device=device)[0]["summary"]
        done["runs"].append({**summary, "config": plain(asdict(cfg))})
        write_json_atomic(out, done)
        print(f"{cfg.model:9s} {cfg.activation:5s} {cfg.mode:17s} test acc {summary['test_acc']:.4f} "
              f"({summary['seconds']:.0f} s)  beta by layer: "
              + " ".join(f"{l['beta']:.2f}" for l in summary["layers"]), flush=True)


if __name__ == "__main__":
    main()
