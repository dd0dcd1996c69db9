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


def test_a_step_is_flagged_unidentified_and_a_swish_is_not():
    from actfn.theory.fitting import beta_identified

    x = np.linspace(-3, 3, 33)
    kink = fit_swish(x, np.where(x > 0.1, x - 0.1, 0.0))        # a ReLU: any steep beta fits the points
    assert kink.params["beta"] * (x[1] - x[0]) > 5 and not kink.identified
    smooth = fit_swish(x, (x - 0.2) * expit(2.0 * (x - 0.2)))
    assert smooth.identified
    assert not beta_identified(2.0, float("nan")) and not beta_identified(2.0, 0.0)
    assert not beta_identified(1.05e-3, 0.1) and beta_identified(0.5, 0.1) and not beta_identified(994.0, 0.1)
    assert beta_identified(20.0, 0.1, spacing=0.2) and not beta_identified(30.0, 0.1, spacing=0.2)


def test_precision_summary_weights_and_leaves_out():
    from actfn.theory.fitting import precision_summary

    # known answer: two precise fits at 2.0 and one vague wild one; the median and mean stay near 2
    out = precision_summary([2.0, 2.0, 50.0], [0.1, 0.1, 10.0])
    assert out["weighted_median"] == 2.0 and out["used"] == 3
    assert out["weighted_mean"] == pytest.approx((200 + 200 + 0.5) / (100 + 100 + 0.01))
    assert out["weighted_mean_se"] == pytest.approx(1 / np.sqrt(200.01))
    # unidentified and non-finite fits are left out, and counted
    out = precision_summary([2.0, 994.0, 3.0], [0.1, 0.0, float("nan")], identified=[True, False, True])
    assert out["used"] == 1 and out["left_out"] == 2 and out["weighted_median"] == 2.0
    # ties: equal weights, the lower middle value (inverted CDF)
    assert precision_summary([1.0, 3.0], [1.0, 1.0])["weighted_median"] == 1.0
    assert np.isnan(precision_summary([], [])["weighted_median"])


def test_weighted_fit_follows_the_weighted_points():
    # a Swish with beta 2 on the right half, a different shape on the left: weights on the right recover beta 2
    x = np.linspace(-3, 3, 61)
    y = np.where(x > 0, x * expit(2.0 * x), 0.3 * np.sin(3 * x))
    right = np.where(x > 0, 1.0, 1e-6)
    fit_w = fit_swish(x, y, weights=right)
    assert fit_w.params["beta"] == pytest.approx(2.0, rel=0.05) and fit_w.r2 > 0.999
    assert fit_swish(x, y).r2 < fit_w.r2


def test_a_bend_beyond_the_points_is_unidentified():
    x = np.linspace(-3, 3, 33)
    far = fit_swish(x, (x - 9.0) * expit(0.2 * (x - 9.0)))    # the bend at 9, the edge of the range of x0
    assert abs(far.params["x0"]) > 8.9 and not far.identified
