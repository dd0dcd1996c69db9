"""Where the runs of a sweep execute: this machine's cores or GPUs, a Slurm cluster, a Ray cluster.

Each launcher hands the same specs to :func:`actfn.sweep.runner.execute` and yields each run's
outcome as it ends; scheduling, queues, requeueing and placement are the engines' own.

* ``local``: a bounded pool of worker processes on this machine, no daemon.  With GPUs, one worker
  per visible GPU, pinned to it by ``CUDA_VISIBLE_DEVICES``; without, workers that share the cores
  (each at ``threads`` threads, so that the pool never oversubscribes them).
* ``slurm``: submitit job arrays, one GPU per task when the runs use the GPU, with a time limit and
  requeue on preemption (submitit's checkpointing); submitit's local executor runs the same path on
  one machine.
* ``ray``: Ray tasks, on a local Ray instance or the cluster at ``address``; ``gpus_per_run`` may be
  a fraction, so that several small InfoMax banks share one GPU.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed

from .runner import execute

LAUNCHERS = ("local", "slurm", "ray")


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def visible_gpus() -> list[str]:
    import torch
    if not torch.cuda.is_available():
        return []
    shown = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [g.strip() for g in shown.split(",") if g.strip()] if shown else []
    return ids or [str(i) for i in range(torch.cuda.device_count())]


def _pin_worker(queue):
    """Pool initializer: this worker sees one GPU only (before it imports torch)."""
    if queue is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = queue.get()


def local(specs: list[dict], workers: int, gpus: list[str]):
    import multiprocessing as mp
    ctx = mp.get_context("spawn")                  # (a fresh interpreter: CUDA and OpenMP start clean)
    queue = None
    if gpus:
        queue = ctx.Manager().Queue()
        for g in gpus[:workers]:
            queue.put(g)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_pin_worker,
                             initargs=(queue,)) as pool:
        futures = {pool.submit(execute, spec): spec for spec in specs}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()


def slurm(specs: list[dict], folder: str, partition: str | None = None, account: str | None = None,
          gpus_per_task: int = 0, minutes: int = 240, cpus_per_task: int = 1, executor: str = "slurm",
          max_parallel: int | None = None):
    """``executor='local'`` runs the same jobs through submitit's local executor (no cluster)."""
    import submitit
    if executor == "local":
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=minutes, gpus_per_node=gpus_per_task, cpus_per_task=cpus_per_task)
    else:
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
        extra = {k: v for k, v in (("slurm_partition", partition), ("slurm_account", account)) if v}
        ex.update_parameters(timeout_min=minutes, gpus_per_node=gpus_per_task, tasks_per_node=1,
                             cpus_per_task=cpus_per_task, slurm_array_parallelism=max_parallel or len(specs), **extra)
    jobs = ex.map_array(Checkpointable(), specs)
    for spec, job in zip(specs, jobs):
        yield spec, job.result()


class Checkpointable:
    """A submitit callable that is requeued, unchanged, when Slurm preempts or times out its task:
    the run resumes from its checkpoints and its claim is taken again."""

    def __call__(self, spec: dict) -> str:
        return execute(spec)

    def checkpoint(self, spec: dict):
        import submitit
        return submitit.helpers.DelayedSubmission(Checkpointable(), spec)


def ray(specs: list[dict], address: str | None = None, gpus_per_run: float = 0.0, cpus_per_run: float = 1.0):
    import ray as ray_
    started = not ray_.is_initialized()
    if started:
        ray_.init(address=address, include_dashboard=False, log_to_driver=False,
                  **({} if address else {"num_cpus": cores()}))
    try:
        remote = ray_.remote(num_gpus=gpus_per_run, num_cpus=cpus_per_run, max_retries=0)(execute)
        pending = {remote.remote(spec): spec for spec in specs}
        while pending:
            ready, _ = ray_.wait(list(pending), num_returns=1)
            for ref in ready:
                yield pending.pop(ref), ray_.get(ref)
    finally:
        if started:
            ray_.shutdown()
