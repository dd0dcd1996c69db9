"""The deep-network claims of seed 000 (sections 4.2, 4.3, 5.2), each checked against a build's numbers.

Verdicts as in :mod:`actfn.verdicts`.  Each claim states what a run needs to test it (:data:`NEEDS`:
the outline's dataset, training length, width, or several seeds for a spread); a run that lacks it
reports the claim as *not testable here*, with its numbers and what is missing, rather than as
refuted.  Where a run can test a claim, the verdict is drawn from an interval, and a claim that
rests on a threshold says how the verdict moves if the threshold does.
"""
from __future__ import annotations

import numpy as np

from ..theory.fitting import precision_summary
from ..unit.trainer import shape_difference
from ..verdicts import (DIFFERS, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, Z95, Scale, above_zero, band, claim_row,
                       combine, sensitivity)

PAPER_COMMAND = ("jupytext --to ipynb book/deep_networks.md -o - | papermill - runs/deep_paper.ipynb "
                 "-f params/deep_networks/paper.yaml -p dataset cifar10")
ACCURACY_POINTS = 0.02   # "reaches ≈ 88 %": within two points
COMPARABLE = 0.01        # "comparable": within one point
EARLY_BETA = (1.75, 0.25)   # "early layers broad (β ≈ 1.5–2)"
# What each kind of claim needs of a run.  The outline trains 20 epochs on CIFAR-10 at full width, and
# its shapes are those at the end of training; comparisons between networks need a seed spread.
NEEDS = {"accuracy": dict(dataset="cifar10", epochs=20, width=1.0),
         "comparison": dict(seeds=3),
         "shape": dict(epochs=20)}


def _runs(summaries, model, activation="pwl", mode="backprop"):
    return [s for s in summaries if s["model"] == model and s["activation"] == activation and s["mode"] == mode]


def _scale(summaries, dataset, scale):
    if scale is not None:
        return scale
    return Scale(dataset, seeds=len({s.get("seed", 0) for s in summaries}) or 1,
                 epochs=min((s["epochs"] for s in summaries), default=None))


def _mean_se(values, binomial_n: int | None = None) -> tuple[float, float, int | None]:
    """(mean, standard error, degrees of freedom) over seeds: the seed spread with n - 1 degrees of
    freedom (its interval a t interval) with two or more seeds, else (one seed) the binomial error of
    an accuracy on ``binomial_n`` images (df None: a normal interval) -- which misses the seed spread."""
    v = np.asarray(values, float)
    if len(v) >= 2:
        return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))), len(v) - 1
    m = float(v[0])
    return m, (float(np.sqrt(m * (1 - m) / binomial_n)) if binomial_n else float("nan")), None


def _untestable(claim, measured, criterion, missing, scale, extra=""):
    return claim_row(claim, measured, criterion, NOT_TESTABLE, "this run lacks: " + "; ".join(missing) + extra,
                     scale.text())


def _accuracy_claim(summaries, scale, model, target):
    claim = f"{model} (backprop, learned activation) reaches ≈ {target:.0%} on CIFAR-10 in 20 epochs"
    criterion = f"95 % interval of the test accuracy within {target:.0%} ± {ACCURACY_POINTS * 100:.0f} points"
    runs = _runs(summaries, model)
    if not runs:
        return claim_row(claim, "-", criterion, NOT_TESTABLE, f"{model} was not trained in this build", scale.text())
    acc, se, df = _mean_se([s["test_acc"] for s in runs], runs[0].get("test_images"))
    e = runs[0]["epochs"]
    measured = f"{acc:.1%} after {e} epoch{'s' if e != 1 else ''} ({len(runs)} seed{'s' if len(runs) > 1 else ''})"
    missing = scale.missing(**NEEDS["accuracy"])
    if missing:
        return _untestable(claim, measured, criterion, missing, scale, f". The outline's setting: `{PAPER_COMMAND}`")
    status, why = band(acc, se, target, ACCURACY_POINTS, df)
    return claim_row(claim, measured, criterion, status, why, scale.text())


