"""Training deep networks with learned activations (seed 000, sections 3.2 and 4.2).

Two modes:

- ``backprop``: cross-entropy end to end; one Adam with two parameter groups (backbone lr,
  activation lr).
- ``local_correlation``: the backbone learns by cross-entropy only; every activation learns by the
  correlation objective of the theory chapter on its own layer's (detached) pre-activations and the
  labels, with its own Adam, and receives no cross-entropy gradient.

After every activation step the knots are projected (left knot to zero, optional L2 norm).
A checkpoint is written atomically after every epoch; a run given the same checkpoint path
resumes from it and continues exactly as the uninterrupted run would (the data order and the
augmentation of epoch e depend only on (seed, e)).  A non-finite loss stops the run with a message
and leaves the last good checkpoint in place.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..checks import require, require_learning_rate
from ..theory.correlation import correlation_objective
from ..data import CLASSES, DATASETS, ImageData, batches, check_labels
from ..theory.fitting import fit_relu, fit_swish
from .gaussianity import position_gaussianity
from ..kernels import warm_up
from ..activations import REGISTRY
from .models import MODELS, activation_layers, build_model
from ..pwl import PiecewiseLinearActivation, piecewise_linear
from .. import checkpoints
from ..unit.trainer import snapshot_steps

DEEP_MODES = ("backprop", "local_correlation")
PREFIX_STEPS = 8         # training losses kept step by step: what a record's replay retrains and compares
CHECKPOINT_FORMAT = 2    # 2: tensors and plain values only (weights_only), keyed by data and code


@dataclass
class DeepConfig:
    model: str = "vgg11"
    dataset: str = "fashion_mnist"
    mode: str = "backprop"
    activation: str = "pwl"
    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3           # backbone
    act_lr: float = 1e-2       # activations
    per_channel: bool = False
    width: float = 1.0
    train_size: int | None = None   # None = the whole training set
    val_size: int = 5000            # held out from the training set for per-epoch validation
    test_size: int | None = None
    normalize: bool = False
    snapshots: int = 12        # activation snapshots over training (geometric in steps)
    seed: int = 0

    def __post_init__(self):
        require(self.model in MODELS, "model", self.model, f"must be one of {MODELS}")
        require(self.dataset in DATASETS, "dataset", self.dataset, f"must be one of {DATASETS}")
        require(self.mode in DEEP_MODES, "mode", self.mode, f"must be one of {DEEP_MODES}")
        require(self.activation in REGISTRY, "activation", self.activation, f"must be one of {tuple(REGISTRY)}")
        require(self.mode == "backprop" or REGISTRY[self.activation].learned, "mode", self.mode,
                 "local_correlation needs activation='pwl' (ReLU and SiLU have nothing to learn)")
        for name in ("epochs", "batch_size", "snapshots"):
            v = getattr(self, name)
            require(isinstance(v, (int, np.integer)) and v >= 1, name, v, "must be an integer >= 1")
        for name in ("lr", "act_lr"):
            require_learning_rate(name, getattr(self, name))
        require(isinstance(self.width, (int, float)) and math.isfinite(self.width) and self.width > 0, "width",
                self.width, "must be a number > 0")
        for name in ("train_size", "test_size"):
            v = getattr(self, name)
            require(v is None or (isinstance(v, (int, np.integer)) and v >= 2), name, v, "must be None or an integer >= 2")
        require(isinstance(self.val_size, (int, np.integer)) and self.val_size >= 1, "val_size", self.val_size,
                 "must be an integer >= 1")
        require(isinstance(self.per_channel, bool), "per_channel", self.per_channel, "must be True or False")
        require(isinstance(self.seed, (int, np.integer)), "seed", self.seed, "must be an integer")


@dataclass
class DeepRun:
    config: DeepConfig
    history: list = field(default_factory=list)      # one dict per epoch
    snapshots: dict = field(default_factory=dict)    # step -> [knot values per layer]
    test_loss: float = float("nan")
    test_acc: float = float("nan")
    seconds: float = 0.0
    steps_per_epoch: int = 0
    val_images: int = 0
    test_images: int = 0
    prefix_losses: list = field(default_factory=list)   # the first PREFIX_STEPS training losses
    # torch's CPU threads when those losses were computed: how many threads split a reduction changes
    # its last bits, which training amplifies (a replay runs with the same count)
    prefix_threads: int | None = None


def pwl_layers(model) -> list[PiecewiseLinearActivation]:
    return [m for m in activation_layers(model) if isinstance(m, PiecewiseLinearActivation)]


def split_train_val(data: ImageData, cfg: DeepConfig) -> tuple[ImageData, ImageData]:
    """A fixed random split of the (optionally subsampled) training set into train and validation."""
    n_total = len(data) if cfg.train_size is None else min(len(data), cfg.train_size + cfg.val_size)
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(10_000 + cfg.seed))[:n_total]
    n_val = min(cfg.val_size, n_total - 1)
    pick = lambda idx: ImageData(data.name, data.images[idx], data.labels[idx], data.mean, data.std)
    return pick(perm[n_val:]), pick(perm[:n_val])


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """``"cpu"``, ``"cuda"`` (or ``"cuda:N"``), or ``"auto"`` (the GPU when there is one)."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"parameter 'device' must be 'cpu', 'cuda' or 'auto', got {device!r}") from err
    require(dev.type == "cpu" or (dev.type == "cuda" and torch.cuda.is_available()), "device", device,
            "needs a CUDA GPU, and none is visible (use 'cpu' or 'auto')")
    return dev


