"""Results files, W&B, the build's cache invalidation, and the claims logic."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from actfn.unit.claims import DIFFERS, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, unit_claims
from actfn.results import write_json_atomic
from actfn.tracking import wandb_logger

ROOT = Path(__file__).resolve().parents[1]


def test_atomic_write_replaces_whole_file_and_leaves_nothing_on_failure(tmp_path):
    path = tmp_path / "r.json"
    write_json_atomic(path, {"a": np.arange(3), "b": float("nan")})
    assert json.loads(path.read_text()) == {"a": [0, 1, 2], "b": None}

    class Boom:
        pass

    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": Boom()})
    assert json.loads(path.read_text())["a"] == [0, 1, 2]  # old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary left behind


def test_wandb_disabled_by_default_and_refuses_unknown_mode():
    log, finish = wandb_logger()
    assert log is None
    finish()
    with pytest.raises(ValueError, match="wandb_mode"):
        wandb_logger("sometimes")


def test_wandb_offline_writes_locally(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    log, finish = wandb_logger("offline", "activation-test", {"x": 1}, directory=str(tmp_path))
    log({"loss": 1.0})
    finish()
    assert list(tmp_path.rglob("*.wandb")), "offline run file missing"


def _load_ext():
    spec = importlib.util.spec_from_file_location("lib_fingerprint", ROOT / "book" / "_ext" / "lib_fingerprint.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_lib_fingerprint_changes_with_lib(tmp_path):
    ext = _load_ext()
    (tmp_path / "lib" / "pkg").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    mod = tmp_path / "lib" / "pkg" / "m.py"
    mod.write_text("x = 1\n")
    before = ext.lib_fingerprint(tmp_path)
    assert ext.lib_fingerprint(tmp_path) == before
    mod.write_text("x = 2\n")
    changed = ext.lib_fingerprint(tmp_path)
    assert changed != before
    # a new make-bench table is shown by the benchmarks appendix: it counts too
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "benchmarks.json").write_text("{}")
    assert ext.lib_fingerprint(tmp_path) != changed


def _fit(classes, sigma, mode="analytic", **kw):
    base = dict(classes=classes, sigma=sigma, mode=mode, beta=2.0, beta_se=0.1, x0=0.0, x0_se=0.05, r2=0.999,
                sigmoid_r2=0.98, relu_r2=0.98, final_loss=-0.2, change_from_init=0.5, mass_outside_knots=0.0)
    base.update(kw)
    return base


def test_claims_verdicts_follow_the_numbers():
    fits = [_fit(2, 1.0, relu_r2=1.0, change_from_init=0.0), _fit(20, 1.0, beta=2.5),
            _fit(20, 0.6, beta=1.0), _fit(20, 10.0, beta=1.0, r2=0.7)]
    rows = {r["claim"]: r for r in unit_claims(fits)}
    assert rows["K=2: ReLU-like shape emerges"]["status"] == DIFFERS
    assert rows["K=20, σ=1: β ≈ 2.5"]["status"] == REPRODUCED
    assert rows["K=20, σ=1: x₀ ≈ 0"]["status"] == REPRODUCED
    assert rows["σ = 0.6: sharper (larger β) than σ = 1"]["status"] == NOT_REPRODUCED
    assert rows["σ = 10.0: broader (smaller β) than σ = 1"]["status"] == NOT_REPRODUCED
    fits[1]["beta"] = 1.7
    rows = {r["claim"]: r for r in unit_claims(fits)}
    assert rows["K=20, σ=1: β ≈ 2.5"]["status"] == DIFFERS
    # an interval wider than the tolerance decides nothing; an unidentified β is not read at all
    fits[1].update(beta=2.5, beta_se=7.5)
    assert {r["claim"]: r for r in unit_claims(fits)}["K=20, σ=1: β ≈ 2.5"]["status"] == NOT_TESTABLE
    fits[3]["beta_identified"] = False          # the σ = 10 fit: a bend beyond the knots
    assert {r["claim"]: r for r in unit_claims(fits)}["σ = 10.0: broader (smaller β) than σ = 1"]["status"] == NOT_TESTABLE
    fits[1].update(beta=994.0, beta_se=0.0, beta_identified=False)
    row = {r["claim"]: r for r in unit_claims(fits)}["K=20, σ=1: β ≈ 2.5"]
    assert row["status"] == NOT_TESTABLE and "unidentified" in row["measured"]


def test_markdown_table_escapes_pipes_in_headers_and_cells():
    from actfn.report import markdown_table

    text = markdown_table([{"a": "x|y", "b": 1.23456}], [("a", "|a|"), ("b", "b", ".2f")])
    lines = text.splitlines()
    assert lines[0] == "| \\|a\\| | b |"
    assert lines[2] == "| x\\|y | 1.23 |"
    assert all(line.count("|") - line.count("\\|") == 3 for line in lines)


def test_profile_claims_follow_known_answers():
    fits = [_fit(20, 1.0, correlations=[-0.1, -0.05, 0.02, 0.13]), _fit(20, 10.0, linear_r2=0.9995)]
    best = {"beta": 1.8, "x0": 0.6, "objective": -0.1674, "pwl_objective": -0.1686}
    rows = {r["claim"]: r for r in unit_claims(fits, swish_optimum=best)}
    assert rows["K=20, σ=1: negative ρ_k for low classes, positive for high classes"]["status"] == REPRODUCED
    assert rows["σ = 10: broad, nearly linear"]["status"] == REPRODUCED
    assert rows["Swish is the optimal activation (§5.1)"]["status"] == DIFFERS        # 99.3 % of the best f
    fits = [_fit(20, 1.0, correlations=[-0.1, 0.05, -0.02, 0.07]), _fit(20, 10.0, linear_r2=0.95)]
    rows = {r["claim"]: r for r in unit_claims(fits, swish_optimum={**best, "objective": -0.1686})}
    assert rows["K=20, σ=1: negative ρ_k for low classes, positive for high classes"]["status"] == NOT_REPRODUCED
    assert rows["σ = 10: broad, nearly linear"]["status"] == NOT_REPRODUCED
    assert rows["Swish is the optimal activation (§5.1)"]["status"] == REPRODUCED


def test_the_best_swish_scores_below_the_best_piecewise_linear_f():
    import actfn
    from actfn.theory.optimum import best_swish

    means = actfn.class_means(8, 2.0)
    run = actfn.train_unit(classes=8, sigma=1.0, mean_range=2.0, mode="analytic", steps=300, seed=0)
    best = best_swish(means, 1.0, run.knots)
    # the learned f is (near) the best f on its knots; the best Swish is one of those f
    assert run.final_loss <= best["objective"] + 1e-4 and best["objective"] < 0


def test_sigma_10_linearity_separates_the_optimum_from_the_learned_f():
    fits = [_fit(20, 10.0, linear_r2=0.66, final_loss=-5e-4)]
    rows = {r["claim"]: r for r in unit_claims(fits, optimum_linear_r2=0.9999)}
    assert rows["σ = 10: broad, nearly linear"]["status"] == DIFFERS
    rows = {r["claim"]: r for r in unit_claims(fits, optimum_linear_r2=0.8)}
    assert rows["σ = 10: broad, nearly linear"]["status"] == NOT_REPRODUCED
