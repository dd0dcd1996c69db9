"""Are a network's per-class pre-activations Gaussian?  Tested per spatial position, with the power.

The theory assumes that each class's input to a unit is Gaussian.  Pooling the values of a channel
over positions mixes distributions with different means (the centre of an image is not its corner),
so a pooled sample can look non-Gaussian when every position is Gaussian, or the other way round.
Here each (layer, channel, class) *cell* is one channel at one spatial position (the centre of the
feature map), over the test images of one class, tested with Shapiro-Wilk (``scipy.stats.shapiro``).
A cell *passes* when p ≥ α; if every cell were Gaussian, a share 1 − α would pass.  A pass means
little when the test could not have rejected: :func:`power` gives, by simulation at the cells'
sample size, how often it rejects two reference departures (a skewness of 0.5; the tails of a
Student t with 10 degrees of freedom).
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import stats

ALPHA = 0.05
REFERENCE_DEPARTURES = {"skewness 0.5": ("skewnorm", 2.2), "t, 10 df": ("t", 10)}


@torch.no_grad()
def centre_values(model, images: torch.Tensor, layers, batch: int = 500) -> list[torch.Tensor]:
    """Per layer, the inputs of its activation at the centre of the feature map: (N, C) each."""
    store: dict[int, list] = {i: [] for i in range(len(layers))}

    def hook(i):
        def grab(module, args):
            z = args[0].detach()
            store[i].append(z[:, :, z.shape[2] // 2, z.shape[3] // 2].cpu() if z.dim() == 4 else z.cpu())
        return grab

    handles = [layer.register_forward_pre_hook(hook(i)) for i, layer in enumerate(layers)]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        for start in range(0, len(images), batch):
            model(images[start:start + batch].to(device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return [torch.cat(store[i]) for i in range(len(layers))]


def cell_tests(values: np.ndarray, labels: np.ndarray, alpha: float = ALPHA, min_n: int = 20) -> dict:
    """Shapiro-Wilk per (channel, class) of ``values`` (N, C): the cells tested, the share passing,
    and the smallest class size (constant channels, e.g. dead ones, are not tested)."""
    passed, tested, sizes = 0, 0, []
    for k in np.unique(labels):
        v = values[labels == k]
        if len(v) < min_n:
            continue
        sizes.append(len(v))
        for c in range(v.shape[1]):
            col = v[:, c]
            if col.std() <= 1e-8 * max(1.0, abs(col.mean())):
                continue
            tested += 1
            passed += stats.shapiro(col).pvalue >= alpha
    return {"cells": tested, "pass_share": passed / tested if tested else float("nan"),
            "n": int(min(sizes)) if sizes else 0}


def power(n: int, alpha: float = ALPHA, trials: int = 400, seed: int = 0) -> dict[str, float]:
    """How often Shapiro-Wilk at level ``alpha`` rejects each reference departure from a Gaussian,
    with samples of ``n`` (simulated)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, (dist, shape) in REFERENCE_DEPARTURES.items():
        draw = getattr(stats, dist)(shape)
        x = draw.rvs(size=(trials, n), random_state=rng)
        out[name] = float(np.mean([stats.shapiro(row).pvalue < alpha for row in x]))
    return out


def position_gaussianity(model, images: torch.Tensor, labels: torch.Tensor, layers, alpha: float = ALPHA) -> dict:
    """Per layer, :func:`cell_tests` at the centre position; with :func:`power` at the smallest class size."""
    values = centre_values(model, images, layers)
    rows = [{"layer": i, **cell_tests(v.numpy(), labels.numpy(), alpha)} for i, v in enumerate(values)]
    n = min((r["n"] for r in rows if r["n"]), default=0)
    return {"images": len(images), "alpha": alpha, "layers": rows, "power": power(n, alpha) if n >= 3 else {}}
