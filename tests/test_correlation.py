import numpy as np
import pytest
import torch

from actfn import (MixtureCorrelation, batch_classwise_correlations, class_means, correlation_objective,
                   piecewise_linear, signed_objective)
from actfn.theory import derivations as D


def _batch(seed=0, n=2000, k=5, units=3):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(k, (n,), generator=g)
    f = torch.randn(n, units, generator=g, dtype=torch.float64) + labels[:, None].double() * 0.3
    return f, labels, k


def test_batch_correlations_match_numpy():
    f, labels, k = _batch()
    rho = batch_classwise_correlations(f, labels, k)
    onehot = np.eye(k)[labels.numpy()]
    for u in range(f.shape[1]):
        for c in range(k):
            ref = np.corrcoef(f[:, u].numpy(), onehot[:, c])[0, 1]
            assert rho[u, c].item() == pytest.approx(ref, rel=1e-10)


def test_zero_sum_with_equal_priors_and_weighted_in_general():
    f, labels, k = _batch()
    rho = batch_classwise_correlations(f, labels, k)
    p = torch.bincount(labels, minlength=k).double() / len(labels)
    weighted = (torch.sqrt(p * (1 - p)) * rho).sum(-1)
    torch.testing.assert_close(weighted, torch.zeros_like(weighted))
    # closed form, equal priors: the plain sum vanishes
    knots = torch.linspace(-3, 3, 33, dtype=torch.float64)
    mix = MixtureCorrelation(knots, class_means(7, 2.0), 1.0)
    assert mix.correlations(torch.randn(33, dtype=torch.float64)).sum().item() == pytest.approx(0, abs=1e-12)
    weighted_sym, plain_sym = D.zero_sum_identity(3, equal_priors=False)
    assert weighted_sym == 0 and plain_sym != 0
    assert D.zero_sum_identity(4, equal_priors=True) == (0, 0)


def test_budget_identity_and_two_class_degeneracy():
    assert D.budget_identity(3) == 0
    assert D.two_class_objective() == (0, 0)
    knots = torch.linspace(-3, 3, 33, dtype=torch.float64)
    mix = MixtureCorrelation(knots, class_means(2, 2.0), 1.0)
    y = torch.randn(33, dtype=torch.float64, requires_grad=True)
    loss = mix.objective(y)
    loss.backward()
    assert loss.item() == pytest.approx(0, abs=1e-12)
    assert y.grad.abs().max().item() < 1e-12


def test_objective_is_invariant_to_positive_affine_maps():
    knots = torch.linspace(-3, 3, 33, dtype=torch.float64)
    mix = MixtureCorrelation(knots, class_means(8, 2.0), 0.8)
    y = torch.randn(33, dtype=torch.float64)
    base = mix.objective(y).item()
    assert mix.objective(3.0 * y + 5.0).item() == pytest.approx(base, rel=1e-10)
    assert mix.objective(-y).item() != pytest.approx(base)


def test_closed_form_correlations_match_monte_carlo():
    knots = torch.linspace(-3, 3, 33, dtype=torch.float64)
    means = class_means(6, 2.0)
    sigma = 1.0
    y = torch.relu(knots) + 0.3 * torch.sin(3 * knots)
    exact = MixtureCorrelation(knots, means, sigma).correlations(y)
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(6, (400_000,), generator=g)
    x = means[labels] + sigma * torch.randn(400_000, generator=g, dtype=torch.float64)
    mc = batch_classwise_correlations(piecewise_linear(x, y), labels, 6)
    torch.testing.assert_close(mc, exact, atol=6e-3, rtol=0)


def test_gradcheck_of_analytic_objective():
    knots = torch.linspace(-3, 3, 9, dtype=torch.float64)
    mix = MixtureCorrelation(knots, class_means(5, 2.0), 0.9)
    y = torch.randn(9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(mix.objective, (y,))


def test_signed_objective_definition():
    rho = torch.tensor([-0.5, -0.1, 0.6])
    assert signed_objective(rho).item() == pytest.approx(0.25 + 0.01 - 0.36)


def test_batch_objective_sums_units_and_handles_absent_class():
    f, labels, _ = _batch(k=4)
    rho = batch_classwise_correlations(f, labels, 6)  # classes 4 and 5 never occur
    assert torch.all(rho[:, 4:] == 0)
    assert correlation_objective(f, labels, 6).item() == pytest.approx(signed_objective(rho).sum().item())
