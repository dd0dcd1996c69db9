"""Training a bank: the seeds' minibatches, the loop, checkpoints and resumption."""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import checkpoints
from ..checks import require, require_learning_rate
from ..kernels import infomax_backend, warm_up
from .bank import InfoMaxBank
from .fast_path import BankAdam
from .setting import Setting

CHECKPOINT_FORMAT = 4   # 2: the decoders' Adam state with the weights'; 3: the biases' and knots' too (BankAdam);
                        # 4: tensors and plain values only (weights_only), keyed by the code too


@dataclass
class BankRun:
    bank: InfoMaxBank
    losses: np.ndarray                     # (epochs, S, G): mean training loss per epoch
    weight_norms: np.ndarray               # (epochs + 1, S, G): mean row norm of W
    seconds: float = 0.0
    steps: int = 0
    initial_weight: torch.Tensor = field(default=None, repr=False)   # (S, K, D)


def seed_batches(x: torch.Tensor, seeds: list[int], epoch: int, batch_size: int):
    """Per epoch, one shuffled order per seed; yields (S, B, D) batches of the shared inputs ``x``
    (N, D), or (S, G, B, D) of per-model inputs (S, G, N, D) (the last partial batch dropped, so that
    every step sees B samples and the batch statistics mean the same thing)."""
    n = x.shape[-2]
    # (drawn on the CPU whatever the device: the same seed gives the same batches everywhere)
    orders = torch.stack([torch.randperm(n, generator=torch.Generator().manual_seed(s * 1_000_003 + epoch))
                          for s in seeds]).to(x.device)
    for start in range(0, n - batch_size + 1, batch_size):
        if x.dim() == 4:     # each seed's order, applied to the inputs of every model of that seed
            yield torch.stack([x[i][:, orders[i, start:start + batch_size]] for i in range(len(seeds))])
        else:       # (index_select: a fifth of the time of x[orders[:, ...]]'s advanced indexing)
            yield torch.index_select(x, 0, orders[:, start:start + batch_size].reshape(-1)).view(len(seeds), batch_size, -1)


def train_bank(settings: list[Setting], seeds: list[int], k: int, x: torch.Tensor, epochs: int,
               batch_size: int = 128, lr: float = 1e-3, show_progress: bool = False, desc: str = "",
               matmul_precision: str = "float32", checkpoint: str | os.PathLike | None = None,
               device: str | torch.device | None = None) -> BankRun:
    """Train every (seed, setting) model on ``x`` with Adam; the random models stay at init.

    ``x``: the inputs every model sees, (N, D), or each model's own inputs, (S, G, N, D) for
    ``len(seeds)`` x ``len(settings)`` models (the depth follow-up: each second layer reads its own
    first layer's outputs); either way the seed fixes the initial W and the order of the batches.

    ``checkpoint``: a file written (atomically) after every epoch; if it exists, training continues
    from it and ends exactly where the uninterrupted run would (the batches depend only on seed and
    epoch).  A checkpoint of other settings, seeds, data or hyperparameters is refused by name.

    ``device``: where the models train (default: ``x``'s device); the returned bank is on the CPU.
    The initial weights and the batches come from the CPU's generators, so a GPU trains the same
    models on the same batches.
    """
    require(isinstance(epochs, int) and epochs >= 1, "epochs", epochs, "must be an integer >= 1")
    require_learning_rate("lr", lr)
    require(x.dim() == 2 or (x.dim() == 4 and tuple(x.shape[:2]) == (len(seeds), len(settings))), "x",
            tuple(x.shape), f"must be (N, D), or (S, G, N, D) = ({len(seeds)}, {len(settings)}, N, D): per-model inputs")
    require(x.dim() == 2 or all(s.objective != "reconstruction" for s in settings), "settings", settings,
            "must not hold reconstruction models when the inputs are per model")
    require(isinstance(batch_size, int) and 2 <= batch_size <= x.shape[-2], "batch_size", batch_size,
            f"must be an integer in [2, {x.shape[-2]}] (the training set size)")
    warm_up(infomax=True)      # a cold kernel cache builds here, not inside the timed training
    torch.manual_seed(0)
    bank = InfoMaxBank(settings, seeds, k, x.shape[-1], matmul_precision)
    # the random baseline never moves (its gradient is zero): only the other models are trained, as
    # a bank of their own, and copied into the full bank at the end
    trained_index = [j for j, s in enumerate(settings) if s.objective != "random"]
    initial = bank.weight[:, 0].detach().clone()
    bank.project_()
    norms = [bank.weight.detach().norm(dim=-1).mean(-1).numpy()]
    hist = np.full((epochs, len(seeds), len(settings)), np.nan, dtype=np.float32)
    t0 = time.perf_counter()
    steps = 0
    if trained_index:
        x_trained = x[:, trained_index] if x.dim() == 4 and len(trained_index) < len(settings) else x
        config = {"settings": [asdict(s) for s in settings], "seeds": list(seeds), "K": k, "epochs": epochs,
                  "batch_size": batch_size, "lr": lr, "matmul_precision": matmul_precision,
                  "data": checkpoints.fingerprint(x), "format": CHECKPOINT_FORMAT,
                  "code": checkpoints.code_version()} if checkpoint else None
        device = torch.device(device) if device is not None else x.device
        trained = InfoMaxBank([settings[j] for j in trained_index], seeds, k, x.shape[-1], matmul_precision).to(device)
        run = _train(trained, x_trained.to(device), epochs, batch_size, lr, show_progress,
                     desc or f"K={k}, {len(seeds) * len(settings)} models", Path(checkpoint) if checkpoint else None, config)
        run.bank.cpu()
        with torch.no_grad():
            for name in ("weight", "bias", "knots"):
                getattr(bank, name)[:, trained_index] = getattr(run.bank, name)
            bank.decoder.copy_(run.bank.decoder)
        hist[:, :, trained_index] = run.losses
        norms = np.repeat(np.array(norms), epochs + 1, axis=0)
        norms[:, :, trained_index] = run.weight_norms
        steps = run.steps
    seconds = run.seconds if trained_index else time.perf_counter() - t0   # (training time, resumed runs included)
    return BankRun(bank, hist, np.array(norms), seconds, steps, initial)


