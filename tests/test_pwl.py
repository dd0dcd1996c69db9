import math

import pytest
import torch

from actfn import PiecewiseLinearActivation, piecewise_linear, piecewise_linear_reference


def test_default_is_the_seeds_activation():
    act = PiecewiseLinearActivation()
    assert act.values.shape == (33,)
    assert (act.lo, act.hi) == (-3.0, 3.0)
    x = torch.linspace(-5, 5, 101)
    torch.testing.assert_close(act(x), torch.relu(x))  # ReLU init, linear extrapolation included


@pytest.mark.parametrize("per_channel", [False, True])
def test_gradcheck_float64(per_channel):
    torch.manual_seed(0)
    c = 3
    y = torch.randn((c, 9) if per_channel else (9,), dtype=torch.float64, requires_grad=True)
    # keep points away from knots, where f is not differentiable in x
    x = (torch.rand(4, c, 5, dtype=torch.float64) * 8 - 4)
    h = 6 / 8
    x = torch.where(((x + 3) / h - torch.round((x + 3) / h)).abs() < 1e-3, x + 0.01, x).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: piecewise_linear(a, b), (x, y))


@pytest.mark.parametrize("per_channel", [False, True])
def test_matches_reference_forward_and_backward(per_channel):
    torch.manual_seed(1)
    c = 4
    y = torch.randn((c, 33) if per_channel else (33,))
    x = torch.randn(8, c, 6, 6) * 3
    # exactly on every knot, and far outside the range
    x[0, :, 0, :] = torch.linspace(-3, 3, 6)
    x[0, :, 1, 0] = 1e4
    x[0, :, 1, 1] = -1e4
    outs, grads = [], []
    for fn in (piecewise_linear, piecewise_linear_reference):
        xx, yy = x.clone().requires_grad_(), y.clone().requires_grad_()
        out = fn(xx, yy)
        g = torch.randn_like(out, generator=torch.Generator().manual_seed(2))
        out.backward(g)
        outs.append(out)
        grads.append((xx.grad, yy.grad))
    torch.testing.assert_close(outs[0], outs[1])
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-4, atol=1e-3)


def test_values_at_knots_and_linear_tails():
    y = torch.tensor([0.0, 1.0, 4.0, 2.0])  # knots -3, -1, 1, 3
    x = torch.tensor([-3.0, -1.0, 1.0, 3.0, 0.0, -5.0, 5.0])
    expected = torch.tensor([0.0, 1.0, 4.0, 2.0, 2.5, -1.0, 0.0])
    torch.testing.assert_close(piecewise_linear(x, y), expected)


def test_saves_only_input_and_knots_for_backward():
    saved = []

    def pack(t):
        saved.append(t)
        return t

    act = PiecewiseLinearActivation()
    x = torch.randn(16, 8, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        act(x)
    assert len(saved) == 2
    assert {tuple(t.shape) for t in saved} == {(16, 8), (33,)}


def test_nan_propagates():
    act = PiecewiseLinearActivation()
    x = torch.tensor([float("nan"), 1.0], requires_grad=True)
    out = act(x)
    assert math.isnan(out[0].item()) and out[1].item() == pytest.approx(1.0)
    out.sum().backward()  # must not crash


def test_per_channel_parameters_and_shape_check():
    act = PiecewiseLinearActivation(num_channels=5)
    assert act.values.shape == (5, 33)
    assert act(torch.randn(2, 5, 3, 3)).shape == (2, 5, 3, 3)
    with pytest.raises(ValueError, match="5 channels"):
        act(torch.randn(2, 4, 3, 3))


@pytest.mark.parametrize("init,fn", [("relu", torch.relu), ("identity", lambda t: t),
                                     ("swish", lambda t: t * torch.sigmoid(t))])
def test_inits(init, fn):
    act = PiecewiseLinearActivation(init=init)
    torch.testing.assert_close(act.values.detach(), fn(act.knots))


def test_projection_anchors_and_normalises():
    act = PiecewiseLinearActivation(num_channels=3, init="identity")
    act.project_()
    assert torch.all(act.values[:, 0] == 0)
    act.project_(normalize=True)
    torch.testing.assert_close(act.values.norm(dim=-1), torch.ones(3))
    assert torch.all(act.values[:, 0] == 0)


@pytest.mark.parametrize("kwargs,name", [({"num_knots": 1}, "num_knots"), ({"init": "gelu"}, "init"),
                                         ({"x_range": (3, -3)}, "x_range"), ({"num_channels": 0}, "num_channels")])
def test_bad_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        PiecewiseLinearActivation(**kwargs)
