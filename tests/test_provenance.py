"""The line each chapter ends with: how its page was made, naming no folder of the build machine."""
import re

import pytest

from actfn import params
from actfn.provenance import _value, page_provenance
from actfn.results import repo_root


def test_a_page_line_needs_the_parameter_check_first():
    params._validated.pop("theory", None)
    with pytest.raises(RuntimeError, match="before validate"):
        page_provenance("theory", "synthetic")


def test_the_page_line_names_commit_machine_dataset_parameters_and_time():
    params.validate("intro", {"classes": 8, "sigma": 0.6, "steps": 10, "seed": 3})
    start = params._started["intro"]
    line = page_provenance("intro", "Gaussian mixtures", checksums={"train": "ab" * 32}, device="cpu",
                           now=start + 12.4)
    assert re.search(r"commit `[0-9a-f]{12}`|no commit", line)
    assert "built 20" in line and "UTC" in line and "cores" in line and "device cpu" in line
    assert "Dataset: Gaussian mixtures (data checksums train `abababababab`)." in line
    assert "Executed in 12 s" in line
    assert "`classes=8`, `sigma=0.6`, `steps=10`, `seed=3`" in line


def test_no_folder_of_the_machine_is_shown():
    inside = str(repo_root().resolve() / "runs" / "x")
    assert _value(inside) == repr("runs/x")
    assert _value("/home/someone/results") == "'<a folder of this machine>'"
    assert _value("results") == repr("results") and _value(0.5) == "0.5"
