"""Training one unit's activation on a Gaussian mixture (seed 000, sections 3.1 and 4.1).

The mixture: K classes, equal priors, means evenly spaced on [-mean_range, mean_range], common
standard deviation sigma.  f is piecewise linear with ``num_knots`` knots on ``x_range`` and linear
outside.  Two modes optimise the same knot values with Adam:

- ``analytic``: the exact objective from the closed-form Gaussian integrals;
- ``sample``:   the objective of ``samples`` fresh draws from the mixture at every step.

After every step the knot values are projected (left knot to zero, optionally unit L2 norm).
The objective is invariant to that projection, so it only fixes the gauge.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..checks import require, require_learning_rate
from ..theory.correlation import MixtureCorrelation, correlation_objective
from ..theory.gaussian import class_means, mass_outside
from ..kernels import warm_up
from ..pwl import INITS, PiecewiseLinearActivation

MODES = ("analytic", "sample")


@dataclass
class UnitConfig:
    classes: int = 20
    sigma: float = 1.0
    mode: str = "analytic"
    steps: int = 500
    lr: float = 1e-2
    samples: int = 10_000
    num_knots: int = 33
    x_range: tuple = (-3.0, 3.0)
    mean_range: float = 2.0
    init: str = "relu"
    smoothness: float = 0.0
    normalize: bool = False
    seed: int = 0

    def __post_init__(self):
        check_unit_parameters(**asdict(self))
        self.x_range = tuple(float(v) for v in self.x_range)


def check_unit_parameters(classes, sigma, mode, steps, lr, samples, num_knots, x_range, mean_range,
                          init, smoothness, normalize, seed):
    """Refuse a bad parameter by name before any work is done."""
    require(isinstance(classes, (int, np.integer)) and classes >= 2, "classes", classes, "must be an integer >= 2")
    require(isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0, "sigma", sigma, "must be a finite number > 0")
    require(mode in MODES, "mode", mode, f"must be one of {MODES}")
    require(isinstance(steps, (int, np.integer)) and steps >= 1, "steps", steps, "must be an integer >= 1")
    require_learning_rate("lr", lr)
    require(isinstance(samples, (int, np.integer)) and samples >= 2 * classes, "samples", samples,
             "must be an integer >= 2 * classes")
    require(isinstance(num_knots, (int, np.integer)) and num_knots >= 2, "num_knots", num_knots, "must be an integer >= 2")
    require(len(x_range) == 2 and float(x_range[0]) < float(x_range[1]), "x_range", x_range, "must be (lo, hi) with lo < hi")
    require(isinstance(mean_range, (int, float)) and mean_range > 0, "mean_range", mean_range, "must be > 0")
    require(init in INITS, "init", init, f"must be one of {INITS}")
    require(isinstance(smoothness, (int, float)) and smoothness >= 0, "smoothness", smoothness, "must be >= 0")
    require(isinstance(normalize, bool), "normalize", normalize, "must be True or False")
    require(isinstance(seed, (int, np.integer)), "seed", seed, "must be an integer")


def snapshot_steps(steps: int, count: int = 12) -> list[int]:
    """About ``count`` roughly geometric steps from 0 to ``steps`` (both included) at which f is recorded."""
    pts = np.round(np.geomspace(1, max(steps, 1), max(count - 1, 2))).astype(int)
    return sorted({0, int(steps), *map(int, pts)})


def smoothness_penalty(y: torch.Tensor) -> torch.Tensor:
    """Squared second differences relative to the spread of y: scale-free like the objective."""
    d2 = y[2:] - 2 * y[1:-1] + y[:-2]
    return (d2 * d2).sum() / ((y - y.mean()) ** 2).sum().clamp_min(1e-12)


@dataclass
class UnitRun:
    config: UnitConfig
    knots: np.ndarray
    values: np.ndarray
    loss: np.ndarray            # exact objective of the current f after every step (both modes)
    sample_loss: np.ndarray     # the minibatch objective that sample mode descended (empty for analytic)
    snapshots: dict = field(default_factory=dict)  # step -> knot values
    correlations: np.ndarray = None
    seconds: float = 0.0
    initial_loss: float = float("nan")

    @property
    def final_loss(self) -> float:
        return float(self.loss[-1])


def train_unit(config: UnitConfig | None = None, progress: bool = False, log=None, **overrides) -> UnitRun:
    """Train f on the mixture described by ``config`` (or keyword overrides of the defaults)."""
    cfg = config if config is not None else UnitConfig(**overrides)
    if config is not None and overrides:
        cfg = UnitConfig(**{**asdict(config), **overrides})
    dtype = torch.float64
    gen = torch.Generator().manual_seed(int(cfg.seed))
    act = PiecewiseLinearActivation(cfg.num_knots, cfg.x_range, init=cfg.init).to(dtype)
    means = class_means(cfg.classes, cfg.mean_range, dtype)
    exact = MixtureCorrelation(act.knots, means, cfg.sigma)
    opt = torch.optim.Adam(act.parameters(), lr=cfg.lr)
    snaps = set(snapshot_steps(cfg.steps))
    snapshots = {0: act.values.detach().numpy().copy()}
    with torch.no_grad():
        initial_loss = exact.objective(act.values).item()
    loss_hist, sample_hist = [], []

    steps = range(1, cfg.steps + 1)
    if progress:
        from ..progress import progress as bar
        steps = bar(steps, desc=f"K={cfg.classes} sigma={cfg.sigma} {cfg.mode}", leave=False)
    warm_up()      # a cold kernel cache builds here, not inside the first timed step
    seconds = 0.0  # training only: the exact-objective bookkeeping below is not part of either mode's cost
    for step in steps:
        start = time.perf_counter()
        if cfg.mode == "analytic":
            loss = exact.objective(act.values)
        else:
            labels = torch.randint(cfg.classes, (cfg.samples,), generator=gen)
            x = means[labels] + cfg.sigma * torch.randn(cfg.samples, generator=gen, dtype=dtype)
            loss = correlation_objective(act(x), labels, cfg.classes)
            sample_hist.append(loss.item())
        total = loss + cfg.smoothness * smoothness_penalty(act.values) if cfg.smoothness else loss
        if not torch.isfinite(total):
            raise FloatingPointError(f"objective became {total.item()} at step {step} "
                                     f"(classes={cfg.classes}, sigma={cfg.sigma}, mode={cfg.mode})")
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        act.project_(normalize=cfg.normalize)
        seconds += time.perf_counter() - start
        with torch.no_grad():
            exact_loss = exact.objective(act.values).item()
        loss_hist.append(exact_loss)
        if log is not None:
            log({"step": step, "loss": exact_loss, **({"sample_loss": sample_hist[-1]} if sample_hist else {})})
        if step in snaps:
            snapshots[step] = act.values.detach().numpy().copy()
    with torch.no_grad():
        rho = exact.correlations(act.values).numpy()
    return UnitRun(cfg, act.knots.numpy().copy(), act.values.detach().numpy().copy(), np.array(loss_hist),
                   np.array(sample_hist), snapshots, rho, seconds, initial_loss)


def _as_list(name: str, value) -> list:
    """A grid axis given as one value or a list of values (papermill passes either)."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise ValueError(f"parameter {name!r} must name at least one value, got {value!r}")
    return values


