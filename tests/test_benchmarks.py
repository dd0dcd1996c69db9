"""The benchmark command's correctness (not its clock): rows, goals and the table it writes."""
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench  # noqa: E402
import infomax_benchmarks  # noqa: E402


def test_goals_are_judged_in_the_right_direction():
    assert bench.meets({"ratio": 1.2, "goal": 1.5, "goal_kind": "max"}) is True
    assert bench.meets({"ratio": 1.6, "goal": 1.5, "goal_kind": "max"}) is False
    assert bench.meets({"ratio": 12.0, "goal": 20.0, "goal_kind": "min"}) is False
    assert bench.meets({"value": 0.5, "goal_value": 1}) is True
    assert bench.meets({"ratio": 3.0}) is None
    assert bench.meets({"value": 4.0, "passed": False}) is False


def test_table_rows_name_each_section_once_and_print_goals():
    rows = [{"section": "A", "what": "x", "ratio": 1.234, "goal": 1.5, "goal_kind": "max", "meets_goal": True},
            {"section": "A", "what": "  y", "value": 1070.4, "meets_goal": None},
            {"section": "B", "what": "z", "text": "yes", "passed": True, "meets_goal": True}]
    out = bench.table_rows(rows)
    assert [r["section"] for r in out] == ["A", "", "B"]
    assert out[0]["result"] == "1.23×" and out[0]["goal"] == "≤ 1.5×: met"
    assert out[1]["what"] == "y" and out[1]["result"] == "1,070" and out[1]["goal"] == ""
    assert out[2]["result"] == "yes" and out[2]["goal"] == "works: met"


def test_infomax_rows_measure_the_same_models_three_ways():
    rows = infomax_benchmarks.infomax_rows(ks=(4,), seeds=2, n=256, epochs=1, precisions=("float32",))
    ratios = [r for r in rows if "ratio" in r]
    assert len(ratios) == 3 and all(r["ratio"] > 0 for r in ratios)
    assert "(rounds " in ratios[0]["what"]             # one round per seed, their spread shown
    assert "144 trained" in rows[0]["what"]          # 2 seeds x the chapter's settings, random baseline excluded
    assert ratios[0]["goal"] == 20.0 and ratios[0]["goal_kind"] == "min"


def test_activation_rows_take_each_sides_fastest_round_and_show_the_rounds_range(monkeypatch):
    import unit_benchmarks
    # rounds of (shared, per channel); SiLU has a slow spell in rounds 2 and 3, PWL in round 4
    silu = (1.0, 3.0, 3.0, 1.1, 1.0)
    pwl = (1.3, 1.2, 1.5, 2.8, 1.4)
    times = iter([{"silu": s, "relu": 0.5, "pwl": p} for s, p in zip(silu, pwl) for _ in range(2)]
                 + [{"silu": 1.0, "reference": 30.0}] * 2)
    monkeypatch.setattr(unit_benchmarks, "interleaved_median", lambda fns, x, **kw: next(times))
    rows = unit_benchmarks.activation_rows(shapes=((2, 3, 4, 4),), rounds=5)
    # PWL's fastest round over SiLU's fastest round, whichever rounds they were (not the median
    # round's ratio, 1.4, nor a slow round's), and the range of the rounds' own ratios
    assert rows[0]["ratio"] == 1.2 and rows[0]["goal"] == 1.5
    assert rows[0]["what"].endswith("shared (rounds 0.40 to 2.55)")
    assert rows[1]["ratio"] == 2.4                                # PWL / ReLU, the same rounds
    assert rows[2]["what"] == "  SiLU / ReLU, same" and rows[2]["ratio"] == 2.0    # SiLU's own state
    assert rows[5]["what"].startswith("PWL fwd+bwd / SiLU, 2x3x4x4 float32, per_channel") and rows[5]["ratio"] == 1.2


def test_activation_rows_give_no_verdict_when_silu_ran_slow_in_every_round(monkeypatch):
    import unit_benchmarks
    # SiLU at 2.5x ReLU in its fastest round: a slow spell throughout, which would flatter PWL
    times = iter([{"silu": 2.5, "relu": 1.0, "pwl": 2.0}] * 2 * 3 + [{"silu": 1.0, "reference": 30.0}] * 2)
    monkeypatch.setattr(unit_benchmarks, "interleaved_median", lambda fns, x, **kw: next(times))
    rows = unit_benchmarks.activation_rows(shapes=((2, 3, 4, 4),), rounds=3)
    assert rows[0]["ratio"] == 0.8 and "goal" not in rows[0] and bench.meets(rows[0]) is None
    assert "no verdict: SiLU took 2.5x ReLU's time in every round" in rows[0]["what"]
    assert rows[2]["ratio"] == 2.5


def test_depth_row_compares_the_bank_with_one_model_at_a_time():
    rows = infomax_benchmarks.depth_rows(seeds=2, k1=6, k2=3, n=256, epochs=1)
    assert len(rows) == 1 and rows[0]["ratio"] > 0 and "16 second layers" in rows[0]["what"]
    assert "(rounds " in rows[0]["what"]


