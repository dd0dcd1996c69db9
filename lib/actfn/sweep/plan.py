"""From a parameter file to the sweep's runs, their hashes and their states."""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..checks import require
from ..results import repo_root
from .store import STATES, Run, Store, run_hash
from .tasks import task_of


def read_params(path: str | os.PathLike, overrides: list[str] = ()) -> dict:
    """A chapter's parameter file, with ``NAME=VALUE`` overrides (values read as YAML)."""
    path = Path(path)
    require(path.is_file(), "params", str(path), "is not a file")
    params = yaml.safe_load(path.read_text()) or {}
    require(isinstance(params, dict), "params", str(path), "must hold a mapping of parameter names to values")
    for item in overrides:
        require("=" in item, "-p", item, "must be NAME=VALUE")
        name, value = item.split("=", 1)
        params[name.strip()] = yaml.safe_load(value)
    return params


# what a sweep reads besides its runs' configurations: the data, the device, W&B, and Slurm's settings
# (and resume, which a sweep always does)
SWEEP_KEYS = ("dataset", "data_root", "download", "device", "wandb_mode", "wandb_project", "resume",
              "slurm_partition", "slurm_account", "slurm_gpus_per_task", "slurm_minutes")


def page_only(params: dict, chapter: str) -> list[str]:
    """The parameters the chapter's page reads and its sweep does not (the sweep says so); stops on a
    name neither knows, which would otherwise be ignored (a typo in ``-p``)."""
    from ..params import specs
    task = task_of(chapter)
    if chapter not in specs() or not hasattr(task, "PARAMETERS"):
        return []
    unknown = sorted(set(params) - set(specs()[chapter]) - set(SWEEP_KEYS))
    if unknown:
        raise ValueError(f"unknown parameters {unknown}: not parameters of the {chapter} chapter or its sweep")
    return sorted(set(params) - set(task.PARAMETERS) - set(SWEEP_KEYS))


def chapter_of(path: str | os.PathLike) -> str:
    """The chapter of a parameter file: params/<chapter>/<name>.yaml."""
    return Path(path).resolve().parent.name


@dataclass
class Sweep:
    chapter: str
    runs: list[Run]
    hashes: list[str]
    store: Store
    data: str                 # the dataset's checksum
    data_root: str
    download: bool

    def states(self) -> list[str]:
        return [self.store.state(h) for h in self.hashes]

    def counts(self) -> dict[str, int]:
        c = Counter(self.states())
        return {s: c.get(s, 0) for s in STATES}

    def results(self) -> list[dict]:
        """The finished runs, in the order of the parameter file."""
        return [r for r in (self.store.load(h) for h in self.hashes) if r is not None]


def plan(params: dict, chapter: str, root: str | os.PathLike | None = None, data_root: str | None = None) -> Sweep:
    from ..checkpoints import code_version
    task = task_of(chapter)
    runs = task.expand(params)
    data_root = str(data_root or params.get("data_root") or os.environ.get("ACTFN_DATA") or repo_root() / "data")
    download = bool(params.get("download", False))
    data = task.checksum(task.load(task.dataset_of(params), data_root, download))
    code = code_version()
    store = Store(Path(root or repo_root() / "sweeps") / chapter)
    return Sweep(chapter, runs, [run_hash(r, code, data) for r in runs], store, data, data_root, download)
