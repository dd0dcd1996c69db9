import math

import pytest
import sympy as sp
import torch
from scipy import integrate, stats

from actfn.theory import derivations as D
from actfn import gaussian_segment_moments, piecewise_linear, pwl_class_moments, segment_edges

EDGES = torch.tensor([-math.inf, -2.0, -0.5, 0.0, 1.5, math.inf], dtype=torch.float64)
MU = torch.tensor([-1.0, 0.3, 2.5], dtype=torch.float64)


@pytest.mark.parametrize("sigma", [0.6, 1.0, 10.0])
def test_segment_moments_match_quadrature(sigma):
    m = gaussian_segment_moments(EDGES, MU, sigma)
    for n in range(3):
        for k, mu in enumerate(MU.tolist()):
            for j in range(len(EDGES) - 1):
                lo, hi = EDGES[j].item(), EDGES[j + 1].item()
                ref, _ = integrate.quad(lambda x: x ** n * stats.norm.pdf(x, mu, sigma), lo, hi)
                assert m[n][k, j].item() == pytest.approx(ref, rel=1e-7, abs=1e-10)


def test_segment_moments_are_the_sympy_closed_forms():
    for n in range(3):
        f = sp.lambdify((D.a, D.b, D.mu, D.sigma), D.truncated_moment_closed_form(n), "math")
        m = gaussian_segment_moments(EDGES, MU, 1.3)[n]
        for k, mu in enumerate(MU.tolist()):
            for j in range(1, len(EDGES) - 2):  # finite segments: the expression as printed
                assert m[k, j].item() == pytest.approx(f(EDGES[j].item(), EDGES[j + 1].item(), mu, 1.3), rel=1e-12)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_sympy_integral_equals_closed_form(n):
    assert D.closed_form_matches_integral(n)
    assert D.closed_form_matches_integral(n, -sp.oo, D.b)
    assert D.closed_form_matches_integral(n, D.a, sp.oo)
    assert D.closed_form_derivative_check(n) == (0, 0)


def _random_pwl(seed=0, n=9):
    g = torch.Generator().manual_seed(seed)
    knots = torch.linspace(-3, 3, n, dtype=torch.float64)
    return knots, torch.randn(n, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("sigma", [0.6, 1.0, 10.0])
def test_class_moments_match_quadrature_including_tails(sigma):
    knots, y = _random_pwl()
    mean, second = pwl_class_moments(y, knots, gaussian_segment_moments(segment_edges(knots), MU, sigma))
    f = lambda x: piecewise_linear(torch.tensor([x], dtype=torch.float64), y).item()
    for k, mu in enumerate(MU.tolist()):
        pts = sorted(set(knots.tolist()))
        lo, hi = mu - 12 * sigma, mu + 12 * sigma
        ref1 = integrate.quad(lambda x: f(x) * stats.norm.pdf(x, mu, sigma), lo, hi, points=pts, limit=200)[0]
        ref2 = integrate.quad(lambda x: f(x) ** 2 * stats.norm.pdf(x, mu, sigma), lo, hi, points=pts, limit=200)[0]
        assert mean[k].item() == pytest.approx(ref1, rel=1e-6, abs=1e-9)
        assert second[k].item() == pytest.approx(ref2, rel=1e-6, abs=1e-9)


def test_class_moments_match_monte_carlo():
    knots, y = _random_pwl(3)
    sigma = 1.7
    mean, second = pwl_class_moments(y, knots, gaussian_segment_moments(segment_edges(knots), MU, sigma))
    g = torch.Generator().manual_seed(0)
    n = 400_000
    for k, mu in enumerate(MU.tolist()):
        fx = piecewise_linear(mu + sigma * torch.randn(n, generator=g, dtype=torch.float64), y)
        se1 = fx.std().item() / math.sqrt(n)
        se2 = (fx ** 2).std().item() / math.sqrt(n)
        assert abs(fx.mean().item() - mean[k].item()) < 5 * se1
        assert abs((fx ** 2).mean().item() - second[k].item()) < 5 * se2


def test_segment_expectations_by_linearity():
    e1, e2 = D.segment_expectations()
    M0, M1, M2 = sp.symbols("M_0 M_1 M_2")
    assert sp.expand(e1 - (D.alpha * M0 + D.beta * M1)) == 0
    assert sp.expand(e2 - (D.alpha ** 2 * M0 + 2 * D.alpha * D.beta * M1 + D.beta ** 2 * M2)) == 0
