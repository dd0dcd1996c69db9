"""Sweeps (actfn.sweep): runs named by hash, claimed so that none runs twice, written atomically,
skipped when done, resumed after a kill, and executed by the local pool, submitit and Ray."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from actfn import sweep
from actfn.sweep import runner, store as store_mod, tasks

ROOT = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
needs_fashion = pytest.mark.skipif(not FASHION.exists(), reason="needs Debian's dataset-fashion-mnist (make data)")

# The deep-network chapter's smoke setting, smaller still: three runs of a few seconds each.
TINY = """dataset: fashion_mnist
model: [vgg11]
mode: [backprop, local_correlation]
baselines: [relu]
seed: [0]
epochs: 1
batch_size: 64
width: 0.125
train_size: 128
val_size: 64
test_size: 64
"""


# --- planning --------------------------------------------------------------------------------------

def test_a_parameter_file_expands_into_runs_with_distinct_hashes(tmp_path):
    params = sweep.read_params(ROOT / "params" / "deep_networks" / "paper.yaml", ["seed=[0, 1]"])
    runs = tasks.task_of("deep_networks").expand(params)
    assert len(runs) == 2 * 5 * (2 + 2)             # seeds x models x (two modes + two baselines)
    hashes = {sweep.run_hash(r, "code", "data") for r in runs}
    assert len(hashes) == len(runs)
    r = runs[0]
    assert sweep.run_hash(r, "code", "data") != sweep.run_hash(r, "other code", "data")
    assert sweep.run_hash(r, "code", "data") != sweep.run_hash(r, "code", "other data")
    infomax = tasks.task_of("infomax").expand(sweep.read_params(ROOT / "params" / "infomax" / "paper.yaml"))
    assert len(infomax) == 3 * 10                    # one bank per K and seed
    assert {r.config["matmul_precision"] for r in infomax} == {"float32"}
    bf16 = tasks.task_of("infomax").expand(sweep.read_params(ROOT / "params" / "infomax" / "paper.yaml",
                                                              ["matmul_precision=bfloat16"]))
    assert {r.config["matmul_precision"] for r in bf16} == {"bfloat16"}      # (a parameter the banks honour)


def test_bad_input_stops_before_any_run_naming_it(tmp_path):
    with pytest.raises(ValueError, match="chapter"):
        tasks.task_of("no_such_chapter")
    with pytest.raises(ValueError, match="model"):
        tasks.task_of("deep_networks").expand({"model": ["vgg99"]})
    with pytest.raises(ValueError, match="matmul_precision"):
        tasks.task_of("infomax").expand({"activations": ["relu"], "lambdas": [1.0], "epochs": 1,
                                         "matmul_precision": "float8"})
    with pytest.raises(ValueError, match=r"unknown parameters \['matmul_precison'\]"):     # (a typo is not ignored)
        sweep.page_only({"epochs": 1, "matmul_precison": "bfloat16"}, "infomax")
    paper = sweep.read_params(ROOT / "params" / "infomax" / "paper.yaml")
    assert sweep.page_only(paper, "infomax") == ["synthetic_K", "synthetic_epochs"]
    assert sweep.page_only({**paper, "slurm_partition": "gpu"}, "infomax") == ["synthetic_K", "synthetic_epochs"]
    from actfn.sweep.__main__ import parser, slurm_settings    # (Slurm's settings: command line, then file)
    args = parser().parse_args(["x.yaml", "--account", "cli"])
    assert slurm_settings(args, {"slurm_partition": "gpu", "slurm_account": "file", "slurm_minutes": 30}, "cuda") \
        == ("gpu", "cli", 1, 30)
    assert slurm_settings(args, {"slurm_gpus_per_task": 2}, "cpu") == (None, "cli", 2, 240)
    with pytest.raises(ValueError, match="-p"):
        sweep.read_params(ROOT / "params" / "deep_networks" / "smoke.yaml", ["epochs"])
    with pytest.raises(ValueError, match="is not a file"):
        sweep.read_params(tmp_path / "missing.yaml")


# --- the claim and the atomic write, each shown to matter -------------------------------------------

class Toy:
    """A task of a fraction of a second that notes every execution in a log (one line per run)."""
    chapter = "toy"

    def __init__(self, log: Path, size: int = 1):
        self.log, self.size = log, size

    def load(self, dataset, data_root, download):
        return None

    def checksum(self, loaded):
        return "toy-data"

    def execute(self, run, loaded, checkpoint_dir, device, log=None):
        with open(self.log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        time.sleep(0.3)
        return {"values": list(range(self.size))}


def _toy_spec(root, seed=0):
    run = store_mod.Run("toy", {"dataset": "toy", "x": 1}, seed)
    return runner.spec_of(run, store_mod.run_hash(run, "c", "toy-data"), root, "toy-data", "", False, "cpu", 1)


def _race(spec, n=4) -> list[str]:
    """``n`` processes execute the same run at once; returns their outcomes."""
    ctx = mp.get_context("fork")
    with ctx.Pool(n) as pool:
        return pool.map(runner.execute, [spec] * n)


def test_the_claim_lets_one_process_run_a_run(tmp_path, monkeypatch):
    log = tmp_path / "executions.log"
    monkeypatch.setitem(tasks.TASKS, "toy", Toy(log))
    spec = _toy_spec(tmp_path / "sweep")
    outcomes = _race(spec)
    assert outcomes.count("ran") == 1 and len(log.read_text().split()) == 1, outcomes
    assert sweep.Store(spec["root"]).state(spec["hash"]) == "done"


def test_without_the_claim_the_race_runs_twice(tmp_path, monkeypatch):
    """The check above can fail: with a claim that always succeeds, the same run executes again."""
    import contextlib
    log = tmp_path / "executions.log"
    monkeypatch.setitem(tasks.TASKS, "toy", Toy(log))
    monkeypatch.setattr(store_mod.Store, "claim", contextlib.contextmanager(lambda self, h: (yield True)))
    _race(_toy_spec(tmp_path / "sweep"))
    assert len(log.read_text().split()) > 1


def _write_then_die(spec, slow_writer: bool):
    if slow_writer:                       # (a plain write, in pieces: what the atomic write replaces)
        def plain(path, obj):
            text = json.dumps(obj).encode()
            with open(path, "wb") as fh:
                for i in range(0, len(text), 4096):
                    fh.write(text[i:i + 4096])
                    fh.flush()
                    time.sleep(0.01)
        store_mod.write_json_atomic = plain
    runner.execute(spec)


@pytest.mark.parametrize("atomic", [True, False])
def test_a_kill_mid_write_leaves_no_half_result(tmp_path, monkeypatch, atomic):
    """Killed while its result is being written, a run is pending afterwards, never a corrupt 'done'
    -- and with a plain write in its place, this test sees the corruption."""
    monkeypatch.setitem(tasks.TASKS, "toy", Toy(tmp_path / "log", size=200_000))
    spec = _toy_spec(tmp_path / "sweep")
    child = mp.get_context("fork").Process(target=_write_then_die, args=(spec, not atomic))
    child.start()
    store = sweep.Store(spec["root"])
    deadline = time.time() + 30
    while time.time() < deadline and not (store.result(spec["hash"]).exists()
                                          or any(store.root.glob(".*.tmp"))):
        time.sleep(0.005)
    time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    if atomic:                            # (whole or absent, whenever the kill came)
        state = store.state(spec["hash"])
        assert state in ("pending", "done")
        if state == "pending":
            assert runner.execute(spec) == "ran"
        assert store.load(spec["hash"])["result"]["values"][-1] == 199_999
    else:
        with pytest.raises(json.JSONDecodeError):
            store.load(spec["hash"])


def test_a_failure_is_kept_with_its_error_and_others_go_on(tmp_path, monkeypatch):
    monkeypatch.setitem(tasks.TASKS, "toy", Toy(tmp_path / "log"))
    spec = {**_toy_spec(tmp_path / "sweep"), "data": "another dataset"}
    assert runner.execute(spec) == "failed"
    store = sweep.Store(spec["root"])
    failure = json.loads(store.failure(spec["hash"]).read_text())
    assert "is not the one the sweep was planned with" in failure["error"] and "Traceback" in failure["traceback"]
    assert store.state(spec["hash"]) == "failed"
    assert runner.execute({**spec, "data": "toy-data"}) == "ran"
    assert store.state(spec["hash"]) == "done" and not store.failure(spec["hash"]).exists()


# --- whole sweeps of the deep-network chapter, in processes of their own ----------------------------

def _sweep(tmp_path, *args, wait=True, params=None):
    params = params or tmp_path / "tiny.yaml"
    if not params.exists():
        params.write_text(TINY)
    cmd = [sys.executable, "-m", "actfn.sweep", *args[:1], str(params), "--chapter", "deep_networks",
           "--root", str(tmp_path / "sweeps"), *args[1:]]
    env = {**os.environ, "ACTFN_PROGRESS": "off", "WANDB_MODE": "disabled"}
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    return done.returncode, done.stdout + done.stderr


def _results(folder: Path) -> dict:
    """hash -> result of every finished run, without what differs between two executions (times)."""
    def strip(obj):
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k not in ("seconds", "time", "wall")}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj
    return {p.stem: strip(json.loads(p.read_text())["result"]) for p in folder.glob("*.json")
            if not p.name.endswith(".failed.json")}


def test_a_resumed_runs_clock_counts_every_invocation(tmp_path):
    path = tmp_path / "checkpoints" / "h" / "clock.json"
    # (bounds from the test's own clock, so that a loaded machine's late wake-ups cannot fail it)
    t0 = time.perf_counter()
    first = store_mod.Clock(path, every=0.02).__enter__()
    time.sleep(0.3)
    first._stop.set()                     # (killed: no exit, only the beats saved so far)
    first._thread.join()
    first_took = time.perf_counter() - t0
    saved = json.loads(path.read_text())
    assert saved["invocations"] == 1 and 0.2 <= saved["seconds"] <= first_took + 0.001
    t0 = time.perf_counter()
    with store_mod.Clock(path, every=30) as second:
        time.sleep(0.1)
    second_took = time.perf_counter() - t0
    assert second.invocations == 2 and second.before == saved["seconds"]
    assert saved["seconds"] + 0.1 <= second.seconds() == second.seconds() <= saved["seconds"] + second_took  # (stopped)
    on_entry = json.loads(path.read_text())    # (saved on entry, a moment after the clock started)
    assert on_entry["invocations"] == 2 and saved["seconds"] <= on_entry["seconds"] <= second.seconds()

    # a record's wall time says what it sums, and how many runs were resumed
    from actfn import records
    prov = {"wall_seconds": 7200.0, "invocations": [{"seconds": 3600.0, "invocations": 2}, {"seconds": 3600.0}],
            "wall_seconds_meaning": "runs"}
    assert records._wall_time(prov) == ("2.00 h: its 2 runs' own times, summed (a sweep's runs may run side by "
                                        "side); 1 of them resumed after a stop, counted over every invocation")


@needs_fashion
def test_a_killed_worker_loses_nothing_and_the_rerun_matches(tmp_path):
    clean = tmp_path / "clean"
    clean.mkdir()
    rc, out = _sweep(clean, "run", "--workers", "1", "--threads", "1")
    assert rc == 0 and "3 done" in out, out
    expected = _results(clean / "sweeps" / "deep_networks")
    assert len(expected) == 3

    proc = _sweep(tmp_path, "run", "--workers", "1", "--threads", "1", wait=False)
    folder = tmp_path / "sweeps" / "deep_networks"
    deadline, victim, first = time.time() + 600, None, None
    while time.time() < deadline and victim is None:     # one run finished, the next one running: kill its worker
        done = [p for p in folder.glob("*.json") if not p.name.endswith(".failed.json")] if folder.exists() else []
        if done:
            first = first or (done[0], done[0].stat().st_mtime_ns)
            for lock in folder.glob("*.lock"):
                if not (folder / f"{lock.stem}.json").exists() and lock.read_text().strip():
                    pid = int(lock.read_text().split()[-1])
                    if sweep.Store(folder).held(lock.stem):
                        victim, killed = pid, lock.stem
        time.sleep(0.05)
    assert victim is not None, "the sweep never reached its second run"
    os.kill(victim, signal.SIGKILL)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 1 and "run the same command to continue" in out, out
    assert len(_results(folder)) < 3

    rc, out = _sweep(tmp_path, "run", "--workers", "1", "--threads", "1")
    assert rc == 0 and "3 done" in out, out
    assert first[0].stat().st_mtime_ns == first[1]          # the finished run was not redone
    assert _results(folder) == expected
    assert sorted(p.suffix for p in folder.iterdir()) == [".json"] * 3     # no locks, no checkpoints left
    invocations = {p.stem: json.loads(p.read_text())["provenance"]["invocations"] for p in folder.glob("*.json")}
    assert invocations.pop(killed) == 2 and set(invocations.values()) == {1}    # the killed run's time counts twice
    from actfn.records import git_commit
    commit, dirty = git_commit(ROOT)            # (each run says whether it ran on uncommitted changes)
    assert {(p["commit"], p["dirty"]) for p in (json.loads(f.read_text())["provenance"]
                                                for f in folder.glob("*.json"))} == {(commit, dirty)}

    # the sweep's files make the chapter's record, and the chapter's replay of it passes
    rc, out = _sweep(tmp_path, "status", "--record", "tiny", "--records", str(tmp_path / "records"))
    assert rc == 0 and "record" in out, out
    from actfn import data as D, records
    from actfn.deep import report
    body = records.load(tmp_path / "records" / "deep_networks" / "tiny.json", "deep_networks")
    rec, prov = body["results"], body["provenance"]
    assert len(rec["runs"]) == 3 and len(rec["claims"]) >= 5 and prov["command"].startswith("python -m actfn.sweep status")
    assert prov["parameters"]["seed"] == [0] and prov["data_checksum"] == rec["data_checksum"]
    data_root = str(ROOT / "data")
    replayed = report.replay(rec, D.load_dataset("fashion_mnist", data_root, train=True),
                             D.load_dataset("fashion_mnist", data_root, train=False))
    assert replayed["max_relative_difference"] <= records.REPLAY_RTOL


@needs_fashion
def test_two_sweeps_over_one_folder_run_each_run_once(tmp_path):
    procs = [_sweep(tmp_path, "run", "--workers", "1", "--threads", "1", wait=False) for _ in range(2)]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    ran = sum(int(part.split()[0]) for out in outs for line in out.splitlines() if line.startswith("this invocation")
              for part in line.split(": ", 1)[1].split(", ") if part.endswith(" ran"))
    assert ran == 3, outs
    folder = tmp_path / "sweeps" / "deep_networks"
    assert len(_results(folder)) == 3 and not list(folder.glob("*.tmp"))
    rc, out = _sweep(tmp_path, "status")
    assert rc == 0 and "3 done / 0 running / 0 failed / 0 pending" in out, out


SLURM_CONF = Path(os.environ.get("ACTFN_SLURM_DIR", "/tmp/actfn-slurm")) / "slurm.conf"


def _slurm_up() -> bool:
    """Is the one-node cluster of scripts/slurm_one_node.sh (make slurm) up?"""
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], env={**os.environ, "SLURM_CONF": str(SLURM_CONF)},
                             capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return SLURM_CONF.is_file() and "idle" in out.split()


@needs_fashion
@pytest.mark.parametrize("launcher", ["slurm", "slurm-cluster", "ray"])
def test_the_engines_run_the_same_sweep(tmp_path, launcher, monkeypatch):
    pytest.importorskip("ray" if launcher == "ray" else "submitit")
    if launcher == "slurm-cluster":
        if not _slurm_up():
            pytest.skip("no one-node Slurm cluster here (make slurm starts one: root, Debian's slurm-wlm and munge)")
        monkeypatch.setenv("SLURM_CONF", str(SLURM_CONF))
    params = tmp_path / "one.yaml"
    params.write_text(TINY.replace("mode: [backprop, local_correlation]", "mode: [backprop]")
                      .replace("baselines: [relu]", "baselines: []"))
    extra = {"slurm": ["--slurm-executor", "local"], "slurm-cluster": ["--partition", "debug", "--minutes", "10"],
             "ray": []}[launcher]
    rc, out = _sweep(tmp_path, "run", "--launcher", launcher.split("-")[0], *extra, "--threads", "1", params=params)
    assert rc == 0 and "1 ran" in out and "1 done" in out, out
    result = next(iter(_results(tmp_path / "sweeps" / "deep_networks").values()))
    assert result["model"] == "vgg11" and 0 <= result["test_acc"] <= 1


def test_the_benchmark_sections_named_by_the_parameters_are_the_benchmarks():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench
    from actfn import params
    assert params._bench_sections() == tuple(bench.SECTIONS)


def test_makespan_packs_longest_runs_first():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from sweep_benchmarks import makespan
    assert makespan([4, 3, 2, 1], 2) == 5 and makespan([5, 1, 1], 8) == 5 and makespan([1] * 10, 1) == 10


def test_projections_take_each_runs_own_time_from_a_sweeps_record(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from sweep_benchmarks import record_runs
    banks = {"chapter": "infomax", "results": {}, "provenance": {
        "wall_seconds": 6.0, "invocations": [{"run": "a", "seconds": 1.0}, {"run": "b", "seconds": 5.0}]}}
    runs = {"chapter": "deep_networks", "results": {}, "provenance": {
        "wall_seconds": 9.0, "invocations": [{"run": "c", "seconds": 2.0}, {"run": "d", "seconds": 3.0},
                                             {"run": "e", "seconds": 4.0}]}}
    for chapter, body in (("infomax", banks), ("deep_networks", runs)):
        (tmp_path / "records" / chapter).mkdir(parents=True)
        (tmp_path / "records" / chapter / "paper.json").write_text(json.dumps(body))
    assert record_runs(tmp_path) == {"deep networks, paper (3 runs)": [2.0, 3.0, 4.0],
                                     "infomax, paper (2 banks)": [1.0, 5.0]}


@needs_fashion
def test_wandb_offline_logs_a_sweeps_runs_in_one_group(tmp_path):
    pytest.importorskip("wandb")
    params = tmp_path / "one.yaml"
    params.write_text(TINY.replace("mode: [backprop, local_correlation]", "mode: [backprop]"))
    rc, out = _sweep(tmp_path, "run", "--wandb", "offline", "--wandb-group", "actfn-test-group", "--workers", "2",
                     "--threads", "1", params=params)
    assert rc == 0 and "2 ran" in out, out
    logs = list((tmp_path / "sweeps" / "deep_networks" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(logs) == 2 and all(b"actfn-test-group" in p.read_bytes() for p in logs)


# InfoMax's smoke setting, smaller still, with two K so that only the largest runs the follow-ups.
TINY_INFOMAX = """dataset: mnist_subset
activations: [relu, softmax]
Ks: [3, 4]
lambdas: [1.0]
reference_lambda: 1.0
constraints: [none]
seeds: [0, 1]
epochs: 2
train_size: 256
eval_size: 100
depth_K2: 3
"""


def test_an_infomax_sweep_is_the_chapters_study_and_makes_its_record(tmp_path):
    pytest.importorskip("mlxtend")
    params = tmp_path / "infomax.yaml"
    params.write_text(TINY_INFOMAX)
    cmd = [sys.executable, "-m", "actfn.sweep", str(params), "--chapter", "infomax", "--root", str(tmp_path / "sweeps"),
           "--threads", "1", "--record", "tiny", "--records", str(tmp_path / "records")]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "ACTFN_PROGRESS": "off"})
    assert done.returncode == 0 and "4 done" in done.stdout, done.stdout + done.stderr
    from actfn import data as D, records
    from actfn.infomax import record as im_record
    from actfn.infomax.study import run_study
    body = records.load(tmp_path / "records" / "infomax" / "tiny.json", "infomax")
    rec = body["results"]
    assert {r["K"] for r in rec["runs"]} == {3, 4} and {r["seed"] for r in rec["runs"]} == {0, 1}
    assert {d["seed"] for d in rec["depth"]} == {0, 1} and {p["K"] for p in rec["probe"]} == {4}
    assert rec["claims"] and rec["tests"] and 0 < rec["probe_pixels"] <= 1
    assert rec["made_by"]["parameters"]["matmul_precision"] == "float32"
    assert len(body["provenance"]["invocations"]) == 4 and "runs' own times" in body["provenance"]["wall_seconds_meaning"]

    # the chapter trains one bank per K with every seed; the sweep one per K and seed: the same models
    data = D.load_flat("mnist_subset", str(ROOT / "data"))
    x_tr, _, x_ev, _ = D.flat_split(data, 256, 100)
    chapter, _ = run_study(x_tr, x_ev, ["relu", "softmax"], [3, 4], [1.0], [0, 1], 2, show_progress=False)
    key = lambda r: (r["K"], r["seed"], r["activation"], r["objective"], r["lambda"], r["constraint"])
    swept = {key(r): r for r in rec["runs"]}
    assert set(swept) == {key(r) for r in chapter}
    for r in chapter:
        for metric in ("effective_rank", "mean_sq_correlation", "weight_norm"):
            assert swept[key(r)][metric] == pytest.approx(r[metric], rel=1e-4, abs=1e-6), (key(r), metric)
    replayed = im_record.replay(rec, im_record.training_images(rec, str(ROOT / "data")))
    assert replayed["max_relative_difference"] <= records.REPLAY_RTOL
