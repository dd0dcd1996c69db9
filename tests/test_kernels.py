"""The compiled CPU kernel against the PyTorch path and the plain-autograd reference."""
import math
import platform

import pytest
import torch

from actfn import PiecewiseLinearActivation, kernels, piecewise_linear, piecewise_linear_reference
from actfn.pwl import PiecewiseLinearFunction

needs_kernel = pytest.mark.skipif(kernels.cpu_kernel() is None, reason="compiled kernel unavailable here")


def run(fn, x, y, g):
    xx, yy = x.clone().requires_grad_(), y.clone().requires_grad_()
    out = fn(xx, yy)
    out.backward(g)
    return out.detach(), xx.grad, yy.grad


def torch_path(x, y):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ACTFN_KERNELS", "off")
        return piecewise_linear(x, y)


# shapes that take every branch of the kernel: shared chunks, per-channel large planes (channel walk),
# per-channel small planes (sample blocks, vector loops when the plane is a multiple of 8 -- 16-wide
# then 8-wide on AVX-512, channel groups of 64 in its forward pass -- per plane otherwise; on AVX-512
# 4x4 planes read 8 samples side by side in the forward pass and 4 in the backward pass: 20 and 3 samples
# leave short runs, and 300 samples of 100 channels several sample blocks in the backward pass, each
# ending in a short run), 2-D (batch, channels) and
# 1-D inputs, lengths that leave a scalar tail
SHAPES = [((64, 16, 16, 16), False), ((64, 16, 16, 16), True), ((96, 64, 4, 4), True),
          ((32, 24, 5, 5), True), ((300, 20), True), ((300, 20), False), ((1001,), False), ((7, 3, 9, 9), True),
          ((50, 6, 2, 4), True), ((10, 3, 24), True), ((20, 100, 4, 4), True), ((3, 20, 4, 4), True),
          ((300, 100, 4, 4), True)]