def _train(bank: InfoMaxBank, x: torch.Tensor, epochs: int, batch_size: int, lr: float, show_progress: bool,
           desc: str, checkpoint: Path | None = None, config: dict | None = None) -> BankRun:
    """Train every model of ``bank`` on ``x`` with Adam: the loop of :func:`train_bank`."""
    bank.project_()
    # Adam is elementwise: each model keeps its own state.  The compiled optimizer where it is
    # vectorised (:class:`BankAdam`; its other builds are plain loops, slower than torch's), else
    # torch's fused Adam.
    compiled_step = bank.compiled_step(x)      # (no autograd: InfoMaxBank.loss_and_grad_)
    bank_opt = BankAdam(bank, lr) if compiled_step and infomax_backend() == "cpp-avx512" else None
    opt = torch.optim.Adam(bank.parameters(), lr=lr, fused=True) if bank_opt is None else None
    norms = [bank.weight.detach().norm(dim=-1).mean(-1).cpu().numpy()]
    with checkpoints.claimed(checkpoint):
        return _train_epochs(bank, x, epochs, batch_size, desc, show_progress, checkpoint, config, compiled_step,
                             bank_opt, opt, norms)


def _train_epochs(bank, x, epochs, batch_size, desc, show_progress, checkpoint, config, compiled_step, bank_opt,
                  opt, norms) -> BankRun:
    """The epochs of :func:`_train`, resumed from ``checkpoint`` (keyed by ``config``) if it exists."""
    seeds = bank.seeds
    optimizer = bank_opt or opt      # (the one whose state a checkpoint keeps)
    on_cpu = x.device.type == "cpu"
    hist = []
    steps = 0
    seconds = 0.0
    if checkpoint is not None and checkpoint.is_file():
        state = checkpoints.load(checkpoint, config, map_location=bank.weight.device)
        bank.load_state_dict(state["bank"])
        optimizer.load_state_dict(state["optimizer"])
        hist, norms, steps, seconds = state["losses"], state["weight_norms"], state["steps"], state["seconds"]
    t0 = time.perf_counter()
    epoch_iter = range(len(hist), epochs)
    if show_progress:
        from ..progress import progress
        epoch_iter = progress(epoch_iter, desc=desc, leave=False, initial=len(hist), total=epochs)
    for epoch in epoch_iter:
        total = torch.zeros(len(seeds), len(bank.settings), device=x.device)
        count = 0
        for xb in seed_batches(x, seeds, epoch, batch_size):
            # the models are independent: the sum's gradient is each model's own gradient
            if compiled_step:
                loss = bank.loss_and_grad_(xb, bank_opt.rows if bank_opt is not None else None)
            else:
                loss = bank.losses(xb)
                for p in (bank.bias, bank.decoder, bank.knots):
                    p.grad = None        # (the weight's gradient is overwritten: see StackedLinear)
                loss.sum().backward()
            if on_cpu:    # (on a GPU, once an epoch below: a check every step would wait for the GPU)
                _require_finite(loss, seeds, bank.settings, epoch, checkpoint)
            if bank_opt is not None:
                bank_opt.step()      # Adam, the unit-row projection and the bfloat16 copy
            else:
                opt.step()
                bank.project_()
            total += loss.detach()
            count += 1
            steps += 1
        _require_finite(total, seeds, bank.settings, epoch, checkpoint)
        hist.append((total / count).cpu().numpy())
        norms.append(bank.weight.detach().norm(dim=-1).mean(-1).cpu().numpy())
        if checkpoint is not None:
            checkpoints.save(checkpoint, config, {
                "bank": bank.state_dict(), "optimizer": optimizer.state_dict(), "losses": hist,
                "weight_norms": norms, "steps": steps, "seconds": seconds + time.perf_counter() - t0})
    return BankRun(bank, np.array(hist), np.array(norms), seconds + time.perf_counter() - t0, steps)


def _require_finite(loss: torch.Tensor, seeds, settings, epoch: int, checkpoint):
    """Stop with the models whose loss is not finite (``loss`` (S, G)), and where the last good state is."""
    if not torch.isfinite(loss).all():
        bad = [(seeds[i], settings[j]) for i, j in zip(*torch.nonzero(~torch.isfinite(loss)).T.tolist())]
        raise FloatingPointError(f"non-finite InfoMax loss at epoch {epoch + 1} for {bad[:3]}; the last "
                                 f"good checkpoint is {checkpoint if checkpoint else 'not kept (no checkpoint path)'}")
