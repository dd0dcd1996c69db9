"""Run a chapter's parameter file as a sweep, on this machine, a Slurm cluster or a Ray cluster.

    python -m actfn.sweep params/deep_networks/paper.yaml [-p dataset=fashion_mnist] [--launcher local]
    python -m actfn.sweep status params/deep_networks/paper.yaml

Every run (one configuration, one seed) writes one file named by its hash under sweeps/<chapter>/.
Finished runs are skipped, interrupted ones continue from their checkpoints, failed ones are kept
with their error and rerun only with --retry-failed.  Rerunning the same command after a kill
completes the sweep.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .launchers import LAUNCHERS, cores, visible_gpus
from .plan import chapter_of, page_only, plan, read_params
from .runner import FAILED, spec_of


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m actfn.sweep", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("command", nargs="?", choices=("run", "status"), default="run")
    ap.add_argument("params", help="a chapter's parameter file, params/<chapter>/<name>.yaml")
    ap.add_argument("-p", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                    help="override one parameter (the value is read as YAML)")
    ap.add_argument("--chapter", default=None, help="default: the parameter file's folder")
    ap.add_argument("--root", default=None, help="the sweeps folder (default: <repository>/sweeps)")
    ap.add_argument("--data-root", default=None, help="the data folder (default: ACTFN_DATA or <repository>/data)")
    ap.add_argument("--launcher", choices=LAUNCHERS, default="local")
    ap.add_argument("--retry-failed", action="store_true", help="rerun the failed runs, and only those")
    ap.add_argument("--device", default=None, help="cpu, cuda or auto (default: the parameter file's, else cpu)")
    ap.add_argument("--workers", type=int, default=None,
                    help="local: parallel runs (default: one per GPU, else one per core)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads per run (default: cores / workers)")
    ap.add_argument("--wandb", choices=("disabled", "offline", "online"), default=None,
                    help="W&B for every run, in one group per sweep (default: the file's wandb_mode, else disabled)")
    ap.add_argument("--wandb-group", default=None, help="default: <chapter>-<parameter file's name>")
    ap.add_argument("--record", default=None, metavar="NAME",
                    help="when every run is done, write records/<chapter>/NAME.json from the run files")
    ap.add_argument("--records", default=None, help="where records go (default: <repository>/records)")
    g = ap.add_argument_group("slurm (submitit)")
    g.add_argument("--partition", default=None, help="default: the file's slurm_partition")
    g.add_argument("--account", default=None, help="default: the file's slurm_account")
    g.add_argument("--gpus-per-task", type=int, default=None,
                   help="default: the file's slurm_gpus_per_task, else 1 when the runs use a GPU, else 0")
    g.add_argument("--minutes", type=int, default=None,
                   help="the time limit of each task (default: the file's slurm_minutes, else 240)")
    g.add_argument("--slurm-executor", choices=("slurm", "local"), default="slurm",
                   help="local: submitit's local executor, the same path without a cluster")
    g = ap.add_argument_group("ray")
    g.add_argument("--address", default=None, help="a Ray cluster (default: a local Ray instance)")
    g.add_argument("--gpus-per-run", type=float, default=None, help="may be a fraction (default: 1 on a GPU, else 0)")
    return ap


def _device(name: str) -> str:
    if name == "auto":
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def slurm_settings(args, params: dict, device: str) -> tuple:
    """(partition, account, GPUs per task, minutes): the command line's, else the parameter file's
    ``slurm_*``, else none, a GPU on a GPU sweep, and 240."""
    pick = lambda given, key, default: given if given is not None else params.get(key, default)
    return (pick(args.partition, "slurm_partition", None), pick(args.account, "slurm_account", None),
            int(pick(args.gpus_per_task, "slurm_gpus_per_task", int(device == "cuda"))),
            int(pick(args.minutes, "slurm_minutes", 240)))


def status_line(counts: dict) -> str:
    return " / ".join(f"{n} {state}" for state, n in counts.items())


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    params = read_params(args.params, args.overrides)
    chapter = args.chapter or chapter_of(args.params)
    left = page_only(params, chapter)
    sweep = plan(params, chapter, args.root, args.data_root)
    states = sweep.states()
    print(f"{chapter}: {len(sweep.runs)} runs in {sweep.store.root}: {status_line(sweep.counts())}")
    if left:
        print(f"left to the chapter's page, not swept: {', '.join(left)}")
    if args.command == "status":
        for run, h, state in zip(sweep.runs, sweep.hashes, states):
            if state != "done":
                print(f"  {state:8s} {h}  {run.label()}")
        return write_record(sweep, params, args) if args.record else 0

    todo = [i for i, s in enumerate(states) if s == ("failed" if args.retry_failed else "pending")]
    device = _device(args.device or params.get("device") or "cpu")
    gpus = visible_gpus() if device == "cuda" else []
    workers = max(1, min(args.workers or (len(gpus) or cores()), len(todo) or 1))
    threads = args.threads or max(1, cores() // (1 if gpus else workers))
    wandb = {"mode": args.wandb or params.get("wandb_mode") or "disabled",
             "project": params.get("wandb_project", "activation"),
             "group": args.wandb_group or f"{chapter}-{Path(args.params).stem}"}
    specs = [spec_of(sweep.runs[i], sweep.hashes[i], sweep.store.root, sweep.data, sweep.data_root, sweep.download,
                     device, threads, wandb) for i in todo]
    if not specs:
        print("nothing to run" + ("" if args.retry_failed or not states.count("failed") else
                                  " (failed runs are rerun with --retry-failed)"))
        return write_record(sweep, params, args) if args.record else 0
    if args.launcher == "local":
        from .launchers import local
        outcomes = local(specs, workers, gpus)
    elif args.launcher == "slurm":
        from .launchers import slurm
        outcomes = slurm(specs, str(sweep.store.root / "slurm"), *slurm_settings(args, params, device), threads,
                         args.slurm_executor)
    else:
        from .launchers import ray
        gpr = args.gpus_per_run if args.gpus_per_run is not None else float(device == "cuda")
        outcomes = ray(specs, args.address, gpr, float(threads))

    from ..progress import progress
    tally = {}
    bar = progress(total=len(specs), desc=f"{chapter} sweep", unit="run")
    try:
        for spec, outcome in outcomes:
            tally[outcome] = tally.get(outcome, 0) + 1
            bar.update(1)
            if outcome == FAILED:
                bar.write(f"failed: {spec['hash']} (see {spec['hash']}.failed.json)")
    except Exception as err:
        bar.close()
        print(f"the sweep stopped: {type(err).__name__}: {err}\nfinished runs are kept; run the same command to "
              "continue", file=sys.stderr)
        return 1
    bar.close()
    print("this invocation: " + ", ".join(f"{n} {k}" for k, n in sorted(tally.items())))
    print(f"{chapter}: {status_line(sweep.counts())}")
    if tally.get(FAILED):
        return 1
    return write_record(sweep, params, args) if args.record else 0


def write_record(sweep, params: dict, args) -> int:
    """The chapter's record from the sweep's run files, once every run is done."""
    from .. import records
    from ..results import repo_root
    from .tasks import task_of
    left = len(sweep.runs) - sweep.counts()["done"]
    if left:
        print(f"no record yet: {left} of {len(sweep.runs)} runs are not done", file=sys.stderr)
        return 1
    task = task_of(sweep.chapter)
    if not hasattr(task, "aggregate"):
        print(f"no record: the {sweep.chapter} sweep cannot make its chapter's record yet", file=sys.stderr)
        return 1
    done = sweep.results()
    results = task.aggregate(done, params, task.load(task.dataset_of(params), sweep.data_root, sweep.download))
    runs = [{"run": r["hash"], "seconds": r["provenance"]["seconds"], "finished": True,
             "invocations": r["provenance"].get("invocations", 1),
             "machine": r["provenance"]["machine"], "device": r["provenance"]["device"],
             "threads": r["provenance"]["threads"], "when": r["provenance"]["finished"]} for r in done]
    command = records.python_command(["-m", "actfn.sweep", *args.argv])
    provenance = records.provenance_of(results, repo_root(), command, runs)
    out = records.write(Path(args.records or repo_root() / "records") / sweep.chapter / f"{args.record}.json",
                        sweep.chapter, results, provenance)
    print(f"record {out}: {len(done)} runs, {provenance['wall_seconds'] / 3600:.2f} h of runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