def _comparable_claim(summaries, scale, model):
    claim = f"{model}: learned activation comparable to the ReLU baseline"
    criterion = f"95 % interval of the accuracy difference (learned − ReLU, paired by seed) within ± {COMPARABLE * 100:.0f} point"
    pwl = {s.get("seed", 0): s["test_acc"] for s in _runs(summaries, model)}
    relu = {s.get("seed", 0): s["test_acc"] for s in _runs(summaries, model, "relu")}
    seeds = sorted(set(pwl) & set(relu))
    silu = [s["test_acc"] for s in _runs(summaries, model, "silu")]
    diffs = [pwl[k] - relu[k] for k in seeds]
    measured = (f"{np.mean([pwl[k] for k in seeds]):.1%} vs ReLU {np.mean([relu[k] for k in seeds]):.1%}"
                + (f", SiLU {np.mean(silu):.1%}" if silu else "") + f" (difference {np.mean(diffs) * 100:+.1f} points)")
    missing = scale.missing(**NEEDS["comparison"])
    if missing:
        return _untestable(claim, measured, criterion, missing, scale)
    d, se, df = _mean_se(diffs)
    status, why = band(d, se, 0.0, COMPARABLE, df)
    return {**claim_row(claim, measured, criterion, status, why, scale.text()),
            "if the threshold moves": sensitivity(lambda t: band(d, se, 0.0, t, df)[0], COMPARABLE)}


def _converges_claim(summaries, scale):
    claim = "ResNet-10 converges faster than VGG-11"
    criterion = "validation accuracy after epoch 1 higher for ResNet-10, 95 % interval of the difference above 0"
    vgg = {s.get("seed", 0): s["history"][0]["val_acc"] for s in _runs(summaries, "vgg11") if s["history"]}
    res = {s.get("seed", 0): s["history"][0]["val_acc"] for s in _runs(summaries, "resnet10") if s["history"]}
    seeds = sorted(set(vgg) & set(res))
    diffs = [res[k] - vgg[k] for k in seeds]
    measured = (f"val acc after epoch 1: ResNet-10 {np.mean([res[k] for k in seeds]):.1%}, VGG-11 "
                f"{np.mean([vgg[k] for k in seeds]):.1%}")
    missing = scale.missing(**NEEDS["comparison"])
    if missing:
        return _untestable(claim, measured, criterion, missing, scale)
    d, se, df = _mean_se(diffs)
    status, lo, hi = above_zero(d, se, df)
    return claim_row(claim, measured, criterion, status, f"difference {d * 100:+.1f} points, 95 % t interval "
                     f"[{lo * 100:+.1f}, {hi * 100:+.1f}]" + (": too wide to decide" if status == NOT_TESTABLE else ""),
                     scale.text())


def _depth_summary(layers) -> dict:
    return precision_summary([l["beta"] for l in layers], [l["beta_se"] for l in layers],
                             [l.get("identified", True) for l in layers])


