"""The seed-level tests on cases with a known answer: exact p-values, ties, point masses, power."""
import itertools

import numpy as np
import pytest

from actfn.infomax import stats as it
from actfn.stats import holm, holm_family, seed_test


def enumerated_p(d):
    """The two-sided sign-flip p by listing every sign vector (the definition)."""
    d = np.asarray(d, float)
    means = [abs(np.dot(s, d)) / len(d) for s in itertools.product((1, -1), repeat=len(d))]
    return np.mean([m >= abs(d.mean()) - 1e-12 for m in means])


@pytest.mark.parametrize("d", [[1.0, 2.0, 3.0], [0.4, -0.1, 0.3, 0.2, 0.9, -0.05, 0.5],
                               [1.0, 1.0, 0.0], [2.0, -2.0, 2.0, 2.0], [0.3] * 6])
def test_sign_flip_p_is_exact_with_ties_and_zeros(d):
    res = seed_test(np.asarray(d), np.zeros(len(d)))
    assert res["p_value"] == pytest.approx(enumerated_p(d))
    nonzero = np.count_nonzero(d)
    assert res["p_min"] == pytest.approx(2.0 / 2 ** nonzero)


def test_smallest_p_is_reached_when_every_seed_agrees():
    assert seed_test(np.arange(1, 4.0), np.zeros(3))["p_value"] == pytest.approx(0.25)
    assert seed_test(np.arange(1, 11.0), np.zeros(10))["p_value"] == pytest.approx(2 / 1024)


def test_no_difference_and_a_point_mass_of_differences():
    same = seed_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same["p_value"] == 1.0 and same["p_min"] == 1.0 and same["ci_low"] == same["ci_high"] == 0.0
    equal = seed_test([1.5, 2.5, 3.5, 4.5], [1.0, 2.0, 3.0, 4.0])   # every difference 0.5: no spread
    assert equal["ci_low"] == equal["ci_high"] == 0.5 and equal["effect_size"] == float("inf")
    with pytest.raises(ValueError, match="finite"):
        seed_test([1.0, float("nan")], [0.0, 0.0])


def test_bootstrap_interval_covers_the_mean_like_a_t_interval_on_normal_data():
    from scipy import stats

    d = np.random.default_rng(1).normal(0.5, 1.0, 200)
    res = seed_test(d, np.zeros_like(d))
    t = stats.t.interval(0.95, len(d) - 1, d.mean(), stats.sem(d))
    assert res["ci_method"] == "BCa bootstrap over seeds"
    assert res["ci_low"] == pytest.approx(t[0], abs=0.03) and res["ci_high"] == pytest.approx(t[1], abs=0.03)


def test_a_family_too_large_for_its_seeds_is_underpowered_not_no_difference():
    strong = [{**seed_test(np.arange(1, 4.0), np.zeros(3)), "better_if": "higher"} for _ in range(8)]
    assert {t["verdict"] for t in holm_family(strong)} == {"underpowered"}
    assert strong[0]["p_attainable"] == pytest.approx(1.0)        # 8 x 0.25
    ten = [{**seed_test(np.arange(1, 11.0), np.zeros(10)), "better_if": "lower"} for _ in range(8)]
    assert {t["verdict"] for t in holm_family(ten)} == {"worse"}   # higher but lower is better
    noisy = [{**seed_test(np.random.default_rng(i).normal(0, 1, 10), np.zeros(10)), "better_if": "higher"} for i in range(4)]
    assert {t["verdict"] for t in holm_family(noisy)} == {"no significant difference"}
    np.testing.assert_allclose([t["p_adjusted"] for t in noisy], holm([t["p_value"] for t in noisy]))


def _records(seeds, effect):
    """InfoMax / random / reconstruction records with a known effect on every primary metric."""
    rows = []
    for s in seeds:
        for k in (4, 8):
            for obj, shift in (("infomax", effect), ("random", 0.0), ("reconstruction", 0.0), ("variance_only", 0.0)):
                noise = 0.01 * np.sin(7 * s + k)
                rows.append({"activation": "relu", "objective": obj, "constraint": "none", "lambda": 1.0 if obj == "infomax" else 0.0,
                             "K": k, "seed": s, "effective_rank_fraction": 0.5 + shift + noise,
                             "mean_sq_cosine": 0.2 - shift + noise, "mean_sq_correlation": 0.1 + noise,
                             "tc_per_unit": 0.05 + noise})
    return rows


