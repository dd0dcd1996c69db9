"""Every chapter's parameters, their accepted values, and the check each chapter runs before any work.

A chapter's first cell after its ``parameters`` cell calls :func:`validate`: every bad value is refused
at once, by name and with what is accepted -- before data are loaded, kernels built or models trained,
so that a mistake in a follow-up's parameter does not surface hours later under another name.
:func:`specs` lists every parameter of every chapter (a test checks that it matches the parameter
cells, and that each rule refuses a bad value).

Learning rates are Adam's step sizes: finite, above 0 and at most 1 (a larger step moves a weight by
more than its scale in one update; 1e6 trained to weight norms of 1e8).
"""
from __future__ import annotations

import functools
import math
import tempfile
import time
from pathlib import Path

import numpy as np


class Rule:
    """A check of one value, with the words for what it accepts."""

    def __init__(self, accepts: str, ok):
        self.accepts, self.ok = accepts, ok

    def __call__(self, value) -> bool:
        try:
            return bool(self.ok(value))
        except (TypeError, ValueError):
            return False


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_num(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) \
        and math.isfinite(float(v))


def integer(lo: int | None = None) -> Rule:
    return Rule("an integer" + (f" >= {lo}" if lo is not None else ""), lambda v: _is_int(v) and (lo is None or v >= lo))


def number(gt: float | None = None, ge: float | None = None, le: float | None = None) -> Rule:
    words = ", ".join(w for w in (f"> {gt}" if gt is not None else "", f">= {ge}" if ge is not None else "",
                                  f"<= {le}" if le is not None else "") if w)
    return Rule("a finite number" + (f" {words}" if words else ""),
                lambda v: _is_num(v) and (gt is None or v > gt) and (ge is None or v >= ge) and (le is None or v <= le))


LEARNING_RATE = Rule("a finite number in (0, 1]", lambda v: _is_num(v) and 0 < v <= 1)
BOOLEAN = Rule("True or False", lambda v: isinstance(v, (bool, np.bool_)))
TEXT = Rule("a string", lambda v: isinstance(v, str))
RECORD = Rule("'' , the name of a record in records/<chapter>/ (no folder), or the path of a .json file",
              lambda v: isinstance(v, str) and ("/" not in v or v.endswith(".json")))
NAME = Rule("a non-empty string", lambda v: isinstance(v, str) and v.strip() != "")


def choice(options) -> Rule:
    options = tuple(options)
    return Rule(f"one of {list(options)}", lambda v: isinstance(v, str) and v in options)


def optional(rule: Rule) -> Rule:
    return Rule(f"None or {rule.accepts}", lambda v: v is None or rule(v))


def list_of(rule: Rule, empty: bool = False, unique: bool = True) -> Rule:
    """A list (not a scalar: ``Ks 4`` is refused, not crashed on) whose every item passes ``rule``."""
    words = f"a {'' if empty else 'non-empty '}list{' without repeats' if unique else ''} of {rule.accepts}s"
    return Rule(words, lambda v: isinstance(v, (list, tuple)) and (empty or len(v) > 0) and all(rule(x) for x in v)
                and (not unique or len(set(map(repr, v))) == len(v)))


def one_or_list(rule: Rule, empty: bool = False) -> Rule:
    listed = list_of(rule, empty)
    return Rule(f"{rule.accepts}, or {listed.accepts}", lambda v: rule(v) or listed(v))


def device() -> Rule:
    return Rule("'cpu', 'cuda', 'cuda:N' or 'auto'",
                lambda v: isinstance(v, str) and (v in ("cpu", "cuda", "auto") or
                                                  (v.startswith("cuda:") and v[5:].isdigit())))


def _writable(v) -> bool:
    if not isinstance(v, str):
        return False
    if v == "":
        return True
    folder = Path(v)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
        pass
    return True


def _writable_or_raise(v) -> bool:
    try:
        return _writable(v)
    except OSError:
        return False


WRITABLE_FOLDER = Rule('"" (the default) or a folder that can be created and written to', _writable_or_raise)


