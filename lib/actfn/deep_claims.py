"""The deep-network claims of seed 000 (sections 4.2, 4.3, 5.2), each checked against a build's numbers.

Verdicts as in :mod:`actfn.claims`.  CIFAR-10 accuracy claims can only be checked on CIFAR-10: on
any other dataset they are reported as "not run", with the command that produces them.
"""
from __future__ import annotations

import numpy as np

from .claims import DIFFERS, NOT_REPRODUCED, NOT_RUN, REPRODUCED, claim_row
from .unit import shape_difference

PAPER_COMMAND = ("jupytext --to ipynb book/deep_networks.md -o - | papermill - runs/deep_paper.ipynb "
                 "-f params/deep_networks/paper.yaml -p dataset cifar10")
KS_GAUSSIAN = 0.05   # median KS distance we call "roughly Gaussian"


def _find(summaries, model, activation="pwl", mode="backprop"):
    for s in summaries:
        if s["model"] == model and s["activation"] == activation and s["mode"] == mode:
            return s
    return None


def _accuracy_claim(summaries, dataset, model, target):
    claim = f"{model} (backprop, learned activation) reaches ≈ {target:.0%} on CIFAR-10 in 20 epochs"
    s = _find(summaries, model)
    if dataset != "cifar10":
        return claim_row(claim, f"not measured: this build ran on {dataset}", "test acc within 2 points",
                    NOT_RUN, f"needs a run on CIFAR-10: {PAPER_COMMAND}")
    if s is None:
        return claim_row(claim, "-", "test acc within 2 points", NOT_RUN, f"{model} was not trained in this build")
    acc = s["test_acc"]
    if abs(acc - target) <= 0.02 and s["epochs"] >= 20:
        return claim_row(claim, f"{acc:.1%} after {s['epochs']} epochs", "within 2 points", REPRODUCED, "as stated")
    why = (f"trained {s['epochs']} epochs (the outline: 20)" if s["epochs"] < 20 else "accuracy differs")
    return claim_row(claim, f"{acc:.1%} after {s['epochs']} epochs", "within 2 points", DIFFERS if acc > 0.5 else
                NOT_REPRODUCED, why)