@needs_kernel
@pytest.mark.parametrize("shape,per_channel", SHAPES)
def test_kernel_matches_torch_path_and_reference(shape, per_channel):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen) * 2.5
    flat = x.view(-1)
    # exactly on knots and segment edges, and far outside the range
    flat[:33] = torch.linspace(-3, 3, 33)
    flat[33:40] = torch.tensor([1e4, -1e4, 3.0, -3.0, 2.8125, -2.8125, 1e-7])
    y = torch.randn((shape[1], 33) if per_channel else (33,), generator=gen)
    g = torch.randn(shape, generator=gen)
    fast = run(piecewise_linear, x, y, g)
    eager = run(torch_path, x, y, g)
    ref = run(piecewise_linear_reference, x, y, g)
    for a, b in ((fast, eager), (fast, ref)):
        torch.testing.assert_close(a[0], b[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(a[1], b[1], rtol=1e-5, atol=1e-5)
        # knot gradients are sums over many elements: summation order differs
        torch.testing.assert_close(a[2], b[2], rtol=1e-4, atol=1e-3 * math.sqrt(x.numel() / y.numel()) / 100)


@needs_kernel
@pytest.mark.parametrize("knots", [2, 9, 17, 33, 65])
@pytest.mark.parametrize("shape,per_channel", [((40, 8, 4, 4), True), ((40, 8, 4, 4), False), ((20, 6, 16, 16), True)])
def test_kernel_matches_reference_for_any_number_of_knots(knots, shape, per_channel):
    # up to 33 knots the AVX-512 build reads the tables with register permutes (masked below 32
    # segments), above that with gathers
    gen = torch.Generator().manual_seed(knots)
    x = torch.randn(shape, generator=gen) * 2.5
    y = torch.randn((shape[1], knots) if per_channel else (knots,), generator=gen)
    g = torch.randn(shape, generator=gen)
    fast, ref = run(piecewise_linear, x, y, g), run(piecewise_linear_reference, x, y, g)
    torch.testing.assert_close(fast[0], ref[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast[1], ref[1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast[2], ref[2], rtol=1e-4, atol=1e-3)


@needs_kernel
@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() != "AVX512", reason="the CPU has no AVX-512")
def test_avx2_and_avx512_builds_give_the_same_bits():
    # the book's default kernels are portable: the AVX2 build (other CPUs) and the AVX-512 build, with
    # either of its backward lanes, give the same bits forward and backward, knot gradients included
    avx2, name = kernels._build(widest=False)
    assert name == "cpp-avx2" and avx2.backward_lanes() == "ymm8"
    fast = kernels.cpu_kernel()
    assert not fast.small_planes_in_order()
    lanes = fast.backward_lanes()
    extra = [((128, 64, 16, 16), True), ((256, 512, 4, 4), True), ((256, 512, 4, 4), False), ((40, 8, 4, 4), True)]
    try:
        for lane in ("zmm16", "ymm8x2"):
            fast.set_backward_lanes(lane)
            for (shape, per_channel), knots in [(s, 33) for s in SHAPES + extra] + [(s, 65) for s in SHAPES[:4]]:
                gen = torch.Generator().manual_seed(1)
                x = torch.randn(shape, generator=gen) * 2.5
                y = torch.randn((shape[1], knots) if per_channel else (knots,), generator=gen)
                g = torch.randn(shape, generator=gen)
                assert torch.equal(avx2.forward(x, y, -3.0, 3.0), fast.forward(x, y, -3.0, 3.0)), (shape, per_channel)
                for a, b in zip(avx2.backward(g, x, y, -3.0, 3.0, True, True), fast.backward(g, x, y, -3.0, 3.0, True, True)):
                    assert torch.equal(a, b), (lane, shape, per_channel, knots)
    finally:
        fast.set_backward_lanes(lanes)


@needs_kernel
@pytest.mark.parametrize("per_channel", [False, True])
def test_kernel_gradcheck_float64(per_channel):
    torch.manual_seed(0)
    y = torch.randn((3, 9) if per_channel else (9,), dtype=torch.float64, requires_grad=True)
    x = torch.rand(4, 3, 8, dtype=torch.float64) * 8 - 4
    h = 6 / 8
    x = torch.where(((x + 3) / h - torch.round((x + 3) / h)).abs() < 1e-3, x + 0.01, x).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: piecewise_linear(a, b), (x, y))


@needs_kernel
@pytest.mark.parametrize("shape,per_channel", [((128, 64, 16, 16), False), ((128, 64, 16, 16), True),
                                               ((256, 512, 4, 4), True)])
def test_knot_gradients_are_bit_identical_across_runs_and_thread_counts(shape, per_channel):
    gen = torch.Generator().manual_seed(3)
    x, g = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
    y = torch.randn((shape[1], 33) if per_channel else (33,), generator=gen)
    first = run(piecewise_linear, x, y, g)[2]
    assert torch.equal(first, run(piecewise_linear, x, y, g)[2])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = run(piecewise_linear, x, y, g)[2]
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(first, single)


@needs_kernel
@pytest.mark.parametrize("x_grad,y_grad", [(True, True), (True, False), (False, True)])
def test_eager_cpu_path_is_the_operator_with_its_cpp_autograd_node(x_grad, y_grad):
    # piecewise_linear on CPU tensors calls torch.ops.actfn.pwl, whose autograd node is written in C++;
    # it gives the kernel's own bits, forward and backward, and only the gradients asked for
    gen = torch.Generator().manual_seed(5)
    x, g = torch.randn(6, 4, 4, 4, generator=gen) * 2, torch.randn(6, 4, 4, 4, generator=gen)
    y = torch.randn(4, 33, generator=gen)
    xa, ya = x.clone().requires_grad_(x_grad), y.clone().requires_grad_(y_grad)
    out = piecewise_linear(xa, ya)
    assert out.grad_fn.name().endswith("PwlFunction>")
    out.backward(g)
    kernel = kernels.cpu_kernel()
    assert torch.equal(out.detach(), kernel.forward(x, y, -3.0, 3.0))
    gx, gy = kernel.backward(g, x, y, -3.0, 3.0, x_grad, y_grad)
    assert (xa.grad is not None) == x_grad and (ya.grad is not None) == y_grad
    assert not x_grad or torch.equal(xa.grad, gx)
    assert not y_grad or torch.equal(ya.grad, gy)
    # the operator's own backward: an unneeded gradient comes back empty
    gx, gy = torch.ops.actfn.pwl_backward(g, x, y, -3.0, 3.0, True, False)
    assert gx.shape == x.shape and gy.numel() == 0


def test_off_takes_the_pytorch_path_even_after_the_operator_is_registered(monkeypatch):
    x, y = torch.randn(4, 8, requires_grad=True), torch.randn(33, requires_grad=True)
    piecewise_linear(x, y)                                   # (registers the operator where it loads)
    monkeypatch.setenv("ACTFN_KERNELS", "off")
    assert piecewise_linear(x, y).grad_fn.name() == "PiecewiseLinearFunctionBackward"


def test_the_pytorch_path_matches_the_specification():
    gen = torch.Generator().manual_seed(6)
    x, g = torch.randn(6, 4, 4, 4, generator=gen) * 2.5, torch.randn(6, 4, 4, 4, generator=gen)
    for y in (torch.randn(4, 33, generator=gen, dtype=torch.float64), torch.randn(33, generator=gen, dtype=torch.float64)):
        xd = x.double()
        ref = run(piecewise_linear_reference, xd, y, g.double())
        path = run(lambda a, b: PiecewiseLinearFunction.apply(a, b, -3.0, 3.0), xd, y, g.double())
        for a, b in zip(ref, path):
            torch.testing.assert_close(a, b)


def cpu_vendor() -> str:
    try:
        return next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("vendor_id")), "")
    except OSError:
        return ""