@torch.no_grad()
def evaluate(model, data: ImageData, batch_size: int = 512, device: str | torch.device = "cpu") -> tuple[float, float]:
    model.eval()
    loss = correct = 0.0
    for x, y in batches(data, batch_size):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        out = model(x)
        loss += F.cross_entropy(out, y, reduction="sum").item()
        correct += (out.argmax(1) == y).sum().item()
    model.train()
    return loss / len(data), correct / len(data)


class _Capture:
    """Forward pre-hooks that keep each PWL layer's (detached) input for the local objective."""

    def __init__(self, layers):
        self.inputs = [None] * len(layers)
        self.handles = [layer.register_forward_pre_hook(self._hook(i)) for i, layer in enumerate(layers)]

    def _hook(self, i):
        def hook(module, args):
            self.inputs[i] = args[0].detach()
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


def local_correlation_loss(layer: PiecewiseLinearActivation, z: torch.Tensor, labels: torch.Tensor,
                           classes: int) -> torch.Tensor:
    """Signed objective of every channel of the layer; spatial positions count as samples."""
    if z.dim() == 4:
        b, c, h, w = z.shape
        lab = labels.repeat_interleave(h * w)
        f = piecewise_linear(z, layer.values, layer.lo, layer.hi)
        f = f.permute(0, 2, 3, 1).reshape(b * h * w, c)
    else:
        lab, f = labels, piecewise_linear(z, layer.values, layer.lo, layer.hi)
    return correlation_objective(f, lab, classes)


