"""The CUDA kernels of the activation (csrc/pwl_cuda.cu, launched by actfn.kernels.pwl_cuda).

Without a GPU they run on the CPU through tests/cuda_shim (every CUDA thread a CPU thread, every
block's __syncthreads a barrier), so their indexing, histograms and reductions and the launch plans
are checked here on any machine with g++; on a machine with a GPU the same checks run on it too.
"""
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from actfn import kernels, piecewise_linear, piecewise_linear_reference
from actfn.kernels.pwl_cuda import PwlCuda

sys.path.insert(0, str(Path(__file__).parent / "cuda_shim"))
import shim_build  # noqa: E402

has_cuda = torch.cuda.is_available()


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    if shutil.which("g++") is None:
        pytest.skip("no g++ to build the CPU shim")
    try:
        import ctypes

        lib = ctypes.CDLL(str(shim_build.build(tmp_path_factory.mktemp("cuda_shim"))))
    except subprocess.CalledProcessError as err:
        pytest.fail(f"the shim build failed:\n{err.stderr}")
    # two "multiprocessors": few blocks, so that the CPU threads stay few, and several chunks anyway
    return PwlCuda(lib, multiprocessors=2, threads_per_sm=256, stream=lambda t: None, name="shim")


def run(fn, x, y, g):
    xx, yy = x.clone().requires_grad_(), y.clone().requires_grad_()
    out = fn(xx, yy)
    out.backward(g)
    return out.detach(), xx.grad, yy.grad


def kernel_run(k, x, y, g, need_x=True, need_y=True):
    return (k.forward(x, y, -3.0, 3.0),) + tuple(k.backward(g, x, y, -3.0, 3.0, need_x, need_y))


def inputs(shape, per_channel, knots=33, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen) * 2.5
    flat = x.view(-1)
    edges = torch.cat([torch.linspace(-3, 3, knots), torch.tensor([1e4, -1e4, 3.0, -3.0, 2.8125, -2.8125, 1e-7])])
    n = min(flat.numel(), edges.numel())
    flat[:n] = edges[:n]                     # knots, segment edges, far outside the range
    y = torch.randn((shape[1], knots) if per_channel else (knots,), generator=gen)
    g = torch.randn(shape, generator=gen)
    return x.to(dtype), y, g.to(dtype)


