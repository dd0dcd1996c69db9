"""One model the conventional way, trained alone: the readable reference the bank is tested against."""
from __future__ import annotations

import numpy as np
import torch

from ..pwl import PiecewiseLinearActivation
from .bank import unit_rows_
from .loss import infomax_loss
from ..activations import PWL_KNOTS, PWL_RANGE, activate
from .setting import Setting, bf16_products, check_matmul_precision, xavier_weights
from .train import seed_batches

class OneLayer(torch.nn.Module):
    """One model the conventional way (nn.Linear, an activation module, a decoder if it reconstructs).

    :func:`train_one_model` trains it with ``torch.optim.Adam`` over the same minibatches a bank sees:
    the plain one-run-at-a-time loop that the bank replaces, kept as its readable reference (the
    tests check that both give the same weights) and as the benchmark's baseline.
    """

    def __init__(self, setting: Setting, seed: int, k: int, d: int, matmul_precision: str = "float32"):
        super().__init__()
        self.setting, self.bf16 = setting, check_matmul_precision(matmul_precision)
        self.linear = torch.nn.Linear(d, k)
        with torch.no_grad():
            self.linear.weight.copy_(xavier_weights(seed, k, d))
            self.linear.bias.zero_()
        self.pwl = PiecewiseLinearActivation(PWL_KNOTS, PWL_RANGE) if setting.activation == "pwl" else None
        self.decoder = None
        if setting.objective == "reconstruction":
            self.decoder = torch.nn.Linear(k, d, bias=False)     # W', starting tied to W
            with torch.no_grad():
                self.decoder.weight.copy_(self.linear.weight.T)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with bf16_products(x, self.bf16):
            z = self.linear(x).float()
        return self.pwl(z) if self.pwl is not None else activate(z, self.setting.activation)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        a = self(x)
        if self.decoder is not None:
            with bf16_products(x, self.bf16):
                x_hat = self.decoder(a).float()
            return (x - x_hat).pow(2).sum(-1).mean()
        return infomax_loss(a, self.setting.lam if self.setting.objective == "infomax" else 0.0)


def train_one_model(setting: Setting, seed: int, k: int, x: torch.Tensor, epochs: int, batch_size: int = 128,
                    lr: float = 1e-3, matmul_precision: str = "float32") -> tuple[OneLayer, np.ndarray]:
    """Train one model alone, conventionally; returns the model and its per-epoch mean training loss."""
    model = OneLayer(setting, seed, k, x.shape[1], matmul_precision)
    if setting.objective == "random":
        return model, np.zeros(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    if setting.constraint == "unit_rows":
        unit_rows_(model.linear.weight)
    curve = []
    for epoch in range(epochs):
        total, count = 0.0, 0
        for (xb,) in seed_batches(x, [seed], epoch, batch_size):
            loss = model.loss(xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if setting.constraint == "unit_rows":
                unit_rows_(model.linear.weight)
            total, count = total + loss.item(), count + 1
        curve.append(total / count)
    return model, np.array(curve)