@needs_kernel
@pytest.mark.skipif(kernels.backend() != "cpp-avx512", reason="the AVX-512 build has the two backward lanes")
def test_backward_lanes_give_the_same_bits_and_intel_cores_take_the_ymm_halves():
    kernel = kernels.cpu_kernel()
    default = kernel.backward_lanes()
    if cpu_vendor():
        assert default == ("ymm8x2" if cpu_vendor() == "GenuineIntel" else "zmm16")
    assert kernels.cpu_path() == f"cpp-avx512 (backward pass: {default})"
    in_order = kernel.small_planes_in_order()
    try:
        for order, (shape, per_channel) in ((o, c) for o in (False, True)
                                            for c in SHAPES + [((8, 5, 32, 32), True), ((6, 3, 4, 4), True)]):
            kernel.set_small_planes_in_order(order)
            gen = torch.Generator().manual_seed(5)
            x = torch.randn(shape, generator=gen) * 2.5
            x.view(-1)[:6] = torch.tensor([float("nan"), float("inf"), -float("inf"), 1e4, -1e4, 3.0])
            y = torch.randn((shape[1], 33) if per_channel else (33,), generator=gen)
            g = torch.randn(shape, generator=gen)
            out = {}
            for lanes in ("zmm16", "ymm8x2"):
                kernel.set_backward_lanes(lanes)
                assert kernel.backward_lanes() == lanes
                out[lanes] = kernel.backward(g, x, y, -3.0, 3.0, True, True)
            for a, b in zip(out["zmm16"], out["ymm8x2"]):
                assert torch.equal(a.nan_to_num(), b.nan_to_num()) and torch.equal(a.isnan(), b.isnan()), shape
        with pytest.raises(RuntimeError, match="zmm16 or ymm8x2"):
            kernel.set_backward_lanes("xmm4")
    finally:
        kernel.set_backward_lanes(default)
        kernel.set_small_planes_in_order(in_order)


