"""Papermill smoke runs of every chapter, and bad parameters refused by name."""
import json
from pathlib import Path

import jupytext
import papermill as pm
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ["intro", "theory", "unit_experiments"]


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
    if chapter == "unit_experiments":
        params["results_dir"] = str(tmp_path / "results")
    _execute(chapter, tmp_path, **params)
    if chapter == "unit_experiments":
        data = json.loads((tmp_path / "results" / "unit_experiments.json").read_text())
        assert {(f["classes"], f["mode"]) for f in data["fits"]} == {(2, "analytic"), (2, "sample"),
                                                                     (3, "analytic"), (3, "sample")}
        for f in data["fits"]:
            assert {"classes", "sigma", "mode", "beta", "x0", "r2", "final_loss", "seconds"} <= set(f)


@pytest.mark.parametrize("chapter,params,name", [
    ("unit_experiments", {"classes": [1, 20], "steps": 2}, "classes"),
    ("unit_experiments", {"sigmas": [0.0], "steps": 2}, "sigma"),
    ("unit_experiments", {"modes": ["exact"], "steps": 2}, "mode"),
    ("unit_experiments", {"init": "gelu", "steps": 2}, "init"),
    ("unit_experiments", {"num_knots": 1, "steps": 2}, "num_knots"),
    ("unit_experiments", {"mean_ranges": [-1.0], "steps": 2}, "mean_range"),
    ("unit_experiments", {"seed_repeats": -1, "steps": 2}, "seed_repeats"),
    ("intro", {"classes": 1}, "classes"),
    ("theory", {"sigma": -1.0}, "sigma"),
])
def test_bad_parameter_stops_with_its_name(chapter, params, name, tmp_path):
    if chapter == "unit_experiments":
        params["results_dir"] = str(tmp_path / "results")
    with pytest.raises(pm.PapermillExecutionError) as err:
        _execute(chapter, tmp_path, **params)
    assert f"'{name}'" in str(err.value)
    assert not (tmp_path / "results" / "unit_experiments.json").exists()
