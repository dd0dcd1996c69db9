"""The one activation registry: every study reads it, and adding an activation is one entry."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from actfn import activations as A
from actfn import infomax as im
from actfn.infomax.fast_path import bank_kernel
from actfn.deep.models import activation_layers, build_model


@pytest.fixture
def gelu():
    """GELU, registered for one test the way a newcomer would add it: one entry, no kernel branch."""
    entry = A.register(A.Activation("gelu", F.gelu, lambda channels, per_channel, num_knots: nn.GELU(), 1.13))
    yield entry
    del A.REGISTRY["gelu"]


def test_the_compiled_kernel_has_the_registrys_branches():
    kernel = bank_kernel()
    if kernel is None:
        pytest.skip("the compiled InfoMax kernel is not built here")
    assert tuple(kernel.kinds()) == A.KERNEL_KINDS
    for i, name in enumerate(A.KERNEL_KINDS):
        assert A.kernel_index(name) == i


def test_swish_and_silu_are_one_function_under_two_names():
    z = torch.linspace(-6, 6, 101)
    assert torch.equal(A.activate(z, "swish"), A.activate(z, "silu"))
    assert A.kernel_index("swish") == A.kernel_index("silu")


def test_every_entry_agrees_with_its_module():
    z = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    for name, entry in A.REGISTRY.items():
        module = A.make_module(name, channels=5)
        if entry.learned:
            knots = module.values.detach().view(1, -1)
            torch.testing.assert_close(A.activate(z.unsqueeze(0), name, knots).squeeze(0), module(z))
        else:
            torch.testing.assert_close(A.activate(z, name), module(z))


def test_an_unknown_name_is_refused_with_the_names_there_are():
    with pytest.raises(ValueError, match="parameter 'activation' must hold values from .*'relu'.*got 'gleu'"):
        A.get("gleu")
    with pytest.raises(ValueError, match="already"):
        A.register(A.Activation("relu", torch.relu, lambda *a: nn.ReLU()))


def test_a_new_entry_trains_in_the_bank_and_in_a_network(gelu):
    """One registry entry is enough: the bank takes its PyTorch path for a model whose activation has
    no kernel branch (and still matches the plain reference), and a network builds with it."""
    x = torch.randn(256, 6, generator=torch.Generator().manual_seed(3))
    setting = im.Setting("gelu", "infomax", 1.0)
    run = im.train_bank([setting], [2], 4, x, 2, batch_size=64)
    assert not run.bank.kernel_branches
    model, curve = im.train_one_model(setting, 2, 4, x, 2, batch_size=64)
    torch.testing.assert_close(run.bank.weight[0, 0], model.linear.weight.detach(), rtol=1e-4, atol=1e-5)
    metrics = im.model_metrics(run.bank.weight[0, 0].detach(), run.bank.bias[0, 0].detach(), "gelu", x)
    assert 0 <= metrics["dead_units"] <= 4
    net = build_model("vgg11", in_channels=1, activation="gelu", width=0.0625)
    assert all(isinstance(m, nn.GELU) for m in activation_layers(net)) and activation_layers(net)
