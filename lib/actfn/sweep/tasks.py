"""What one run of each chapter is, how a parameter file expands into runs, and how a run executes.

A task is the chapter's own library code behind a small interface: ``expand`` a parameter file into
runs (one configuration and one seed each), ``load`` the data once per worker, name the data by a
checksum, and ``execute`` one run into a JSON-able result.

* **deep_networks**: one network, training mode and activation with one seed; the result is the
  run summary the chapter shows (accuracy, per-layer Swish fits, Gaussianity, knots), and the
  sweep's runs together make the chapter's results file, and so its record (``aggregate``).
* **infomax**: one bank with one seed at one K: every activation x objective x lambda x constraint
  of the study, trained together as the chapter trains them (a bank is the fast unit of this study;
  one model alone would give up the speed of training them together).  The result is the bank's
  records, one per model, as in the chapter's results file; the largest K's banks also stack a
  second layer and probe their features, as the chapter does, so that the sweep's runs together make
  the chapter's results file and its record.
"""
from __future__ import annotations

import functools
from dataclasses import asdict
from pathlib import Path

from ..checks import require
from .store import Run


def _list(v) -> list:
    return list(v) if isinstance(v, (list, tuple)) else [v]


class DeepNetworks:
    chapter = "deep_networks"
    COMMON = ("epochs", "batch_size", "lr", "act_lr", "per_channel", "width", "train_size", "val_size", "test_size")
    PARAMETERS = COMMON + ("seed", "model", "mode", "baselines")       # (what expand reads)

    def expand(self, params: dict) -> list[Run]:
        dataset = params.get("dataset") or "cifar10"
        common = {k: params[k] for k in self.COMMON if k in params}
        runs = []
        for seed in _list(params.get("seed", 0)):
            for model in _list(params.get("model", "vgg11")):
                for mode in _list(params.get("mode", "backprop")):
                    runs.append(Run(self.chapter, {"model": model, "mode": mode, "activation": "pwl",
                                                   "dataset": dataset, **common}, int(seed)))
                for act in _list(params.get("baselines") or []):
                    runs.append(Run(self.chapter, {"model": model, "mode": "backprop", "activation": act,
                                                   "dataset": dataset, **common}, int(seed)))
        from ..deep.trainer import DeepConfig
        for run in runs:               # (a bad value stops here, naming it, before any run starts)
            DeepConfig(**run.config, seed=run.seed)
        return runs

    @functools.lru_cache(maxsize=2)
    def load(self, dataset: str, data_root: str, download: bool):
        from .. import data as D
        if dataset == "fashion_mnist":
            D.prepare_fashion_mnist(Path(data_root))
        return (D.load_dataset(dataset, data_root, train=True, download=download),
                D.load_dataset(dataset, data_root, train=False, download=download))

    def dataset_of(self, params: dict) -> str:
        return params.get("dataset") or "cifar10"

    def checksum(self, loaded) -> str:
        from ..checkpoints import fingerprint
        train, test = loaded
        return fingerprint(train.images, train.labels, test.images, test.labels)

    def execute(self, run: Run, loaded, checkpoint_dir: Path, device, log=None) -> dict:
        from ..deep.trainer import DeepConfig, run_experiments
        from ..process import long_runs
        from ..results import plain
        train, test = loaded
        cfg = DeepConfig(**run.config, seed=run.seed)
        with long_runs(denormals=False):
            out = run_experiments([cfg], train, test, checkpoint_dir, resume=True, show_progress=False,
                                  device=device, log_factory=(lambda _: log) if log else None)[0]
        return plain({**out["summary"], "config": asdict(cfg)})


    def aggregate(self, results: list[dict], params: dict, loaded) -> dict:
        """The chapter's results file from the sweep's run files (what its record holds)."""
        import torch

        from ..checkpoints import code_version
        from ..deep.report import image_checksums, results_of
        from ..deep.trainer import DeepConfig
        train, test = loaded
        defaults = DeepConfig()
        parameters = {"dataset": self.dataset_of(params), **{k: params.get(k, getattr(defaults, k)) for k in self.COMMON},
                      "model": _list(params.get("model", "vgg11")), "mode": _list(params.get("mode", "backprop")),
                      "baselines": _list(params.get("baselines") or []), "seed": [int(s) for s in _list(params.get("seed", 0))]}
        n_train = parameters["train_size"] if parameters["train_size"] is not None else len(train) - parameters["val_size"]
        made_by = {"code": code_version(), "torch": torch.__version__, "chapter": self.chapter, "parameters": parameters}
        return results_of([r["result"] for r in results], parameters["dataset"], image_checksums(train, test), n_train,
                          parameters, made_by)


