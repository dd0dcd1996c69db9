"""One look for every figure of the book."""
from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def use_book_style():
    mpl.rcParams.update({
        "figure.figsize": (6.4, 4.0), "figure.dpi": 110, "savefig.dpi": 150,
        "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
        "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 8.5, "legend.frameon": False,
        "xtick.labelsize": 9, "ytick.labelsize": 9, "lines.linewidth": 1.8,
        "axes.prop_cycle": mpl.cycler(color=PALETTE),
    })


def standardise(y: np.ndarray) -> np.ndarray:
    """Remove the gauge (f -> a f + b) for display: zero mean, unit spread."""
    y = np.asarray(y, float)
    sd = y.std()
    return (y - y.mean()) / sd if sd > 0 else y - y.mean()


def colormap_lines(n: int, cmap: str = "viridis"):
    return plt.get_cmap(cmap)(np.linspace(0.1, 0.9, n))


def plot_knot_evolution(ax, knots, snapshots: dict, layer: int, title: str = ""):
    """f of one layer at every recorded step (per-channel knots are averaged over channels)."""
    steps = sorted(snapshots)
    for step, col in zip(steps, colormap_lines(len(steps))):
        v = np.asarray(snapshots[step][layer])
        v = v.mean(0) if v.ndim == 2 else v
        ax.plot(knots, v, color=col, lw=1.2, label=f"step {step}")
    ax.set(xlabel="pre-activation $x$", ylabel="$f(x)$", title=title)


def plot_class_histograms(ax, values, labels, classes: int, bins: int = 60, title: str = ""):
    """Per-class histograms of one layer's pre-activations (all channels pooled)."""
    lo, hi = np.percentile(values, [0.5, 99.5])
    edges = np.linspace(lo, hi, bins + 1)
    for k, col in zip(range(classes), plt.get_cmap("tab10")(np.arange(classes) % 10)):
        v = values[labels == k].ravel()
        if v.size:
            ax.hist(v, bins=edges, density=True, histtype="step", color=col, lw=1.0, label=str(k))
    ax.set(xlabel="pre-activation", ylabel="density", title=title)