def train_deep(cfg: DeepConfig, train_data: ImageData, test_data: ImageData, checkpoint: str | os.PathLike | None = None,
               log=None, show_progress: bool = True, max_epochs: int | None = None,
               device: str | torch.device = "cpu", max_steps: int | None = None) -> tuple[DeepRun, torch.nn.Module]:
    """Train ``cfg.model`` on ``train_data``; ``max_epochs`` stops early (for tests of resuming), and
    ``max_steps`` stops after that many steps of the first epoch (a record's replay; no checkpoint).

    The data stay on the CPU (augmented there, batch by batch); the model and each batch go to
    ``device``.  Checkpoints can be resumed on another device.
    """
    device = resolve_device(device)
    warm_up()      # a cold kernel cache builds here, not inside the first epoch's time
    torch.manual_seed(cfg.seed)
    train, val = split_train_val(train_data, cfg)
    test = test_data.subset(cfg.test_size, seed=cfg.seed)
    classes = len(CLASSES[train_data.name])      # (as the dataset declares: labels are checked against it)
    for part, data in (("training", train_data), ("test", test_data)):
        check_labels(data.labels, classes, f"the {part} set of {train_data.name}")
    model = build_model(cfg.model, train.channels, classes, cfg.activation, cfg.per_channel, cfg.width).to(device)
    acts = pwl_layers(model)
    act_params = [p for layer in acts for p in layer.parameters()]
    act_ids = {id(p) for p in act_params}
    backbone = [p for p in model.parameters() if id(p) not in act_ids]
    if cfg.mode == "backprop":
        groups = [{"params": backbone, "lr": cfg.lr}] + ([{"params": act_params, "lr": cfg.act_lr}] if act_params else [])
        optimizers = {"main": torch.optim.Adam(groups)}
    else:
        optimizers = {"backbone": torch.optim.Adam(backbone, lr=cfg.lr),
                      "activation": torch.optim.Adam(act_params, lr=cfg.act_lr)}
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    snaps = set(snapshot_steps(steps_per_epoch * cfg.epochs, cfg.snapshots))
    run = DeepRun(cfg, steps_per_epoch=steps_per_epoch, val_images=len(val), test_images=len(test))
    start_epoch = 0

    ckpt = Path(checkpoint) if checkpoint and max_steps is None else None
    key = checkpoint_key(cfg, train_data, test_data) if ckpt is not None else None
    with checkpoints.claimed(ckpt):
        if ckpt is not None and ckpt.is_file():
            state = checkpoints.load(ckpt, key, map_location=device)
            model.load_state_dict(state["model"])
            for k, opt in optimizers.items():
                opt.load_state_dict(state["optimizers"][k])
            run.history, run.snapshots, run.seconds = state["history"], state["snapshots"], state["seconds"]
            run.prefix_losses = state.get("prefix_losses", [])
            run.prefix_threads = state.get("prefix_threads")
            start_epoch = state["epoch"]
        elif acts:
            run.snapshots[0] = [layer.values.detach().cpu().numpy().copy() for layer in acts]
        _train_epochs(cfg, model, acts, act_params, optimizers, train, val, run, classes, steps_per_epoch, snaps,
                      start_epoch, cfg.epochs if max_epochs is None else min(cfg.epochs, max_epochs), ckpt, key,
                      log, show_progress, device, max_steps)
    if len(run.history) == cfg.epochs:
        run.test_loss, run.test_acc = evaluate(model, test, device=device)
    return run, model


def checkpoint_key(cfg: DeepConfig, train_data: ImageData, test_data: ImageData) -> dict:
    """What a deep-network checkpoint must match to be resumed: format, configuration, data and code."""
    return {"format": CHECKPOINT_FORMAT, "config": asdict(cfg),
            "data": checkpoints.fingerprint(*(getattr(d, f) for d in (train_data, test_data)
                                              for f in ("images", "labels", "mean", "std"))),
            "code": checkpoints.code_version()}


