"""The InfoMax chapter's record: which recorded model the build replays, and the replay itself."""
from __future__ import annotations

import torch

from .. import data as D
from ..checkpoints import fingerprint
from ..records import check_data, check_replay
from .setting import Setting
from .train import train_bank


def slim(results: dict) -> dict:
    """What a record keeps of a results file: all but the training curves its page does not draw (those
    of the models other than InfoMax at the reference λ)."""
    ref = results["parameters"]["reference_lambda"]
    keep = lambda r: r["objective"] == "infomax" and r["lambda"] == ref
    runs = [r if keep(r) else {k: v for k, v in r.items() if k not in ("curve", "weight_norm_curve")}
            for r in results["runs"]]
    return {**results, "runs": runs}


def replay_run(runs: list[dict], reference_lambda: float) -> dict:
    """The recorded model a build replays: the learned activation (the longest code path) under
    InfoMax at the reference λ, unconstrained, at the smallest K and the first seed."""
    pick = [r for r in runs if r["objective"] == "infomax" and r["constraint"] == "none"
            and r["lambda"] == reference_lambda and r.get("curve")]
    if not pick:
        raise ValueError("the record holds no InfoMax run at the reference λ with its training curve")
    by_act = [r for r in pick if r["activation"] == "pwl"] or pick
    return min(by_act, key=lambda r: (r["K"], r["seed"]))


def replay(results: dict, x_train: torch.Tensor, epochs: int = 1) -> dict:
    """Retrain :func:`replay_run`'s model for its first ``epochs`` on ``x_train`` (the record's training
    images, centred as the chapter centres them) and compare its mean training loss per epoch with the
    recorded one; stops (:class:`actfn.records.RecordError`) when any differs by more than 1e-4."""
    p = results["made_by"]["parameters"]
    run = replay_run(results["runs"], p["reference_lambda"])
    setting = Setting(run["activation"], "infomax", run["lambda"], "none")
    bank = train_bank([setting], [run["seed"]], run["K"], x_train, epochs, p["batch_size"], p["lr"],
                         matmul_precision=p.get("matmul_precision", "float32"))
    what = f"{run['activation']}, K = {run['K']}, seed {run['seed']}, λ = {run['lambda']:g}"
    diffs = [check_replay(f"the mean training loss of epoch {e + 1} ({what})", run["curve"][e], float(bank.losses[e, 0, 0]))
             for e in range(epochs)]
    return {"model": what, "epochs": epochs, "recorded": run["curve"][:epochs],
            "replayed": [float(v) for v in bank.losses[:, 0, 0]], "max_relative_difference": max(diffs),
            "steps": bank.steps}


def training_images(results: dict, data_root: str, download: bool = False) -> torch.Tensor:
    """The record's training images, as its run used them; stops when the dataset here is not the
    one the record was made on (by its checksums)."""
    p = results["made_by"]["parameters"]
    data = D.load_flat(results["dataset"], data_root, download)
    check_data(results, {"train": fingerprint(data.x_train, data.y_train), "test": fingerprint(data.x_test, data.y_test)})
    return D.flat_split(data, p["train_size"], p["eval_size"])[0]