def grid_configs(classes=(2, 8, 20), sigmas=(0.6, 1.0, 10.0), modes=MODES, **common) -> list[UnitConfig]:
    """Every (K, sigma, mode) combination, validated before any training starts."""
    axes = {"classes": _as_list("classes", classes), "sigma": _as_list("sigmas", sigmas),
            "mode": _as_list("modes", modes)}
    return [UnitConfig(classes=k, sigma=float(s) if isinstance(s, (int, float)) else s, mode=m, **common)
            for k in axes["classes"] for s in axes["sigma"] for m in axes["mode"]]


def run_grid(configs: list[UnitConfig], show_progress: bool = True) -> list[UnitRun]:
    """Train every configuration of :func:`grid_configs`, with a progress bar."""
    if show_progress:
        from ..progress import progress
        configs = progress(configs, desc="unit runs")
    return [train_unit(cfg) for cfg in configs]


def summarize(run: UnitRun) -> dict:
    """One row of ``results/unit_experiments.json``: the run's settings, its fits and its cost."""
    from ..theory.fitting import fit_shapes

    fits = fit_shapes(run.knots, run.values)
    sw = fits["swish"]
    init = run.snapshots[0] - run.snapshots[0][0]
    spread = np.abs(run.values).max() or 1.0
    return {
        "classes": run.config.classes, "sigma": run.config.sigma, "mode": run.config.mode,
        "beta": sw.params["beta"], "beta_se": sw.beta_se, "beta_identified": sw.identified, "x0": sw.params["x0"], "x0_se": sw.x0_se, "r2": sw.r2,
        "a": sw.params["a"], "c": sw.params["c"],
        "sigmoid_r2": fits["sigmoid"].r2, "relu_r2": fits["relu"].r2, "linear_r2": linear_r2(run.knots, run.values),
        "correlations": np.asarray(run.correlations, dtype=float).tolist(),
        "final_loss": run.final_loss, "initial_loss": run.initial_loss,
        "change_from_init": float(np.abs(run.values - init).max() / spread),
        "mass_outside_knots": mass_outside(class_means(run.config.classes, run.config.mean_range),
                                           run.config.sigma, *run.config.x_range),
        "steps": run.config.steps, "seconds": run.seconds, "seconds_per_step": run.seconds / run.config.steps,
        "values": run.values.tolist(),
    }


