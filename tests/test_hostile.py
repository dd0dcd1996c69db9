"""Hostile input: no load runs code, no run mixes results, damaged files are named (issue 31).

Each test fails if the guard it covers is removed: a checkpoint read with weights_only=False runs the
payload; a checkpoint key without the data, code or configuration resumes; no lock lets two runs
interleave; a dataset read before its checksum runs the planted pickle.
"""
import os
import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from actfn import checkpoints
from actfn import data as D
from actfn import infomax as im
from actfn import kernels
from actfn.deep.trainer import DeepConfig, checkpoint_name, train_deep
from actfn.results import remove_stale_temps, write_atomic

LIB = Path(__file__).resolve().parents[1] / "lib"


class Payload:
    """Unpickling this runs os.mkdir(marker): what a planted checkpoint or dataset file could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def _fixture(tmp_path, n_train=60, n_test=30):
    folder = D.write_cifar10_fixture(tmp_path, n_train=n_train, n_test=n_test)
    sums = D.fixture_checksums(folder)
    return (D.load_dataset("cifar10", tmp_path, train=True, checksums=sums),
            D.load_dataset("cifar10", tmp_path, train=False, checksums=sums))


CFG = dict(model="vgg11", dataset="cifar10", epochs=2, batch_size=32, width=0.125, val_size=10)


# -- no load runs code --------------------------------------------------------------------------

def test_planted_deep_checkpoint_does_not_run_and_is_refused_by_name(tmp_path):
    train, test = _fixture(tmp_path)
    cfg = DeepConfig(**CFG)
    ckpt = tmp_path / "ck" / checkpoint_name(cfg)        # the name a chapter would look for
    ckpt.parent.mkdir()
    marker = tmp_path / "pwned"
    torch.save({"key": {}, "state": Payload(marker)}, ckpt)
    with pytest.raises(checkpoints.CheckpointError, match=f"checkpoint {ckpt} holds objects other than tensors"):
        train_deep(cfg, train, test, checkpoint=ckpt, show_progress=False)
    assert not marker.exists()


def test_planted_infomax_checkpoint_does_not_run(tmp_path):
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(0))
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "bank.pt"
    torch.save(Payload(marker), ckpt)
    with pytest.raises(checkpoints.CheckpointError, match=f"checkpoint {ckpt} holds objects"):
        im.train_bank([im.Setting("relu")], [0], 3, x, 1, batch_size=32, checkpoint=ckpt)
    assert not marker.exists()


def test_planted_cifar_batch_is_refused_before_it_is_unpickled(tmp_path):
    folder = D.write_cifar10_fixture(tmp_path, n_train=20, n_test=10)
    marker = tmp_path / "pwned"
    with open(folder / "data_batch_1", "wb") as fh:
        pickle.dump(Payload(marker), fh)
    # the release's checksums (the default): the fixture's files are not CIFAR-10
    with pytest.raises(D.DatasetCorrupt, match="data_batch_1 is damaged or not the published one"):
        D.load_dataset("cifar10", tmp_path, train=True)
    assert not marker.exists()


def test_damaged_idx_file_and_truncated_archive_are_named(tmp_path):
    if not D.FASHION_MNIST_SYSTEM_DIR.is_dir():
        pytest.skip("dataset-fashion-mnist is not installed")
    root = tmp_path / "data"
    D.load_dataset("fashion_mnist", root, train=False)
    raw = root / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    raw.write_bytes(raw.read_bytes()[:-1] + b"\x09")        # one label changed
    with pytest.raises(D.DatasetCorrupt, match=f"{raw} is damaged"):
        D.load_dataset("fashion_mnist", root, train=False)
    # a truncated .gz source: named, and no temporary file left behind
    src = tmp_path / "src"
    src.mkdir()
    for name in D.FASHION_MNIST_FILES:
        data = (D.FASHION_MNIST_SYSTEM_DIR / f"{name}.gz").read_bytes()
        (src / f"{name}.gz").write_bytes(data[: len(data) // 2] if name.startswith("train-images") else data)
    with pytest.raises(D.DatasetCorrupt, match="train-images-idx3-ubyte.gz is damaged or truncated"):
        D.prepare_fashion_mnist(tmp_path / "fresh", source=src)
    assert not list((tmp_path / "fresh").rglob("*.tmp"))


def test_labels_outside_the_declared_classes_are_refused(tmp_path):
    folder = D.write_cifar10_fixture(tmp_path, n_train=20, n_test=10)
    with open(folder / "test_batch", "rb") as fh:
        batch = pickle.load(fh)
    batch["labels"][3] = 255
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump(batch, fh)
    with pytest.raises(D.DatasetCorrupt, match=r"must lie in 0..9 \(10 classes\).*e.g. 255"):
        D.load_dataset("cifar10", tmp_path, train=False, checksums=D.fixture_checksums(folder))


def test_kernel_builds_are_cached_by_source_flags_and_compiler(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    src = tmp_path / "k.cpp"
    src.write_text("int f() { return 1; }\n")
    a = kernels.build_folder("k", [src], ["-O3"], ["c++"])
    assert a.parent == tmp_path / "ext"
    assert kernels.build_folder("k", [src], ["-O3"], ["c++"]) == a
    assert kernels.build_folder("k", [src], ["-O2"], ["c++"]) != a
    assert kernels.build_folder("k", [src], ["-O3"], ["no-such-compiler"]) != a
    src.write_text("int f() { return 2; }\n")
    assert kernels.build_folder("k", [src], ["-O3"], ["c++"]) != a


# -- no run mixes results ---------------------------------------------------------------------------

def test_deep_resume_refuses_other_data_config_code_and_damage(tmp_path, monkeypatch):
    train, test = _fixture(tmp_path)
    cfg = DeepConfig(**CFG)
    ckpt = tmp_path / "run.pt"
    train_deep(cfg, train, test, checkpoint=ckpt, show_progress=False, max_epochs=1)
    inverted = D.ImageData(train.name, 255 - train.images, train.labels, train.mean, train.std)
    with pytest.raises(checkpoints.CheckpointError, match=f"checkpoint {ckpt} was written by another run \\(data: "):
        train_deep(cfg, inverted, test, checkpoint=ckpt, show_progress=False)
    other = DeepConfig(**{**CFG, "lr": 0.01})
    with pytest.raises(checkpoints.CheckpointError, match=r"config.lr: 0.001 in the checkpoint, 0.01 now"):
        train_deep(other, train, test, checkpoint=ckpt, show_progress=False)
    monkeypatch.setattr(checkpoints, "code_version", lambda: "another-version")
    with pytest.raises(checkpoints.CheckpointError, match=r"\(code: '[0-9a-f]+' in the checkpoint, 'another-version'"):
        train_deep(cfg, train, test, checkpoint=ckpt, show_progress=False)
    monkeypatch.undo()
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(checkpoints.CheckpointError, match=f"checkpoint {ckpt} is damaged or truncated.*resume False"):
        train_deep(cfg, train, test, checkpoint=ckpt, show_progress=False)


def test_infomax_resume_refuses_other_code(tmp_path, monkeypatch):
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(0))
    ckpt = tmp_path / "bank.pt"
    im.train_bank([im.Setting("relu")], [0], 3, x, 1, batch_size=32, checkpoint=ckpt)
    monkeypatch.setattr(checkpoints, "code_version", lambda: "another-version")
    with pytest.raises(checkpoints.CheckpointError, match="code: "):
        im.train_bank([im.Setting("relu")], [0], 3, x, 1, batch_size=32, checkpoint=ckpt)


def _holder(path: Path) -> subprocess.Popen:
    """Another process that holds ``path``'s claim until its stdin closes."""
    code = textwrap.dedent(f"""
        import sys
        from actfn import checkpoints
        with checkpoints.claimed({str(path)!r}):
            print("held", flush=True)
            sys.stdin.read()
    """)
    env = {**os.environ, "PYTHONPATH": str(LIB)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_on_one_checkpoint_stops_with_a_message(tmp_path):
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(0))
    ckpt = tmp_path / "bank.pt"
    holder = _holder(ckpt)
    try:
        with pytest.raises(checkpoints.CheckpointBusy, match=f"checkpoint {ckpt} is in use by another run "
                                                            f"\\(process {holder.pid}\\)"):
            im.train_bank([im.Setting("relu")], [0], 3, x, 1, batch_size=32, checkpoint=ckpt)
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    run = im.train_bank([im.Setting("relu")], [0], 3, x, 1, batch_size=32, checkpoint=ckpt)   # free again
    assert run.steps == 2


