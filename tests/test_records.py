"""Records: provenance required, a record that no longer replays refused, and the record maker's log."""
import json
import sys
from pathlib import Path

import pytest
import torch

from actfn import data as D
from actfn import infomax as im
from actfn import infomax_record, records
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


def test_the_record_maker_refuses_a_log_of_other_parameters(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import make_record
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    work = tmp_path / "work" / "infomax-smoke-mnist_subset"
    work.mkdir(parents=True)
    (work / "invocations.json").write_text(json.dumps({"parameters": {"epochs": 99}, "invocations": []}))
    with pytest.raises(SystemExit, match="belongs to a run of other parameters"):
        make_record.main(["infomax", str(ROOT / "params" / "infomax" / "smoke.yaml"), "--work", str(tmp_path / "work"),
                          "--records", str(tmp_path / "records")])
    assert not (tmp_path / "records").exists()
