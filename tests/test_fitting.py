import numpy as np
import pytest
from scipy.special import expit

from actfn import fit_relu, fit_shapes, fit_swish


@pytest.mark.parametrize("beta,x0", [(2.5, 0.0), (1.2, 0.7), (6.0, -0.4)])
def test_swish_fit_recovers_parameters(beta, x0):
    x = np.linspace(-3, 3, 33)
    y = 1.7 * (x - x0) * expit(beta * (x - x0)) - 0.3
    fit = fit_swish(x, y)
    assert fit.params["beta"] == pytest.approx(beta, rel=1e-4)
    assert fit.params["x0"] == pytest.approx(x0, abs=1e-4)
    assert fit.r2 > 0.999999


def test_swish_fit_reports_uncertainty_with_noise():
    rng = np.random.default_rng(0)
    x = np.linspace(-3, 3, 33)
    y = (x * expit(2.5 * x)) + rng.normal(0, 0.05, x.size)
    fit = fit_swish(x, y)
    assert 0 < fit.beta_se < 2
    assert abs(fit.params["beta"] - 2.5) < 4 * fit.beta_se


def test_shape_families_tell_relu_from_sigmoid():
    x = np.linspace(-3, 3, 33)
    relu = fit_shapes(x, np.maximum(x - 0.5, 0))
    sig = fit_shapes(x, expit(3 * (x - 1)))
    assert relu["relu"].r2 > 0.9999 and relu["relu"].params["x0"] == pytest.approx(0.5, abs=1e-3)
    assert sig["sigmoid"].r2 > 0.9999 and sig["swish"].r2 < sig["sigmoid"].r2
    assert fit_relu(x, x).r2 > 0.9999  # a line is a ReLU with its kink outside the range