def assert_matches_reference(got, x, y, g, cpu_kernel=True):
    # in float32, as the CPU tests: at a knot, float64 may round s = (x - lo) / h to the other segment
    refs = [run(piecewise_linear_reference, x, y, g)] + ([run(piecewise_linear, x, y, g)] if cpu_kernel else [])
    for ref in refs:   # (the plain-autograd reference, and the CPU kernel)
        torch.testing.assert_close(got[0], ref[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got[1], ref[1], rtol=1e-5, atol=1e-5)
    # knot gradients are sums over many elements, in float32 in another order than any reference's:
    # against float64 (they are continuous in x, so a knot's rounding does not matter)
    exact = run(piecewise_linear_reference, x.double(), y.double(), g.double())[2]
    torch.testing.assert_close(got[2].double(), exact, rtol=1e-4, atol=1e-3 * math.sqrt(x.numel() / y.numel()) / 100)


# shared knots (rows of a block's width, a partial last row; vectors of 4, and single elements when
# the length is odd), per-channel large planes (several tiles per channel, a partial tile; vectors and
# single elements), small planes (several channels a block, channels left over), 2-D (batch, channels)
SHAPES = [((64, 16, 16, 16), False), ((1001,), False), ((5, 3, 7), False), ((3, 2, 40, 40), True),
          ((2, 2, 33, 33), True), ((4, 3, 20, 20), True), ((6, 5, 16, 16), True), ((24, 20, 4, 4), True),
          ((9, 7, 5, 5), True), ((50, 300), True), ((30, 20), False)]


@pytest.mark.parametrize("shape,per_channel", SHAPES)
def test_shim_kernels_match_the_reference(shim, shape, per_channel):
    x, y, g = inputs(shape, per_channel)
    assert shim.supports(x, y)
    assert_matches_reference(kernel_run(shim, x, y, g), x, y, g)


@pytest.mark.parametrize("knots", [2, 9, 65])
@pytest.mark.parametrize("shape,per_channel", [((10, 8, 4, 4), True), ((20, 6, 8, 8), False)])
def test_shim_any_number_of_knots(shim, knots, shape, per_channel):
    x, y, g = inputs(shape, per_channel, knots=knots, seed=knots)
    assert_matches_reference(kernel_run(shim, x, y, g), x, y, g)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_shim_low_precision_inputs_accumulate_in_float32(shim, dtype):
    x, y, g = inputs((12, 6, 8, 8), True, dtype=dtype)
    x = x.float().clamp(-8, 8).to(dtype)       # (f(1e4) overflows float16)
    out, gx, gy = kernel_run(shim, x, y, g)
    assert out.dtype == gx.dtype == dtype and gy.dtype == torch.float32
    # the same rounded inputs in float32: knot gradients agree to float32 accumulation, not to bf16's 3 digits
    ref = run(piecewise_linear_reference, x.double(), y.double(), g.double())
    torch.testing.assert_close(gy.double(), ref[2], rtol=1e-5, atol=1e-4)
    # (values and input gradients against float32: bf16 inputs often sit exactly on a knot)
    ref = run(piecewise_linear_reference, x.float(), y, g.float())
    torch.testing.assert_close(out.float(), ref[0], rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(gx.float(), ref[1], rtol=1e-2, atol=1e-2)


def test_shim_gradients_asked_for_alone(shim):
    x, y, g = inputs((8, 4, 8, 8), True)
    _, gx, gy = kernel_run(shim, x, y, g)
    gx_only = shim.backward(g, x, y, -3.0, 3.0, True, False)
    gy_only = shim.backward(g, x, y, -3.0, 3.0, False, True)
    assert gx_only[1] is None and gy_only[0] is None
    assert torch.equal(gx_only[0], gx) and torch.equal(gy_only[1], gy)


def test_shim_knot_gradients_are_bit_identical(shim):
    x, y, g = inputs((32, 8, 8, 8), False, seed=3)
    first = shim.backward(g, x, y, -3.0, 3.0, True, True)[1]
    assert torch.equal(first, shim.backward(g, x, y, -3.0, 3.0, True, True)[1])


def test_shim_nan_and_inf_propagate_as_on_the_cpu(shim):
    y = torch.relu(torch.linspace(-3, 3, 33))
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), 1.0] * 4)
    got = kernel_run(shim, x, y, torch.ones_like(x))
    cpu = run(piecewise_linear, x, y, torch.ones_like(x))
    torch.testing.assert_close(got[0], cpu[0], equal_nan=True)
    torch.testing.assert_close(got[1], cpu[1], equal_nan=True)
    assert torch.isnan(got[2]).any()


def test_plans_cover_the_tensor_once():
    k = PwlCuda.__new__(PwlCuda)       # (no library needed to plan) an H200's numbers
    k.multiprocessors, k.threads_per_sm, k.shared_per_sm, k._plans = 132, 2048, 228 * 1024, {}
    # the benchmark shapes x 8 on an H200: every element in exactly one (block, row)
    for shape, per_channel in [((1024, 64, 16, 16), False), ((1024, 64, 16, 16), True), ((2048, 512, 4, 4), True)]:
        p = k.plan(torch.empty(shape, device="meta"), per_channel, 32, True)
        assert p["chunks"] <= 65535 and p["chunks"] * p["rows"] >= p["N"] > (p["chunks"] - 1) * p["rows"]
        assert p["vec"] == 4 and p["P"] % p["vec"] == 0
        per_block = p["threads"] if p["Q"] >= p["threads"] else p["cpb"] * p["Q"]
        assert p["blocks_x"] * per_block * p["vec"] * p["N"] >= math.prod(shape)
        assert 132 <= p["blocks_x"] * p["chunks"] <= 132 * 8    # every multiprocessor busy, in one wave
    assert k.plan(torch.empty(64, 6, 5, 5, device="meta"), True, 32, True)["vec"] == 1    # planes of 25
    assert k.plan(torch.empty(64, 6, 8, 8, device="meta", dtype=torch.bfloat16), True, 32, True)["vec"] == 8
    assert k.plan(torch.empty(64, 6, 8, 8, device="meta"), True, 32, True, aligned=False)["vec"] == 1
    # tables too large for shared memory: no plan (the PyTorch path runs)
    assert k.plan(torch.empty(8, 4, device="meta"), False, 1000, True) is None


