"""Tables and figures of the InfoMax chapter, from the records of :func:`actfn.infomax.run_study`."""
from __future__ import annotations

import numpy as np

from ..plotting import PALETTE


def select(records, **where):
    """Records whose fields equal ``where`` (a list value means "any of")."""
    def ok(r):
        return all((r[k] in v) if isinstance(v, (list, tuple, set)) else r[k] == v for k, v in where.items())
    return [r for r in records if ok(r)]


def aggregate(records, by: tuple, metrics: tuple) -> list[dict]:
    """Mean and std over seeds of each metric, per distinct value of the ``by`` fields (in first-seen order)."""
    groups = {}
    for r in records:
        groups.setdefault(tuple(r[k] for k in by), []).append(r)
    rows = []
    for key, rs in groups.items():
        row = dict(zip(by, key))
        row["seeds"] = len(rs)
        for m in metrics:
            vals = np.array([r[m] for r in rs if r[m] is not None], dtype=float)
            row[m] = float(vals.mean()) if len(vals) else None
            row[m + "_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else None
        rows.append(row)
    return rows


def mean_pm_std(key):
    """A column formatter for :func:`actfn.report.markdown_table`: 'mean ± std' from an aggregated row."""
    def fmt(row):
        m, s = row.get(key), row.get(key + "_std")
        if m is None:
            return "–"
        digits = 3 if abs(m) < 10 else 1
        return f"{m:.{digits}f} ± {s:.{digits}f}" if s is not None else f"{m:.{digits}f}"
    return fmt


def with_pm(rows, keys):
    """Add ``<key>_pm`` display strings to aggregated rows."""
    for r in rows:
        for k in keys:
            r[k + "_pm"] = mean_pm_std(k)(r)
    return rows


def bar_by_activation(ax, records, metric: str, objectives, activations, ylabel: str, per_k: bool = False):
    """Grouped bars: one group per activation, one bar per objective; mean over seeds (and K), std as error bar."""
    width = 0.8 / len(objectives)
    x = np.arange(len(activations))
    for i, obj in enumerate(objectives):
        means, stds = [], []
        for act in activations:
            vals = np.array([r[metric] / (r["K"] if per_k else 1) for r in select(records, activation=act, objective=obj)],
                            dtype=float)
            means.append(vals.mean() if len(vals) else np.nan)
            stds.append(vals.std(ddof=1) if len(vals) > 1 else 0.0)
        ax.bar(x + (i - (len(objectives) - 1) / 2) * width, means, width, yerr=stds, capsize=2,
               color=PALETTE[i % len(PALETTE)], label=obj)
    ax.set_xticks(x, [a.replace("_", " ") for a in activations], rotation=30, ha="right")
    ax.set_ylabel(ylabel)


def draw_weight_lines(ax, x2d, w, b, color, label=None):
    """Each unit's boundary w_j . x + b_j = 0 as a line across the data, with w_j as an arrow from its foot."""
    x2d = np.asarray(x2d)
    lo, hi = x2d.min(0) - 0.5, x2d.max(0) + 0.5
    ts = np.linspace(-10, 10, 2)
    for j, (wj, bj) in enumerate(zip(np.asarray(w), np.asarray(b))):
        norm = np.linalg.norm(wj)
        if norm < 1e-9:
            continue
        foot = -bj * wj / norm ** 2
        direction = np.array([-wj[1], wj[0]]) / norm
        pts = foot[None, :] + ts[:, None] * direction[None, :]
        ax.plot(pts[:, 0], pts[:, 1], color=color, lw=1.0, alpha=0.8, label=label if j == 0 else None)
        ax.annotate("", xy=foot + 0.6 * wj / norm, xytext=foot,
                    arrowprops={"arrowstyle": "->", "color": color, "lw": 0.8})
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")


def leaders(values: dict[str, float], higher_is_better: bool, digits: int = 3) -> list[str]:
    """The keys at the best value of ``values`` (ties at ``digits`` significant digits kept, all of them;
    None and NaN values left out)."""
    finite = {k: v for k, v in values.items() if v is not None and np.isfinite(v)}
    if not finite:
        return []
    best = (max if higher_is_better else min)(finite.values())
    return [k for k, v in finite.items() if f"{v:.{digits}g}" == f"{best:.{digits}g}"]


def tradeoffs(axes: dict[str, tuple[dict[str, float], bool]]) -> str:
    """One sentence on who leads each axis (``{axis: (values by activation, higher_is_better)}``) and
    whether a single activation leads them all."""
    lead = {axis: leaders(vals, high) for axis, (vals, high) in axes.items()}

    def who(axis):
        names, values = lead[axis], axes[axis][0]
        if not names:
            return "no value"
        if len(names) > 1 and len(names) == sum(v is not None and np.isfinite(v) for v in values.values()):
            return "all tie"
        return ", ".join(names)

    named = "; ".join(f"{axis}: {who(axis)}" for axis in lead)
    common = set.intersection(*(set(w) for w in lead.values())) if lead else set()
    if common:
        return f"Leaders — {named}. {' and '.join(sorted(common))} leads on every axis: no tradeoff here."
    return f"Leaders — {named}. No activation leads on every axis: choosing one trades these off."


def mean_by_activation(records, activations, value) -> dict[str, float]:
    """{activation: mean of ``value(record)`` over its records} (None values left out; NaN if none)."""
    out = {}
    for a in activations:
        vals = [v for v in (value(r) for r in select(records, activation=a)) if v is not None]
        out[a] = float(np.mean(vals)) if vals else float("nan")
    return out


def dead_fraction(records, activations) -> dict[str, float]:
    """Dead units per K, mean by activation (comparable across K)."""
    return mean_by_activation(records, activations, lambda r: r["dead_units"] / r["K"])


def _verdict(parts: list[tuple[str, bool]]) -> str:
    held = [name for name, ok in parts if ok]
    failed = [name for name, ok in parts if not ok]
    if not failed:
        return "Both halves hold."
    if not held:
        return "Neither half holds in this run."
    return f"Only one half holds: {held[0]}, not {failed[0]}."


def design_guess_checks(records, activations) -> list[dict]:
    """The design's two guesses about activations, checked on InfoMax records (one per model, any K):
    ReLU has "low redundancy among survivors but many dead units" (read here as: more dead units per K
    than the median activation, and a mean |cos| between its surviving rows at or below the median);
    softmax has "no dead units but collapses" (collapse: one unit takes more than half of the
    responsibility on average, max_j E[r_j] > 0.5, in the mean over seeds at some K).  Each check:
    ``{claim, measured, parts: [(half, holds)]}``."""
    dead = dead_fraction(records, activations)
    surv = mean_by_activation(records, activations, lambda r: r["survivor_mean_abs_cosine"])
    checks = []
    if "relu" in activations and len(activations) > 1:
        md, ms = float(np.median(list(dead.values()))), float(np.nanmedian(list(surv.values())))
        checks.append({"claim": "ReLU: low redundancy among survivors but many dead units",
                       "measured": f"{dead['relu']:.1%} of its units dead (median over the activations {md:.1%}); mean "
                                   f"|cos| between its surviving rows of W {surv['relu']:.3f} (median {ms:.3f})",
                       "parts": [("low redundancy among survivors", bool(surv["relu"] <= ms)),
                                 ("many dead units", bool(dead["relu"] > md))]})
    if "softmax" in activations:
        rs = select(records, activation="softmax")
        conc = {k: mean_by_activation(select(rs, K=k), ["softmax"], lambda r: r["responsibility_concentration"])["softmax"]
                for k in sorted({r["K"] for r in rs})}
        shown = ", ".join(f"K = {k}: {c:.3f} (1/K = {1 / k:.3f})" for k, c in conc.items())
        checks.append({"claim": "Softmax: no dead units but collapses",
                       "measured": f"{dead['softmax']:.1%} of its units dead; the largest mean responsibility of one "
                                   f"unit (uniform 1/K, total collapse 1) {shown}",
                       "parts": [("no dead units", dead["softmax"] == 0), ("collapse", any(c > 0.5 for c in conc.values()))]})
    return checks


def design_guesses(records, activations) -> list[str]:
    """:func:`design_guess_checks` as sentences."""
    lines = []
    for c in design_guess_checks(records, activations):
        name, rest = c["claim"].split(": ", 1)
        lines.append(f"{name}, *{rest}*: {c['measured']}. {_verdict(c['parts'])}")
    return lines


DISSOCIATION = (("mean_sq_correlation", "output correlation (mean sq.)"),
                ("tc_z_per_unit", "pre-activation TC per unit"),
                ("mean_sq_cosine", "mean cos² between rows of W"))


def dissociation(records, activations, reference_lambda: float = 1.0) -> list[dict]:
    """Per activation, InfoMax (unconstrained, the reference lambda) against its random start on the
    three sides of redundancy -- outputs, pre-activations, directions (:data:`DISSOCIATION`; means
    over K and seeds) -- with the number of seeds in which InfoMax is higher, and the gating of its
    units (mostly closed / mostly open fractions, open-set overlap against its independent value)."""
    from .stats import per_seed

    rows = []
    for act in activations:
        row = {"activation": act}
        for metric, _ in DISSOCIATION:
            inf, ran = per_seed(records, act, "infomax", metric, reference_lambda), per_seed(records, act, "random", metric)
            seeds = sorted(set(inf) & set(ran))
            row[f"{metric}_random"] = float(np.mean([ran[s] for s in seeds])) if seeds else float("nan")
            row[f"{metric}_infomax"] = float(np.mean([inf[s] for s in seeds])) if seeds else float("nan")
            row[f"{metric}_higher"] = sum(inf[s] > ran[s] for s in seeds)
            row["seeds"] = len(seeds)
        trained = [r for r in select(records, activation=act, objective="infomax", constraint="none")
                   if r["lambda"] == reference_lambda]
        for key in ("units_mostly_off", "units_mostly_on"):
            row[key] = float(np.mean([r[key] / r["K"] for r in trained])) if trained else float("nan")
        for key in ("open_overlap", "open_overlap_independent", "bias_std"):
            row[key] = float(np.mean([r[key] for r in trained])) if trained else float("nan")
        ov = per_seed(records, act, "infomax", "open_overlap", reference_lambda)
        ind = per_seed(records, act, "infomax", "open_overlap_independent", reference_lambda)
        row["overlap_below_in"] = sum(ov[s] < ind[s] for s in set(ov) & set(ind))
        rows.append(row)
    return rows


GATED = 0.9     # "taking turns": open sets overlapping at most 0.9 x as much as independent units' would


def dissociation_sentence(rows) -> str:
    """Which activations decorrelate their outputs while their pre-activations grow more dependent and
    their directions more redundant -- each change in the same direction in every seed (a sign test:
    p = 2/2^n for n seeds) -- and whether their units take turns: open sets overlapping less than
    independent units' would in every seed, and by a margin (at most :data:`GATED` x as much)."""
    n = rows[0]["seeds"] if rows else 0
    every = lambda r, m, up: r[f"{m}_higher"] == (n if up else 0)
    split = [r for r in rows if every(r, "mean_sq_correlation", False) and every(r, "tc_z_per_unit", True)
             and every(r, "mean_sq_cosine", True)]
    if n < 2:
        return "Fewer than two seeds: no consistency across seeds to report."
    names = ", ".join(r["activation"] for r in split) or "none"
    out = (f"Outputs decorrelated while the pre-activations grew more dependent and the rows of W more aligned, in all "
           f"{n} seeds (a sign test's p = {2 / 2 ** n:.2g} for each), for: {names}.")
    gated = [r for r in split if r["overlap_below_in"] == n and r["open_overlap"] <= GATED * r["open_overlap_independent"]]
    ungated = [r for r in split if r not in gated]
    if gated:
        out += (f" For {', '.join(r['activation'] for r in gated)} that is consistent with decorrelation through the "
                "biases and gating rather than through diverse directions: the units' open sets (z > 0) overlap, in "
                f"every seed, at most {GATED:g} x as much as independent units' would (" + ", ".join(
                    f"{r['activation']} {r['open_overlap']:.3f} vs {r['open_overlap_independent']:.3f}" for r in gated)
                + "), so the units take turns.")
    if ungated:
        out += (f" For {', '.join(r['activation'] for r in ungated)} the units' open sets (z > 0) overlap about as "
                "much as independent units' would (" + ", ".join(
                    f"{r['activation']} {r['open_overlap']:.3f} vs {r['open_overlap_independent']:.3f}" for r in ungated)
                + "): no sign of the biases gating them, so the decorrelation is not explained by units taking turns.")
    return out