def test_kill_during_a_write_keeps_the_previous_file_and_the_temp_is_cleaned(tmp_path):
    ckpt = tmp_path / "state.pt"
    code = textwrap.dedent(f"""
        import time, torch
        from actfn import checkpoints
        from actfn.results import write_atomic
        checkpoints.save({str(ckpt)!r}, {{"k": 1}}, {{"w": torch.arange(5.0)}})
        def slow(fh):
            fh.write(b"x" * 4096)
            fh.flush()
            print("writing", flush=True)
            time.sleep(120)
        write_atomic({str(ckpt)!r}, slow)
    """)
    env = {**os.environ, "PYTHONPATH": str(LIB)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "writing"
    temps = list(tmp_path.glob(".state.pt.*.tmp"))
    assert len(temps) == 1
    assert remove_stale_temps(tmp_path) == []          # its writer is alive: kept
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert torch.equal(checkpoints.load(ckpt, {"k": 1})["w"], torch.arange(5.0))
    with checkpoints.claimed(ckpt):                     # a run starting here removes the dead writer's file
        assert not list(tmp_path.glob("*.tmp"))


def test_two_writers_never_share_a_temporary_file(tmp_path):
    path = tmp_path / "f.bin"
    seen = []

    def outer(fh):
        seen.append(fh.name)
        write_atomic(path, lambda inner: (seen.append(inner.name), inner.write(b"inner")))
        fh.write(b"outer")

    write_atomic(path, outer)
    assert seen[0] != seen[1] and path.read_bytes() == b"outer"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_checkpoint_arrays_round_trip(tmp_path):
    import numpy as np

    state = {"losses": [np.arange(3.0), np.ones((2, 2), np.float32)], "snapshots": {0: [np.zeros(4)]}, "n": np.int64(7)}
    checkpoints.save(tmp_path / "c.pt", {"format": 1}, state)
    back = checkpoints.load(tmp_path / "c.pt", {"format": 1})
    np.testing.assert_array_equal(back["losses"][1], state["losses"][1])
    assert isinstance(back["snapshots"][0][0], np.ndarray) and back["n"] == 7
    with pytest.raises(checkpoints.CheckpointError, match="format: 1 in the checkpoint, 2 now"):
        checkpoints.load(tmp_path / "c.pt", {"format": 2})


def test_deep_script_skips_only_identical_runs_and_never_relabels(tmp_path, monkeypatch, capsys):
    import runpy

    if not D.FASHION_MNIST_SYSTEM_DIR.is_dir():
        pytest.skip("dataset-fashion-mnist is not installed")
    script = Path(__file__).resolve().parents[1] / "scripts" / "run_deep_experiments.py"
    common = "model: vgg11\nmode: backprop\nbaselines: []\nbatch_size: 32\nwidth: 0.125\ntrain_size: 64\nval_size: 16\ntest_size: 32\n"
    (tmp_path / "one.yaml").write_text(common + "epochs: 1\n")
    (tmp_path / "two.yaml").write_text(common + "epochs: 2\n")
    out = tmp_path / "out.json"

    def run(params):
        monkeypatch.setattr(sys, "argv", ["run_deep_experiments.py", str(tmp_path / params), "--dataset", "fashion_mnist",
                                          "--data-root", str(tmp_path / "data"), "--out", str(out),
                                          "--checkpoint-dir", str(tmp_path / "ck")])
        runpy.run_path(str(script), run_name="__main__")

    run("one.yaml")
    first = out.read_text()
    assert len(__import__("json").loads(first)["runs"]) == 1 and "test acc" in capsys.readouterr().out
    run("one.yaml")                                     # the same run: skipped, nothing retrained
    assert "test acc" not in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"other parameters.*made_by.params.epochs: 1 in the file, 2 now"):
        run("two.yaml")
    assert out.read_text() == first


def test_a_cold_kernel_cache_is_built_before_the_timed_steps(monkeypatch):
    """A build (here: the real load made to take 2 s) must not land in the trainer's measured time."""
    import time

    from actfn.unit.trainer import train_unit

    if kernels.requested_backend() == "off":
        pytest.skip("the PyTorch path builds nothing")
    real = kernels._build
    monkeypatch.setattr(kernels, "_state", {})
    monkeypatch.setattr(kernels, "_build", lambda *a, **k: (time.sleep(2.0), real(*a, **k))[1])
    run = train_unit(classes=4, sigma=1.0, mode="sample", steps=3, samples=200)
    assert run.seconds < 1.0