needs_gpu = pytest.mark.skipif(not has_cuda, reason="no CUDA GPU here (the shim tests above cover the kernels)")


@needs_gpu
@pytest.mark.parametrize("shape,per_channel", SHAPES + [((256, 512, 4, 4), True), ((128, 64, 16, 16), True)])
def test_gpu_activation_matches_the_reference(shape, per_channel):
    assert kernels.cuda_backend().startswith("cuda-sm"), kernels.cuda_backend()
    x, y, g = inputs(shape, per_channel)
    got = run(piecewise_linear, x.cuda(), y.cuda(), g.cuda())
    assert_matches_reference(tuple(t.cpu() for t in got), x, y, g, cpu_kernel=False)
    xb, gb = x.bfloat16(), g.bfloat16()
    got = run(piecewise_linear, xb.cuda(), y.cuda(), gb.cuda())
    ref = run(piecewise_linear_reference, xb.float(), y, gb.float())
    for a, b in zip(got[:2], ref[:2]):
        torch.testing.assert_close(a.cpu().float(), b, rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(got[2].cpu(), ref[2], rtol=1e-2, atol=1e-3 * math.sqrt(x.numel() / y.numel()))


@needs_gpu
def test_gpu_knot_gradients_are_bit_identical_and_bf16_accumulates_in_float32():
    x, y, g = inputs((256, 512, 4, 4), True, seed=5)
    x, y, g = x.cuda(), y.cuda(), g.cuda()
    first = run(piecewise_linear, x, y, g)[2]
    assert torch.equal(first, run(piecewise_linear, x, y, g)[2])
    xb, gb = x.bfloat16(), g.bfloat16()
    gy = kernels.cuda_kernel().backward(gb, xb, y, -3.0, 3.0, False, True)[1]
    ref = run(piecewise_linear_reference, xb.double(), y.double(), gb.double())[2]
    torch.testing.assert_close(gy.double(), ref, rtol=1e-5, atol=1e-3)


def test_without_nvcc_cuda_tensors_take_the_torch_path_knowingly(monkeypatch):
    # a machine with a GPU but no CUDA compiler (faked here: the build is all this checks)
    from types import SimpleNamespace

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda d: SimpleNamespace(major=9, minor=0, multi_processor_count=132))
    monkeypatch.setattr(kernels, "find_nvcc", lambda: None)
    monkeypatch.setattr(kernels, "_state", {})
    monkeypatch.setenv("ACTFN_KERNELS", "auto")
    with pytest.warns(RuntimeWarning, match="nvcc"):
        assert kernels.cuda_kernel() is None
    assert kernels.cuda_backend() == "torch (CUDA kernel unavailable)"
    monkeypatch.setenv("ACTFN_KERNELS", "require")
    with pytest.raises(kernels.KernelUnavailable, match="pwl_cuda.cu"):
        kernels.cuda_kernel()
    monkeypatch.setenv("ACTFN_KERNELS", "off")
    assert kernels.cuda_kernel() is None and kernels.cuda_backend().startswith("torch")


@pytest.mark.skipif(kernels.find_nvcc() is None, reason="no nvcc here")
def test_nvcc_builds_the_library_once(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    first = kernels.build_cuda_library("90")
    stamp = first.stat().st_mtime_ns
    assert kernels.build_cuda_library("90") == first and first.stat().st_mtime_ns == stamp   # cached
