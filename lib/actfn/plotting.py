"""One look for every figure of the book."""
from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.text import Text

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]

# A page shows a figure at most a column wide (672 px on a desktop); the PNG is drawn at DPI pixels
# per inch.  With no text under MIN_TEXT_PT and no figure wider than MAX_WIDTH_IN, every letter is
# at least 9 px high in that column, and the site's script keeps it so on a phone (it lets a figure
# scroll in its own box rather than shrink past legibility).  The site check measures both.
DPI = 110
MIN_TEXT_PT = 9.0
MAX_WIDTH_IN = 7.0
PANEL = (3.4, 2.6)      # one panel of a grid, inches: two side by side fill MAX_WIDTH_IN


class IllegibleFigure(ValueError):
    """A figure whose text would be too small to read where the book shows it."""


def min_text_px() -> float:
    """Height in PNG pixels of the smallest text a book figure may carry."""
    return MIN_TEXT_PT * DPI / 72


def use_book_style():
    mpl.rcParams.update({
        "figure.figsize": (6.4, 4.0), "figure.dpi": DPI, "savefig.dpi": DPI,
        "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
        "axes.titlesize": 10.5, "axes.labelsize": 10, "legend.fontsize": MIN_TEXT_PT,
        "legend.title_fontsize": MIN_TEXT_PT, "legend.frameon": False,
        "xtick.labelsize": MIN_TEXT_PT, "ytick.labelsize": MIN_TEXT_PT, "font.size": 10,
        "lines.linewidth": 1.8, "axes.prop_cycle": mpl.cycler(color=PALETTE),
        "figure.hooks": ["actfn.plotting:watch_legibility"],
    })


def legibility_problems(fig) -> list[str]:
    """What would make `fig` illegible in a book column: text under MIN_TEXT_PT, or too wide."""
    problems = []
    if fig.get_figwidth() > MAX_WIDTH_IN + 1e-9:
        problems.append(f"the figure is {fig.get_figwidth():.1f} in wide (at most {MAX_WIDTH_IN} in: "
                        "lay its panels out with actfn.plotting.panel_grid)")
    small = sorted({(t.get_fontsize(), t.get_text().strip()[:30]) for t in fig.findobj(Text)
                    if t.get_visible() and t.get_text().strip() and t.get_fontsize() < MIN_TEXT_PT - 1e-9})
    problems += [f"the text {text!r} is {size:g} pt (at least {MIN_TEXT_PT:g} pt)" for size, text in small]
    return problems


def check_legible(fig):
    problems = legibility_problems(fig)
    if problems:
        raise IllegibleFigure("illegible figure: " + "; ".join(problems))


def watch_legibility(fig):
    """pyplot's figure hook: every drawing of the figure (the notebook's PNG) is checked first."""
    fig.canvas.mpl_connect("draw_event", lambda event: check_legible(event.canvas.figure))


def panel_grid(n: int, ncols: int = 2, panel=PANEL, **kwargs):
    """A figure of `n` panels, two a row (up to four for small multiples without axes), a column
    wide; returns (fig, axes).

    `axes` is a flat list of the `n` panels; the unused cells of the last row are removed."""
    ncols = max(1, min(ncols, 4, n))
    nrows = -(-n // ncols)
    height = panel[1] * nrows if n > 1 else panel[1] * 1.3       # (a lone panel: the column's width)
    width = min(panel[0] * max(ncols, 2), MAX_WIDTH_IN)
    fig, grid = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False,
                             layout="constrained", **kwargs)
    axes = list(grid.ravel())
    for ax in axes[n:]:
        ax.remove()
    return fig, axes[:n]


def standardise(y: np.ndarray) -> np.ndarray:
    """Remove the gauge (f -> a f + b) for display: zero mean, unit spread."""
    y = np.asarray(y, float)
    sd = y.std()
    return (y - y.mean()) / sd if sd > 0 else y - y.mean()


def colormap_lines(n: int, cmap: str = "viridis"):
    return plt.get_cmap(cmap)(np.linspace(0.1, 0.9, n))


def shade_key(fig, axes, labels=None, title: str = "layer", cmap: str = "viridis", most: int = 8):
    """The key to curves shaded with ``colormap_lines``: a colour bar beside the panels (a legend of
    ten 'layer k' entries would cover the curves of a small panel).  With ``labels`` it is discrete,
    one colour per label; without, it runs from the first (dark) to the last (light) of each panel's
    curves, for panels with different numbers of them."""
    colors = plt.get_cmap(cmap)(np.linspace(0.1, 0.9, 256 if labels is None else len(labels)))
    if labels is None:
        norm = mpl.colors.Normalize(0, 1)
    else:
        norm = mpl.colors.BoundaryNorm(np.arange(len(labels) + 1) - 0.5, len(labels))
    bar = fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=mpl.colors.ListedColormap(colors)),
                       ax=axes, label=title, aspect=30)
    if labels is None:
        bar.set_ticks([0, 1], labels=["first", "last"])
    else:
        every = -(-len(labels) // most)
        bar.set_ticks(np.arange(0, len(labels), every), labels=[str(x) for x in labels[::every]])
    bar.ax.tick_params(length=0)
    return bar


def legend_below(fig, axes=None, ncol: int = 2, **kwargs):
    """One legend for the whole figure, under its panels (the labels of every panel, once each)."""
    seen = {}
    for ax in (axes if axes is not None else fig.axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncol=ncol, **kwargs)


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
