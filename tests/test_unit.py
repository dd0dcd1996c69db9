import numpy as np
import pytest

from actfn import UnitConfig, train_unit
from actfn import max_signed_objective


@pytest.mark.parametrize("kwargs,name", [({"classes": 1}, "classes"), ({"sigma": 0}, "sigma"),
                                         ({"sigma": -1.0}, "sigma"), ({"num_knots": 1}, "num_knots"),
                                         ({"mode": "exact"}, "mode"), ({"init": "tanh"}, "init"),
                                         ({"steps": 0}, "steps")])
def test_bad_parameters_are_refused_by_name(kwargs, name):
    with pytest.raises(ValueError, match=f"'{name}'"):
        UnitConfig(**kwargs)


def test_same_seed_same_numbers():
    a = train_unit(classes=5, sigma=1.0, mode="sample", steps=20, samples=500, seed=3)
    b = train_unit(classes=5, sigma=1.0, mode="sample", steps=20, samples=500, seed=3)
    c = train_unit(classes=5, sigma=1.0, mode="sample", steps=20, samples=500, seed=4)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.array_equal(a.values, c.values)


def test_training_lowers_the_objective_and_both_modes_agree():
    an = train_unit(classes=8, sigma=1.0, mode="analytic", steps=150)
    sa = train_unit(classes=8, sigma=1.0, mode="sample", steps=150, samples=10_000)
    assert an.loss[-1] < an.loss[0] - 0.01
    assert an.values[0] == 0  # the projection anchors the left knot
    assert abs(an.final_loss - sa.final_loss) < 0.01
    shape = lambda v: (v - v.mean()) / v.std()
    assert np.abs(shape(an.values) - shape(sa.values)).max() < 0.15
    assert -an.final_loss <= max_signed_objective(8)


def test_two_classes_leave_f_at_its_initialisation():
    run = train_unit(classes=2, sigma=1.0, mode="analytic", steps=50, init="identity")
    np.testing.assert_allclose(run.values, run.snapshots[0] - run.snapshots[0][0], atol=1e-6)


def test_nan_objective_stops_with_a_message(monkeypatch):
    from actfn.theory.correlation import MixtureCorrelation

    monkeypatch.setattr(MixtureCorrelation, "objective", lambda self, y: (y * float("nan")).sum())
    with pytest.raises(FloatingPointError, match="objective became nan at step 1"):
        train_unit(classes=4, sigma=1.0, mode="analytic", steps=3)
