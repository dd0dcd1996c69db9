"""How large a deep-network record fits a few hours of this machine: the measurement behind
params/deep_networks/record.yaml.

    python benchmarks/deep_record_scale.py [--widths 0.125 0.25 0.5] [--steps 12] [--hours 5]

Times a dozen training steps (batch 256, full-size Fashion-MNIST images) of every run the record
holds (VGG-11 and ResNet-10; the learned activation in both modes, ReLU, SiLU) at each width, and
projects the record's wall time: steps per epoch on the whole training set x 20 epochs x 3 seeds.
The widest width whose projection fits ``--hours`` is the one to record.  Writes
results/deep_record_scale.json.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from actfn import data as D  # noqa: E402
from actfn.records import machine  # noqa: E402
from actfn.deep.trainer import DeepConfig, train_deep  # noqa: E402
from actfn.process import long_runs  # noqa: E402
from actfn.results import repo_root, results_dir, write_json_atomic  # noqa: E402

RUNS = [("pwl", "backprop"), ("pwl", "local_correlation"), ("relu", "backprop"), ("silu", "backprop")]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--widths", type=float, nargs="+", default=[0.125, 0.25, 0.5])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--hours", type=float, default=5.0)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args(argv)
    root = str(repo_root() / "data")
    train, test = (D.load_dataset("fashion_mnist", root, train=t) for t in (True, False))
    steps_per_epoch = math.ceil((len(train) - 5000) / 256)
    rows = []
    for width in args.widths:
        per_seed_epoch = 0.0
        for model in ("vgg11", "resnet10"):
            for act, mode in RUNS:
                cfg = DeepConfig(model=model, mode=mode, activation=act, epochs=1, batch_size=256, width=width,
                                 train_size=256 * args.steps, val_size=256, test_size=256)
                with long_runs(denormals=False):      # as the chapter trains
                    run, _ = train_deep(cfg, train, test, show_progress=False)
                per_step = run.seconds / run.steps_per_epoch
                per_seed_epoch += per_step * steps_per_epoch
                rows.append({"width": width, "model": model, "activation": act, "mode": mode, "s_per_step": per_step})
                print(f"width {width:g} {model} {act} {mode}: {per_step:.3f} s/step", flush=True)
        hours = per_seed_epoch * args.epochs * args.seeds / 3600
        rows.append({"width": width, "projected_hours": hours, "fits": hours <= args.hours})
        print(f"width {width:g}: {args.seeds} seeds x {args.epochs} epochs projected at {hours:.1f} h "
              f"({'fits' if hours <= args.hours else 'does not fit'} {args.hours:g} h)", flush=True)
    out = {"machine": machine(), "steps_per_epoch": steps_per_epoch, "hours": args.hours, "rows": rows}
    write_json_atomic(results_dir("") / "deep_record_scale.json", out)
    return out


if __name__ == "__main__":
    main()