def test_unknown_section_is_refused():
    with pytest.raises(KeyError):
        bench.run_sections(["warp"])


def test_a_failing_compile_is_reported_not_raised(monkeypatch):
    import unit_benchmarks

    def no_compiler(*args, **kwargs):
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(unit_benchmarks.torch, "compile", no_compiler)
    rows = unit_benchmarks.compile_rows(repeats=1)
    assert rows[0]["passed"] is False and "no C++ compiler" in rows[0]["what"]
    assert bench.meets(rows[0]) is False
    assert rows[-1]["passed"] is True            # torch.export does not need the compiler


def test_a_failing_book_build_is_a_row_saying_why(monkeypatch):
    import subprocess

    import unit_benchmarks

    monkeypatch.setattr(unit_benchmarks.shutil, "copytree", lambda src, dst, **kw: Path(dst).mkdir(parents=True))
    failed = subprocess.CompletedProcess([], 1, stdout=FAILED_BUILD_OUTPUT, stderr="")
    monkeypatch.setattr(unit_benchmarks.subprocess, "run", lambda *a, **kw: failed)
    (row,) = unit_benchmarks.build_rows()
    assert row["passed"] is False and "exit 1" in row["what"]
    # the chapter's own exception, not jupyter-book's closing "There was an error in building your book"
    assert "deep_networks.md: DatasetMissing: no CIFAR-10 under data/ (set ACTFN_DATASET)" in row["what"]
    assert bench.meets(row) is False


def test_a_failed_builds_hint_falls_back_to_its_last_error_line():
    import unit_benchmarks

    assert unit_benchmarks.build_failure_hint("running...\nOSError: disk full\ndone\n") == "OSError: disk full"


# what `jupyter-book build` prints when a cell raises (trimmed; myst-nb colours the cell's traceback)
FAILED_BUILD_OUTPUT = """\
\x1b[91m/tmp/x/repo/book/deep_networks.md: WARNING: Executing notebook failed: CellExecutionError [mystnb.exec]\x1b[39;49;00m
\x1b[91mException occurred:\x1b[39;49;00m
myst_nb.core.execute.base.ExecutionError: /tmp/x/repo/book/deep_networks.md
nbclient.exceptions.CellExecutionError: An error occurred while executing the following cell:
------------------
data = load(dataset)
------------------
\x1b[31mDatasetMissing\x1b[39m                            Traceback (most recent call last)
\x1b[32m----> \x1b[39m\x1b[32m1\x1b[39m data = load(dataset)
\x1b[31mDatasetMissing\x1b[39m: no CIFAR-10 under data/ (set ACTFN_DATASET)
RuntimeError:
There was an error in building your book. Look above for the cause.
"""


def test_a_damaged_or_partial_table_is_reported_not_raised(tmp_path):
    good = {"machine": bench.machine(), "pwl_path": "cpp-avx2", "date": "2026-12-05T00:00:00", "command": "make bench",
            "rows": [{"section": "activation", "what": "PWL / SiLU", "ratio": 1.2, "goal": 1.5, "goal_kind": "max"}]}
    path = tmp_path / "benchmarks.json"
    path.write_text(json.dumps(good))
    saved, problem = bench.read_table(path)
    assert problem is None and saved["rows"][0]["what"] == "PWL / SiLU"
    path.write_text(json.dumps(good)[:-40])
    assert bench.read_table(path)[1].startswith("it is not readable JSON")
    path.write_text(json.dumps({k: v for k, v in good.items() if k != "date"}))
    assert bench.read_table(path) == (None, "it lacks the field date")
    path.write_text(json.dumps({**good, "rows": [{"what": "x"}]}))
    assert "rows are not rows" in bench.read_table(path)[1]
    path.write_text(json.dumps({**good, "machine": {"cpu": "x"}}))
    assert "machine description" in bench.read_table(path)[1]


def test_goal_rows_take_this_builds_rows_first_then_the_saved_table_and_list_the_rest():
    act, deep, infomax = (bench.SECTIONS[k][0] for k in ("activation", "deep", "infomax"))
    live = [{"section": act, "what": "pwl / silu ", "ratio": 1.2, "goal": 1.5, "goal_kind": "max"},
            {"section": act, "what": "no goal here", "ratio": 3.0}]
    saved = {"date": "2026-12-01T10:00:00", "rows": [
        {"section": act, "what": "stale pwl / silu", "ratio": 9.0, "goal": 1.5, "goal_kind": "max"},
        {"section": deep, "what": "vgg step", "ratio": 1.3, "goal": 1.15, "goal_kind": "max"}]}
    goals, unmeasured = bench.goal_rows(live, saved)
    assert [(g["what"], g["source"], g["met"]) for g in goals] == [
        ("pwl / silu", "this build", True), ("vgg step", "make bench, 2026-12-01", False)]
    assert goals[0]["goal"] == "≤ 1.5×: met" and goals[1]["result"] == "1.30×"
    assert act not in unmeasured and deep not in unmeasured and infomax in unmeasured
    goals, unmeasured = bench.goal_rows([], None)
    assert goals == [] and unmeasured == [title for title, _ in bench.SECTIONS.values()]