def _train_epochs(cfg, model, acts, act_params, optimizers, train, val, run, classes, steps_per_epoch, snaps,
                  start_epoch, last_epoch, ckpt, key, log, show_progress, device, max_steps=None):
    """Epochs ``start_epoch`` to ``last_epoch`` of :func:`train_deep`, a checkpoint after each
    (or only the first ``max_steps`` steps, with no validation and no checkpoint)."""
    capture = _Capture(acts) if cfg.mode == "local_correlation" else None
    model.train()
    try:
        for epoch in range(start_epoch, last_epoch):
            gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
            it = batches(train, cfg.batch_size, gen, train=True)
            if show_progress:
                from ..progress import progress
                it = progress(it, total=steps_per_epoch, desc=f"{cfg.model} {cfg.activation} {cfg.mode} "
                                                                f"epoch {epoch + 1}/{cfg.epochs}", leave=False)
            t0 = time.perf_counter()
            tot_loss = tot_correct = seen = 0.0
            for i, (x, y) in enumerate(it):
                step = epoch * steps_per_epoch + i + 1
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                if cfg.mode == "local_correlation":
                    for p in act_params:
                        p.requires_grad_(False)  # no cross-entropy gradient reaches the activations
                out = model(x)
                loss = F.cross_entropy(out, y)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"non-finite loss ({loss.item()}) at epoch {epoch + 1}, step {step} of {cfg.model} "
                        f"({cfg.activation}, {cfg.mode}); the last good checkpoint is "
                        f"{ckpt if ckpt else 'not kept (no checkpoint path)'}")
                for opt in optimizers.values():
                    opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.mode == "backprop":
                    optimizers["main"].step()
                else:
                    optimizers["backbone"].step()
                    for p in act_params:
                        p.requires_grad_(True)
                    corr = sum(local_correlation_loss(layer, z, y, classes) for layer, z in zip(acts, capture.inputs))
                    if not torch.isfinite(corr):
                        raise FloatingPointError(f"non-finite correlation objective at epoch {epoch + 1}, step {step}")
                    corr.backward()
                    optimizers["activation"].step()
                for layer in acts:
                    layer.project_(normalize=cfg.normalize)
                tot_loss += loss.item() * len(y)
                if step <= PREFIX_STEPS:
                    run.prefix_losses.append(loss.item())
                    run.prefix_threads = torch.get_num_threads()
                tot_correct += (out.argmax(1) == y).sum().item()
                seen += len(y)
                if step in snaps and acts:
                    run.snapshots[step] = [layer.values.detach().cpu().numpy().copy() for layer in acts]
                if max_steps is not None and step >= max_steps:
                    return
            run.seconds += time.perf_counter() - t0
            val_loss, val_acc = evaluate(model, val, device=device)
            record = {"epoch": epoch + 1, "train_loss": tot_loss / seen, "train_acc": tot_correct / seen,
                      "val_loss": val_loss, "val_acc": val_acc, "seconds": run.seconds}
            run.history.append(record)
            if log is not None:
                log(record)
            if ckpt is not None:
                checkpoints.save(ckpt, key, {
                    "epoch": epoch + 1, "model": model.state_dict(),
                    "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                    "history": run.history, "snapshots": run.snapshots, "seconds": run.seconds,
                    "prefix_losses": run.prefix_losses, "prefix_threads": run.prefix_threads})
    finally:
        if capture is not None:
            capture.remove()


def _layer_mean(values) -> list[float]:
    v = np.asarray(values)
    return (v.mean(0) if v.ndim == 2 else v).tolist()


def knot_record(run: DeepRun) -> dict:
    """The knots a page draws and its claims read, as plain lists (per-channel layers: channel means):
    every layer's final knots, and the first layer's over training ``[[step, values], ...]``."""
    if not run.snapshots:
        return {"final_knots": [], "evolution": []}
    final = run.snapshots[max(run.snapshots)]
    return {"final_knots": [_layer_mean(v) for v in final],
            "evolution": [[int(step), _layer_mean(run.snapshots[step][0])] for step in sorted(run.snapshots)]}


def layer_fits(model) -> list[dict]:
    """Swish fit of every PWL layer's final knots (per-channel layers: the channel-mean knots)."""
    rows = []
    for i, layer in enumerate(pwl_layers(model)):
        values = layer.values.detach().cpu().numpy()
        values = values.mean(0) if values.ndim == 2 else values
        knots = layer.knots.cpu().numpy()
        fit = fit_swish(knots, values)
        rows.append({"layer": i, "beta": fit.params["beta"], "beta_se": fit.beta_se, "identified": fit.identified,
                     "x0": fit.params["x0"], "r2": fit.r2, "relu_r2": fit_relu(knots, values).r2})
    return rows


@torch.no_grad()
def preactivation_samples(model, data: ImageData, n_images: int = 512, per_class: int = 4000, seed: int = 0):
    """Per layer, per class: a sample of the pre-activation values (inputs of each activation).

    Returns ``{layer: {class: 1-d array}}`` pooled over channels and positions, and the per-channel
    version ``{layer: (values (N, C), labels (N,))}`` for the Gaussianity statistics.
    """
    layers = activation_layers(model)
    store = [None] * len(layers)
    handles = [l.register_forward_pre_hook(lambda m, a, i=i: store.__setitem__(i, a[0].detach()))
               for i, l in enumerate(layers)]
    sub = data.subset(n_images, seed=seed)
    x, y = next(batches(sub, n_images))
    model.eval()
    model(x.to(next(model.parameters()).device))
    model.train()
    for h in handles:
        h.remove()
    gen = np.random.default_rng(seed)
    out = {}
    for i, z in enumerate(store):
        if z.dim() == 4:
            b, c, h, w = z.shape
            vals = z.permute(0, 2, 3, 1).reshape(b * h * w, c).cpu().numpy()
            labs = y.repeat_interleave(h * w).numpy()
        else:
            vals, labs = z.cpu().numpy(), y.numpy()
        if len(labs) > 20 * per_class:
            keep = gen.choice(len(labs), 20 * per_class, replace=False)
            vals, labs = vals[keep], labs[keep]
        out[i] = (vals, labs)
    return out


