"""Papermill smoke runs of every chapter, and bad parameters refused by name."""
import json
from pathlib import Path

import jupytext
import papermill as pm
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ["intro", "theory", "unit_experiments", "deep_networks", "infomax", "benchmarks"]
WRITES_RESULTS = ("unit_experiments", "deep_networks", "infomax")


def _execute(chapter, tmp_path, **parameters):
    nb = jupytext.read(ROOT / "book" / f"{chapter}.md")
    src = tmp_path / f"{chapter}.ipynb"
    jupytext.write(nb, src)
    out = tmp_path / f"{chapter}.out.ipynb"
    pm.execute_notebook(str(src), str(out), parameters=parameters, kernel_name="python3",
                        cwd=str(ROOT / "book"), progress_bar=False)
    return out


def test_every_chapter_has_exactly_one_parameters_cell():
    for chapter in CHAPTERS:
        nb = jupytext.read(ROOT / "book" / f"{chapter}.md")
        tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, chapter


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_smoke_run(chapter, tmp_path):
    params = yaml.safe_load((ROOT / "params" / chapter / "smoke.yaml").read_text())
    if chapter in WRITES_RESULTS:
        params["results_dir"] = str(tmp_path / "results")
    if chapter in ("deep_networks", "infomax"):
        params["checkpoint_dir"] = str(tmp_path / "checkpoints")
    if chapter == "infomax":
        params["resume"] = True       # the full setting's way: every bank checkpointed
    page = _execute(chapter, tmp_path, **params).read_text()
    # progress goes to the log, never to the page; no machine paths in the outputs
    outputs = json.dumps([c.get("outputs", []) for c in json.loads(page)["cells"]])
    assert "widget-view" not in page and "it/s]" not in outputs and "s/it]" not in outputs
    assert str(ROOT) not in outputs and "site-packages" not in outputs
    if chapter in WRITES_RESULTS:     # every results file says what made it
        from actfn.checkpoints import code_version

        made_by = json.loads((tmp_path / "results" / f"{chapter}.json").read_text())["made_by"]
        assert made_by["code"] == code_version() and made_by["chapter"] == chapter
        assert all(made_by["parameters"][k] == v for k, v in params.items() if not isinstance(v, float))
    if chapter == "unit_experiments":
        data = json.loads((tmp_path / "results" / "unit_experiments.json").read_text())
        assert {(f["classes"], f["mode"]) for f in data["fits"]} == {(2, "analytic"), (2, "sample"),
                                                                     (3, "analytic"), (3, "sample")}
        for f in data["fits"]:
            assert {"classes", "sigma", "mode", "beta", "x0", "r2", "final_loss", "seconds"} <= set(f)
    if chapter == "deep_networks":
        data = json.loads((tmp_path / "results" / "deep_networks.json").read_text())
        assert data["dataset"] == "fashion_mnist"
        runs = {(r["model"], r["activation"], r["mode"]) for r in data["runs"]}
        assert runs == {("vgg11", "pwl", "backprop"), ("vgg11", "pwl", "local_correlation"), ("vgg11", "relu", "backprop")}
        for r in data["runs"]:
            assert {"model", "dataset", "mode", "epochs", "test_acc", "layers"} <= set(r)
            if r["activation"] == "pwl":
                assert len(r["layers"]) == 8 and {"layer", "beta", "x0", "r2"} <= set(r["layers"][0])
    if chapter == "infomax":
        data = json.loads((tmp_path / "results" / "infomax.json").read_text())
        assert data["dataset"] == "mnist_subset"
        ckpts = sorted(p.name.split("_")[1] for p in (tmp_path / "checkpoints").glob("infomax_*.pt"))
        assert ckpts == ["K4", "depth"]
        assert {r["objective"] for r in data["runs"]} == {"infomax", "variance_only", "reconstruction", "random"}
        for r in data["runs"]:
            assert {"activation", "K", "lambda", "seed", "objective", "effective_rank", "weight_redundancy", "dead_units",
                    "output_correlation", "total_correlation", "final_loss"} <= set(r)
        assert data["tests"] and {"metric", "comparison", "statistic", "p_value", "p_adjusted", "effect_size",
                                  "method"} <= set(data["tests"][0])


