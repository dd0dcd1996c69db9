import math

import numpy as np
import pytest
import torch

from actfn import infomax as im
from actfn import kernels


def test_loss_matches_a_direct_computation():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(64, 5, generator=gen, dtype=torch.float64) @ torch.randn(5, 5, generator=gen, dtype=torch.float64)
    an = a.numpy()
    var = an.var(0, ddof=1)
    corr = np.corrcoef(an, rowvar=False)
    expected = -np.log(var + im.EPS).sum() + 0.7 * ((corr - np.eye(5)) ** 2).sum()
    assert float(im.infomax_loss(a, 0.7)) == pytest.approx(expected, rel=1e-10)


def test_minibatch_correlation_floor_of_independent_units():
    gen = torch.Generator().manual_seed(1)
    k, n = 16, 128
    a = torch.randn(400, n, k, generator=gen, dtype=torch.float64)
    off = ((im.correlation_matrix(a) - torch.eye(k, dtype=a.dtype)) ** 2).sum((-2, -1))
    assert float(off.mean()) == pytest.approx(im.independent_correlation_floor(k, n), rel=0.03)


def test_effective_rank_and_redundancy_on_hand_cases():
    k, d = 4, 6
    same = torch.ones(k, d)
    ortho = torch.eye(d)[:k] * 3.0
    assert im.effective_rank(same)["participation"] == pytest.approx(1.0)
    assert im.effective_rank(same)["entropy"] == pytest.approx(1.0)
    assert im.effective_rank(ortho)["participation"] == pytest.approx(k)
    assert im.effective_rank(ortho)["entropy"] == pytest.approx(k)
    assert im.weight_redundancy(ortho) == pytest.approx(0.0, abs=1e-12)
    assert im.weight_redundancy(same) == pytest.approx(1 - 1 / k)
    assert im.mean_abs_cosine(same) == pytest.approx(1.0)
    assert im.mean_abs_cosine(ortho) == pytest.approx(0.0)


def test_dead_units_mean_something_for_each_activation():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(500, 3, generator=gen)
    w = torch.eye(3)
    b = torch.tensor([0.0, -100.0, 0.0])   # unit 1: always far negative
    assert im.model_metrics(w, b, x=x, activation="relu")["dead_units"] == 1
    assert im.model_metrics(w, b, x=x, activation="identity")["dead_units"] == 0
    tanh = im.model_metrics(w, b, x=x, activation="tanh")
    assert tanh["dead_units"] == 1                 # saturated at -1: no response
    assert tanh["dead_units_magnitude"] == 0       # the design's |a| > eps rule calls it alive
    assert im.model_metrics(w, b, x=x, activation="leaky_relu")["dead_units"] == 1


def test_survivors_redundancy_leaves_out_the_dead_units():
    # rows 0 and 1 orthogonal and alive; row 2 a copy of row 0 but dead (bias far negative): the
    # redundancy of all rows counts the copy, that of the survivors does not
    x = torch.randn(500, 3, generator=torch.Generator().manual_seed(4))
    w = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    m = im.model_metrics(w, torch.tensor([0.0, 0.0, -100.0]), x=x, activation="relu")
    assert m["dead_units"] == 1
    assert m["mean_abs_cosine"] == pytest.approx(1 / 3)          # |cos| 1 for one pair of three
    assert m["survivor_mean_abs_cosine"] == pytest.approx(0.0, abs=1e-12)
    one_left = im.model_metrics(w, torch.tensor([0.0, -100.0, -100.0]), x=x, activation="relu")
    assert one_left["survivor_mean_abs_cosine"] is None


def test_weight_redundancy_is_a_function_of_the_singular_values_and_blind_to_directions():
    gen = torch.Generator().manual_seed(9)
    w = torch.randn(8, 20, generator=gen, dtype=torch.float64) * torch.linspace(0.2, 2.0, 8, dtype=torch.float64)[:, None]
    s = torch.linalg.svdvals(w)
    assert im.weight_redundancy(w) == pytest.approx(float((s ** 4).sum() / (s ** 2).sum() ** 2 - 1 / 8), rel=1e-12)
    # a rotation of the rows (W -> U W) keeps R_W and moves the directions
    u, _ = torch.linalg.qr(torch.randn(8, 8, generator=gen, dtype=torch.float64))
    aligned = torch.linalg.svd(w, full_matrices=False)
    rotated = aligned.U.T @ w                     # rows along the right singular vectors: orthogonal
    assert im.weight_redundancy(rotated) == pytest.approx(im.weight_redundancy(w), rel=1e-10)
    assert im.weight_redundancy(u @ w) == pytest.approx(im.weight_redundancy(w), rel=1e-10)
    assert im.mean_sq_cosine(rotated) == pytest.approx(0.0, abs=1e-20)
    assert im.mean_sq_cosine(w) > 0.01
    assert im.mean_sq_cosine(torch.ones(3, 4)) == pytest.approx(1.0)


def test_gating_counts_closed_units_and_measures_open_set_overlap():
    gen = torch.Generator().manual_seed(11)
    n = 4000
    u = torch.randn(n, 1, generator=gen)
    # units 0 and 1 open on the same samples, 2 on the others, 3 never, 4 always
    z = torch.cat([u, u + 0.01, -u, -torch.ones(n, 1), torch.ones(n, 1)], 1)
    g = im.gating(z, torch.tensor([0.0, 0.0, 0.0, -1.0, 1.0]))
    assert g["units_mostly_off"] == 1 and g["units_mostly_on"] == 1
    assert g["bias_mean"] == pytest.approx(0.0) and g["bias_std"] == pytest.approx(np.sqrt(0.5))
    # independent units: overlap = its independent value
    ind = im.gating(torch.randn(n, 6, generator=gen), torch.zeros(6))
    assert ind["open_overlap"] == pytest.approx(ind["open_overlap_independent"], abs=0.02)
    assert ind["open_overlap_independent"] == pytest.approx(1 / 3, abs=0.02)    # p = 1/2: 1/4 / (3/4)
    taking_turns = im.gating(torch.cat([u, -u], 1), torch.zeros(2))
    assert taking_turns["open_overlap"] == pytest.approx(0.0) and taking_turns["open_overlap_independent"] > 0.3


