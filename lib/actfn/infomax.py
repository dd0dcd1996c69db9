"""InfoMax across activations (seed 002): one linear layer, many small models trained at once.

One layer z = W x + b, a = f(z) (K units), trained to minimise the batch InfoMax loss

    L = - sum_j log(Var(a_j) + eps) + lambda * ||Corr(A) - I||_F^2

(:func:`infomax_loss`), or one of the design's baselines: ``variance_only`` (lambda = 0),
``reconstruction`` (an untied linear decoder, ||x - W' a||^2) and ``random`` (Xavier W, untrained).

:class:`InfoMaxBank` holds every model of one K as stacked tensors: ``S`` seeds x ``G`` settings
(activation, objective, lambda, constraint).  The models of one seed see the same minibatches, so
the forward pass is one batched matrix product per seed, and since Adam is elementwise each model's
optimiser state stays its own: training the bank is training each model alone, all at once.
Seeds pair the runs: seed ``s`` gives the same initial W to every setting (and to ``random``).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .checks import require
from .pwl import piecewise_linear

ACTIVATIONS = ("identity", "relu", "softmax", "tanh", "leaky_relu", "softplus", "swish", "pwl")
OBJECTIVES = ("infomax", "variance_only", "reconstruction", "random")
CONSTRAINTS = ("none", "unit_rows")
EPS = 1e-6           # the eps of log(Var + eps)
PWL_KNOTS = 33
PWL_RANGE = (-3.0, 3.0)


def activate(z: torch.Tensor, kind: str, knots: torch.Tensor | None = None) -> torch.Tensor:
    """f(z) over the last dimension (the K units); ``knots`` (models, 33) for ``pwl``, models on dim 0."""
    if kind == "identity":
        return z
    if kind == "relu":
        return torch.relu(z)
    if kind == "softmax":
        return torch.softmax(z, dim=-1)
    if kind == "tanh":
        return torch.tanh(z)
    if kind == "leaky_relu":
        return F.leaky_relu(z, 0.01)
    if kind == "softplus":
        return F.softplus(z)
    if kind == "swish":
        return F.silu(z)
    if kind == "pwl":
        # per-model knots: the model index must be dim 1 for the per-channel activation
        moved = z.movedim(0, 1)
        return piecewise_linear(moved, knots, *PWL_RANGE).movedim(1, 0)
    raise ValueError(f"parameter 'activations' must hold values from {ACTIVATIONS}, got {kind!r}")


def activation_gain(z: torch.Tensor, kind: str, knots: torch.Tensor | None = None) -> torch.Tensor:
    """|d a_j / d z_j| for each unit (the diagonal of the Jacobian for softmax)."""
    z = z.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        if kind == "softmax":
            a = torch.softmax(z, dim=-1)
            return (a * (1 - a)).detach()
        a = activate(z, kind, knots)
        (g,) = torch.autograd.grad(a.sum(), z)
    return g.abs()


def correlation_matrix(a: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Correlation matrix of the columns of ``a`` (..., N, K) -> (..., K, K)."""
    c = a - a.mean(-2, keepdim=True)
    cov = c.transpose(-1, -2) @ c / (a.shape[-2] - 1)
    sd = torch.sqrt(torch.diagonal(cov, dim1=-2, dim2=-1).clamp_min(eps))
    return cov / (sd.unsqueeze(-1) * sd.unsqueeze(-2))


def infomax_loss(a: torch.Tensor, lam, eps: float = EPS) -> torch.Tensor:
    """-sum_j log(Var(a_j) + eps) + lam ||Corr(A) - I||_F^2 for ``a`` (..., N, K) -> (...).

    ``lam`` is a number or a tensor broadcastable to the leading dimensions (one lambda per model).
    """
    var = a.var(dim=-2)
    k = a.shape[-1]
    off = correlation_matrix(a) - torch.eye(k, dtype=a.dtype, device=a.device)
    return -torch.log(var + eps).sum(-1) + lam * off.pow(2).sum((-2, -1))