@pytest.mark.parametrize("chapter,params,name", [
    ("unit_experiments", {"classes": [1, 20], "steps": 2}, "classes"),
    ("unit_experiments", {"sigmas": [0.0], "steps": 2}, "sigmas"),
    ("unit_experiments", {"modes": ["exact"], "steps": 2}, "modes"),
    ("unit_experiments", {"init": "gelu", "steps": 2}, "init"),
    ("unit_experiments", {"num_knots": 1, "steps": 2}, "num_knots"),
    ("unit_experiments", {"mean_ranges": [-1.0], "steps": 2}, "mean_ranges"),
    ("unit_experiments", {"seed_repeats": -1, "steps": 2}, "seed_repeats"),
    ("intro", {"classes": 1}, "classes"),
    ("theory", {"sigma": -1.0}, "sigma"),
    ("theory", {"mc_samples": 0}, "mc_samples"),
    ("intro", {"sigma": "abc"}, "sigma"),
    ("deep_networks", {"model": "vgg19", "dataset": "fashion_mnist"}, "model"),
    ("deep_networks", {"mode": "hebbian", "dataset": "fashion_mnist"}, "mode"),
    ("deep_networks", {"dataset": "imagenet"}, "dataset"),
    ("deep_networks", {"epochs": 0, "dataset": "fashion_mnist"}, "epochs"),
    ("infomax", {"activations": ["gelu"], "dataset": "mnist_subset"}, "activations"),
    ("infomax", {"Ks": [1], "dataset": "mnist_subset"}, "Ks"),
    ("infomax", {"lambdas": [-1.0], "dataset": "mnist_subset"}, "lambdas"),
    ("infomax", {"seeds": [0, 0], "dataset": "mnist_subset"}, "seeds"),
    ("infomax", {"reference_lambda": 3.0, "dataset": "mnist_subset"}, "reference_lambda"),
    ("infomax", {"dataset": "imagenet"}, "dataset"),
    ("infomax", {"matmul_precision": "float16", "dataset": "mnist_subset"}, "matmul_precision"),
    ("infomax", {"device": "tpu", "dataset": "mnist_subset"}, "device"),
    ("infomax", {"Ks": 4, "dataset": "mnist_subset"}, "Ks"),
    ("infomax", {"synthetic_K": 1, "dataset": "mnist_subset"}, "synthetic_K"),
    ("infomax", {"lr": -1, "dataset": "mnist_subset"}, "lr"),
    ("deep_networks", {"batch_size": 1, "dataset": "fashion_mnist"}, "batch_size"),
    ("benchmarks", {"live": ["warp"]}, "live"),
])
def test_bad_parameter_stops_with_its_name(chapter, params, name, tmp_path):
    if chapter in WRITES_RESULTS:
        params["results_dir"] = str(tmp_path / "results")
    with pytest.raises(pm.PapermillExecutionError) as err:
        _execute(chapter, tmp_path, **params)
    assert f"parameter '{name}' must be" in str(err.value)
    assert not (tmp_path / "results" / "unit_experiments.json").exists()


def test_missing_cifar10_offline_stops_with_instructions(tmp_path):
    params = {"dataset": "cifar10", "data_root": str(tmp_path / "empty"), "download": False,
              "results_dir": str(tmp_path / "results"), "epochs": 1}
    with pytest.raises(pm.PapermillExecutionError) as err:
        _execute("deep_networks", tmp_path, **params)
    assert "cifar-10-batches-py" in str(err.value) and "fashion_mnist" in str(err.value)


def test_missing_mnist_offline_stops_with_instructions(tmp_path):
    params = {"dataset": "mnist", "data_root": str(tmp_path / "empty"), "download": False,
              "results_dir": str(tmp_path / "results")}
    with pytest.raises(pm.PapermillExecutionError) as err:
        _execute("infomax", tmp_path, **params)
    assert "mnist_subset" in str(err.value) and "download" in str(err.value)
