"""The InfoMax chapter's hypothesis tests: two pre-specified families, seeds as the unit of replication.

**Unit of replication.**  Within a seed, every K starts from rows of one Xavier draw (the K = 16
start is the first rows of the K = 32 one) and sees one batch order, so (K, seed) cells are not
independent.  K is therefore a fixed factor within seed: a metric (each one scale-free, so
comparable across K) is averaged over K within each seed, and the tests are paired over seeds.

**Families** (fixed before looking at any result; Holm within each):

* *primary* -- the design's criterion, "if InfoMax yields higher effective rank and lower weight
  correlation than random initialisation and the autoencoder, the hypothesis is confirmed": per
  activation, InfoMax (lambda = the reference lambda, unconstrained) against ``random`` and against
  ``reconstruction``, on the effective rank / K (higher is better) and on the direction redundancy of
  W, the mean cos^2 between its unit rows (lower is better).  The design states its hypothesis for
  each activation, so each activation's four tests are one family (Holm over the four): a verdict
  is about that activation, and "confirmed" needs all four (an intersection-union test).  Over all
  32 at once, 10 seeds could not reach significance at all (32 x 2/2^10 > 0.05).  R_W is not tested: it is a function of
  W's singular values (see :func:`actfn.infomax.weight_redundancy`) and says what the effective rank
  says.
* *secondary* -- does the decorrelation term decorrelate?  Per activation, InfoMax against
  ``variance_only`` on the held-out mean squared output correlation and the copula TC per unit
  (lower is better).
"""
from __future__ import annotations

import numpy as np

from ..stats import holm_family, seed_test

METRICS = {  # metric -> (what it is, which direction is better)
    "effective_rank_fraction": ("effective rank (participation ratio) / K", "higher"),
    "mean_sq_cosine": ("mean cos² between the unit rows of W", "lower"),
    "mean_sq_correlation": ("||Corr(a) − I||²_F / (K(K−1)), held out", "lower"),
    "tc_per_unit": ("Gaussian-copula TC of a per unit, held out", "lower"),
}
FAMILIES = {
    "primary": [(base, metric) for base in ("random", "reconstruction")
                for metric in ("effective_rank_fraction", "mean_sq_cosine")],
    "secondary": [("variance_only", "mean_sq_correlation"), ("variance_only", "tc_per_unit")],
}
PER_ACTIVATION = {"primary": True, "secondary": False}     # Holm within each activation, or over the family


def per_seed(records: list[dict], activation: str, objective: str, metric: str, lam: float | None = None) -> dict:
    """{seed: the metric's mean over K} for one condition (unconstrained models; ``lam`` for InfoMax)."""
    cells: dict = {}
    for r in records:
        if (r["activation"], r["objective"], r["constraint"]) != (activation, objective, "none"):
            continue
        if lam is not None and r["lambda"] != lam:
            continue
        if r[metric] is not None and np.isfinite(r[metric]):
            cells.setdefault(r["seed"], {})[r["K"]] = r[metric]
    ks = set.union(*(set(v) for v in cells.values())) if cells else set()
    return {s: float(np.mean(list(v.values()))) for s, v in cells.items() if set(v) == ks}


def family_tests(records: list[dict], family: str, reference_lambda: float = 1.0, alpha: float = 0.05) -> list[dict]:
    """Every test of one family, per activation, Holm-adjusted within the family (within each
    activation for the primary family: see the module doc)."""
    tests = []
    for act in dict.fromkeys(r["activation"] for r in records):
        for base, metric in FAMILIES[family]:
            a = per_seed(records, act, "infomax", metric, reference_lambda)
            b = per_seed(records, act, base, metric)
            seeds = sorted(set(a) & set(b))
            if not seeds:
                continue
            res = seed_test([a[s] for s in seeds], [b[s] for s in seeds])
            tests.append({"family": family, "activation": act, "comparison": f"infomax - {base}", "metric": metric,
                          "better_if": METRICS[metric][1], "seeds": len(seeds),
                          "infomax_mean": float(np.mean([a[s] for s in seeds])),
                          "baseline_mean": float(np.mean([b[s] for s in seeds])), **res})
    if not PER_ACTIVATION[family]:
        return holm_family(tests, alpha)
    for act in dict.fromkeys(t["activation"] for t in tests):
        holm_family([t for t in tests if t["activation"] == act], alpha)
    return tests


def criterion(primary: list[dict]) -> dict[str, dict]:
    """The design's verdict per activation from its primary tests: ``confirmed`` (InfoMax significantly
    better on all four), ``contradicted`` (significantly worse on at least one), ``underpowered``
    (no test could reach significance with these seeds), else ``not confirmed``; with the reason."""
    out = {}
    for act in dict.fromkeys(t["activation"] for t in primary):
        ts = [t for t in primary if t["activation"] == act]
        worse = [t for t in ts if t["verdict"] == "worse"]
        name = lambda t: f"{t['metric'].replace('_', ' ')} vs {t['comparison'].split(' - ')[1]}"
        if len(ts) == len(FAMILIES["primary"]) and all(t["verdict"] == "better" for t in ts):
            verdict, why = "confirmed", "InfoMax is significantly better on all four"
        elif worse:
            verdict, why = "contradicted", "significantly worse on " + ", ".join(name(t) for t in worse)
        elif all(t["verdict"] == "underpowered" for t in ts):
            verdict, why = "underpowered", (f"with {ts[0]['seeds']} seeds no test of this family can reach "
                                            f"significance (smallest attainable Holm p {ts[0]['p_attainable']:.2g})")
        else:
            verdict = "not confirmed"
            why = "not significantly better on " + ", ".join(name(t) for t in ts if t["verdict"] != "better")
        out[act] = {"verdict": verdict, "why": why}
    return out
