"""Every parameter of every chapter is refused at once, by name, when bad (issue 31).

The table BAD holds one bad value for every parameter of every chapter; a test checks that it covers
:func:`actfn.params.specs` and that the specs cover every chapter's parameter cell, so a parameter
added to a chapter without a rule fails here.
"""
import re
from pathlib import Path

import pytest
import yaml

from actfn.params import specs, validate

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ("intro", "theory", "unit_experiments", "deep_networks", "infomax", "benchmarks")


def parameter_cell(chapter: str) -> str:
    text = (ROOT / "book" / f"{chapter}.md").read_text()
    m = re.search(r"```\{code-cell\} ipython3\n:tags: \[parameters\]\n(.*?)```", text, re.S)
    assert m, f"{chapter}: no parameters cell"
    return m.group(1)


def defaults(chapter: str) -> dict:
    scope: dict = {}
    exec(parameter_cell(chapter), scope)
    return {k: v for k, v in scope.items() if not k.startswith("__") and k != "os"}


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_specs_name_exactly_each_chapters_parameters_and_accept_its_defaults(chapter):
    found = defaults(chapter)
    assert set(found) == set(specs()[chapter]), chapter
    validate(chapter, found)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_each_chapter_validates_first(chapter):
    """The cell after the parameters cell calls validate before anything else runs."""
    text = (ROOT / "book" / f"{chapter}.md").read_text()
    after = text.split(":tags: [parameters]", 1)[1].split("```{code-cell} ipython3", 1)[1].split("```", 1)[0]
    code = [line for line in after.splitlines() if line.strip() and not line.startswith((":", "#"))]
    call = f'validate("{chapter}", globals())'
    assert any(line.startswith(call) for line in code), chapter
    before = code[:next(i for i, line in enumerate(code) if line.startswith(call))]
    assert all(line.startswith(("import ", "from ")) for line in before), before


@pytest.mark.parametrize("path", sorted((ROOT / "params").glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_parameter_files_are_valid(path):
    chapter = path.parent.name
    validate(chapter, {**defaults(chapter), **(yaml.safe_load(path.read_text()) or {})})


BAD = {
    "intro": {"classes": 1, "sigma": "abc", "steps": 0, "seed": -1},
    "theory": {"classes": 2, "sigma": 0.0, "mean_range": float("nan"), "mc_samples": 0, "seed": 1.5},
    "unit_experiments": {
        "classes": 4, "sigmas": [1.0, -1.0], "modes": ["analytic", "exact"], "steps": 0, "lr": 1e6, "samples": 1,
        "num_knots": 1, "mean_range": 0, "init": "gelu", "smoothness": -0.1, "normalize": "yes", "seed": "0",
        "mean_ranges": 2.0, "seed_repeats": -1, "map_sigmas": [0.0], "results_dir": "/proc/no-such/results", "wandb_mode": "sometimes",
        "wandb_project": ""},
    "deep_networks": {
        "dataset": "mnist", "data_root": None, "download": 1, "model": ["vgg11", "vgg19"], "mode": "local",
        "baselines": ["gelu"], "epochs": 0, "batch_size": 1, "lr": -1, "act_lr": float("inf"), "per_channel": "no",
        "width": 0, "train_size": 0, "val_size": 0, "test_size": -5, "seed": [0, 0], "device": "gpu", "resume": "True",
        "checkpoint_dir": 3, "results_dir": "/proc/no-such/results", "wandb_mode": "on", "wandb_project": None,
        "record": "deep/record"},
    "infomax": {
        "dataset": "cifar10", "data_root": 0, "download": "no", "activations": ["relu", "gelu"], "Ks": 4,
        "lambdas": [1.0, 0.0], "reference_lambda": -1.0, "constraints": ["none", "unit"], "seeds": 0, "epochs": 0,
        "batch_size": 1, "lr": -1, "matmul_precision": "float16", "device": "tpu", "train_size": 0, "eval_size": 1,
        "synthetic_K": 1, "synthetic_epochs": 0, "depth_K2": 1, "resume": None, "checkpoint_dir": None,
        "results_dir": "/proc/no-such/results", "record": "infomax/paper"},
    "benchmarks": {"live": "activation", "bench_file": None},
}


def test_the_table_has_a_bad_value_for_every_parameter():
    assert {c: set(p) for c, p in BAD.items()} == {c: set(s) for c, s in specs().items()}


CASES = [(chapter, name, value) for chapter, table in BAD.items() for name, value in table.items()]


@pytest.mark.parametrize("chapter,name,value", CASES, ids=[f"{c}-{n}" for c, n, _ in CASES])
def test_one_bad_value_is_refused_by_name(chapter, name, value):
    with pytest.raises(ValueError, match=f"parameter '{name}' must be "):
        validate(chapter, {**defaults(chapter), name: value})


def test_relations_between_parameters_are_checked():
    base = defaults("infomax")
    with pytest.raises(ValueError, match="parameter 'reference_lambda' must be one of lambdas"):
        validate("infomax", {**base, "reference_lambda": 3.0})
    with pytest.raises(ValueError, match=r"parameter 'batch_size' must be at most train_size \(64\)"):
        validate("infomax", {**base, "train_size": 64, "batch_size": 128})
    with pytest.raises(ValueError, match=r"parameter 'constraints' must include 'none'"):
        validate("infomax", {**base, "constraints": ["unit_rows"]})
    with pytest.raises(ValueError, match=r"parameter 'samples' must be at least 2 \* max\(classes\) = 40"):
        validate("unit_experiments", {**defaults("unit_experiments"), "samples": 30})


def test_every_bad_parameter_is_named_at_once():
    err = pytest.raises(ValueError, validate, "infomax", {**defaults("infomax"), "lr": -1, "depth_K2": 1})
    assert "parameter 'lr'" in str(err.value) and "parameter 'depth_K2'" in str(err.value)
