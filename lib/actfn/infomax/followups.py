"""The design's follow-ups: depth (two stacked InfoMax layers), transfer (a linear probe on the frozen
features) and the 2-D inputs whose weight vectors can be drawn."""
from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F

from ..checks import require
from .metrics import model_metrics
from .setting import Setting
from .study import _with_progress, bank_records, checkpoint_path, layer_outputs, setting_index
from .train import BankRun, train_bank

def standardise_features(train: torch.Tensor, test: torch.Tensor):
    mean, sd = train.mean(0), train.std(0).clamp_min(1e-6)
    return (train - mean) / sd, (test - mean) / sd


def logistic_loss_and_grad(w: torch.Tensor, b: torch.Tensor, features: torch.Tensor, features_t: torch.Tensor,
                           onehot_t: torch.Tensor, weight_decay: float):
    """mean_n CE(W f_n + b, y_n) + weight_decay ||W||^2 and its gradients (dW, db), written out (tested
    against autograd).  The logits are laid out classes x samples (``features_t`` (D, N), ``onehot_t``
    (C, N); ``features`` (N, D) for the weight gradient): torch's log_softmax over rows of 10 classes
    took most of each L-BFGS evaluation, while the reductions across the 10 rows of this layout run at
    memory speed (the probes of the design's full setting: 320 fits on 60,000 images)."""
    n = features.shape[0]
    logits = torch.addmm(b.unsqueeze(1), w, features_t)                         # (C, N)
    logits -= logits.amax(0)
    log_p = logits.sub_(logits.exp().sum(0).log_())
    loss = -(log_p * onehot_t).sum() / n + weight_decay * w.pow(2).sum()
    residual = log_p.exp_().sub_(onehot_t).div_(n)                              # d loss / d logits
    return loss, torch.addmm(w, residual, features, beta=2 * weight_decay), residual.sum(1)


PROBE_ITERATIONS = 200     # L-BFGS iterations of a linear probe at most


def linear_probe(f_train: torch.Tensor, y_train: torch.Tensor, f_test: torch.Tensor, y_test: torch.Tensor,
                 weight_decay: float = 1e-4, iters: int = PROBE_ITERATIONS) -> float:
    """Test accuracy of multinomial logistic regression on frozen features (standardised; L-BFGS, full batch)."""
    f_train, f_test = standardise_features(f_train.double(), f_test.double())
    classes = int(max(y_train.max(), y_test.max())) + 1
    features_t = f_train.T.contiguous()
    onehot_t = F.one_hot(y_train, classes).double().T.contiguous()
    w = torch.zeros(classes, f_train.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iters, history_size=20, line_search_fn="strong_wolfe")

    @torch.no_grad()
    def closure():
        loss, w.grad, b.grad = logistic_loss_and_grad(w, b, f_train, features_t, onehot_t, weight_decay)
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float((torch.addmm(b, f_test, w.T).argmax(1) == y_test).double().mean())


SYNTHETIC_2D = ("gaussian_clusters", "uniform")


def synthetic_2d(kind: str, n: int = 4000, seed: int = 0, clusters: int = 5) -> torch.Tensor:
    """2-D inputs whose learned weight vectors can be drawn: ``gaussian_clusters`` (``clusters``
    isotropic Gaussians, sd 0.4, centred on a circle of radius 2) or ``uniform`` (the square
    [-sqrt 3, sqrt 3]^2, unit variance per coordinate)."""
    require(kind in SYNTHETIC_2D, "synthetic", kind, f"must be one of {SYNTHETIC_2D}")
    gen = torch.Generator().manual_seed(seed)
    if kind == "uniform":
        return (torch.rand(n, 2, generator=gen) * 2 - 1) * math.sqrt(3.0)
    angles = torch.arange(clusters) * (2 * math.pi / clusters)
    centres = 2.0 * torch.stack([angles.cos(), angles.sin()], 1)
    which = torch.randint(0, clusters, (n,), generator=gen)
    return centres[which] + 0.4 * torch.randn(n, 2, generator=gen)


def depth_followup(run: BankRun, x_train, x_eval, activations, k2: int, epochs: int, lam: float = 1.0,
                   batch_size: int = 128, lr: float = 1e-3, show_progress: bool = False,
                   checkpoint_dir: str | os.PathLike | None = None, resume: bool = False,
                   device: str | torch.device | None = None) -> list[dict]:
    """Greedy stacking: a second InfoMax layer (K2 units, same activation) on the standardised outputs of
    each seed's trained first layer; metrics of both layers on held-out data, per activation and seed.

    Every second layer is trained at once, as one bank (seeds x activations) whose models each read
    their own first layer's outputs: the same models as training each one alone (tested)."""
    seeds = run.bank.seeds
    first = [setting_index(run, act, "infomax", lam) for act in activations]
    h_train, h_eval = [], []
    for i in range(len(seeds)):
        pairs = [standardise_features(layer_outputs(run, i, j, x_train), layer_outputs(run, i, j, x_eval)) for j in first]
        h_train.append(torch.stack([p[0] for p in pairs]))
        h_eval.append(torch.stack([p[1] for p in pairs]))
    settings, h_train = [Setting(act, "infomax", lam) for act in activations], torch.stack(h_train)
    ckpt = None
    if checkpoint_dir:
        ckpt = checkpoint_path(checkpoint_dir, f"depth_K{k2}", settings, seeds, k2, epochs, batch_size, lr, "float32",
                               resume)
    second = train_bank(settings, seeds, k2, h_train, epochs, batch_size, lr, show_progress=show_progress,
                        desc=f"depth: {len(activations) * len(seeds)} second layers", checkpoint=ckpt, device=device)
    records = bank_records(second, torch.stack(h_eval), show_progress)
    rows = []
    for g, (act, j) in enumerate(zip(activations, first)):
        for i, seed in enumerate(seeds):
            m2 = records[i * len(activations) + g]
            m1 = model_metrics(run.bank.weight[i, j].detach(), run.bank.bias[i, j].detach(), act, x_eval, lam,
                               run.bank.knots[i, j].detach() if act == "pwl" else None)
            rows.append({"activation": act, "seed": seed, "K1": run.bank.k, "K2": k2,
                         **{f"layer1_{m}": m1[m] for m in ("effective_rank", "output_correlation", "total_correlation", "dead_units")},
                         **{f"layer2_{m}": m2[m] for m in ("effective_rank", "output_correlation", "total_correlation", "dead_units")},
                         "layer2_floor": m2["correlation_floor"]})
    return rows


def probe_followup(run: BankRun, x_train, y_train, x_test, y_test, activations, lam: float = 1.0,
                   objectives=("infomax", "variance_only", "reconstruction", "random"),
                   show_progress: bool = False) -> list[dict]:
    """Linear-probe test accuracy on each model's frozen features, per activation, objective and seed."""
    probes = [(act, obj, setting_index(run, act, obj, lam), i, seed) for act in activations for obj in objectives
              for i, seed in enumerate(run.bank.seeds)]
    rows = []
    for act, obj, j, i, seed in _with_progress(probes, show_progress, f"K={run.bank.k}: linear probes"):
        acc = linear_probe(layer_outputs(run, i, j, x_train), y_train, layer_outputs(run, i, j, x_test), y_test)
        rows.append({"activation": act, "objective": obj, "seed": seed, "K": run.bank.k, "probe_accuracy": acc})
    return rows
