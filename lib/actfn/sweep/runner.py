"""One run, wherever it executes: a local worker, a Slurm task or a Ray task all call ``execute``.

A run is described by a plain dict (a *spec*), so that every engine can ship it: the chapter, the
configuration and seed, the run's hash, the sweep folder, where the data are, the device and the
number of CPU threads.  ``execute`` claims the run, skips it when it is done or held by another
process, runs it, and writes its result -- or its failure -- atomically.
"""
from __future__ import annotations

import os
import time

from .store import Run, Store

RAN, DONE, BUSY, FAILED = "ran", "done", "busy", "failed"


def spec_of(run: Run, h: str, root, data: str, data_root: str, download: bool, device: str, threads: int,
            wandb: dict | None = None) -> dict:
    """``wandb``: {mode, project, group} -- W&B (off unless asked for) logs each run in the sweep's group."""
    return {"chapter": run.chapter, "config": run.config, "seed": run.seed, "hash": h, "root": str(root),
            "data": data, "data_root": data_root, "download": download, "device": device, "threads": threads,
            "wandb": wandb or {"mode": "disabled"}}


def _provenance(spec: dict, seconds: float, invocations: int) -> dict:
    import torch

    from ..checkpoints import code_version
    from ..records import RecordError, git_commit, machine
    from ..results import repo_root
    try:
        commit, dirty = git_commit(repo_root())
    except RecordError:                         # (a copy of the code on a cluster node, not a checkout)
        commit, dirty = None, None
    return {"commit": commit, "dirty": dirty, "code": code_version(), "data": spec["data"], "torch": torch.__version__,
            "machine": machine(), "device": spec["device"], "threads": spec["threads"],
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "seconds": round(seconds, 3),
            "invocations": invocations, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _logger(spec: dict, run: Run):
    from ..tracking import wandb_logger
    w = spec.get("wandb") or {"mode": "disabled"}
    return wandb_logger(w["mode"], w.get("project", "activation"), config={**run.config, "seed": run.seed,
                                                                          "hash": spec["hash"]},
                        name=f"{spec['hash'][:8]} {run.label()}", directory=spec["root"], group=w.get("group"))


def execute(spec: dict) -> str:
    """Run one spec to its end; returns ``ran``, ``done`` (already), ``busy`` (another process holds
    it) or ``failed`` (its error is in ``<hash>.failed.json``)."""
    from .tasks import task_of

    store, h = Store(spec["root"]), spec["hash"]
    if store.result(h).is_file():
        return DONE
    with store.claim(h) as mine:
        if not mine:
            return BUSY
        if store.result(h).is_file():          # (finished by another process while this one looked)
            return DONE
        import torch
        torch.set_num_threads(spec["threads"])
        task = task_of(spec["chapter"])
        run = Run(spec["chapter"], spec["config"], spec["seed"])
        with store.clock(h) as clock:           # (every invocation's time: a resumed run counts its whole)
            try:
                loaded = task.load(spec["config"]["dataset"], spec["data_root"], spec["download"])
                found = task.checksum(loaded)
                if found != spec["data"]:
                    raise RuntimeError(f"the dataset here ({found}) is not the one the sweep was planned with "
                                       f"({spec['data']}): its data folder differs between machines")
                device = torch.device(spec["device"])
                log, finish = _logger(spec, run)
                try:
                    result = task.execute(run, loaded, store.checkpoints(h), device, log)
                finally:
                    finish()
            except Exception as err:            # (KeyboardInterrupt and kills are not failures: rerun continues)
                store.write_failure(h, run, err, clock.seconds())
                return FAILED
        store.write_result(h, run, result, _provenance(spec, clock.seconds(), clock.invocations))
        store.finish(h)
        return RAN