def _specs() -> dict[str, dict[str, Rule]]:
    from .data import DATASETS, FLAT_DATASETS
    from .deep.trainer import DEEP_MODES
    from .activations import REGISTRY
    from .infomax.setting import CONSTRAINTS, MATMUL_PRECISIONS
    from .deep.models import MODELS
    from .pwl import INITS
    from .tracking import WANDB_MODES
    from .unit.trainer import MODES

    wandb = {"wandb_mode": choice(WANDB_MODES), "wandb_project": NAME}
    return {
        "intro": {"classes": integer(2), "sigma": number(gt=0), "steps": integer(1), "seed": integer(0)},
        "theory": {"classes": integer(3), "sigma": number(gt=0), "mean_range": number(gt=0),
                   "mc_samples": integer(1000), "seed": integer(0)},
        "unit_experiments": {
            "classes": list_of(integer(2)), "sigmas": list_of(number(gt=0)), "modes": list_of(choice(MODES)),
            "steps": integer(1), "lr": LEARNING_RATE, "samples": integer(2), "num_knots": integer(2),
            "mean_range": number(gt=0), "init": choice(INITS), "smoothness": number(ge=0), "normalize": BOOLEAN,
            "seed": integer(0), "mean_ranges": list_of(number(gt=0), empty=True), "seed_repeats": integer(0),
            "map_sigmas": list_of(number(gt=0), empty=True),
            "results_dir": WRITABLE_FOLDER, **wandb},
        "deep_networks": {
            "dataset": choice(DATASETS), "data_root": TEXT, "download": BOOLEAN, "model": one_or_list(choice(MODELS)),
            "mode": one_or_list(choice(DEEP_MODES)), "baselines": optional(one_or_list(choice(tuple(n for n, a in REGISTRY.items() if not a.learned)), empty=True)),
            "epochs": integer(1), "batch_size": integer(2), "lr": LEARNING_RATE, "act_lr": LEARNING_RATE,
            "per_channel": BOOLEAN, "width": number(gt=0, le=4), "train_size": optional(integer(2)),
            "val_size": integer(1), "test_size": optional(integer(1)), "seed": one_or_list(integer(0)),
            "device": device(), "resume": BOOLEAN, "checkpoint_dir": TEXT, "results_dir": WRITABLE_FOLDER,
            "record": RECORD, **wandb},
        "infomax": {
            "dataset": choice(FLAT_DATASETS), "data_root": TEXT, "download": BOOLEAN,
            "activations": list_of(choice(tuple(REGISTRY))), "Ks": list_of(integer(2)),
            "lambdas": list_of(number(gt=0)), "reference_lambda": number(gt=0),
            "constraints": list_of(choice(CONSTRAINTS)), "seeds": list_of(integer(0)), "epochs": integer(1),
            "batch_size": integer(2), "lr": LEARNING_RATE, "matmul_precision": choice(MATMUL_PRECISIONS),
            "device": device(), "train_size": optional(integer(2)), "eval_size": optional(integer(2)),
            "synthetic_K": integer(2), "synthetic_epochs": integer(1), "depth_K2": integer(2), "resume": BOOLEAN,
            "checkpoint_dir": TEXT, "results_dir": WRITABLE_FOLDER, "record": RECORD},
        "benchmarks": {"live": list_of(choice(_bench_sections()), empty=True), "bench_file": TEXT},
    }


def _bench_sections() -> tuple[str, ...]:
    # (benchmarks/bench.py's SECTIONS; named here so that validating imports no benchmark code)
    return ("activation", "gpu", "compile", "deep", "trainers", "infomax", "sweep", "build")


def _relations(chapter: str, v: dict) -> list[str]:
    """Checks between parameters (each value already valid on its own)."""
    bad = []
    if chapter == "infomax":
        if v["reference_lambda"] not in v["lambdas"]:
            bad.append(f"parameter 'reference_lambda' must be one of lambdas {list(v['lambdas'])}, got "
                       f"{v['reference_lambda']!r}")
        if "none" not in v["constraints"]:
            bad.append(f"parameter 'constraints' must include 'none' (the comparisons are unconstrained), got "
                       f"{list(v['constraints'])!r}")
        if v["train_size"] is not None and v["batch_size"] > v["train_size"]:
            bad.append(f"parameter 'batch_size' must be at most train_size ({v['train_size']}), got {v['batch_size']!r}")
    if chapter == "unit_experiments" and v["samples"] < 2 * max(v["classes"]):
        bad.append(f"parameter 'samples' must be at least 2 * max(classes) = {2 * max(v['classes'])}, got {v['samples']!r}")
    return bad


@functools.lru_cache(maxsize=1)
def specs() -> dict[str, dict[str, Rule]]:
    """Every chapter's parameters and their rules (built on first use: the rules name the packages'
    choices, whose modules import torch)."""
    return _specs()


def validate(chapter: str, namespace: dict) -> dict:
    """Check every parameter of ``chapter`` in ``namespace`` (a notebook passes ``globals()``); raise one
    ValueError naming each bad one and what it accepts.  Returns the parameters."""
    spec = specs()[chapter]
    values = {name: namespace[name] for name in spec if name in namespace}
    bad = [f"parameter {name!r} is missing" for name in spec if name not in namespace]
    bad += [f"parameter {name!r} must be {rule.accepts}, got {values[name]!r}"
            for name, rule in spec.items() if name in values and not rule(values[name])]
    if not bad:
        bad = _relations(chapter, values)
    if bad:
        raise ValueError(f"{chapter}: " + "; ".join(bad))
    _validated[chapter] = dict(values)
    _started[chapter] = time.perf_counter()
    return values


_validated: dict = {}
_started: dict = {}     # when each chapter's parameters were checked: its page's start (actfn.provenance)


def made_by(chapter: str) -> dict:
    """What made a chapter's results file: the code's version, torch's, and the parameters as validated
    by this process (a results file is keyed by these, as checkpoints are)."""
    import torch

    from .checkpoints import code_version
    from .results import plain

    if chapter not in _validated:
        raise RuntimeError(f"made_by({chapter!r}) before validate({chapter!r}, ...)")
    return {"code": code_version(), "torch": torch.__version__, "chapter": chapter,
            "parameters": plain(_validated[chapter])}