def test_total_correlation_estimate():
    gen = np.random.default_rng(3)
    rho = 0.6
    z = gen.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=20_000)
    a = torch.tensor(np.exp(z))  # a monotone transform: the copula (and TC) is unchanged
    assert im.gaussian_copula_tc(a)["tc"] == pytest.approx(-0.5 * math.log(1 - rho ** 2), abs=0.02)
    indep = torch.tensor(gen.standard_normal((20_000, 3)))
    assert abs(im.gaussian_copula_tc(indep)["tc"]) < 0.01
    # softmax: finite, over K - 1 units
    x = torch.tensor(gen.standard_normal((2000, 4)), dtype=torch.float32)
    m = im.model_metrics(torch.eye(4), torch.zeros(4), "softmax", x)
    assert math.isfinite(m["total_correlation"]) and m["tc_units"] == 3
    assert 0.25 <= m["responsibility_concentration"] < 0.4


@pytest.mark.parametrize("zeros", [0.5, 0.9])
def test_total_correlation_is_near_zero_for_independent_units_with_a_point_mass(zeros):
    """16 independent ReLU-like units (a point mass at 0): TC ~ 0, within a few times its floor.
    Ranked in sample order, ties made them look dependent (0.40 nats at 50 % zeros, 5.2 at 90 %)."""
    gen = np.random.default_rng(7)
    n, k = 1000, 16
    z = gen.standard_normal((n, k)) + norm_ppf(1 - zeros)
    tc = im.gaussian_copula_tc(torch.tensor(np.maximum(z, 0.0)))
    assert tc["units"] == k and tc["floor"] == pytest.approx(k * (k - 1) / (4 * n))
    assert abs(tc["tc"]) < 2 * tc["floor"], tc


def norm_ppf(p):
    from scipy.stats import norm

    return float(norm.ppf(p))


def test_total_correlation_of_a_correlated_gaussian_and_of_a_deterministic_dependence():
    gen = np.random.default_rng(8)
    r = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, -0.3], [0.2, -0.3, 1.0]])
    z = gen.multivariate_normal(np.zeros(3), r, size=50_000)
    truth = -0.5 * np.linalg.slogdet(r)[1]
    assert im.gaussian_copula_tc(torch.tensor(z))["tc"] == pytest.approx(truth, abs=0.01)
    # one unit a (monotone, tie-making) function of another: far above any floor
    x = gen.standard_normal((2000, 2))
    dependent = np.column_stack([x[:, 0], np.maximum(x[:, 0], 0.0), x[:, 1]])
    assert im.gaussian_copula_tc(torch.tensor(dependent))["tc"] > 0.5
    # and units that share their zeros (gated together) are dependent, not independent
    gate = gen.random(2000) < 0.5
    shared = np.column_stack([np.where(gate, 0.0, gen.random(2000)), np.where(gate, 0.0, gen.random(2000))])
    assert im.gaussian_copula_tc(torch.tensor(shared))["tc"] > 0.2


