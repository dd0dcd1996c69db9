"""The study: every activation x objective x lambda x constraint x seed for each K."""
from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import torch

from ..checks import require
from .metrics import converged_epoch, convergence_epoch, model_metrics
from ..activations import REGISTRY, activate
from .setting import CONSTRAINTS, OBJECTIVES, Setting
from .train import BankRun, train_bank

def study_settings(activations, lambdas, constraints=("none",), objectives=OBJECTIVES) -> list[Setting]:
    """The settings of one K, grouped by activation (the bank applies f once per group).

    InfoMax runs at every lambda and constraint; variance_only at every constraint; reconstruction
    and random unconstrained (their scale is not what the constraint is about).  The reconstruction
    models come last, together, so that the bank reads their activations as one slice.
    """
    out, recon = [], []
    for act in activations:
        for c in constraints:      # one constraint after the other: the bank projects contiguous runs
            if "infomax" in objectives:
                out += [Setting(act, "infomax", float(lam), c) for lam in lambdas]
            if "variance_only" in objectives:
                out.append(Setting(act, "variance_only", 0.0, c))
        if "random" in objectives:
            out.append(Setting(act, "random", 0.0, "none"))
        if "reconstruction" in objectives:
            recon.append(Setting(act, "reconstruction", 0.0, "none"))
    return out + recon


def check_study_parameters(activations, Ks, lambdas, seeds, epochs, constraints=("none",)):
    require(len(activations) >= 1 and all(a in REGISTRY for a in activations), "activations", activations,
            f"must be a non-empty list of {tuple(REGISTRY)}")
    require(len(Ks) >= 1 and all(isinstance(k, int) and k >= 2 for k in Ks), "Ks", Ks, "must be a non-empty list of integers >= 2")
    require(len(lambdas) >= 1 and all(isinstance(v, (int, float)) and v >= 0 for v in lambdas), "lambdas", lambdas,
            "must be a non-empty list of numbers >= 0")
    require(len(seeds) >= 1 and all(isinstance(s, int) for s in seeds) and len(set(seeds)) == len(seeds), "seeds",
            seeds, "must be a non-empty list of distinct integers")
    require(isinstance(epochs, int) and epochs >= 1, "epochs", epochs, "must be an integer >= 1")
    require(len(constraints) >= 1 and all(c in CONSTRAINTS for c in constraints), "constraints", constraints,
            f"must be a non-empty list of {CONSTRAINTS}")


def _with_progress(items: list, show_progress: bool, desc: str):
    """``items``, behind a progress bar if asked (the metrics and the probes of the design's full
    setting take minutes per K)."""
    if show_progress:
        from ..progress import progress
        return progress(items, desc=desc, leave=False)
    return items


def bank_records(run: BankRun, x_eval: torch.Tensor, show_progress: bool = False) -> list[dict]:
    """One record per (seed, setting) of a trained bank: the setting, the metrics on ``x_eval`` (N, D),
    or on each model's own (S, G, N, D), the curve."""
    bank = run.bank
    records = []
    models = [(i, seed, j, s) for i, seed in enumerate(bank.seeds) for j, s in enumerate(bank.settings)]
    for i, seed, j, s in _with_progress(models, show_progress, f"K={bank.k}: metrics"):
        w, b = bank.weight[i, j].detach(), bank.bias[i, j].detach()
        knots = bank.knots[i, j].detach() if s.activation == "pwl" else None
        m = model_metrics(w, b, s.activation, x_eval[i, j] if x_eval.dim() == 4 else x_eval, lam=s.lam if s.objective == "infomax" else 1.0, knots=knots)
        curve = run.losses[:, i, j]
        records.append({
            "activation": s.activation, "K": bank.k, "lambda": s.lam if s.objective == "infomax" else None,
            "seed": seed, "objective": s.objective, "constraint": s.constraint,
            "final_loss": float(curve[-1]) if s.objective != "random" else None,
            "convergence_epoch": convergence_epoch(curve) if s.objective != "random" else None,
            "converged_epoch": converged_epoch(curve) if s.objective != "random" else None,
            "weight_norm_start": float(run.weight_norms[0, i, j]), **m,
            "curve": [float(v) for v in curve] if s.objective != "random" else None,
            "weight_norm_curve": [float(v) for v in run.weight_norms[:, i, j]],
        })
    return records


def checkpoint_path(checkpoint_dir, name: str, settings, seeds, k, epochs, batch_size, lr, matmul_precision,
                    resume: bool) -> Path:
    """The checkpoint file of one bank, named by its settings and hyperparameters (the data are checked
    inside, by :func:`train_bank`); removed unless ``resume``."""
    import hashlib
    import json

    key = json.dumps([[asdict(s) for s in settings], list(seeds), k, epochs, batch_size, lr, matmul_precision],
                     sort_keys=True)
    path = Path(checkpoint_dir) / f"infomax_{name}_{hashlib.sha256(key.encode()).hexdigest()[:10]}.pt"
    if not resume and path.exists():
        path.unlink()
    return path


def run_study(x_train: torch.Tensor, x_eval: torch.Tensor, activations, Ks, lambdas, seeds, epochs: int,
              constraints=("none",), batch_size: int = 128, lr: float = 1e-3, show_progress: bool = True,
              matmul_precision: str = "float32", checkpoint_dir: str | os.PathLike | None = None,
              resume: bool = False, device: str | torch.device | None = None):
    """Train one bank per K on ``x_train``; returns (records, {K: BankRun}).

    With ``checkpoint_dir``, each K's bank writes a checkpoint there after every epoch (see
    :func:`train_bank`); ``resume=False`` removes an existing one of the same run first (the numbers
    come from this execution), ``resume=True`` continues from it.  ``device``: where the banks train
    (see :func:`train_bank`; the metrics are computed on the CPU).
    """
    check_study_parameters(activations, Ks, lambdas, seeds, epochs, constraints)
    settings = study_settings(activations, lambdas, constraints)
    records, banks = [], {}
    for k in Ks:
        ckpt = None
        if checkpoint_dir:
            ckpt = checkpoint_path(checkpoint_dir, f"K{k}", settings, seeds, k, epochs, batch_size, lr,
                                   matmul_precision, resume)
        run = train_bank(settings, list(seeds), k, x_train, epochs, batch_size, lr, show_progress=show_progress,
                         desc=f"K={k}: {len(settings) * len(seeds)} models", matmul_precision=matmul_precision,
                         checkpoint=ckpt, device=device)
        banks[k] = run
        records += bank_records(run, x_eval, show_progress)
    return records, banks


def layer_outputs(run: BankRun, seed_index: int, setting_index: int, x: torch.Tensor) -> torch.Tensor:
    """a = f(W x + b) of one model of a bank, for inputs ``x`` (N, D)."""
    bank = run.bank
    s = bank.settings[setting_index]
    with torch.no_grad():
        z = x @ bank.weight[seed_index, setting_index].T + bank.bias[seed_index, setting_index]
        if s.activation == "pwl":
            return activate(z.unsqueeze(0), "pwl", bank.knots[seed_index, setting_index].view(1, -1)).squeeze(0)
        return activate(z, s.activation)


def setting_index(run: BankRun, activation: str, objective: str, lam: float | None = None,
                  constraint: str = "none") -> int:
    for j, s in enumerate(run.bank.settings):
        if (s.activation, s.objective, s.constraint) == (activation, objective, constraint) and \
                (objective != "infomax" or lam is None or s.lam == lam):
            return j
    raise KeyError(f"no setting {activation}/{objective}/lambda={lam}/{constraint} in this bank")
