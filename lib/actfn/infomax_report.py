"""Tables and figures of the InfoMax chapter, from the records of :func:`actfn.infomax.run_study`."""
from __future__ import annotations

import numpy as np

from .plotting import PALETTE


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