def _shape_claims(s, scale) -> list[dict]:
    rows = []
    r2 = np.array([l["r2"] for l in s["layers"]])
    n = len(r2)
    claim = f"{s['model']} ({s['mode']}): Swish-like in every layer"
    measured = f"{(r2 > 0.99).sum()} of {n} layers with Swish R² > 0.99 (lowest {r2.min():.3f}; seed {s.get('seed', 0)})"
    missing = scale.missing(**NEEDS["shape"])
    if missing:
        rows.append(_untestable(claim, measured, "all layers R² > 0.99", missing, scale))
    else:
        rows.append(claim_row(claim, measured, "all layers R² > 0.99", REPRODUCED if (r2 > 0.99).all() else
                              (DIFFERS if (r2 > 0.95).all() else NOT_REPRODUCED),
                              "every layer fits" if (r2 > 0.99).all() else "some layers are not Swish-shaped", scale.text()))
    if s["mode"] != "backprop" or n < 3:
        return rows
    third = max(1, n // 3)
    early, late = _depth_summary(s["layers"][:third]), _depth_summary(s["layers"][-third:])
    claim = f"{s['model']}: early layers broad (β ≈ 1.5–2), late layers sharper"
    criterion = (f"precision-weighted mean β of the first third within {EARLY_BETA[0]:g} ± {EARLY_BETA[1]:g}, and the "
                 "last third's above it (95 % intervals; unidentified fits left out)")
    describe = lambda name, d: (f"{name}: weighted median β {d['weighted_median']:.2f}, weighted mean "
                                f"{d['weighted_mean']:.2f} ± {d['weighted_mean_se']:.2f} ({d['used']} fits"
                                + (f", {d['left_out']} unidentified left out" if d["left_out"] else "") + ")")
    measured = describe("first third", early) + "; " + describe("last third", late) + f"; seed {s.get('seed', 0)}"
    if missing:
        rows.append(_untestable(claim, measured, criterion, missing, scale))
        return rows
    broad, why_broad = band(early["weighted_mean"], early["weighted_mean_se"], *EARLY_BETA)
    d = late["weighted_mean"] - early["weighted_mean"]
    se = float(np.hypot(late["weighted_mean_se"], early["weighted_mean_se"]))
    sharper = above_zero(d, se)[0]
    status = combine((broad, sharper))
    rows.append({**claim_row(claim, measured, criterion, status,
                             f"early: {why_broad}; sharper: {sharper} (difference {d:.2f} ± {Z95 * se:.2f})", scale.text()),
                 "if the threshold moves": sensitivity(lambda t: band(early["weighted_mean"], early["weighted_mean_se"],
                                                                       EARLY_BETA[0], t)[0], EARLY_BETA[1])})
    return rows


def _layer_claims(s, scale) -> list[dict]:
    """Mid layers β ≈ 2.5, late layers nearly ReLU (§4.2, "layer-wise variation")."""
    layers = s["layers"]
    n = len(layers)
    if s["mode"] != "backprop" or n < 3:
        return []
    third = max(1, n // 3)
    mid, late = layers[third:n - third], layers[-third:]
    d = _depth_summary(mid)
    claim = f"{s['model']}: mid layers β ≈ 2.5, late layers nearly ReLU"
    criterion = ("precision-weighted mean β of the middle layers within 2.5 ± 0.25 (95 % interval), and every layer of "
                 "the last third ReLU-shaped (ReLU R² ≥ 0.99, or a β too steep for the knots to resolve)")
    relu_like = [l.get("relu_r2", float("nan")) >= 0.99 or (not l.get("identified", True) and l["beta"] > 1) for l in late]
    measured = (f"middle layers: weighted mean β {d['weighted_mean']:.2f} ± {d['weighted_mean_se']:.2f} ({d['used']} "
                f"fits); last third: {sum(relu_like)} of {len(late)} layers ReLU-shaped; seed {s.get('seed', 0)}")
    missing = scale.missing(**NEEDS["shape"])
    if missing:
        return [_untestable(claim, measured, criterion, missing, scale)]
    mid_verdict, why = band(d["weighted_mean"], d["weighted_mean_se"], 2.5, 0.25)
    late_verdict = REPRODUCED if all(relu_like) else NOT_REPRODUCED
    return [claim_row(claim, measured, criterion, combine((mid_verdict, late_verdict)), f"middle: {why}; last third: {late_verdict}", scale.text())]


def _evolution_claim(evolution, scale) -> list[dict]:
    """Stages of the activation over training (§4.2): it starts at its ReLU init, and ends as a stable
    Swish.  ``evolution``: (model, mode) -> [(step, knot values of the first layer)], in step order."""
    from ..theory.fitting import fit_swish

    rows = []
    for (model, mode), snaps in evolution.items():
        if mode != "backprop" or len(snaps) < 3:
            continue
        knots = np.linspace(-3, 3, len(snaps[0][1]))
        init = np.maximum(knots, 0)
        first_gap = shape_difference(np.asarray(snaps[0][1]), init)
        last_change = shape_difference(np.asarray(snaps[-2][1]), np.asarray(snaps[-1][1]))
        r2 = fit_swish(knots, np.asarray(snaps[-1][1])).r2
        claim = f"{model} layer 0: starts at its ReLU init, ends a stable Swish (§4.2, activation evolution)"
        criterion = "first snapshot within 0.1 of ReLU, last two snapshots within 0.05, final Swish R² > 0.99 (z-scored shape gaps)"
        measured = (f"gap to ReLU at step {snaps[0][0]}: {first_gap:.3f}; change over the last two snapshots: "
                    f"{last_change:.3f}; final Swish R² {r2:.4f}")
        missing = scale.missing(**NEEDS["shape"])
        if missing:
            rows.append(_untestable(claim, measured, criterion, missing, scale))
            continue
        held = [first_gap < 0.1, last_change < 0.05, r2 > 0.99]
        rows.append(claim_row(claim, measured, criterion, combine(REPRODUCED if h else NOT_REPRODUCED for h in held),
                              f"{sum(held)} of 3 stages as described", scale.text()))
    return rows


def _cleaner_claim(summaries, scale) -> list[dict]:
    """"Cleaner activation shapes" in ResNet (§4.2): a higher mean Swish R² over layers, paired by seed."""
    mean_r2 = lambda s: float(np.mean([l["r2"] for l in s["layers"]])) if s["layers"] else float("nan")
    vgg = {s.get("seed", 0): mean_r2(s) for s in _runs(summaries, "vgg11") if s["layers"]}
    res = {s.get("seed", 0): mean_r2(s) for s in _runs(summaries, "resnet10") if s["layers"]}
    seeds = sorted(set(vgg) & set(res))
    if not seeds:
        return []
    claim = "ResNet-10 learns cleaner activation shapes than VGG-11 (§4.2)"
    criterion = "mean Swish R² over layers higher for ResNet-10, 95 % interval of the difference (paired by seed) above 0"
    diffs = [res[k] - vgg[k] for k in seeds]
    measured = f"mean Swish R² over layers: ResNet-10 {np.mean([res[k] for k in seeds]):.4f}, VGG-11 {np.mean([vgg[k] for k in seeds]):.4f}"
    missing = scale.missing(**NEEDS["comparison"]) + scale.missing(**NEEDS["shape"])
    if missing:
        return [_untestable(claim, measured, criterion, missing, scale)]
    d, se, df = _mean_se(diffs)
    status, lo, hi = above_zero(d, se, df)
    return [claim_row(claim, measured, criterion, status, f"difference {d:+.4f}, 95 % t interval [{lo:+.4f}, {hi:+.4f}]",
                      scale.text())]


POWER_NEEDED = 0.8       # a test that rejects a reference departure less often than this is underpowered
PASS_SHARE = 0.9         # "roughly Gaussian": at least this share of cells pass (1 − α = 0.95 if all were)


def _gaussian_claim(summaries, scale):
    """§5.2: per-class pre-activations roughly Gaussian, from the per-position Shapiro-Wilk tests
    (:mod:`actfn.deep.gaussianity`) of the learned-activation runs."""
    runs = [s for s in summaries if s["activation"] == "pwl" and s["mode"] == "backprop" and s.get("gaussianity_position")]
    if not runs:
        return []
    layers = [l for s in runs for l in s["gaussianity_position"]["layers"] if l["cells"]]
    shares = np.array([l["pass_share"] for l in layers])
    g = runs[0]["gaussianity_position"]
    pw = g["power"].get("skewness 0.5", float("nan"))
    claim = "Per-class pre-activations are roughly Gaussian (§5.2)"
    criterion = (f"in every layer at least {PASS_SHARE:.0%} of (channel, class) cells pass Shapiro-Wilk (α = "
                 f"{g['alpha']:g}) at the centre position, with power ≥ {POWER_NEEDED:g} against a skewness of 0.5")
    measured = (f"{', '.join(s['model'] for s in runs)}: share of cells passing per layer from {shares.min():.0%} to "
                f"{shares.max():.0%} ({sum(l['cells'] for l in layers)} cells, {g['images']} test images, at least "
                f"{min(l['n'] for l in layers)} per class); power at that size: "
                + ", ".join(f"{k} {v:.0%}" for k, v in g["power"].items()))
    missing = scale.missing(**NEEDS["shape"])
    if missing:
        return [_untestable(claim, measured, criterion, missing, scale)]
    if not pw >= POWER_NEEDED:
        return [claim_row(claim, measured, criterion, NOT_TESTABLE, f"underpowered: the test catches a skewness of 0.5 "
                          f"only {pw:.0%} of the time at this sample size", scale.text())]
    verdict = lambda t: (REPRODUCED if (shares >= 1 - t).all() else DIFFERS if np.median(shares) >= 0.5 else NOT_REPRODUCED)
    return [{**claim_row(claim, measured, criterion, verdict(1 - PASS_SHARE),
                         f"{(shares >= PASS_SHARE).sum()} of {len(shares)} layers at or above {PASS_SHARE:.0%}", scale.text()),
             "if the threshold moves": sensitivity(verdict, 1 - PASS_SHARE)}]


def knots_of(summaries: list[dict]) -> tuple[dict, dict]:
    """(final_knots, evolution) of the first seed's learned-activation runs, from the summaries'
    ``final_knots`` and ``evolution`` (:func:`actfn.deep.trainer.knot_record`), as :func:`deep_claims` takes them."""
    first = min((s.get("seed", 0) for s in summaries), default=0)
    runs = [s for s in summaries if s["activation"] == "pwl" and s.get("seed", 0) == first and s.get("final_knots")]
    return ({(s["model"], s["mode"]): s["final_knots"] for s in runs},
            {(s["model"], s["mode"]): [(step, v) for step, v in s["evolution"] if step > 0] for s in runs})


def deep_claims(summaries: list[dict], dataset: str, final_knots: dict | None = None,
                scale: Scale | None = None, evolution: dict | None = None) -> list[dict]:
    """Rows ``{claim, measured, criterion, status, reason, scale}`` (and ``if the threshold moves``
    where a threshold decides).  ``scale``: the run's scale (default: from the summaries, one seed);
    ``final_knots`` maps ``(model, mode)`` to the final knot vectors per layer; ``evolution`` maps
    ``(model, mode)`` to the first layer's knot values over training, ``[(step, values)]``; both
    default to those the summaries carry (:func:`knots_of`)."""
    scale = _scale(summaries, dataset, scale)
    if final_knots is None and evolution is None:
        final_knots, evolution = knots_of(summaries)
    rows = [_accuracy_claim(summaries, scale, "vgg11", 0.88), _accuracy_claim(summaries, scale, "resnet10", 0.90)]
    for model in dict.fromkeys(s["model"] for s in summaries):
        if _runs(summaries, model) and _runs(summaries, model, "relu"):
            rows.append(_comparable_claim(summaries, scale, model))
    if any(s["history"] for s in _runs(summaries, "vgg11")) and any(s["history"] for s in _runs(summaries, "resnet10")):
        rows.append(_converges_claim(summaries, scale))
    first_seed = min((s.get("seed", 0) for s in summaries), default=0)
    for s in summaries:
        if s["activation"] == "pwl" and s["layers"] and s.get("seed", 0) == first_seed:
            rows += _shape_claims(s, scale) + _layer_claims(s, scale)
    rows += _cleaner_claim(summaries, scale)
    rows += _evolution_claim(evolution or {}, scale)
    rows += _gaussian_claim(summaries, scale)
    if final_knots:
        for m in dict.fromkeys(k[0] for k in final_knots):
            bp, lc = final_knots.get((m, "backprop")), final_knots.get((m, "local_correlation"))
            if bp is None or lc is None:
                continue
            gaps = [shape_difference(np.asarray(a).reshape(-1, 33).mean(0), np.asarray(b).reshape(-1, 33).mean(0))
                    for a, b in zip(bp, lc)]
            med = float(np.median(gaps))
            claim = f"{m}: local-correlation activations resemble the backprop ones (§5.2)"
            measured = f"median z-scored shape gap over layers {med:.2f} (max {max(gaps):.2f})"
            missing = scale.missing(**NEEDS["shape"])
            rows.append(_untestable(claim, measured, "median gap < 0.5", missing, scale) if missing else
                        claim_row(claim, measured, "median gap < 0.5", REPRODUCED if med < 0.5 else NOT_REPRODUCED,
                                  "same shapes" if med < 0.5 else "the two modes learn different shapes", scale.text()))
    return rows