@needs_kernel
@pytest.mark.skipif(kernels.backend() != "cpp-avx512" or cpu_vendor() != "GenuineIntel",
                    reason="the tuned order is Intel's, in the AVX-512 build")
def test_the_tuned_order_is_opt_in(monkeypatch):
    kernel = kernels.cpu_kernel()
    assert not kernel.small_planes_in_order() and "tuned" not in kernels.cpu_path()
    monkeypatch.setenv("ACTFN_KERNELS_TUNED", "1")
    monkeypatch.setattr(kernels, "_state", {})
    try:
        assert kernels.cpu_kernel().small_planes_in_order() and "tuned order" in kernels.cpu_path()
    finally:
        kernel.set_small_planes_in_order(False)


@needs_kernel
@pytest.mark.skipif(kernels.backend() != "cpp-avx512", reason="the AVX-512 build has the two orders")
@pytest.mark.parametrize("in_order", [False, True])
def test_both_orders_of_small_planes_match_the_reference_and_are_deterministic(in_order):
    # per-channel 4x4 planes: samples side by side with 4 histogram copies, or in memory order with one
    # (Intel's default); other sums, so each is checked against the reference and across thread counts
    kernel = kernels.cpu_kernel()
    default = kernel.small_planes_in_order()
    assert default is bool(kernels.tuned() and cpu_vendor() == "GenuineIntel")   # opt-in, on Intel only
    threads = torch.get_num_threads()
    try:
        kernel.set_small_planes_in_order(in_order)
        assert kernel.small_planes_in_order() == in_order
        for shape in ((96, 64, 4, 4), (300, 100, 4, 4), (3, 20, 4, 4), (256, 512, 4, 4)):
            gen = torch.Generator().manual_seed(6)
            x, g = torch.randn(shape, generator=gen) * 2.5, torch.randn(shape, generator=gen)
            y = torch.randn(shape[1], 33, generator=gen)
            fast, ref = run(piecewise_linear, x, y, g), run(piecewise_linear_reference, x, y, g)
            torch.testing.assert_close(fast[1], ref[1], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(fast[2], ref[2], rtol=1e-4, atol=1e-3 * math.sqrt(x.numel() / y.numel()) / 100)
            torch.set_num_threads(1)
            assert torch.equal(run(piecewise_linear, x, y, g)[2], fast[2])
            torch.set_num_threads(threads)
    finally:
        torch.set_num_threads(threads)
        kernel.set_small_planes_in_order(default)


@needs_kernel
def test_nan_and_inf_propagate_through_the_kernel():
    y = torch.relu(torch.linspace(-3, 3, 33))
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), 1.0] * 4)
    out, gx, gy = run(piecewise_linear, x, y, torch.ones_like(x))
    eager = run(torch_path, x, y, torch.ones_like(x))
    torch.testing.assert_close(out, eager[0], equal_nan=True)
    torch.testing.assert_close(gx, eager[1], equal_nan=True)
    assert math.isnan(out[0]) and out[1] == float("inf") and out[3] == pytest.approx(1.0)
    assert torch.isnan(gy).any()  # the NaN input reaches the knot gradient instead of vanishing


@needs_kernel
def test_bfloat16_inputs_use_float_tables():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(8, 4, 8, 8, generator=gen)
    y = torch.randn(33, generator=gen)
    out = piecewise_linear(x.bfloat16(), y)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), piecewise_linear(x.bfloat16().float(), y), rtol=1e-2, atol=1e-2)


def test_backend_choice_is_checked_and_reported(monkeypatch):
    monkeypatch.setenv("ACTFN_KERNELS", "fast")
    with pytest.raises(ValueError, match="ACTFN_KERNELS"):
        kernels.backend()
    monkeypatch.setenv("ACTFN_KERNELS", "off")
    assert kernels.cpu_kernel() is None and kernels.backend().startswith("torch")
    monkeypatch.setenv("ACTFN_PWL_BACKEND", "torch")      # the old name is refused, not silently ignored
    with pytest.raises(ValueError, match="ACTFN_PWL_BACKEND is now ACTFN_KERNELS"):
        kernels.backend()