def test_batched_bank_equals_training_each_model_alone():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(300, 10, generator=gen)
    settings = [im.Setting("relu"), im.Setting("softmax", "infomax", 10.0), im.Setting("tanh", "variance_only"),
                im.Setting("pwl"), im.Setting("softplus", "reconstruction"), im.Setting("identity", "infomax", 1.0, "unit_rows"),
                im.Setting("swish", "random")]
    seeds = [3, 7]
    bank = im.train_bank(settings, seeds, 6, x, epochs=3, batch_size=32)
    for i, seed in enumerate(seeds):
        for j, s in enumerate(settings):
            alone = im.train_bank([s], [seed], 6, x, epochs=3, batch_size=32)
            torch.testing.assert_close(bank.bank.weight[i, j], alone.bank.weight[0, 0], rtol=1e-4, atol=1e-5)
            if s.activation != "identity":
                # (identity: the loss does not depend on b, whose gradient is rounding noise that
                # Adam scales up to lr-sized steps, differently in the two runs)
                torch.testing.assert_close(bank.bank.bias[i, j], alone.bank.bias[0, 0], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(bank.bank.knots[i, j], alone.bank.knots[0, 0], rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(bank.losses[:, i, j], alone.losses[:, 0, 0], rtol=1e-4, atol=1e-4)
    # the random baseline is the seed's Xavier start, and every setting of a seed started there
    torch.testing.assert_close(bank.bank.weight[1, 6], im.xavier_weights(7, 6, 10))
    torch.testing.assert_close(bank.initial_weight[0], im.xavier_weights(3, 6, 10))


@pytest.mark.parametrize("k,b", [(5, 33), (8, 33), (8, 64), (12, 32), (4, 48)])
def test_compiled_bank_kernel_matches_activation_and_loss_under_autograd(k, b):
    # InfoMaxBlocks (csrc/infomax_cpu.cpp) against activate + infomax_loss: every activation, inputs over
    # tanh's two branches, softplus's threshold and beyond the PWL knot range, per-model loss weights;
    # K a multiple of 4 and B of 16 take the AVX-512 build's register tiles (4, 2 and 1 vectors of the
    # batch per tile in the gradient), the others its plain loops
    if kernels.infomax_kernel() is None:
        pytest.skip("no compiled kernel on this machine")
    gen = torch.Generator().manual_seed(11)
    s, m = 2, len(im.ACTIVATIONS)
    zt = torch.randn(s, m * k, b, generator=gen) * torch.tensor([0.1, 1.0, 4.0, 30.0]).repeat(m * k)[:m * k, None]
    zt.requires_grad_(True)
    knots = (torch.randn(s, m, im.PWL_KNOTS, generator=gen) * 0.5).requires_grad_(True)
    lam = torch.tensor([0.0, 0.1, 1.0, 10.0, 1.0, 2.0, 0.5, 1.0])
    weights = torch.rand(s, m, generator=gen)
    loss = im.InfoMaxBlocks.apply(zt, knots, torch.arange(m), lam)
    (loss * weights).sum().backward()
    got = (loss.detach(), zt.grad.clone(), knots.grad.clone())
    zt.grad = knots.grad = None
    z = zt.view(s, m, k, b).transpose(-1, -2)
    ref = torch.stack([im.infomax_loss(im.activate(z[:, j], kind, knots[:, j] if kind == "pwl" else None), lam[j])
                       for j, kind in enumerate(im.ACTIVATIONS)], 1)
    (ref * weights).sum().backward()
    torch.testing.assert_close(got[0], ref.detach(), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(got[1], zt.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got[2], knots.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("k,b,bf16", [(5, 33, False), (8, 64, False), (12, 32, False), (4, 48, False), (8, 64, True),
                                      (5, 33, True)])
def test_compiled_reconstruction_matches_activation_and_loss_under_autograd(k, b, bf16):
    # ReconstructionBlocks (csrc/infomax_cpu.cpp + oneDNN products) against activate + ReconstructionLoss:
    # every activation, inputs beyond the PWL knot range, per-model loss weights, both the register
    # tiles (K a multiple of 4, B of 16) and the plain loops; and with bfloat16 products, against
    # ReconstructionLoss under autocast (which also rounds the decoder gradient's other term to
    # bfloat16: so agreement to bfloat16's precision, not float32's)
    if kernels.infomax_kernel() is None:
        pytest.skip("no compiled kernel on this machine")
    gen = torch.Generator().manual_seed(12)
    s, r, d = 2, len(im.ACTIVATIONS), 20
    zt = torch.randn(s, r * k, b, generator=gen) * torch.tensor([0.1, 1.0, 4.0]).repeat(r * k)[:r * k, None]
    zt.requires_grad_(True)
    dec = (torch.randn(s, r, k, d, generator=gen) * 0.3).requires_grad_(True)
    knots = (torch.randn(s, r, im.PWL_KNOTS, generator=gen) * 0.5).requires_grad_(True)
    x = torch.randn(s, b, d, generator=gen)
    weights = torch.rand(s, r, generator=gen)
    loss = im.ReconstructionBlocks.apply(zt, dec, knots, x, torch.arange(r), bf16)
    (loss * weights).sum().backward()
    got = [loss.detach()] + [t.grad.clone() for t in (zt, dec, knots)]
    zt.grad = dec.grad = knots.grad = None
    z = zt.view(s, r, k, b).transpose(-1, -2)
    a = torch.stack([im.activate(z[:, j], kind, knots[:, j] if kind == "pwl" else None)
                     for j, kind in enumerate(im.ACTIVATIONS)], 1)
    ref = im.ReconstructionLoss.apply(a, dec, x, bf16)
    (ref * weights).sum().backward()
    tol = dict(rtol=1e-2, atol=1e-2) if bf16 else dict(rtol=1e-4, atol=1e-4)
    for mine, theirs in zip(got, [ref.detach(), zt.grad, dec.grad, knots.grad]):
        torch.testing.assert_close(mine, theirs, **tol)
    if bf16:     # the products did take bfloat16 operands: the loss is not float32's
        f32 = im.ReconstructionBlocks.apply(zt.detach(), dec.detach(), knots.detach(), x, torch.arange(r), False)
        assert not torch.equal(got[0], f32)


@pytest.mark.parametrize("k,b", [(8, 64), (5, 33)])
def test_compiled_kernels_read_and_write_bfloat16_blocks_as_torch_casts_them(k, b):
    # The fused bfloat16 step hands the kernels its bfloat16 products and operands: each model's block
    # is widened (exact) and its gradients narrowed with torch's rounding, in cache.  So the same numbers
    # as the float32 kernels on the widened input, cast by torch; NaN stays NaN; and the row sums (the
    # biases' gradient) are the float32 gradient's, summed before the rounding.  Seeds lying apart
    # (views of a larger product) included.
    kernel = kernels.infomax_kernel()
    if kernel is None:
        pytest.skip("no compiled kernel on this machine")
    gen = torch.Generator().manual_seed(13)
    s, m = 2, len(im.ACTIVATIONS)
    big = (torch.randn(s, 2 * m * k, b, generator=gen) * 2).to(torch.bfloat16)
    big[1, 3, 5] = float("nan")                                   # (model 0 of seed 1)
    zt16, proj16 = big[:, :m * k], big[:, m * k:]                 # each seed's rows contiguous, seeds apart
    knots = torch.randn(s, m, im.PWL_KNOTS, generator=gen) * 0.5
    lam, kinds = torch.linspace(0.1, 2.0, m), torch.arange(m)
    ref = kernel.infomax_blocks(zt16.float(), kinds, lam, knots, im.EPS, *im.PWL_RANGE, True)
    grad_big, sums = torch.full_like(big, 7.0), torch.full((s, m * k), 7.0)
    got = kernel.infomax_blocks(zt16, kinds, lam, knots, im.EPS, *im.PWL_RANGE, True, grad_big[:, :m * k], sums)
    torch.testing.assert_close(got[0], ref[0], rtol=0, atol=0, equal_nan=True)
    no_grad = kernel.infomax_blocks(zt16, kinds, lam, knots, im.EPS, *im.PWL_RANGE, False)
    torch.testing.assert_close(no_grad[0], ref[0], rtol=0, atol=0, equal_nan=True)
    assert got[1].dtype == torch.bfloat16 and got[1].data_ptr() == grad_big.data_ptr()
    torch.testing.assert_close(got[1], ref[1].to(torch.bfloat16), rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(got[2], ref[2], rtol=0, atol=0, equal_nan=True)
    assert torch.isnan(got[1][1, :k]).all() and torch.isfinite(got[1][1, k:]).all()
    torch.testing.assert_close(sums, ref[1].sum(-1), rtol=1e-5, atol=1e-5, equal_nan=True)
    assert (grad_big[:, m * k:] == 7).all()                      # nothing written outside the view
    # the reconstruction models: z and W'^T x^T in bfloat16, dL/dz and -(2/B) a narrowed
    dec = torch.randn(s, m, k, 20, generator=gen) * 0.3
    gram = dec @ dec.transpose(-1, -2)
    xx = torch.rand(s, generator=gen) + 1
    ref = kernel.reconstruction_blocks(zt16.float(), proj16.float(), gram, xx, kinds, knots, *im.PWL_RANGE, True)
    na, sums = torch.empty_like(zt16), torch.empty(s, m * k)
    got = kernel.reconstruction_blocks(zt16, proj16, gram, xx, kinds, knots, *im.PWL_RANGE, True, None, na, sums)
    for i in (0, 2, 4):
        torch.testing.assert_close(got[i], ref[i], rtol=0, atol=0, equal_nan=True)
    for i in (1, 3):
        torch.testing.assert_close(got[i], ref[i].to(torch.bfloat16), rtol=0, atol=0, equal_nan=True)
    assert got[3].data_ptr() == na.data_ptr()
    torch.testing.assert_close(sums, ref[1].sum(-1), rtol=1e-5, atol=1e-5, equal_nan=True)
    with pytest.raises(RuntimeError, match="must be BFloat16 of shape"):
        kernel.infomax_blocks(zt16, kinds, lam, knots, im.EPS, *im.PWL_RANGE, True, torch.empty(zt16.shape))
    with pytest.raises(RuntimeError, match="proj must have zt's shape and dtype"):
        kernel.reconstruction_blocks(zt16, proj16.float(), gram, xx, kinds, knots, *im.PWL_RANGE, True)


def test_bfloat16_copies_keep_every_nan_a_nan():
    # Rounding to bfloat16 adds 0x7FFF to the float's bits: a NaN with a full payload would carry into the
    # sign bit (-0.0), one with only low payload bits into infinity.  The kernels' narrowing keeps them NaN.
    kernel = kernels.infomax_kernel()
    if kernel is None:
        pytest.skip("no compiled kernel on this machine")
    bits = torch.tensor([0x7FFFFFFF, 0x7F800001, -1, 0x7FC00000] * 4, dtype=torch.int32)   # (-1: 0xFFFFFFFF)
    param = torch.cat([bits.view(torch.float32), torch.ones(16)]).view(2, 16)
    low = torch.zeros(2, 16, dtype=torch.bfloat16)
    zeros = torch.zeros(2, 16)
    kernel.adam_rows(param, zeros, zeros.clone(), zeros.clone(), None, low, 0.0, 0.9, 0.999, 1e-8, 1)
    assert torch.isnan(low[0]).all() and (low[1] == 1).all()


def test_bank_gives_the_same_losses_and_gradients_on_both_paths(monkeypatch):
    # the bank's PyTorch path (no compiled kernel) against its compiled one (InfoMaxBlocks and
    # ReconstructionBlocks), on one batch
    settings = [im.Setting(a, o) for a in im.ACTIVATIONS for o in ("infomax", "variance_only")]
    settings += [im.Setting(a, "reconstruction") for a in ("tanh", "softmax", "pwl")]
    x = torch.randn(2, 40, 12, generator=torch.Generator().manual_seed(5))
    results = []
    for backend in ("auto", "off"):
        monkeypatch.setenv("ACTFN_KERNELS", backend)
        bank = im.InfoMaxBank(settings, [1, 2], 6, 12)
        with torch.no_grad():
            bank.knots.normal_(0, 0.5, generator=torch.Generator().manual_seed(6))
        loss = bank.losses(x)
        loss.sum().backward()
        results.append((loss.detach(), bank.weight.grad.clone(), bank.bias.grad, bank.knots.grad, bank.decoder.grad))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_bank_step_without_autograd_equals_autograd(precision):
    # loss_and_grad_ (the training loop's path with the compiled kernels) against losses() + backward
    settings = [im.Setting(a, o) for a in im.ACTIVATIONS for o in ("infomax", "variance_only")]
    settings += [im.Setting(a, "reconstruction") for a in ("tanh", "softmax", "pwl")]
    x = torch.randn(2, 40, 12, generator=torch.Generator().manual_seed(5))
    bank = im.InfoMaxBank(settings, [1, 2], 6, 12, precision)
    if not bank.compiled_step(x):
        pytest.skip("no compiled kernel on this machine")
    with torch.no_grad():
        bank.knots.normal_(0, 0.5, generator=torch.Generator().manual_seed(6))
        bank.decoder.normal_(0, 0.3, generator=torch.Generator().manual_seed(7))
    results = {}
    # autograd; the compiled kernels span by span of models; the fused products (ProductRows: the
    # weights and decoders in one storage, one product per seed each way)
    for path in ("autograd", "spans", "fused"):
        for p in bank.parameters():
            p.grad = None
        rows = im.ProductRows(bank) if path == "fused" else None
        if path == "autograd":
            loss = bank.losses(x)
            loss.sum().backward()
            loss = loss.detach()
        else:
            loss = bank.loss_and_grad_(x, rows)
        weight_grad = rows.grad.float() if rows is not None and precision == "bfloat16" else bank.weight.grad
        results[path] = [t.clone() for t in (loss, weight_grad, bank.bias.grad, bank.knots.grad, bank.decoder.grad)]
    for path in ("spans", "fused"):
        for a, b in zip(results["autograd"], results[path]):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    assert results["fused"][3].abs().sum() > 0 and results["fused"][4].abs().sum() > 0   # (knots and decoders did get gradients)


def test_compiled_bank_kernel_propagates_nan_to_that_model_only():
    if kernels.infomax_kernel() is None:
        pytest.skip("no compiled kernel on this machine")
    m, k = len(im.ACTIVATIONS), 4
    zt = torch.randn(1, m * k, 16, generator=torch.Generator().manual_seed(2))
    zt[0, ::k, 3] = float("nan")                 # one value of every model but the last
    zt[0, (m - 1) * k:, 3] = torch.randn(k)
    loss = im.InfoMaxBlocks.apply(zt, torch.zeros(1, m, im.PWL_KNOTS), torch.arange(m), torch.ones(m))
    assert torch.isnan(loss[0, :-1]).all() and torch.isfinite(loss[0, -1])


def test_reconstruction_loss_gradient_is_exact():
    gen = torch.Generator().manual_seed(9)
    a = torch.randn(2, 3, 7, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    dec = torch.randn(2, 3, 4, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    x = torch.randn(2, 7, 5, dtype=torch.float64, generator=gen)
    rec = im.ReconstructionLoss.apply(a, dec, x, False)
    direct = (x.unsqueeze(1) - a @ dec).pow(2).sum(-1).mean(-1)        # x-hat = W' a, W' = dec^T
    torch.testing.assert_close(rec, direct)
    assert torch.autograd.gradcheck(lambda a_, d_: im.ReconstructionLoss.apply(a_, d_, x, False), (a, dec))


def test_bank_equals_the_conventional_one_model_loop():
    # the benchmark's baseline (nn.Linear + torch.optim.Adam, one model at a time) trains the same models
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(200, 9, generator=gen)
    settings = [im.Setting("tanh"), im.Setting("pwl", "infomax", 10.0), im.Setting("softmax", "variance_only"),
                im.Setting("relu", "reconstruction"), im.Setting("swish", "infomax", 1.0, "unit_rows")]
    # (two seeds: the training loop updates the bank seed by seed)
    bank = im.train_bank(settings, [5, 6], 4, x, epochs=2, batch_size=40)
    for i, seed in enumerate([5, 6]):
        for j, s in enumerate(settings):
            model, curve = im.train_one_model(s, seed, 4, x, epochs=2, batch_size=40)
            torch.testing.assert_close(bank.bank.weight[i, j], model.linear.weight, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(bank.bank.bias[i, j], model.linear.bias, rtol=1e-4, atol=1e-5)
            if s.activation == "pwl":
                torch.testing.assert_close(bank.bank.knots[i, j], model.pwl.values, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(bank.losses[:, i, j], curve, rtol=1e-4, atol=1e-4)


def test_bfloat16_matmuls_train_the_same_models_both_ways():
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(160, 12, generator=gen)
    settings = [im.Setting("relu"), im.Setting("tanh", "reconstruction")]
    bank = im.train_bank(settings, [1], 4, x, epochs=2, batch_size=32, matmul_precision="bfloat16")
    full = im.train_bank(settings, [1], 4, x, epochs=2, batch_size=32)
    for j, s in enumerate(settings):
        model, curve = im.train_one_model(s, 1, 4, x, epochs=2, batch_size=32, matmul_precision="bfloat16")
        torch.testing.assert_close(bank.bank.weight[0, j], model.linear.weight, rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(bank.losses[:, 0, j], curve, rtol=1e-3, atol=1e-3)
    # bfloat16 operands round to ~3 significant digits: close to float32, not equal to it
    assert not torch.equal(bank.bank.weight, full.bank.weight)
    torch.testing.assert_close(bank.bank.weight, full.bank.weight, rtol=0.05, atol=2e-3)
    with pytest.raises(ValueError, match="matmul_precision"):
        im.train_bank(settings, [1], 4, x, epochs=1, matmul_precision="float16")


def test_unit_rows_constraint_holds():
    x = torch.randn(256, 8)
    run = im.train_bank([im.Setting("identity", constraint="unit_rows")], [0], 4, x, epochs=2, batch_size=64)
    torch.testing.assert_close(run.bank.weight[0, 0].norm(dim=1), torch.ones(4))


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_compiled_bank_optimizer_is_adam_then_the_projection(precision):
    # BankAdam (adam_rows in csrc/infomax_cpu.cpp) against torch.optim.Adam followed by unit_rows_,
    # over steps with made-up gradients (weights, decoders, biases, knots); with bfloat16 products it reads
    # the bfloat16 gradient and keeps the bfloat16 copy of the weights the next product reads
    if kernels.infomax_kernel() is None:
        pytest.skip("no compiled kernel on this machine")
    settings = [im.Setting("relu"), im.Setting("tanh", constraint="unit_rows"), im.Setting("pwl"),
                im.Setting("relu", "reconstruction")]
    bank = im.InfoMaxBank(settings, [0, 1], 5, 30, precision)
    bank.project_()
    names = ("weight", "decoder", "bias", "knots")
    refs = [getattr(bank, n).detach().clone().requires_grad_(True) for n in names]
    torch_adam = torch.optim.Adam(refs, lr=1e-2)
    ours = im.BankAdam(bank, 1e-2)
    # the weights and decoders now live in one storage, each seed's decoder rows after its weight rows
    assert bank.weight.data_ptr() == ours.rows.master.data_ptr()
    assert bank.decoder.data_ptr() == ours.rows.master[0, len(settings)].data_ptr()
    gen = torch.Generator().manual_seed(3)
    for _ in range(6):
        grads = [torch.randn(getattr(bank, n).shape, generator=gen) for n in names]
        if precision == "bfloat16":
            grads[0] = grads[0].to(torch.bfloat16)
            ours.rows.grad.copy_(grads[0])
        else:
            bank.weight.grad = grads[0].clone()
        for n, g in zip(names[1:], grads[1:]):
            getattr(bank, n).grad = g.clone()
        for ref, g in zip(refs, grads):
            ref.grad = g.float()
        torch_adam.step()
        im.unit_rows_(refs[0].data[:, 1:2])
        ours.step()
        for n, ref in zip(names, refs):
            torch.testing.assert_close(getattr(bank, n).detach(), ref.detach(), rtol=1e-5, atol=1e-6, msg=n)
        if precision == "bfloat16":
            assert torch.equal(ours.rows.weight, bank.weight.detach().to(torch.bfloat16))


def test_unbounded_variance_grows_the_weights():
    # identity + InfoMax without a constraint: scaling W up always lowers -log Var
    x = torch.randn(512, 8, generator=torch.Generator().manual_seed(5))
    run = im.train_bank([im.Setting("identity")], [0], 4, x, epochs=6, batch_size=64, lr=1e-2)
    assert run.weight_norms[-1, 0, 0] > 1.5 * run.weight_norms[0, 0, 0]
    assert run.losses[-1, 0, 0] < run.losses[0, 0, 0]


@pytest.mark.parametrize("kwargs,name", [({"activation": "gelu"}, "activations"), ({"activation": "relu", "objective": "vae"}, "objectives"),
                                         ({"activation": "relu", "lam": -1.0}, "lambdas"),
                                         ({"activation": "relu", "constraint": "ball"}, "constraints")])
def test_bad_settings_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        im.Setting(**kwargs)


def test_converged_epoch_is_none_while_the_loss_still_moves():
    assert im.converged_epoch([10, 5, 2, 1.01, 1.005, 1.0]) == 4     # steps 0.01 / 0.005 / ... of 9
    assert im.converged_epoch([0, -1, -2, -3, -4]) is None          # an unbounded loss, still falling
    assert im.converged_epoch([5.0, 5.0, 5.0]) == 1                 # stationary from the start
    assert im.converged_epoch([3.0, 1.0]) is None                   # the last step is the whole way


def test_convergence_epoch():
    assert im.convergence_epoch([10, 5, 1.5, 1, 1]) == 3    # 10 -> 1: 90 % of the way is 1.9
    assert im.convergence_epoch([10, 5, 2, 1, 1]) == 4
    assert im.convergence_epoch([-1, -5, -9.5, -10]) == 3


def test_holm_on_known_data():
    from actfn.stats import holm

    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])


def test_study_records_and_baseline_tests():
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(512, 12, generator=gen) @ torch.randn(12, 12, generator=gen)
    records, banks = im.run_study(x[:384], x[384:], ["relu", "tanh"], [4], [1.0], [0, 1, 2], epochs=2,
                                  batch_size=64, show_progress=False)
    assert {r["objective"] for r in records} == set(im.OBJECTIVES)
    assert len(records) == 2 * 4 * 3
    rand = [r for r in records if r["objective"] == "random"]
    assert all(r["final_loss"] is None and r["curve"] is None for r in rand)
    from actfn.infomax import stats as infomax_tests

    tests = infomax_tests.family_tests(records, "primary") + infomax_tests.family_tests(records, "secondary")
    assert {t["comparison"] for t in tests} == {"infomax - random", "infomax - reconstruction", "infomax - variance_only"}
    assert all(t["p_value"] <= t["p_adjusted"] <= 1 and t["seeds"] == 3 for t in tests)
    assert {t["verdict"] for t in tests} == {"underpowered"}        # 3 seeds: 8 x 0.25 > 0.05


@pytest.mark.parametrize("kwargs,name", [({"activations": ["gelu"]}, "activations"), ({"Ks": [1]}, "Ks"),
                                         ({"lambdas": [-1]}, "lambdas"), ({"seeds": [0, 0]}, "seeds"),
                                         ({"epochs": 0}, "epochs")])
def test_bad_study_parameters_are_named(kwargs, name):
    args = {"activations": ["relu"], "Ks": [4], "lambdas": [1.0], "seeds": [0], "epochs": 1, **kwargs}
    with pytest.raises(ValueError, match=name):
        im.check_study_parameters(**args)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_bank_with_per_model_inputs_equals_training_each_model_alone(precision):
    # the depth follow-up's bank: every model reads its own inputs (S, G, N, D); the seed still fixes
    # the start and the batch order, so each model is the one-model bank on its own inputs
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(2, 4, 160, 7, generator=gen) * torch.linspace(0.5, 2.0, 4).view(1, 4, 1, 1)
    settings = [im.Setting("relu"), im.Setting("pwl", "infomax", 10.0), im.Setting("swish", "random"),
                im.Setting("softmax", "variance_only", 0.0, "unit_rows")]
    seeds = [2, 9]
    bank = im.train_bank(settings, seeds, 5, x, epochs=2, batch_size=32, matmul_precision=precision)
    tol = dict(rtol=1e-4, atol=1e-5) if precision == "float32" else dict(rtol=1e-3, atol=1e-4)
    for i, seed in enumerate(seeds):
        for j, s in enumerate(settings):
            alone = im.train_bank([s], [seed], 5, x[i, j], epochs=2, batch_size=32, matmul_precision=precision)
            torch.testing.assert_close(bank.bank.weight[i, j], alone.bank.weight[0, 0], **tol)
            torch.testing.assert_close(bank.bank.bias[i, j], alone.bank.bias[0, 0], **tol)
            torch.testing.assert_close(bank.bank.knots[i, j], alone.bank.knots[0, 0], **tol)
            np.testing.assert_allclose(bank.losses[:, i, j], alone.losses[:, 0, 0], rtol=10 * tol["rtol"], atol=1e-3)
    # the models did learn from their own inputs: same seed, different inputs, different weights
    assert not torch.allclose(bank.bank.weight[0, 0], bank.bank.weight[0, 1])
    # the metrics of each model are taken on its own held-out inputs
    records = im.bank_records(bank, x[:, :, :50])
    expected = im.model_metrics(bank.bank.weight[1, 0].detach(), bank.bank.bias[1, 0].detach(), "relu", x[1, 0, :50])
    assert records[len(settings)]["effective_rank"] == pytest.approx(expected["effective_rank"])
    assert records[len(settings)]["output_correlation"] == pytest.approx(expected["output_correlation"])


def test_per_model_inputs_are_checked_by_name():
    x = torch.randn(2, 3, 64, 5)
    with pytest.raises(ValueError, match="x"):
        im.train_bank([im.Setting("relu")], [0, 1], 3, x, epochs=1, batch_size=16)
    with pytest.raises(ValueError, match="settings"):
        im.train_bank([im.Setting("relu"), im.Setting("tanh"), im.Setting("relu", "reconstruction")], [0, 1], 3, x,
                      epochs=1, batch_size=16)


def test_depth_followup_trains_each_second_layer_on_its_own_first_layer():
    gen = torch.Generator().manual_seed(12)
    x = torch.randn(400, 10, generator=gen) @ torch.randn(10, 10, generator=gen)
    acts = ["relu", "tanh"]
    records, banks = im.run_study(x[:320], x[320:], acts, [6], [1.0], [0, 1], epochs=2, batch_size=32,
                                  show_progress=False)
    run = banks[6]
    rows = im.depth_followup(run, x[:320], x[320:], acts, 4, epochs=2, batch_size=32)
    assert [(r["activation"], r["seed"]) for r in rows] == [("relu", 0), ("relu", 1), ("tanh", 0), ("tanh", 1)]
    # the second layer of (tanh, seed 1), trained alone on its own standardised first-layer outputs
    j = im.setting_index(run, "tanh", "infomax", 1.0)
    h_train, h_eval = im.standardise_features(im.layer_outputs(run, 1, j, x[:320]), im.layer_outputs(run, 1, j, x[320:]))
    alone = im.train_bank([im.Setting("tanh", "infomax", 1.0)], [1], 4, h_train, 2, 32)
    m2 = im.bank_records(alone, h_eval)[0]
    assert rows[3]["layer2_effective_rank"] == pytest.approx(m2["effective_rank"], rel=1e-4)
    assert rows[3]["layer2_output_correlation"] == pytest.approx(m2["output_correlation"], rel=1e-3, abs=1e-5)
    first = [r for r in records if (r["activation"], r["objective"], r["seed"], r["constraint"], r["lambda"])
             == ("tanh", "infomax", 1, "none", 1.0)][0]
    assert rows[3]["layer1_effective_rank"] == pytest.approx(first["effective_rank"])
    assert rows[3]["K1"] == 6 and rows[3]["K2"] == 4


def test_linear_probe_separates_separable_classes_and_not_noise():
    gen = torch.Generator().manual_seed(13)
    y = torch.randint(0, 3, (600,), generator=gen)
    centres = torch.tensor([[4.0, 0.0], [0.0, 4.0], [-4.0, -4.0]])
    f = centres[y] + torch.randn(600, 2, generator=gen)
    assert im.linear_probe(f[:400], y[:400], f[400:], y[400:]) > 0.95
    noise = torch.randn(600, 2, generator=gen)
    assert im.linear_probe(noise[:400], y[:400], noise[400:], y[400:]) < 0.5


def test_logistic_loss_and_grad_match_autograd():
    gen = torch.Generator().manual_seed(5)
    n, d, c = 50, 7, 4
    f = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=gen)
    w = torch.randn(c, d, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(c, generator=gen, dtype=torch.float64, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(f @ w.T + b, y) + 0.3 * w.pow(2).sum()
    expected.backward()
    with torch.no_grad():
        onehot_t = torch.nn.functional.one_hot(y, c).double().T.contiguous()
        loss, gw, gb = im.logistic_loss_and_grad(w, b, f, f.T.contiguous(), onehot_t, 0.3)
    assert float(loss) == pytest.approx(expected.item(), rel=1e-12)
    torch.testing.assert_close(gw, w.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gb, b.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_interrupted_bank_resumes_exactly(tmp_path, monkeypatch, precision):
    gen = torch.Generator().manual_seed(14)
    x = torch.randn(192, 8, generator=gen)
    settings = [im.Setting("relu"), im.Setting("pwl", "infomax", 10.0, "unit_rows"), im.Setting("tanh", "reconstruction"),
                im.Setting("softmax", "random")]
    args = (settings, [1, 4], 5, x, 3)
    kw = dict(batch_size=32, matmul_precision=precision)
    whole = im.train_bank(*args, **kw)
    ckpt = tmp_path / "bank.pt"
    real_batches = im.seed_batches

    def interrupted(x, seeds, epoch, batch_size):       # dies in the middle of the second epoch
        for n, xb in enumerate(real_batches(x, seeds, epoch, batch_size)):
            if epoch == 1 and n == 2:
                raise KeyboardInterrupt
            yield xb

    monkeypatch.setattr(im.train, "seed_batches", interrupted)
    with pytest.raises(KeyboardInterrupt):
        im.train_bank(*args, checkpoint=ckpt, **kw)
    monkeypatch.setattr(im.train, "seed_batches", real_batches)
    assert len(torch.load(ckpt, weights_only=True)["state"]["losses"]) == 1      # the first epoch's checkpoint
    resumed = im.train_bank(*args, checkpoint=ckpt, **kw)
    for name in ("weight", "bias", "decoder", "knots"):
        assert torch.equal(getattr(resumed.bank, name), getattr(whole.bank, name)), name
    np.testing.assert_array_equal(resumed.losses, whole.losses)
    np.testing.assert_array_equal(resumed.weight_norms, whole.weight_norms)
    assert resumed.steps == whole.steps == 3 * 6
    # a finished checkpoint is read back without training again
    def no_batches(*a):
        raise AssertionError("trained again")

    monkeypatch.setattr(im.train, "seed_batches", no_batches)
    again = im.train_bank(*args, checkpoint=ckpt, **kw)
    assert torch.equal(again.bank.weight, whole.bank.weight) and again.steps == whole.steps
    monkeypatch.setattr(im.train, "seed_batches", real_batches)
    # another run's checkpoint is refused by name, with the field that differs
    with pytest.raises(ValueError, match=f"checkpoint {ckpt} was written by another run \\(data: "):
        im.train_bank(settings, [1, 4], 5, x + 1, 3, checkpoint=ckpt, **kw)
    # and so is one written in an older format
    saved = torch.load(ckpt, weights_only=True)
    saved["key"]["format"] = 3
    torch.save(saved, ckpt)
    with pytest.raises(ValueError, match=f"format: 3 in the checkpoint, {im.CHECKPOINT_FORMAT} now"):
        im.train_bank(*args, checkpoint=ckpt, **kw)


def test_study_checkpoints_are_removed_unless_resuming(tmp_path):
    gen = torch.Generator().manual_seed(15)
    x = torch.randn(200, 6, generator=gen)
    args = (x[:160], x[160:], ["relu"], [3], [1.0], [0, 1], 2)
    first, _ = im.run_study(*args, batch_size=32, show_progress=False, checkpoint_dir=tmp_path)
    files = list(tmp_path.glob("infomax_K3_*.pt"))
    assert len(files) == 1
    saved = torch.load(files[0], weights_only=True)
    saved["state"]["bank"]["weight"] += 1.0          # a checkpoint that differs from what this run would compute
    torch.save(saved, files[0])
    resumed, _ = im.run_study(*args, batch_size=32, show_progress=False, checkpoint_dir=tmp_path, resume=True)
    assert resumed[0]["weight_norm"] != pytest.approx(first[0]["weight_norm"])     # read, not retrained
    fresh, _ = im.run_study(*args, batch_size=32, show_progress=False, checkpoint_dir=tmp_path)
    assert fresh[0]["weight_norm"] == pytest.approx(first[0]["weight_norm"])       # removed and retrained


def test_dissociation_sentence_needs_every_seed_and_reads_the_gating():
    from actfn.infomax import report as rep

    def row(act, corr_up, tcz_up, cos_up, overlap):
        r = {"activation": act, "seeds": 10, "open_overlap": overlap, "open_overlap_independent": 0.3,
             "overlap_below_in": 10 if overlap < 0.3 else 0}
        for m, up in (("mean_sq_correlation", corr_up), ("tc_z_per_unit", tcz_up), ("mean_sq_cosine", cos_up)):
            r[f"{m}_higher"] = up
        return r

    rows = [row("relu", 0, 10, 10, 0.2), row("tanh", 0, 10, 9, 0.1), row("identity", 0, 10, 10, 0.4)]
    text = rep.dissociation_sentence(rows)
    assert "in all 10 seeds" in text and "for: relu, identity." in text      # tanh: cos² rose in 9 of 10
    assert "For relu that is consistent with decorrelation through the biases" in text
    assert "(relu 0.200 vs 0.300), so the units take turns" in text
    assert "For identity the units' open sets (z > 0) overlap about as much" in text and "no sign of the biases" in text
    barely = rep.dissociation_sentence([row("relu", 0, 10, 10, 0.29)])        # below in every seed, but by 3 %
    assert "no sign of the biases gating" in barely and "take turns" not in barely
    assert "none" in rep.dissociation_sentence([row("tanh", 3, 10, 10, 0.1)])


def test_tradeoff_sentence_names_leaders_and_ties():
    from actfn.infomax import report as rep

    assert rep.leaders({"relu": 0.5, "tanh": 0.9, "pwl": 0.9000001, "x": float("nan")}, True) == ["tanh", "pwl"]
    assert rep.leaders({"relu": 3.0, "tanh": 1.0}, False) == ["tanh"]
    split = rep.tradeoffs({"rank": ({"relu": 0.9, "tanh": 0.5}, True), "dead": ({"relu": 0.3, "tanh": 0.0}, False)})
    assert "rank: relu; dead: tanh" in split and "No activation leads on every axis" in split
    one = rep.tradeoffs({"rank": ({"relu": 0.9, "tanh": 0.5}, True), "dead": ({"relu": 0.0, "tanh": 0.0}, False)})
    assert "dead: all tie" in one and "relu leads on every axis" in one
    three = rep.tradeoffs({"rank": ({"a": 0.9, "b": 0.9, "c": 0.1}, True)})
    assert "rank: a, b." in three


def test_design_guesses_are_checked_both_ways():
    from actfn.infomax import report as rep

    def rec(act, dead, cos, conc=None, k=4):
        return {"activation": act, "K": k, "dead_units": dead, "survivor_mean_abs_cosine": cos,
                "responsibility_concentration": conc}

    acts = ["relu", "tanh", "softmax"]
    holds = [rec("relu", 2, 0.01), rec("tanh", 0, 0.2), rec("softmax", 0, 0.3, conc=0.8)]
    relu, soft = rep.design_guesses(holds, acts)
    assert "50.0% of its units dead" in relu and relu.endswith("Both halves hold.")
    assert "K = 4: 0.800" in soft and soft.endswith("Both halves hold.")
    fails = [rec("relu", 0, 0.3), rec("tanh", 0, 0.2), rec("softmax", 1, 0.1, conc=0.3)]
    relu, soft = rep.design_guesses(fails, acts)
    assert relu.endswith("Neither half holds in this run.") and soft.endswith("Neither half holds in this run.")
    half = [rec("relu", 0, 0.01), rec("tanh", 0, 0.2), rec("softmax", 0, 0.1, conc=0.3)]
    relu, soft = rep.design_guesses(half, acts)
    assert relu.endswith("low redundancy among survivors, not many dead units.")
    assert soft.endswith("no dead units, not collapse.")
    assert rep.design_guesses(half, ["tanh"]) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_bank_on_a_gpu_trains_the_cpu_banks_models(precision):
    # every activation (the learned one through the CUDA kernels), every objective, per-model inputs too
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(240, 12, generator=gen)
    settings = im.study_settings(im.ACTIVATIONS, [1.0], im.CONSTRAINTS)
    cpu = im.train_bank(settings, [3, 4], 5, x, epochs=2, batch_size=60, matmul_precision=precision)
    gpu = im.train_bank(settings, [3, 4], 5, x, epochs=2, batch_size=60, matmul_precision=precision, device="cuda")
    assert gpu.bank.weight.device.type == "cpu"
    tol = dict(rtol=1e-3, atol=1e-4) if precision == "float32" else dict(rtol=3e-2, atol=3e-3)
    for name in ("weight", "bias", "knots", "decoder"):
        torch.testing.assert_close(getattr(gpu.bank, name), getattr(cpu.bank, name), **tol)
    np.testing.assert_allclose(gpu.losses, cpu.losses, rtol=tol["rtol"], atol=tol["atol"])
    h = torch.randn(2, 3, 120, 6, generator=gen)
    depth = [im.Setting(a, "infomax", 1.0) for a in ("tanh", "pwl", "softmax")]
    a, b = (im.train_bank(depth, [3, 4], 4, h, epochs=1, batch_size=40, device=d) for d in ("cpu", "cuda"))
    torch.testing.assert_close(b.bank.weight, a.bank.weight, rtol=1e-3, atol=1e-4)


def test_bank_training_stops_on_a_non_finite_loss_naming_the_models():
    x = torch.randn(80, 6, generator=torch.Generator().manual_seed(9))
    x[7, 2] = float("nan")
    with pytest.raises(FloatingPointError, match=r"non-finite InfoMax loss at epoch 1 for \[\(0, Setting"):
        im.train_bank([im.Setting("tanh"), im.Setting("relu", "variance_only")], [0], 3, x, epochs=2, batch_size=40)