def linear_r2(x, y) -> float:
    """R² of the least-squares line through (x, y): 1 for a straight f."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    resid = y - np.polyval(np.polyfit(x, y, 1), x)
    tot = float(((y - y.mean()) ** 2).sum())
    return float(1 - (resid ** 2).sum() / tot) if tot > 0 else float("nan")


def shape_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Largest difference of two knot-value vectors after removing the gauge (z-scoring each)."""
    za = (a - a.mean()) / (a.std() or 1.0)
    zb = (b - b.mean()) / (b.std() or 1.0)
    return float(np.abs(za - zb).max())


def mixture_density(x, means, sigma: float) -> np.ndarray:
    """The equal-prior mixture's density at ``x``: where the inputs of the unit actually fall."""
    x, m = np.asarray(x, float)[:, None], np.asarray(means, float)[None, :]
    return (np.exp(-(x - m) ** 2 / (2 * sigma ** 2)) / (sigma * math.sqrt(2 * math.pi))).mean(1)


TARGET_BETA, TARGET_X0 = (2.5, 0.25), (0.0, 0.2)     # the outline's "β ≈ 2.5, x₀ ≈ 0", with our tolerances


def beta_map(classes, sigmas, mean_ranges, show_progress: bool = True, **common) -> list[dict]:
    """Swish fits of the analytic trainer's f over class count x sigma x mean range: uniform on the
    knots and weighted by the input density, each with whether β ≈ 2.5 with x₀ ≈ 0 is reached (both
    95 % intervals inside their tolerances, :data:`TARGET_BETA`, :data:`TARGET_X0`)."""
    from ..theory.fitting import fit_swish
    from ..verdicts import REPRODUCED, band

    cells = [(k, s, r) for k in classes for s in sigmas for r in mean_ranges]
    if show_progress:
        from ..progress import progress
        cells = progress(cells, desc="beta map")
    rows = []
    for k, s, r in cells:
        run = train_unit(UnitConfig(classes=k, sigma=s, mode="analytic", **{**common, "mean_range": r}))
        row = {"classes": k, "sigma": s, "mean_range": r, "spacing": 2 * r / (k - 1) / s, "L": run.final_loss}
        density = mixture_density(run.knots, class_means(k, r).numpy(), s)
        for tag, w in (("", None), ("_w", density / density.max())):
            fit = fit_swish(run.knots, run.values, weights=w)
            reached = (fit.identified and band(fit.params["beta"], fit.beta_se, *TARGET_BETA)[0] == REPRODUCED
                       and band(fit.params["x0"], fit.x0_se, *TARGET_X0)[0] == REPRODUCED)
            row.update({f"beta{tag}": fit.params["beta"], f"beta_se{tag}": fit.beta_se, f"identified{tag}": fit.identified,
                        f"x0{tag}": fit.params["x0"], f"x0_se{tag}": fit.x0_se, f"r2{tag}": fit.r2, f"reached{tag}": reached})
        rows.append(row)
    return rows