def test_a_failed_build_warns_and_falls_back_only_in_auto(monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("g++: not found")

    monkeypatch.setattr(kernels, "_build", broken)
    monkeypatch.setattr(kernels, "_state", {})
    monkeypatch.setenv("ACTFN_KERNELS", "auto")
    with pytest.warns(RuntimeWarning, match="g\\+\\+: not found"):
        assert kernels.cpu_kernel() is None
    assert "unavailable" in kernels.backend()
    x = torch.randn(10, requires_grad=True)
    piecewise_linear(x, torch.relu(torch.linspace(-3, 3, 33))).sum().backward()  # the PyTorch path runs
    monkeypatch.setenv("ACTFN_KERNELS", "require")
    with pytest.raises(kernels.KernelUnavailable, match="could not be built"):
        kernels.cpu_kernel()
    # the InfoMax bank's kernel likewise: a warning and the PyTorch path, or an error with cpp
    monkeypatch.setenv("ACTFN_KERNELS", "auto")
    with pytest.warns(RuntimeWarning, match="InfoMax kernel could not be built"):
        assert kernels.infomax_kernel() is None
    assert "unavailable" in kernels.infomax_backend()
    monkeypatch.setenv("ACTFN_KERNELS", "require")
    with pytest.raises(kernels.KernelUnavailable, match="infomax_cpu.cpp"):
        kernels.infomax_kernel()
    # and oneDNN's product, when asked for: torch.mm instead, or an error with require
    monkeypatch.setenv("ACTFN_ONEDNN", "1")
    monkeypatch.setenv("ACTFN_KERNELS", "auto")
    with pytest.warns(RuntimeWarning, match="torch.mm"):
        assert kernels.onednn_matmul() is None
    assert kernels.products_backend() == "torch.mm"
    monkeypatch.setenv("ACTFN_KERNELS", "require")
    with pytest.raises(kernels.KernelUnavailable, match="onednn_matmul.cpp"):
        kernels.onednn_matmul()


def onednn():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ACTFN_ONEDNN", "1")
        return kernels.onednn_matmul()


def test_onednn_is_opt_in_and_tested_when_it_loads(monkeypatch):
    monkeypatch.delenv("ACTFN_ONEDNN", raising=False)
    assert kernels.onednn_matmul() is None and kernels.products_backend() == "torch.mm"
    monkeypatch.setenv("ACTFN_ONEDNN", "yes")
    with pytest.raises(ValueError, match="ACTFN_ONEDNN must be 0 or 1"):
        kernels.onednn_matmul()

    class Broken:          # as if PyTorch changed the function's signature
        @staticmethod
        def matmul_into(a, b, out, beta):
            raise TypeError("incompatible function arguments")

    monkeypatch.setenv("ACTFN_ONEDNN", "1")
    monkeypatch.setattr(kernels, "_state", {})
    monkeypatch.setattr(kernels, "_build", lambda *a, **k: (Broken, "cpp-test"))
    if torch.backends.mkldnn.is_available():
        with pytest.warns(RuntimeWarning, match="failed its self-test"):
            assert kernels.onednn_matmul() is None
        assert kernels.products_backend() == "torch.mm"


@pytest.mark.skipif(onednn() is None, reason="PyTorch without oneDNN")
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_onednn_product_into_an_output_equals_torch_mm(beta, monkeypatch):
    monkeypatch.setenv("ACTFN_ONEDNN", "1")
    gen = torch.Generator().manual_seed(7)
    a = torch.randn(70, 300, generator=gen)
    b = torch.randn(33, 300, generator=gen).T                # a transposed view, as the bank passes x^T
    out = torch.randn(80, 33, generator=gen)[5:75]          # a slice of a larger tensor, written in place
    start, whole = out.clone(), out._base.clone()
    kernels.onednn_matmul().matmul_into(a, b, out, beta)
    torch.testing.assert_close(out, a @ b + beta * start, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(out._base[:5], whole[:5], rtol=0, atol=0)          # nothing outside it touched
    torch.testing.assert_close(out._base[75:], whole[75:], rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="shapes"):
        kernels.onednn_matmul().matmul_into(a, b.T, out, 0.0)


@pytest.mark.parametrize("blocks", [1, 7, 64])
def test_blocked_segment_histogram_equals_the_plain_one(blocks):
    from actfn.pwl import segment_histogram

    gen = torch.Generator().manual_seed(5)
    index = torch.randint(0, 32, (10_000,), generator=gen)
    weights = torch.randn(10_000, generator=gen, dtype=torch.float64)
    expected = torch.zeros(32, dtype=torch.float64).index_add_(0, index, weights)
    torch.testing.assert_close(segment_histogram(index, weights, 32, blocks), expected)


def _small_pwl_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), PiecewiseLinearActivation(num_channels=4),
                               torch.nn.Conv2d(4, 2, 3), PiecewiseLinearActivation())