def deep_claims(summaries: list[dict], dataset: str, final_knots: dict | None = None) -> list[dict]:
    """Rows ``{claim, measured, criterion, status, reason}``.

    ``final_knots`` maps ``(model, mode)`` to the list of final knot vectors per layer (for the
    backprop-vs-local comparison).
    """
    rows = [_accuracy_claim(summaries, dataset, "vgg11", 0.88), _accuracy_claim(summaries, dataset, "resnet10", 0.90)]

    for s in summaries:
        if s["activation"] != "pwl" or s["mode"] != "backprop":
            continue
        relu = _find(summaries, s["model"], "relu")
        if relu is None:
            continue
        gap = s["test_acc"] - relu["test_acc"]
        status = REPRODUCED if abs(gap) <= 0.01 else (DIFFERS if gap > 0 else NOT_REPRODUCED)
        reason = ("within one point" if status == REPRODUCED else
                  "the learned activation is better than ReLU here" if gap > 0 else "the learned activation is worse")
        silu = _find(summaries, s["model"], "silu")
        extra = f", SiLU {silu['test_acc']:.1%}" if silu else ""
        rows.append(claim_row(f"{s['model']}: learned activation comparable to the ReLU baseline",
                         f"{s['test_acc']:.1%} vs ReLU {relu['test_acc']:.1%}{extra} ({dataset}, {s['epochs']} epochs)",
                         "|difference| ≤ 1 point", status, reason))

    vgg, res = _find(summaries, "vgg11"), _find(summaries, "resnet10")
    if vgg and res and vgg["history"] and res["history"]:
        v1, r1 = vgg["history"][0]["val_acc"], res["history"][0]["val_acc"]
        n = max(vgg.get("val_images", 0), 1)
        p = (v1 + r1) / 2
        margin = 2 * np.sqrt(2 * p * (1 - p) / n)  # two standard errors of a difference of accuracies
        if r1 - v1 > margin:
            status, reason = REPRODUCED, "ResNet-10 is ahead by more than two standard errors"
        elif v1 - r1 > margin:
            status, reason = NOT_REPRODUCED, "VGG-11 is ahead by more than two standard errors"
        else:
            status, reason = DIFFERS, f"the difference is within two standard errors (±{margin:.1%}) of {n} images"
        rows.append(claim_row("ResNet-10 converges faster than VGG-11", f"val acc after epoch 1: ResNet-10 {r1:.1%}, "
                         f"VGG-11 {v1:.1%}", "ResNet-10 ahead by more than two standard errors after epoch 1",
                         status, f"{reason} (on {dataset}, width and data as in this build)"))

    for s in summaries:
        if s["activation"] != "pwl" or not s["layers"]:
            continue
        r2 = np.array([l["r2"] for l in s["layers"]])
        betas = np.array([l["beta"] for l in s["layers"]])
        n = len(betas)
        rows.append(claim_row(f"{s['model']} ({s['mode']}): Swish-like in every layer",
                         f"{(r2 > 0.99).sum()} of {n} layers with Swish R² > 0.99 (lowest {r2.min():.3f})",
                         "all layers R² > 0.99", REPRODUCED if (r2 > 0.99).all() else
                         (DIFFERS if (r2 > 0.95).all() else NOT_REPRODUCED),
                         "every layer fits" if (r2 > 0.99).all() else "some layers are not Swish-shaped"))
        if s["mode"] == "backprop" and n >= 3:
            third = max(1, n // 3)
            early, late = float(np.median(betas[:third])), float(np.median(betas[-third:]))
            broad = 1.5 <= early <= 2.0
            sharper = late > early
            status = REPRODUCED if (broad and sharper) else (DIFFERS if sharper else NOT_REPRODUCED)
            rows.append(claim_row(f"{s['model']}: early layers broad (β ≈ 1.5–2), late layers sharper",
                             f"median β first third {early:.2f}, last third {late:.2f}",
                             "early β in [1.5, 2] and late β > early β", status,
                             "as stated" if status == REPRODUCED else
                             ("late layers are sharper, but early β is outside 1.5–2" if sharper else
                              "late layers are not sharper than early ones")))

    ks = [(s["model"], g["layer"], g["ks"]) for s in summaries
          if s["activation"] == "pwl" and s["mode"] == "backprop" for g in s["gaussianity"]]
    if ks:
        vals = np.array([k[2] for k in ks])
        frac = float((vals <= KS_GAUSSIAN).mean())
        rows.append(claim_row("Per-class pre-activations are roughly Gaussian (§5.2)",
                         f"median KS per layer from {vals.min():.3f} to {vals.max():.3f}; "
                         f"{frac:.0%} of layers ≤ {KS_GAUSSIAN}",
                         f"median KS ≤ {KS_GAUSSIAN} in every layer",
                         REPRODUCED if frac == 1 else (DIFFERS if frac >= 0.5 else NOT_REPRODUCED),
                         "KS is the largest gap between the standardised per-class, per-channel distribution and "
                         "N(0,1); see the skewness and kurtosis columns for how they depart"))

    if final_knots:
        for m in {k[0] for k in final_knots}:
            bp, lc = final_knots.get((m, "backprop")), final_knots.get((m, "local_correlation"))
            if bp is None or lc is None:
                continue
            gaps = [shape_difference(np.asarray(a).reshape(-1, 33).mean(0), np.asarray(b).reshape(-1, 33).mean(0))
                    for a, b in zip(bp, lc)]
            med = float(np.median(gaps))
            rows.append(claim_row(f"{m}: local-correlation activations resemble the backprop ones (§5.2)",
                             f"median z-scored shape gap over layers {med:.2f} (max {max(gaps):.2f})",
                             "median gap < 0.5", REPRODUCED if med < 0.5 else NOT_REPRODUCED,
                             "same shapes" if med < 0.5 else "the two modes learn different shapes"))
    return rows
