"""scripts/compare_records.py on records with known differences: identical records agree; a changed
claim status, a flipped test decision, a drifted run value past --rtol, a missing row and rows that
the keys cannot tell apart are each named."""
import copy
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("compare_records", ROOT / "scripts" / "compare_records.py")
compare_records = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_records)


def _record() -> dict:
    runs = [{"activation": a, "K": 16, "lambda": 1.0, "seed": s, "objective": "infomax", "constraint": "none",
             "final_loss": -10.0 - s, "dead_units": 0} for a in ("relu", "tanh") for s in range(3)]
    tests = [{"family": "primary", "activation": a, "comparison": "infomax - random", "metric": "rank",
              "mean_difference": 0.5, "effect_size": 2.0, "p_adjusted": 0.01} for a in ("relu", "tanh")]
    claims = [{"claim": f"{a} beats random", "status": "reproduced"} for a in ("relu", "tanh")]
    return {"format": 1, "chapter": "infomax", "provenance": {"commit": "abc", "machine": "x", "wall_seconds": 1},
            "results": {"runs": runs, "tests": tests, "claims": claims}}


def test_identical_records_agree():
    lines, problems = compare_records.compare(_record(), _record(), rtol=0.0)
    assert problems == []
    assert any(l.startswith("runs.final_loss: 6 rows") for l in lines)


def test_each_difference_is_named():
    a, b = _record(), _record()
    b["results"]["claims"][1]["status"] = "not reproduced"
    b["results"]["tests"][0]["p_adjusted"] = 0.2
    b["results"]["runs"][2]["final_loss"] *= 1.05
    del b["results"]["runs"][5]
    _, problems = compare_records.compare(a, b, rtol=0.01)
    text = "\n".join(problems)
    assert "claim status 'reproduced' -> 'not reproduced': tanh beats random" in text
    assert "test decision True -> False" in text and "relu" in text
    assert "runs.final_loss: largest relative difference 0.0476" in text
    assert "runs: 1 row(s) only in A, 0 only in B" in text
    # A drift under --rtol, or with no --rtol, is reported but is not a problem.
    _, problems = compare_records.compare(_record(), b, rtol=0.1)
    assert not any("final_loss" in p for p in problems)


def test_bad_inputs_stop_with_a_message(tmp_path):
    a = _record()
    b = copy.deepcopy(a)
    b["chapter"] = "deep_networks"
    assert compare_records.compare(a, b)[1] == ["different chapters: 'infomax' and 'deep_networks'"]
    b = copy.deepcopy(a)
    b["results"]["runs"].append(dict(b["results"]["runs"][0]))
    with pytest.raises(SystemExit, match="rows are not told apart"):
        compare_records.compare(a, b)
    (tmp_path / "x.json").write_text(json.dumps({"chapter": "infomax"}))
    with pytest.raises(SystemExit, match="is not a record"):
        compare_records.load(tmp_path / "x.json")
    with pytest.raises(SystemExit, match="cannot read"):
        compare_records.load(tmp_path / "missing.json")


def test_command_line_exit_status(tmp_path, capsys):
    a, b = _record(), _record()
    b["results"]["claims"][0]["status"] = "not reproduced"
    for name, rec in (("a", a), ("b", b)):
        (tmp_path / f"{name}.json").write_text(json.dumps(rec))
    assert compare_records.main([str(tmp_path / "a.json"), str(tmp_path / "a.json")]) == 0
    assert "verdicts agree" in capsys.readouterr().out
    assert compare_records.main([str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 1
