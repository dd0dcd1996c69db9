"""Records: provenance required, and a record that no longer replays refused."""
import json
from pathlib import Path

import pytest
import torch

from actfn import data as D
from actfn import infomax as im
from actfn import records
from actfn.infomax import record as infomax_record
from actfn.checkpoints import fingerprint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_record(tmp_path_factory):
    """A record of a tiny InfoMax study on the 5,000 MNIST digits, written and loaded as the chapter does."""
    data = D.load_flat("mnist_subset", ROOT / "data")
    params = {"train_size": 256, "eval_size": 100, "batch_size": 64, "lr": 1e-3, "matmul_precision": "float32",
              "reference_lambda": 1.0, "seeds": [0, 1], "Ks": [4], "epochs": 2}
    x_tr, _, x_ev, _ = D.flat_split(data, params["train_size"], params["eval_size"])
    runs, _ = im.run_study(x_tr, x_ev, ["relu", "pwl"], [4], [1.0], [0, 1], 2, batch_size=64, show_progress=False)
    results = {"made_by": {"code": "test", "parameters": params}, "dataset": "mnist_subset", "source": data.source,
               "data_checksum": {"train": fingerprint(data.x_train, data.y_train),
                                 "test": fingerprint(data.x_test, data.y_test)},
               "n_train": len(x_tr), "n_eval": len(x_ev), "parameters": params, "runs": runs}
    prov = records.provenance_of(results, ROOT, "python test", [{"seconds": 1.5}, {"seconds": 2.0}])
    path = records.write(tmp_path_factory.mktemp("records") / "infomax" / "tiny.json", "infomax", results, prov)
    return path


def test_a_record_carries_its_provenance(tiny_record):
    body = records.load(tiny_record, "infomax")
    prov = body["provenance"]
    assert set(records.PROVENANCE) <= set(prov)
    assert len(prov["commit"]) == 40 and prov["wall_seconds"] == 3.5 and prov["torch"] == torch.__version__
    assert prov["data_checksum"] == body["results"]["data_checksum"] and prov["machine"]["cores"] >= 1


def test_a_record_replays_with_this_code(tiny_record):
    rec = records.load(tiny_record, "infomax")["results"]
    out = infomax_record.replay(rec, infomax_record.training_images(rec, str(ROOT / "data")), epochs=2)
    assert out["model"].startswith("pwl, K = 4, seed 0") and out["max_relative_difference"] <= 1e-5


def test_a_record_that_no_longer_replays_stops(tiny_record):
    rec = records.load(tiny_record, "infomax")["results"]
    run = infomax_record.replay_run(rec["runs"], 1.0)
    run["curve"][0] *= 1 + 3e-4          # as if the code now computed another loss
    with pytest.raises(records.RecordError, match=r"no longer replays: the mean training loss of epoch 1 \(pwl"):
        infomax_record.replay(rec, infomax_record.training_images(rec, str(ROOT / "data")))
    assert records.check_replay("x", 1.0, 1.0 + 5e-5) == pytest.approx(5e-5)


def test_a_record_of_other_data_is_refused(tiny_record):
    rec = records.load(tiny_record, "infomax")["results"]
    rec["data_checksum"]["train"] = "0" * 16
    with pytest.raises(records.RecordError, match="not the same data"):
        infomax_record.training_images(rec, str(ROOT / "data"))


@pytest.mark.parametrize("mangle,message", [
    (lambda b: b.update(format=0), "format 0"),
    (lambda b: b.update(chapter="deep_networks"), "of chapter 'deep_networks'"),
    (lambda b: b["provenance"].pop("commit"), r"lacks \['commit'\]"),
    (lambda b: b["provenance"].pop("wall_seconds"), r"lacks \['wall_seconds'\]"),
])
def test_a_malformed_record_is_refused_by_name(tiny_record, tmp_path, mangle, message):
    body = json.loads(tiny_record.read_text())
    mangle(body)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(body))
    with pytest.raises(records.RecordError, match=message):
        records.load(bad, "infomax")
    bad.write_text(tiny_record.read_text()[:100])
    with pytest.raises(records.RecordError, match="bad.json is not valid JSON"):
        records.load(bad, "infomax")


def test_floats_are_kept_to_six_digits():
    assert records.rounded({"a": [1.23456789, 2], "b": 0.000123456789}) == {"a": [1.23457, 2], "b": 0.000123457}