def test_torch_compile_traces_the_activation_without_graph_breaks():
    # fullgraph=True makes any graph break an error; aot_eager runs the traced forward and backward
    # graphs (inductor's code generation is exercised by `make bench`, which compiles and times it)
    model = _small_pwl_net()
    x = torch.randn(2, 3, 6, 6)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    out = compiled(x)
    out.square().sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    ref = model(x)
    ref.square().sum().backward()
    torch.testing.assert_close(out, ref)
    for g, p in zip(grads, model.parameters()):
        torch.testing.assert_close(g, p.grad)


def test_torch_export_keeps_the_activation_as_one_operator():
    model = _small_pwl_net()
    x = torch.randn(2, 3, 6, 6)
    exported = torch.export.export(model, (x,))
    targets = [str(n.target) for n in exported.graph.nodes]
    assert sum(t == "actfn.pwl.default" for t in targets) == 2
    torch.testing.assert_close(exported.module()(x), model(x))


def test_kernels_build_with_this_pythons_ninja_first(monkeypatch, tmp_path):
    # two ninjas on PATH (pip's in the venv, a system package's) recompiled every kernel whenever
    # the other had built it last: the build always puts this Python's scripts folder first
    scripts = tmp_path / "bin"
    scripts.mkdir()
    monkeypatch.setattr(kernels.sys, "executable", str(scripts / "python"))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert kernels.ninja_path() == "/usr/bin:/bin"                  # no ninja beside this Python: PATH as it is
    (scripts / "ninja").write_text("")
    assert kernels.ninja_path() == f"{scripts}:/usr/bin:/bin"
    monkeypatch.setenv("PATH", f"{scripts}:/usr/bin")
    assert kernels.ninja_path() == f"{scripts}:/usr/bin"            # already first: unchanged


@pytest.mark.skipif(kernels.infomax_kernel() is None or platform.machine() not in ("x86_64", "AMD64"),
                    reason="compiled kernel unavailable, or not x86 (no MXCSR)")
def test_denormals_count_as_zero_in_every_thread_and_restored():
    from actfn.process import denormals_as_zero

    # torch.set_flush_denormal sets the calling thread only: a multithreaded product kept denormals in
    # the other threads' share.  1e-30 * 1e-10 = 1e-40 is a denormal float32.
    threads = torch.get_num_threads()
    torch.set_num_threads(max(2, threads))
    try:
        x = torch.full((1_000_000,), 1e-30)
        assert ((x * 1e-10) != 0).all()
        with denormals_as_zero():
            assert ((x * 1e-10) == 0).all()
        assert ((x * 1e-10) != 0).all()
    finally:
        torch.set_num_threads(threads)