GAUSSIANITY_IMAGES = 2000    # test images for the per-position Gaussianity tests (about 200 per class)


def gaussianity(samples) -> list[dict]:
    """Per layer: median over (channel, class) of the Kolmogorov-Smirnov distance between the
    standardised per-class pre-activations of one channel and N(0, 1), plus the median |skewness|
    and |excess kurtosis|.  0 means Gaussian; two Gaussians shifted by one sd are at KS ~ 0.38."""
    from scipy import stats

    rows = []
    for layer, (vals, labs) in samples.items():
        ks, sk, ku = [], [], []
        for k in np.unique(labs):
            v = vals[labs == k]
            if len(v) < 20:
                continue
            for c in range(v.shape[1]):
                col = v[:, c]
                sd = col.std()
                if sd <= 1e-8:
                    continue
                zc = (col - col.mean()) / sd
                ks.append(stats.kstest(zc, "norm").statistic)
                sk.append(abs(stats.skew(zc)))
                ku.append(abs(stats.kurtosis(zc)))
        rows.append({"layer": layer, "ks": float(np.median(ks)) if ks else float("nan"),
                     "skew": float(np.median(sk)) if sk else float("nan"),
                     "kurtosis": float(np.median(ku)) if ku else float("nan")})
    return rows


def checkpoint_name(cfg: DeepConfig) -> str:
    """A file name that changes with every setting of the run."""
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(asdict(cfg), sort_keys=True).encode()).hexdigest()[:10]
    return f"{cfg.model}_{cfg.activation}_{cfg.mode}_{cfg.dataset}_{digest}.pt"


def run_experiments(configs: list[DeepConfig], train_data: ImageData, test_data: ImageData,
                    checkpoint_dir: str | os.PathLike, resume: bool = False, log_factory=None,
                    show_progress: bool = True, device: str | torch.device = "cpu") -> list[dict]:
    """Train every configuration; return one summary per run (fits, Gaussianity) with the model.

    With ``resume=False`` an existing checkpoint of the same configuration is removed first, so the
    numbers come from this execution; with ``resume=True`` an interrupted run continues from it.
    """
    out = []
    for cfg in configs:
        path = Path(checkpoint_dir) / checkpoint_name(cfg)
        if not resume and path.exists():
            path.unlink()
        log = log_factory(cfg) if log_factory else None
        run, model = train_deep(cfg, train_data, test_data, checkpoint=path, log=log, show_progress=show_progress,
                                device=device)
        summary = {"model": cfg.model, "dataset": cfg.dataset, "mode": cfg.mode, "activation": cfg.activation,
                   "seed": cfg.seed, "epochs": cfg.epochs, "test_acc": run.test_acc, "test_loss": run.test_loss,
                   "test_images": run.test_images, "config": asdict(cfg), "prefix_losses": run.prefix_losses,
                   "prefix_threads": run.prefix_threads,
                   "seconds": run.seconds, "history": run.history, "val_images": run.val_images, "layers": [],
                   "gaussianity": [], **knot_record(run)}
        if cfg.activation == "pwl":
            summary["layers"] = layer_fits(model)
        summary["gaussianity"] = gaussianity(preactivation_samples(model, test_data, seed=cfg.seed))
        if cfg.activation == "pwl":
            x, y = next(batches(test_data.subset(GAUSSIANITY_IMAGES, seed=cfg.seed), GAUSSIANITY_IMAGES))
            summary["gaussianity_position"] = position_gaussianity(model, x, y, activation_layers(model))
        out.append({"summary": summary, "run": run, "model": model})
    return out