def test_seeds_not_k_are_the_pairs_and_the_criterion_follows_the_tests():
    recs = _records(range(10), 0.1)
    per = it.per_seed(recs, "relu", "infomax", "effective_rank_fraction", 1.0)
    assert sorted(per) == list(range(10))                          # one value per seed (mean over K)
    assert per[3] == pytest.approx(0.6 + 0.01 * (np.sin(25) + np.sin(29)) / 2)
    primary = it.family_tests(recs, "primary")
    assert len(primary) == 4 and all(t["seeds"] == 10 and t["family_size"] == 4 for t in primary)
    assert it.criterion(primary)["relu"]["verdict"] == "confirmed"
    worse = it.criterion(it.family_tests(_records(range(10), -0.1), "primary"))["relu"]
    assert worse["verdict"] == "contradicted" and "effective rank fraction vs random" in worse["why"]
    three = it.criterion(it.family_tests(_records(range(3), 0.1), "primary"))["relu"]
    assert three["verdict"] == "underpowered"


def _study(seeds, acts=("relu", "softmax"), lambdas=(0.1, 1.0, 10.0)):
    """Records of a study with known answers: InfoMax above random on rank, output correlation falling
    with lambda in every seed, the entropy term falling at the highest lambda, no dead units."""
    rows = []
    for a in acts:
        for s in seeds:
            for k in (4, 8):
                wobble = 0.001 * np.sin(3 * s + k)
                base = dict(activation=a, constraint="none", K=k, seed=s, dead_units=0, correlation_floor=k * (k - 1) / 999,
                            survivor_mean_abs_cosine=0.05, responsibility_concentration=0.3 if a == "softmax" else None)
                for obj, lam in [("random", 0.0), ("reconstruction", 0.0), ("variance_only", 0.0)] + [("infomax", l) for l in lambdas]:
                    gain = 0.05 if obj == "infomax" else 0.0
                    rows.append({**base, "objective": obj, "lambda": lam,
                                 "effective_rank_fraction": 0.92 + gain + wobble, "mean_sq_cosine": 0.01 - gain / 10 + wobble,
                                 "mean_sq_correlation": (0.02 / (1 + lam) if obj == "infomax" else 0.03) + wobble,
                                 "tc_per_unit": 0.1 + wobble, "mean_log_variance": -lam + wobble})
    return rows


def test_design_claims_follow_known_answers():
    from actfn.infomax import claims as ic

    recs = _study(range(10))
    primary = it.family_tests(recs, "primary")
    rows = ic.primary_claims(it.criterion(primary), 10) + ic.outcome_claims(recs, ["relu", "softmax"], [0.1, 1.0, 10.0],
                                                                            1.0, primary, ["relu"])
    status = {r["claim"]: r["status"] for r in rows}
    assert status["relu: InfoMax gives higher effective rank and lower weight correlation than random initialisation "
                  "and the autoencoder"] == "reproduced"
    assert status["Optimistic: InfoMax yields high effective rank (non-redundant)"] == "reproduced"
    # relu and softmax are equal but for a wobble: relu "leads" by the mean, not in every seed
    assert status["Optimistic: one activation clearly wins"] == "differs"
    edge = [{**r, "effective_rank_fraction": r["effective_rank_fraction"] + (0.01 if r["activation"] == "relu" else 0)}
            for r in recs]
    clear = {r["claim"]: r["status"] for r in ic.outcome_claims(edge, ["relu", "softmax"], [0.1, 1.0, 10.0], 1.0,
                                                                primary, ["relu"])}
    assert clear["Optimistic: one activation clearly wins"] == "reproduced"
    assert status["Optimistic: results are stable across seeds"] == "reproduced"
    assert status["Pessimistic: InfoMax doesn't improve over random init"] == "not reproduced"
    assert status["Pessimistic: all activations collapse or have dead units"] == "not reproduced"
    assert status["Likely: InfoMax helps but doesn't eliminate redundancy"] == "reproduced"
    assert status["Likely: λ tuning matters"] == "reproduced" and status["Low λ allows redundancy"] == "reproduced"
    assert status["High λ hurts optimisation"] == "reproduced"
    assert status["Softmax: no dead units but collapses"] == "differs"        # no dead units, but no collapse
    one = _study([0], lambdas=(1.0,))
    few = {r["claim"]: r["status"] for r in ic.outcome_claims(one, ["relu", "softmax"], [1.0], 1.0,
                                                              it.family_tests(one, "primary"), [])}
    assert few["Optimistic: results are stable across seeds"] == "not testable here"
    assert few["Likely: λ tuning matters"] == "not testable here"
    assert few["Pessimistic: InfoMax doesn't improve over random init"] == "not testable here"


def test_claims_resting_on_every_seed_need_enough_seeds():
    from actfn.infomax import claims as ic

    recs = _study(range(3))
    rows = ic.outcome_claims(recs, ["relu", "softmax"], [0.1, 1.0, 10.0], 1.0, it.family_tests(recs, "primary"), ["relu"])
    few = {r["claim"]: r for r in rows}
    for claim in ("Likely: λ tuning matters", "Likely: InfoMax helps but doesn't eliminate redundancy",
                  "Optimistic: one activation clearly wins"):
        assert few[claim]["status"] == "not testable here" and "3 seeds" in few[claim]["reason"]