@pytest.fixture(scope="module")
def tiny_deep_record(tmp_path_factory):
    """A record of a tiny deep-network run on Fashion-MNIST (two seeds), written as the chapter writes it."""
    from actfn.deep import report as deep_report
    from actfn.deep.trainer import DeepConfig, run_experiments

    root = ROOT / "data"
    train, test = (D.load_dataset("fashion_mnist", root, train=t) for t in (True, False))
    common = dict(dataset="fashion_mnist", epochs=1, batch_size=16, width=0.125, train_size=160, val_size=32,
                  test_size=64, snapshots=3)
    configs = [DeepConfig(model="vgg11", mode=md, activation=a, seed=sd, **common)
               for sd in (0, 1) for a, md in (("pwl", "backprop"), ("pwl", "local_correlation"), ("relu", "backprop"))]
    runs = [r["summary"] for r in run_experiments(configs, train, test, tmp_path_factory.mktemp("ckpt"),
                                                  show_progress=False)]
    results = {"made_by": {"code": "test", "parameters": {**common, "seed": [0, 1]}}, "dataset": "fashion_mnist",
               "source": deep_report.SOURCES["fashion_mnist"], "data_checksum": deep_report.image_checksums(train, test),
               "n_train": 160, "runs": runs, "claims": []}
    prov = records.provenance_of(results, ROOT, "python test", [{"seconds": 1.0}])
    path = records.write(tmp_path_factory.mktemp("records") / "deep_networks" / "tiny.json", "deep_networks", results, prov)
    return path, train, test


def test_a_deep_record_replays_its_first_steps(tiny_deep_record):
    from actfn.deep import report as deep_report
    from actfn.deep.trainer import PREFIX_STEPS

    path, train, test = tiny_deep_record
    rec = records.load(path, "deep_networks")["results"]
    assert all(len(s["prefix_losses"]) == PREFIX_STEPS and s["final_knots"] and s["evolution"]
               for s in rec["runs"] if s["activation"] == "pwl")
    out = deep_report.replay(rec, train, test)
    assert out["model"] == "vgg11, local_correlation, seed 0" and out["max_relative_difference"] <= 1e-5
    import torch
    assert out["threads"] == torch.get_num_threads()          # as the run recorded it, and restored after
    assert all(s["prefix_threads"] == torch.get_num_threads() for s in rec["runs"] if s["activation"] == "pwl")
    run = deep_report.replay_run(rec["runs"])
    run["prefix_losses"][3] *= 1 + 3e-4     # as if the code now computed another loss at step 4
    with pytest.raises(records.RecordError, match=r"no longer replays: the training loss of step 4 \(vgg11"):
        deep_report.replay(rec, train, test)
    rec["data_checksum"]["test"] = "0" * 16
    with pytest.raises(records.RecordError, match="not the same data"):
        deep_report.replay(rec, train, test)


def test_deep_claims_read_the_same_knots_from_a_record(tiny_deep_record):
    # the claims judged from a record's summaries are those judged from the live runs' knots
    from actfn.deep.claims import deep_claims, knots_of

    path, _, _ = tiny_deep_record
    runs = records.load(path, "deep_networks")["results"]["runs"]
    final, evolution = knots_of(runs)
    assert set(final) == {("vgg11", "backprop"), ("vgg11", "local_correlation")}
    assert all(step > 0 for snaps in evolution.values() for step, _ in snaps)
    assert deep_claims(runs, "fashion_mnist") == deep_claims(runs, "fashion_mnist", final, None, evolution)


def test_the_seed_table_gives_a_t_interval():
    from actfn.deep import report as deep_report

    runs = [{"model": "vgg11", "activation": "relu", "mode": "backprop", "test_acc": a} for a in (0.8, 0.9, 1.0)]
    runs.append({"model": "resnet10", "activation": "relu", "mode": "backprop", "test_acc": 0.7})
    rows, _ = deep_report.seed_table(runs)
    assert rows[0]["mean"] == pytest.approx(0.9) and rows[0]["sd"] == pytest.approx(0.1)
    half = 4.302652729911275 * 0.1 / 3 ** 0.5     # t(0.975, 2 df)
    assert rows[0]["interval"] == f"[{0.9 - half:.3f}, {0.9 + half:.3f}]"
    assert rows[1]["seeds"] == 1 and rows[1]["interval"] == "one seed: none"


def test_the_committed_deep_record_replays():
    """The chapter's record, as the book build replays it (seconds: four steps of one VGG-11), on
    whichever CPU runs the tests; and the replay is refused when a learning rate is 1% off."""
    from actfn.deep import report as deep_report

    path = ROOT / "records" / "deep_networks" / "record-fashion_mnist.json"
    rec = records.load(path, "deep_networks")["results"]
    train, test = (D.load_dataset(rec["dataset"], ROOT / "data", train=t) for t in (True, False))
    out = deep_report.replay(rec, train, test)
    assert out["threads"] == 1 and out["steps"] == deep_report.REPLAY_STEPS == 4
    assert out["max_relative_difference"] <= 1e-4
    for name in ("lr", "act_lr"):           # (as if the code now trained with another learning rate)
        changed = json.loads(json.dumps(rec))
        deep_report.replay_run(changed["runs"])["config"][name] *= 1.01
        with pytest.raises(records.RecordError, match="no longer replays"):
            deep_report.replay(changed, train, test)