def independent_correlation_floor(k: int, n: int) -> float:
    """E||Corr(A) - I||_F^2 for K independent units over n samples: K(K-1)/(n-1).

    Each off-diagonal sample correlation of independent columns has variance ~1/(n-1), so a
    minibatch of 128 can never show Corr = I; the loss and the metric sit on this floor at best.
    """
    return k * (k - 1) / (n - 1)


@dataclass(frozen=True)
class Setting:
    """One model of a bank, apart from its seed."""
    activation: str
    objective: str = "infomax"
    lam: float = 1.0
    constraint: str = "none"

    def __post_init__(self):
        require(self.activation in ACTIVATIONS, "activations", self.activation, f"must be one of {ACTIVATIONS}")
        require(self.objective in OBJECTIVES, "objectives", self.objective, f"must be one of {OBJECTIVES}")
        require(self.constraint in CONSTRAINTS, "constraints", self.constraint, f"must be one of {CONSTRAINTS}")
        require(isinstance(self.lam, (int, float)) and math.isfinite(self.lam) and self.lam >= 0, "lambdas",
                self.lam, "must hold numbers >= 0")


def xavier_weights(seed: int, k: int, d: int) -> torch.Tensor:
    """Xavier-uniform (K, D) weights from the seed alone, so that every setting of a seed starts equal."""
    gen = torch.Generator().manual_seed(int(seed))
    bound = math.sqrt(6.0 / (d + k))
    return (torch.rand(k, d, generator=gen) * 2 - 1) * bound


