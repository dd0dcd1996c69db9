"""The deep-network chapter's tables and its record: accuracies per run and over seeds, the data's
checksums, and the replay of a recorded run's first training steps."""
from __future__ import annotations

import numpy as np
import torch

from ..checkpoints import fingerprint
from .trainer import DeepConfig, train_deep
from ..records import RecordError, check_data, check_replay
from ..verdicts import q95

SOURCES = {"cifar10": "the CIFAR-10 release (cifar-10-batches-py in the data folder, MD5s checked)",
           "fashion_mnist": "Fashion-MNIST (torchvision's files in the data folder, from the Debian package "
                            "dataset-fashion-mnist when present, SHA-256 checked), padded to 32x32"}


def results_of(summaries: list[dict], dataset: str, data_checksum: dict, n_train: int, parameters: dict,
               made_by: dict, claims: list[dict] | None = None) -> dict:
    """The chapter's results file (and a record's body) from its run summaries: the scale they were
    made at and the outline's claims judged on them (``claims``, when already judged).  The chapter
    writes it after training; a sweep (``python -m actfn.sweep ... --record NAME``) writes it from
    its run files."""
    import time

    from ..verdicts import Scale
    from .claims import deep_claims
    seeds = parameters["seed"] if isinstance(parameters["seed"], list) else [parameters["seed"]]
    scale = Scale(dataset, seeds=len(seeds), width=parameters["width"], epochs=parameters["epochs"], images=n_train)
    return {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "made_by": made_by, "dataset": dataset,
            "source": SOURCES[dataset], "data_checksum": data_checksum, "n_train": n_train, "scale": scale.text(),
            "parameters": parameters, "runs": summaries,
            "claims": claims if claims is not None else deep_claims(summaries, dataset, scale=scale)}


def image_checksums(train, test) -> dict:
    """Digests of the training and test images and labels (:func:`actfn.checkpoints.fingerprint`)."""
    return {"train": fingerprint(train.images, train.labels), "test": fingerprint(test.images, test.labels)}


def accuracy_table(summaries: list[dict]) -> tuple[list[dict], list[tuple]]:
    """(rows, columns) of one row per run: its validation accuracy after the last epoch and its test accuracy."""
    rows = [{"model": s["model"], "activation": s["activation"], "mode": s["mode"], "seed": s.get("seed", 0),
             "dataset": s["dataset"], "val": s["history"][-1]["val_acc"] if s["history"] else float("nan"),
             "test": s["test_acc"], "s": s["seconds"]} for s in summaries]
    return rows, [("model", "model"), ("activation", "activation"), ("mode", "mode"), ("seed", "seed"),
                  ("dataset", "dataset"), ("val", "val acc (last epoch)", ".3f"), ("test", "test acc", ".3f"),
                  ("s", "train s", ".0f")]


def seed_table(summaries: list[dict]) -> tuple[list[dict], list[tuple]]:
    """(rows, columns) of one row per (model, activation, mode): the test accuracy's mean over seeds,
    its standard deviation and its 95 % t interval (none with a single seed)."""
    groups: dict[tuple, list[float]] = {}
    for s in summaries:
        groups.setdefault((s["model"], s["activation"], s["mode"]), []).append(s["test_acc"])
    rows = []
    for (m, a, md), acc in groups.items():
        v = np.asarray(acc, float)
        n = len(v)
        sd = float(v.std(ddof=1)) if n >= 2 else float("nan")
        half = q95(n - 1) * sd / np.sqrt(n) if n >= 2 else float("nan")
        rows.append({"model": m, "activation": a, "mode": md, "seeds": n, "mean": float(v.mean()), "sd": sd,
                     "interval": f"[{v.mean() - half:.3f}, {v.mean() + half:.3f}]" if n >= 2 else "one seed: none"})
    return rows, [("model", "model"), ("activation", "activation"), ("mode", "mode"), ("seeds", "seeds"),
                  ("mean", "test acc (mean)", ".3f"), ("sd", "sd over seeds", ".3f"), ("interval", "95 % t interval")]


def replay_run(summaries: list[dict]) -> dict:
    """The recorded run a build replays: the first seed's learned activation in local-correlation mode
    (the longest code path: two optimisers, hooks and the correlation objective), else in backprop."""
    pick = [s for s in summaries if s["activation"] == "pwl" and s.get("prefix_losses") and s.get("config")]
    if not pick:
        raise RecordError("the record holds no learned-activation run with its first training losses and configuration")
    return min(pick, key=lambda s: (s["mode"] != "local_correlation", s.get("seed", 0)))


# The replay compares the first REPLAY_STEPS of the PREFIX_STEPS losses a run keeps: the last bits of
# reductions differ between CPU instruction sets (a record made on an AVX-512 Xeon, replayed on an AVX2
# EPYC: relative differences of 2e-6 up to step 4, then 3e-4 at step 6 and 6e-4 at step 8) and training
# amplifies them, while a 1% change of either learning rate moves step 4 by more than 1e-3.
REPLAY_STEPS = 4


def replay(results: dict, train_data, test_data, steps: int = REPLAY_STEPS) -> dict:
    """Retrain :func:`replay_run`'s model for its first ``steps`` steps (at most those the record
    keeps) on the record's data, with as many torch threads as the recorded steps ran on, and compare
    each step's training loss with the recorded one; stops (:class:`actfn.records.RecordError`) when the
    data are not the record's (by checksum) or any loss differs by more than 1e-4 (relative).

    The thread count matters, like the instruction set above: it changes how reductions are split,
    hence their last bits (2e-4 at step 6 of the deep record, one thread against two).  A run without
    ``prefix_threads`` is replayed on one thread: the one record made before runs kept it trained its
    replayed run from the start in its second invocation, which ran with ``OMP_NUM_THREADS=1``."""
    check_data(results, image_checksums(train_data, test_data))
    s = replay_run(results["runs"])
    recorded = s["prefix_losses"][:steps]
    steps = len(recorded)          # (a run shorter than PREFIX_STEPS keeps every step's loss)
    cfg = DeepConfig(**s["config"])
    threads, before = int(s.get("prefix_threads") or 1), torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        run, _ = train_deep(cfg, train_data, test_data, show_progress=False, max_steps=steps)
    finally:
        torch.set_num_threads(before)
    what = f"{cfg.model}, {cfg.mode}, seed {cfg.seed}"
    diffs = [check_replay(f"the training loss of step {i + 1} ({what})", a, b)
             for i, (a, b) in enumerate(zip(recorded, run.prefix_losses))]
    return {"model": what, "steps": steps, "threads": threads, "recorded": recorded,
            "replayed": run.prefix_losses[:steps], "max_relative_difference": max(diffs)}


def side_by_side(live: list[dict], recorded: list[dict]) -> list[dict]:
    """One row per claim of either table: its verdict in this build and in the record, with the scales."""
    by_claim = {r["claim"]: r for r in recorded}
    rows = [{"claim": c["claim"], "live": c["status"], "record": by_claim.get(c["claim"], {}).get("status", "-"),
             "record_measured": by_claim.get(c["claim"], {}).get("measured", "-")} for c in live]
    seen = {c["claim"] for c in live}
    rows += [{"claim": r["claim"], "live": "-", "record": r["status"], "record_measured": r["measured"]}
             for r in recorded if r["claim"] not in seen]
    return rows


SIDE_BY_SIDE_COLUMNS = [("claim", "claim"), ("live", "this build"), ("record", "the record"),
                        ("record_measured", "measured in the record")]