class InfoMax:
    chapter = "infomax"
    STUDY = ("activations", "lambdas", "constraints", "epochs", "batch_size", "lr", "train_size", "eval_size",
             "matmul_precision")
    DEFAULTS = {"constraints": ["none"], "batch_size": 128, "lr": 1e-3, "train_size": None, "eval_size": None,
                "matmul_precision": "float32"}
    PARAMETERS = STUDY + ("Ks", "seeds", "depth_K2", "reference_lambda")     # (what expand reads)

    def expand(self, params: dict) -> list[Run]:
        from ..infomax.setting import check_matmul_precision
        from ..infomax.study import check_study_parameters
        study = {**self.DEFAULTS, **{k: params[k] for k in self.STUDY if k in params}}
        require("activations" in study and "lambdas" in study and "epochs" in study, "parameters", sorted(params),
                "an InfoMax sweep needs activations, lambdas and epochs")
        Ks, seeds = _list(params.get("Ks", [16])), [int(s) for s in _list(params.get("seeds", [0]))]
        check_study_parameters(study["activations"], Ks, study["lambdas"], seeds, study["epochs"],
                               study["constraints"])
        check_matmul_precision(study["matmul_precision"])
        dataset = params.get("dataset") or "mnist"
        # the largest K's banks also stack a second layer and probe their features (the chapter's follow-ups)
        follow = {"depth_K2": int(params.get("depth_K2", 32)), "reference_lambda": float(params.get("reference_lambda", 1.0))}
        return [Run(self.chapter, {"K": int(k), "dataset": dataset, **study, **(follow if k == max(Ks) else {})}, seed)
                for seed in seeds for k in Ks]

    def dataset_of(self, params: dict) -> str:
        return params.get("dataset") or "mnist"

    @functools.lru_cache(maxsize=2)
    def load(self, dataset: str, data_root: str, download: bool):
        from .. import data as D
        return D.load_flat(dataset, data_root, download=download)

    def checksum(self, loaded) -> str:
        from ..checkpoints import fingerprint
        return fingerprint(loaded.x_train, loaded.y_train, loaded.x_test, loaded.y_test)

    def execute(self, run: Run, loaded, checkpoint_dir: Path, device, log=None) -> dict:
        from .. import data as D
        from ..infomax.study import run_study
        c = run.config
        x_train, _, x_eval, _ = D.flat_split(loaded, c["train_size"], c["eval_size"])
        records, banks = run_study(x_train, x_eval, c["activations"], [c["K"]], c["lambdas"], [run.seed], c["epochs"],
                                   constraints=tuple(c["constraints"]), batch_size=c["batch_size"], lr=c["lr"],
                                   matmul_precision=c["matmul_precision"], show_progress=False,
                                   checkpoint_dir=checkpoint_dir, resume=True, device=device)
        out = {"records": records}
        if "depth_K2" in c:
            from ..infomax.followups import depth_followup, probe_followup
            from ..process import long_runs
            bank = banks[c["K"]]
            with long_runs():
                out["depth"] = depth_followup(bank, x_train, x_eval, c["activations"], c["depth_K2"], c["epochs"],
                                              c["reference_lambda"], c["batch_size"], c["lr"],
                                              checkpoint_dir=checkpoint_dir, resume=True, device=device)
            x_tr, y_tr, x_ev, y_ev = D.flat_split(loaded, c["train_size"], c["eval_size"])
            out["probe"] = probe_followup(bank, x_tr, y_tr, x_ev, y_ev, c["activations"], c["reference_lambda"])
        if log:                  # (the bank trains as one: its models' final numbers, one entry each)
            for r in records:
                log({f"{r['activation']}/{r['objective']}/{r['lambda']}/{r['constraint']}/{k}": r[k]
                     for k in ("final_loss", "effective_rank_fraction", "mean_sq_correlation") if r.get(k) is not None})
        return out

    def aggregate(self, results: list[dict], params: dict, loaded) -> dict:
        """The chapter's results file from the sweep's banks (what its record holds), slimmed as a
        record is (:func:`actfn.infomax.record.slim`)."""
        import torch

        from .. import data as D
        from ..checkpoints import code_version
        from ..infomax.followups import linear_probe
        from ..infomax.record import slim
        from ..infomax.summary import results_of
        first = min(results, key=lambda r: (-r["config"]["K"], r["seed"]))["config"]
        study = {k: first[k] for k in self.STUDY}
        parameters = {**study, "Ks": sorted({r["config"]["K"] for r in results}),
                      "seeds": sorted({r["seed"] for r in results}), "reference_lambda": first["reference_lambda"]}
        ordered = sorted(results, key=lambda r: (r["config"]["K"], r["seed"]))      # (as the chapter orders them)
        part = lambda key: [row for r in ordered for row in r["result"].get(key, [])]
        x_tr, y_tr, x_ev, y_ev = D.flat_split(loaded, study["train_size"], study["eval_size"])
        made_by = {"code": code_version(), "torch": torch.__version__, "chapter": self.chapter, "parameters": parameters}
        return slim(results_of(part("records"), part("depth"), part("probe"), linear_probe(x_tr, y_tr, x_ev, y_ev),
                               loaded, len(x_tr), len(x_ev), parameters, made_by))


TASKS = {t.chapter: t for t in (DeepNetworks(), InfoMax())}


def task_of(chapter: str):
    require(chapter in TASKS, "chapter", chapter, f"has no sweep task; one of {sorted(TASKS)}")
    return TASKS[chapter]
