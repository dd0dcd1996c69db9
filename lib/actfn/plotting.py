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
