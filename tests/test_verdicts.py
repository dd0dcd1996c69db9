"""The shared verdict vocabulary: intervals decide, thresholds are shown moving, scale makes claims untestable."""
import pytest

from actfn.verdicts import (NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, Scale, above_zero, band, claim_row, sensitivity)


def test_a_band_verdict_is_drawn_from_the_interval():
    assert band(2.5, 0.05, 2.5, 0.25)[0] == REPRODUCED          # [2.40, 2.60] inside [2.25, 2.75]
    assert band(3.5, 0.1, 2.5, 0.25)[0] == NOT_REPRODUCED       # [3.30, 3.70] wholly above
    verdict, why = band(2.5, 7.5, 2.5, 0.25)                    # a fit whose s.e. is 7.5 decides nothing
    assert verdict == NOT_TESTABLE and "too wide" in why
    assert band(2.8, 0.1, 2.5, 0.25)[0] == NOT_TESTABLE         # straddles the upper edge
    assert band(float("nan"), 0.1, 2.5, 0.25)[0] == NOT_TESTABLE
    assert band(2.5, float("inf"), 2.5, 0.25)[0] == NOT_TESTABLE


def test_sensitivity_shows_how_a_verdict_moves():
    at = lambda t: REPRODUCED if 0.04 <= t else NOT_REPRODUCED
    assert sensitivity(at, 0.05) == f"at 0.025: {NOT_REPRODUCED}; at 0.1: {REPRODUCED}"
    assert sensitivity(lambda t: REPRODUCED, 0.05) == "the same at 0.025 and 0.1"


def test_scale_names_what_a_claim_needs():
    small = Scale("fashion_mnist", seeds=1, width=0.25, epochs=3, images=8000)
    assert small.text() == "fashion_mnist, 1 seed, width ×0.25, 3 epochs, 8000 training images"
    missing = small.missing(dataset="cifar10", seeds=3, width=1.0, epochs=20, images=50000)
    assert len(missing) == 5 and "the claim is about cifar10" in missing[0]
    assert Scale("cifar10", seeds=3, epochs=20, images=50000).missing(dataset="cifar10", seeds=3, epochs=20) == []


def test_a_row_must_use_the_vocabulary():
    assert claim_row("c", "m", "k", NOT_TESTABLE, "r", scale="s")["scale"] == "s"
    with pytest.raises(ValueError, match="'not run' is not one of"):
        claim_row("c", "m", "k", "not run", "r")


def test_above_zero_and_combine():
    from actfn.verdicts import DIFFERS, above_zero, combine

    assert above_zero(1.0, 0.1)[0] == REPRODUCED and above_zero(-1.0, 0.1)[0] == NOT_REPRODUCED
    assert above_zero(0.1, 0.1)[0] == NOT_TESTABLE and above_zero(float("nan"), 0.1)[0] == NOT_TESTABLE
    assert combine([REPRODUCED, REPRODUCED]) == REPRODUCED and combine([REPRODUCED, NOT_TESTABLE]) == NOT_TESTABLE
    assert combine([NOT_REPRODUCED] * 2) == NOT_REPRODUCED and combine([REPRODUCED, NOT_REPRODUCED]) == DIFFERS


def test_a_few_seeds_widen_the_interval_to_students_t():
    from actfn.verdicts import q95

    assert q95() == pytest.approx(1.959964) and q95(2) == pytest.approx(4.302653) and q95(1000) == pytest.approx(1.96, abs=3e-3)
    with pytest.raises(ValueError, match="degrees of freedom"):
        q95(0)
    # 0.5 ± 1.96 * 0.1 lies in 0.5 ± 0.25; with 2 df the interval (± 0.43) does not
    assert band(0.5, 0.1, 0.5, 0.25)[0] == REPRODUCED
    status, why = band(0.5, 0.1, 0.5, 0.25, df=2)
    assert status == NOT_TESTABLE and "t interval (2 df)" in why
    assert above_zero(0.3, 0.1)[0] == REPRODUCED and above_zero(0.3, 0.1, df=2)[0] == NOT_TESTABLE
