"""The optimum of the correlation objective is a mixture of class posteriors (theory chapter)."""
import math

import numpy as np
import pytest
import sympy as sp
import torch

import actfn
from actfn.theory import derivations as D
from actfn.theory import optimum as T


def test_posterior_optimum_is_stationary_and_matches_the_learned_pwl():
    means = actfn.class_means(8, 2.0)
    opt = T.posterior_optimum(means, 1.0)
    assert T.stationarity_residual(opt) < 1e-6          # w_k = A |rho_k| + B
    run = actfn.train_unit(classes=8, sigma=1.0, steps=500)
    assert opt.objective <= run.final_loss + 1e-4       # no PWL f beats the function-space optimum
    f = opt(run.knots)
    design = np.vstack([f, np.ones_like(f)]).T
    coef, *_ = np.linalg.lstsq(design, run.values, rcond=None)
    r2 = 1 - ((run.values - design @ coef) ** 2).sum() / ((run.values - run.values.mean()) ** 2).sum()
    assert r2 > 0.999


def test_objective_never_beats_the_ceiling():
    for k in (3, 5, 8):
        opt = T.posterior_optimum(actfn.class_means(k, 6.0), 0.3)  # well separated: close to the ceiling
        assert -opt.objective <= actfn.max_signed_objective(k) + 1e-9
        assert -opt.objective > 0.9 * actfn.max_signed_objective(k)


def test_smoothing_identity_class_means_are_smoothed_f():
    knots = torch.linspace(-3, 3, 33, dtype=torch.float64)
    y = torch.relu(knots) + 0.3 * torch.cos(knots)
    means = actfn.class_means(5, 2.0)
    mean, _ = actfn.MixtureCorrelation(knots, means, 0.8).class_moments(y)
    # Gauss-Hermite is exact for polynomials and converges slowly across the kinks of a PWL f
    x = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_allclose(T.gaussian_smoothing(lambda v: v ** 2, x, 0.8), x ** 2 + 0.64, rtol=1e-12)
    smooth = T.gaussian_smoothing(lambda v: actfn.piecewise_linear(torch.as_tensor(v), y).numpy(), means.numpy(), 0.8,
                                  nodes=150)
    np.testing.assert_allclose(mean.numpy(), smooth, atol=2e-3)


def test_left_tail_rate_is_spacing_over_variance():
    expr, slope = D.posterior_log_odds()
    assert slope == sp.Symbol("Delta", real=True) / D.sigma ** 2
    assert T.left_tail_rate([0.0, 0.5, 1.0], 0.5) == pytest.approx(2.0)
    # the optimum's slope decays at that rate far to the left
    opt = T.posterior_optimum(actfn.class_means(8, 2.0), 1.0)
    x = np.linspace(-30, -20, 1001)
    rate = np.gradient(np.log(np.abs(opt.derivative(x))), x)
    assert rate[500] == pytest.approx(T.left_tail_rate(opt.means, 1.0), rel=1e-2)
    # and the closed-form derivative is the derivative
    xs = np.linspace(-3, 3, 61)
    np.testing.assert_allclose(opt.derivative(xs), (opt(xs + 1e-6) - opt(xs - 1e-6)) / 2e-6, atol=1e-6)


def test_tail_segments_equal_the_sympy_closed_forms():
    edges = torch.tensor([-math.inf, -1.0, 0.5, math.inf], dtype=torch.float64)
    mu, sigma = 0.3, 1.4
    m = actfn.gaussian_segment_moments(edges, torch.tensor([mu], dtype=torch.float64), sigma)
    for n in range(3):
        left = sp.lambdify((D.b, D.mu, D.sigma), D.truncated_moment_closed_form(n, -sp.oo, D.b), "math")
        right = sp.lambdify((D.a, D.mu, D.sigma), D.truncated_moment_closed_form(n, D.a, sp.oo), "math")
        assert m[n][0, 0].item() == pytest.approx(left(-1.0, mu, sigma), rel=1e-12)
        assert m[n][0, 2].item() == pytest.approx(right(0.5, mu, sigma), rel=1e-12)


def test_optimum_profile_and_dip_have_known_answers():
    # well separated classes: the optimum approaches the one-class detector and its ceiling
    opt = T.posterior_optimum(actfn.class_means(4, 6.0), 0.3)
    prof = T.optimum_profile(opt)
    assert prof["positive"] == 1 and prof["ceiling_fraction"] > 0.95
    # a hand-made optimum: weights high on the last class only, correlations known by construction
    fake = T.PosteriorOptimum(np.array([0.5, 0.0, 0.2, 1.0]), np.array([-0.3, -0.01, -0.2, 0.51]), -0.1,
                              np.array([-3.0, -1.0, 1.0, 3.0]), 0.5)
    dip = T.dip_location(fake, np.linspace(-4, 4, 801))
    assert dip["boundary_class_mean"] == -1.0 and dip["smallest_weight_mean"] == -1.0 and dip["spacing"] == 2.0
    assert abs(dip["f_min_at"] - (-1.0)) < 0.1 and abs(dip["spacings_from_boundary"]) < 0.05


def test_the_stationarity_residual_falls_as_the_optimiser_runs_longer():
    rows = T.stationarity_by_iterations(actfn.class_means(8, 2.0), 1.0, iterations=(5, 200))
    assert rows[1]["residual"] < rows[0]["residual"] and rows[1]["objective"] <= rows[0]["objective"] + 1e-12
