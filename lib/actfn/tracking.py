"""Optional Weights & Biases logging.  Never online unless a user asks for it by name."""
from __future__ import annotations

WANDB_MODES = ("disabled", "offline", "online")


def wandb_logger(mode: str = "disabled", project: str = "activation", config: dict | None = None,
                 name: str | None = None, directory: str | None = None, group: str | None = None):
    """Return ``(log, finish)``; with ``mode="disabled"`` both do nothing and wandb is not imported.
    ``group`` gathers runs in W&B's interface (a sweep's runs share one)."""
    if mode not in WANDB_MODES:
        raise ValueError(f"parameter 'wandb_mode' must be one of {WANDB_MODES}, got {mode!r}")
    if mode == "disabled":
        return None, lambda: None
    import wandb

    run = wandb.init(project=project, config=config or {}, name=name, mode=mode, dir=directory, reinit=True,
                     group=group)
    return run.log, run.finish


def log_figures(log, figures: dict) -> None:
    """Send matplotlib figures as images through a ``log`` from :func:`wandb_logger` (no-op for None)."""
    if log is None or not figures:
        return
    import wandb

    log({name: wandb.Image(fig) for name, fig in figures.items()})