class InfoMaxBank(torch.nn.Module):
    """``len(seeds) x len(settings)`` one-layer models of K units on D inputs, as stacked tensors.

    Parameters: ``weight`` (S, G, K, D), ``bias`` (S, G, K), ``decoder`` (S, R, D, K) (one per
    reconstruction setting) and ``knots`` (S, G, 33) (used by the ``pwl`` models only).
    """

    def __init__(self, settings: list[Setting], seeds: list[int], k: int, d: int):
        super().__init__()
        require(len(settings) >= 1, "settings", settings, "must not be empty")
        require(len(set(seeds)) == len(seeds) and len(seeds) >= 1, "seeds", seeds, "must be distinct and non-empty")
        require(isinstance(k, int) and k >= 2, "Ks", k, "must hold integers >= 2")
        self.settings, self.seeds, self.k, self.d = list(settings), [int(s) for s in seeds], k, d
        w0 = torch.stack([xavier_weights(s, k, d) for s in self.seeds])          # (S, K, D)
        g = len(settings)
        self.weight = torch.nn.Parameter(w0.unsqueeze(1).repeat(1, g, 1, 1))    # (S, G, K, D)
        self.bias = torch.nn.Parameter(torch.zeros(len(seeds), g, k))
        self.recon = [i for i, s in enumerate(settings) if s.objective == "reconstruction"]
        # decoders of the reconstruction models only, starting as the transpose of W (tied start, untied after)
        self.decoder = torch.nn.Parameter(w0.transpose(1, 2).unsqueeze(1).repeat(1, len(self.recon), 1, 1).contiguous())
        relu_knots = torch.linspace(*PWL_RANGE, PWL_KNOTS).clamp(min=0)
        self.knots = torch.nn.Parameter(relu_knots.expand(len(seeds), g, PWL_KNOTS).clone())
        # contiguous runs of settings with the same activation share one call of f
        self.groups = []
        for i, s in enumerate(settings):
            if self.groups and self.groups[-1][0] == s.activation and self.groups[-1][2] == i:
                self.groups[-1] = (s.activation, self.groups[-1][1], i + 1)
            else:
                self.groups.append((s.activation, i, i + 1))
        self.register_buffer("lam", torch.tensor([s.lam if s.objective == "infomax" else 0.0 for s in settings]))
        self.unit_rows = torch.tensor([s.constraint == "unit_rows" for s in settings])

    def preactivations(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (S, B, D), one batch per seed -> z (S, G, B, K)."""
        s, b, _ = x.shape
        g = len(self.settings)
        w = self.weight.reshape(s, g * self.k, self.d)
        z = torch.bmm(x, w.transpose(1, 2)).view(s, b, g, self.k).transpose(1, 2)
        return z + self.bias.unsqueeze(2)

    def activations(self, z: torch.Tensor) -> torch.Tensor:
        parts = []
        for kind, lo, hi in self.groups:
            zz = z[:, lo:hi]
            if kind == "pwl":
                s, gg, b, k = zz.shape
                a = activate(zz.reshape(s * gg, b, k), kind, self.knots[:, lo:hi].reshape(s * gg, -1))
                parts.append(a.view(s, gg, b, k))
            else:
                parts.append(activate(zz, kind))
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

    def losses(self, x: torch.Tensor) -> torch.Tensor:
        """Per-model training loss (S, G) on one batch ``x`` (S, B, D)."""
        a = self.activations(self.preactivations(x))
        loss = infomax_loss(a, self.lam.view(1, -1))
        if self.recon:
            r = torch.tensor(self.recon, device=x.device)
            # ||x - W'a||^2 = ||x||^2 - 2 a.(W'^T x) + a^T (W'^T W') a, without the (S, R, B, D) x-hat
            ar, dec = a[:, r], self.decoder                              # (S, R, B, K), (S, R, D, K)
            proj = torch.einsum("sbd,srdk->srbk", x, dec)               # W'^T x per sample
            gram = dec.transpose(-1, -2) @ dec                           # (S, R, K, K)
            quad = ((ar @ gram) * ar).sum(-1)
            rec = (x.pow(2).sum(-1).unsqueeze(1) - 2 * (ar * proj).sum(-1) + quad).mean(-1)   # (S, R)
            loss = loss.index_copy(1, r, rec)
        return loss

    @torch.no_grad()
    def project_(self):
        """Norm-constrained variant: rows of W back to unit length after every step."""
        if self.unit_rows.any():
            w = self.weight[:, self.unit_rows]
            self.weight[:, self.unit_rows] = w / w.norm(dim=-1, keepdim=True).clamp_min(1e-12)


@dataclass
class BankRun:
    bank: InfoMaxBank
    losses: np.ndarray                     # (epochs, S, G): mean training loss per epoch
    weight_norms: np.ndarray               # (epochs + 1, S, G): mean row norm of W
    seconds: float = 0.0
    steps: int = 0
    initial_weight: torch.Tensor = field(default=None, repr=False)   # (S, K, D)


def seed_batches(x: torch.Tensor, seeds: list[int], epoch: int, batch_size: int):
    """Per epoch, one shuffled order per seed; yields (S, B, D) batches (the last partial batch dropped,
    so that every step sees B samples and the batch statistics mean the same thing)."""
    n = x.shape[0]
    orders = torch.stack([torch.randperm(n, generator=torch.Generator().manual_seed(s * 1_000_003 + epoch))
                          for s in seeds])
    for start in range(0, n - batch_size + 1, batch_size):
        yield x[orders[:, start:start + batch_size]]


def train_bank(settings: list[Setting], seeds: list[int], k: int, x: torch.Tensor, epochs: int,
               batch_size: int = 128, lr: float = 1e-3, show_progress: bool = False, desc: str = "") -> BankRun:
    """Train every (seed, setting) model on ``x`` (N, D) with Adam; the random models stay at init."""
    require(isinstance(epochs, int) and epochs >= 1, "epochs", epochs, "must be an integer >= 1")
    require(isinstance(batch_size, int) and 2 <= batch_size <= x.shape[0], "batch_size", batch_size,
            f"must be an integer in [2, {x.shape[0]}] (the training set size)")
    torch.manual_seed(0)
    bank = InfoMaxBank(settings, seeds, k, x.shape[1])
    trained = torch.tensor([s.objective != "random" for s in settings])
    # one fused pass per step over all parameters (Adam is elementwise: each model keeps its own state)
    opt = torch.optim.Adam(bank.parameters(), lr=lr, fused=True)
    initial = bank.weight[:, 0].detach().clone()
    bank.project_()
    norms = [bank.weight.detach().norm(dim=-1).mean(-1).numpy()]
    hist = []
    steps = 0
    t0 = time.perf_counter()
    epoch_iter = range(epochs)
    if show_progress:
        from .progress import progress
        epoch_iter = progress(epoch_iter, desc=desc or f"K={k}, {len(seeds) * len(settings)} models", leave=False)
    for epoch in epoch_iter:
        total = torch.zeros(len(seeds), len(settings))
        count = 0
        for xb in seed_batches(x, seeds, epoch, batch_size):
            loss = bank.losses(xb)
            if not torch.isfinite(loss[:, trained]).all():
                bad = [(seeds[i], settings[j]) for i, j in zip(*torch.nonzero(~torch.isfinite(loss)).T.tolist())]
                raise FloatingPointError(f"non-finite InfoMax loss at epoch {epoch + 1} for {bad[:3]}")
            opt.zero_grad(set_to_none=True)
            # the models are independent: the sum's gradient is each model's own gradient
            loss[:, trained].sum().backward()
            opt.step()
            bank.project_()
            total += loss.detach()
            count += 1
            steps += 1
        hist.append((total / count).numpy())
        norms.append(bank.weight.detach().norm(dim=-1).mean(-1).numpy())
    # the random baseline never moves (its gradient is never taken, Adam skips None grads)
    return BankRun(bank, np.array(hist), np.array(norms), time.perf_counter() - t0, steps, initial)


# ----------------------------------------------------------------------------------------------
# Metrics, on a fixed held-out set (never on training minibatches: see independent_correlation_floor)

def effective_rank(w: torch.Tensor) -> dict:
    """Two effective ranks of W from its singular values sigma.

    ``participation``: the design's (sum sigma)^2 / sum sigma^2, in [1, min(K, D)].
    ``entropy``: Roy & Vetterli (2007), exp(H(p)) with p_i = sigma_i / sum sigma, in [1, min(K, D)].
    """
    s = torch.linalg.svdvals(w.double())
    s = s[s > s.max() * 1e-12] if s.max() > 0 else s
    p = s / s.sum()
    return {"participation": float(s.sum() ** 2 / (s ** 2).sum()),
            "entropy": float(torch.exp(-(p * torch.log(p)).sum()))}


def weight_redundancy(w: torch.Tensor) -> float:
    """The design's R_W = ||G - I/K||_F^2 with G = W W^T / ||W||_F^2 (the K x K Gram of the rows of W
    scaled to trace 1).  0 when the rows are orthogonal and of equal length; 1 - 1/K when all rows are
    one vector.  (The design writes W^T W, which is D x D for W of shape K x D; the K x K Gram is meant.)"""
    w = w.double()
    g = w @ w.T / (w ** 2).sum()
    k = w.shape[0]
    return float(((g - torch.eye(k, dtype=g.dtype) / k) ** 2).sum())


def mean_abs_cosine(w: torch.Tensor) -> float:
    """Mean |cos| between distinct rows of W: redundancy of directions alone (row lengths ignored)."""
    u = w.double() / w.double().norm(dim=1, keepdim=True).clamp_min(1e-12)
    c = (u @ u.T).abs()
    k = w.shape[0]
    return float((c.sum() - c.diagonal().sum()) / (k * (k - 1)))


def gaussian_copula_tc(a: torch.Tensor, tol: float = 1e-6) -> dict:
    """Total correlation of the units by a Gaussian-copula estimate (not the training penalty).

    Each unit's values are replaced by normal scores Phi^-1(rank / (N + 1)); TC = -1/2 log det R of
    their correlation matrix R.  Constant units are left out (their entropy is not defined); so is a
    last unit that is an exact function of the others (softmax outputs sum to one, so one of them is
    determined and the TC of all K is infinite): the estimate is over the ``units`` that remain.
    """
    from scipy.stats import norm

    x = a.double().numpy()
    keep = [j for j in range(x.shape[1]) if np.ptp(x[:, j]) > tol * max(1.0, np.abs(x[:, j]).max())]
    x = x[:, keep]
    if x.shape[1] < 2:
        return {"tc": 0.0, "units": x.shape[1]}
    ranks = np.argsort(np.argsort(x, axis=0, kind="stable"), axis=0, kind="stable") + 1
    scores = norm.ppf(ranks / (x.shape[0] + 1))
    r = np.corrcoef(scores, rowvar=False)
    sign, logdet = np.linalg.slogdet(r)
    return {"tc": float(-0.5 * logdet) if sign > 0 else float("inf"), "units": x.shape[1]}


def model_metrics(w: torch.Tensor, b: torch.Tensor, activation: str, x: torch.Tensor, lam: float = 1.0,
                  knots: torch.Tensor | None = None, dead_rate: float = 0.01, gain_floor: float = 0.05,
                  magnitude_eps: float = 1e-3) -> dict:
    """Every metric of the design for one trained layer (w (K, D), b (K,)) on held-out inputs x (N, D).

    Dead units, two ways:
    * ``dead_units`` (this book's definition): a unit is dead when it *responds* to its input on
      fewer than ``dead_rate`` of the held-out samples, where responding means a local gain
      |d a_j / d z_j| of at least ``gain_floor`` x the activation's largest gain.  For ReLU this is
      the usual "never positive"; for tanh it is "always saturated"; for softmax "never near winning";
      identity never has dead units.
    * ``dead_units_magnitude`` (the design's literal rule): activation rate P(|a_j| > eps) < dead_rate.
      It counts a tanh unit stuck at 0.3 as alive, so it is shown beside the other, not instead.
    """
    with torch.no_grad():
        z = x @ w.T + b
        kn = knots.view(1, -1) if knots is not None else None
        a = activate(z.unsqueeze(0), activation, kn).squeeze(0) if activation == "pwl" else activate(z, activation)
    gain = activation_gain(z.unsqueeze(0), activation, kn).squeeze(0) if activation == "pwl" else activation_gain(z, activation)
    max_gain = {"identity": 1.0, "relu": 1.0, "leaky_relu": 1.0, "softplus": 1.0, "tanh": 1.0, "softmax": 0.25,
                "swish": 1.1, "pwl": float(gain.max().clamp_min(1e-12))}[activation]
    responsive = (gain >= gain_floor * max_gain).double().mean(0)
    magnitude = (a.abs() > magnitude_eps).double().mean(0)
    var = a.double().var(0)
    corr = correlation_matrix(a.double())
    k, n = a.shape[1], a.shape[0]
    out = {
        "effective_rank": effective_rank(w)["participation"],
        "effective_rank_entropy": effective_rank(w)["entropy"],
        "weight_redundancy": weight_redundancy(w),
        "mean_abs_cosine": mean_abs_cosine(w),
        "weight_norm": float(w.norm(dim=1).mean()),
        "dead_units": int((responsive < dead_rate).sum()),
        "dead_units_magnitude": int((magnitude < dead_rate).sum()),
        "activation_rate": float(responsive.mean()),
        "variance_ratio": float(var.max() / var.min().clamp_min(1e-300)),
        "output_correlation": float(((corr - torch.eye(k, dtype=corr.dtype)) ** 2).sum()),
        "correlation_floor": independent_correlation_floor(k, n),
        "heldout_loss": float(infomax_loss(a.double(), lam)),
        "responsibility_concentration": float(a.double().mean(0).max()) if activation == "softmax" else None,
    }
    tc = gaussian_copula_tc(a)
    if activation == "softmax" and tc["units"] == k:
        tc = gaussian_copula_tc(a[:, :-1])  # sum to one: the last unit is determined by the others
    out["total_correlation"], out["tc_units"] = tc["tc"], tc["units"]
    return out


def convergence_epoch(curve: np.ndarray, fraction: float = 0.9) -> int:
    """Epochs until the loss has covered ``fraction`` of its way from the first to the last epoch.

    The design's "epochs to reach 90 % of final loss" is ambiguous for losses that are negative or
    change sign (the InfoMax loss is both); the fraction of the distance travelled is not.
    """
    curve = np.asarray(curve, dtype=float)
    start, end = curve[0], curve[-1]
    if not np.isfinite(start - end) or start == end:
        return 1
    target = start + fraction * (end - start)
    reached = (curve <= target) if end < start else (curve >= target)
    return int(np.argmax(reached)) + 1
