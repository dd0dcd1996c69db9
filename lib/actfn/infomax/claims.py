"""The claims of design 002 (*InfoMax Across Activations*), each judged from a build's records.

Rows ``{claim, measured, criterion, status, reason}`` as in :mod:`actfn.verdicts`: *reproduced* when
the measured numbers meet the criterion written beside them, *differs* when part of the statement
holds, *not reproduced* when it fails, *not testable here* when this run cannot decide it (too few
seeds, a missing condition).  The design's words are vague in places ("high", "stable", "matters");
each criterion says how this book reads them, so a reader can disagree with the reading rather than
with the arithmetic.  A change "in every seed" is a sign test: with n seeds its p is 2/2^n.
"""
from __future__ import annotations

import numpy as np

from .stats import per_seed
from ..verdicts import DIFFERS, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, claim_row
STABLE_CV, UNSTABLE_CV = 0.05, 0.20       # seed spread / mean of a scale-free metric
HIGH_RANK = 0.9                           # "high effective rank": at least 0.9 K
SIGN_SEEDS = 6                            # fewest seeds at which "in every seed" can mean p < 0.05 (2/2^6)


def _mean(records, metric, **where):
    vals = [r[metric] for r in records if all(r[k] == v for k, v in where.items()) and r[metric] is not None]
    return float(np.mean(vals)) if vals else float("nan")


def _seed_cv(records, act, metric, lam):
    vals = list(per_seed(records, act, "infomax", metric, lam).values())
    return float(np.std(vals, ddof=1) / abs(np.mean(vals))) if len(vals) > 1 and np.mean(vals) else float("nan")


def _every_seed(a: dict, b: dict, higher: bool) -> tuple[int, int]:
    """(seeds where a > b (or a < b when not ``higher``), seeds compared)."""
    seeds = sorted(set(a) & set(b))
    return sum((a[s] > b[s]) if higher else (a[s] < b[s]) for s in seeds), len(seeds)


def primary_claims(criterion: dict, seeds: int) -> list[dict]:
    """The primary hypothesis, one row per activation, from :func:`.stats.criterion`."""
    status = {"confirmed": REPRODUCED, "contradicted": NOT_REPRODUCED, "not confirmed": DIFFERS,
              "underpowered": NOT_TESTABLE}
    return [claim_row(f"{act}: InfoMax gives higher effective rank and lower weight correlation than random "
                      f"initialisation and the autoencoder", c["verdict"],
                      "all four primary tests significantly better (exact sign-flip over seeds, Holm over the four)",
                      status[c["verdict"]], c["why"]) for act, c in criterion.items()]


def outcome_claims(records, activations, lambdas, reference_lambda, primary, leaders_all: list[str]) -> list[dict]:
    """The design's expected outcomes (optimistic, pessimistic, likely) and its guesses."""
    rows = []
    n_seeds = len({r["seed"] for r in records})
    inf = lambda **w: [r for r in records if r["objective"] == "infomax" and r["constraint"] == "none"
                       and r["lambda"] == w.get("lam", reference_lambda) and r["activation"] in w.get("acts", activations)]
    rank = {a: _mean(inf(acts=[a]), "effective_rank_fraction") for a in activations}
    low = [a for a in activations if not rank[a] >= HIGH_RANK]
    rows.append(claim_row("Optimistic: InfoMax yields high effective rank (non-redundant)",
                          ", ".join(f"{a} {v:.3f}" for a, v in rank.items()) + " (effective rank / K)",
                          f"effective rank ≥ {HIGH_RANK} K for every activation",
                          REPRODUCED if not low else NOT_REPRODUCED,
                          "every activation" if not low else f"below for {', '.join(low)}"))
    rows.append(_clear_winner(records, leaders_all, activations, reference_lambda, n_seeds))
    cvs = {a: max(_seed_cv(records, a, m, reference_lambda) for m in ("effective_rank_fraction", "mean_sq_correlation"))
           for a in activations}
    worst = max(cvs.values()) if cvs else float("nan")
    measured = ", ".join(f"{a} {v:.3f}" for a, v in cvs.items()) + " (largest seed sd / mean)"
    if n_seeds < 2:
        rows += [claim_row(c, "-", "-", NOT_TESTABLE, "one seed") for c in
                 ("Optimistic: results are stable across seeds", "Pessimistic: high variance across seeds")]
    else:
        rows.append(claim_row("Optimistic: results are stable across seeds", measured,
                              f"seed sd below {STABLE_CV:.0%} of the mean of effective rank / K and of the output "
                              "correlation, for every activation",
                              REPRODUCED if worst < STABLE_CV else NOT_REPRODUCED, f"largest {worst:.3f}"))
        rows.append(claim_row("Pessimistic: high variance across seeds", measured,
                              f"seed sd above {UNSTABLE_CV:.0%} of the mean for some activation",
                              REPRODUCED if worst > UNSTABLE_CV else NOT_REPRODUCED, f"largest {worst:.3f}"))
    vs_random = [t for t in primary if t["comparison"] == "infomax - random"]
    better = sorted({t["activation"] for t in vs_random if t["verdict"] == "better"})
    testable = [t for t in vs_random if t["verdict"] != "underpowered"]
    rows.append(claim_row("Pessimistic: InfoMax doesn't improve over random init",
                          f"significantly better than random on a weight metric: {', '.join(better) or 'none'}",
                          "no activation significantly better than random on effective rank or mean cos²",
                          NOT_TESTABLE if not testable else (REPRODUCED if not better else NOT_REPRODUCED),
                          "every test underpowered" if not testable else
                          ("it improves on neither for any activation" if not better else "it improves for some")))
    dead = {a: _mean(inf(acts=[a]), "dead_units") for a in activations}
    failed = [a for a in activations if dead[a] > 0 or rank[a] < 0.5]
    rows.append(claim_row("Pessimistic: all activations collapse or have dead units",
                          ", ".join(f"{a}: {dead[a]:.1f} dead, rank {rank[a]:.2f} K" for a in activations),
                          "every activation has dead units or an effective rank below 0.5 K (collapse)",
                          REPRODUCED if len(failed) == len(activations) else NOT_REPRODUCED,
                          f"{len(failed)} of {len(activations)} do"))
    # Likely: helps (outputs less correlated than at the random start, in every seed) but redundancy remains
    helps = {a: _every_seed(per_seed(records, a, "random", "mean_sq_correlation"),
                            per_seed(records, a, "infomax", "mean_sq_correlation", reference_lambda), True)
             for a in activations}
    # independent units' mean squared correlation on N held-out samples: 1 / (N - 1) (correlation_floor / K(K-1))
    floor = {a: float(np.mean([r["correlation_floor"] / (r["K"] * (r["K"] - 1)) for r in inf(acts=[a])]))
             for a in activations}
    helped = [a for a in activations if helps[a][1] >= 2 and helps[a][0] == helps[a][1]]
    remains = [a for a in helped if _mean(inf(acts=[a]), "mean_sq_correlation") > 2 * floor[a]]
    few = n_seeds < SIGN_SEEDS
    rows.append(claim_row("Likely: InfoMax helps but doesn't eliminate redundancy",
                          ", ".join(f"{a}: lower output correlation than its random start in {helps[a][0]} of "
                                    f"{helps[a][1]} seeds" for a in activations),
                          "output correlation below the random start's in every seed, and still above twice "
                          "the independent-units floor", NOT_TESTABLE if few else
                          (REPRODUCED if helped and remains == helped else (DIFFERS if helped else NOT_REPRODUCED)),
                          _few(n_seeds) if few else
                          f"helps for {', '.join(helped) or 'none'}; redundancy remains for {', '.join(remains) or 'none'}"))
    rows += _lambda_claims(records, activations, lambdas, reference_lambda, n_seeds)
    from .report import design_guess_checks

    for c in design_guess_checks(inf(), activations):
        held = [name for name, ok in c["parts"] if ok]
        rows.append(claim_row(c["claim"], c["measured"], "both halves hold (see the answers above for how each is read)",
                              REPRODUCED if len(held) == len(c["parts"]) else (DIFFERS if held else NOT_REPRODUCED),
                              f"holds: {', '.join(held) or 'neither half'}"))
    return rows


# the axes measured on every model, so per seed: (metric, higher is better)
CLEAR_AXES = (("effective_rank_fraction", True), ("dead_fraction", False), ("tc_per_unit", False))


def _clear_winner(records, leaders_all, activations, reference_lambda, n_seeds) -> dict:
    """"One activation clearly wins": one activation leads every axis by the mean, *and* on the axes
    measured per model (:data:`CLEAR_AXES`) it is worse than no other activation in any seed and ahead
    of each in every seed on at least one axis.  The leader is picked from the same data, so this is
    a consistency requirement, not a significance test."""
    claim = "Optimistic: one activation clearly wins"
    criterion = ("one activation leads every axis of the secondary question (by the mean); on effective rank / K, "
                 "dead units / K and TC per unit it is worse than no other activation in any seed, and ahead of each "
                 "in every seed on at least one of them")
    if len(leaders_all) != 1:
        return claim_row(claim, ", ".join(leaders_all) or "no single leader", criterion, NOT_REPRODUCED,
                         "the axes have different leaders")
    leader = leaders_all[0]
    if n_seeds < SIGN_SEEDS:
        return claim_row(claim, f"{leader} leads every axis by the mean", criterion, NOT_TESTABLE,
                         f"{n_seeds} seeds: too few for a lead in every seed to mean anything (fewer than {SIGN_SEEDS})")
    recs = [{**r, "dead_fraction": r["dead_units"] / r["K"]} for r in records if r["objective"] == "infomax"]
    worse, unbeaten = [], []
    for other in (a for a in activations if a != leader):
        ahead = False
        for metric, higher in CLEAR_AXES:
            mine = per_seed(recs, leader, "infomax", metric, reference_lambda)
            theirs = per_seed(recs, other, "infomax", metric, reference_lambda)
            seeds = set(mine) & set(theirs)
            sign = 1 if higher else -1
            lost = sum(sign * (mine[s] - theirs[s]) < 0 for s in seeds)
            if lost:
                worse.append(f"{metric.replace('_', ' ')} vs {other} in {lost} seeds")
            ahead |= bool(seeds) and all(sign * (mine[s] - theirs[s]) > 0 for s in seeds)
        if not ahead:
            unbeaten.append(other)
    clear = not worse and not unbeaten
    return claim_row(claim, f"{leader} leads every axis by the mean; worse in some seed: {'; '.join(worse) or 'never'}; "
                            f"not ahead in every seed on any axis of: {', '.join(unbeaten) or 'none'}",
                     criterion, REPRODUCED if clear else DIFFERS,
                     "it leads in every seed" if clear else "it leads by the mean, not in every seed")


def _few(n_seeds: int) -> str:
    return f"{n_seeds} seeds: a change in every seed would have p = {min(1.0, 2 / 2 ** n_seeds):.2g}, not below 0.05"


def _lambda_claims(records, activations, lambdas, reference_lambda, n_seeds) -> list[dict]:
    rows = []
    names = ("Likely: λ tuning matters", "Low λ allows redundancy", "High λ hurts optimisation")
    if len(lambdas) < 2:
        return [claim_row(c, "-", "-", NOT_TESTABLE, "one λ in this run") for c in names]
    if n_seeds < SIGN_SEEDS:
        return [claim_row(c, "-", "-", NOT_TESTABLE, _few(n_seeds)) for c in names]
    lo, hi = min(lambdas), max(lambdas)

    def moved(metric, a_lam, b_lam, higher):
        counts = [_every_seed(per_seed(records, a, "infomax", metric, a_lam), per_seed(records, a, "infomax", metric, b_lam),
                              higher) for a in activations]
        return sum(c == n and n >= 2 for c, n in counts), len(activations), counts[0][1] if counts else 0

    k, n, s = moved("mean_sq_correlation", lo, hi, True)
    rows.append(claim_row("Likely: λ tuning matters", f"output correlation higher at λ = {lo:g} than at {hi:g} in every "
                          f"seed for {k} of {n} activations ({s} seeds)",
                          "the output correlation changes with λ in the same direction in every seed, for most activations",
                          REPRODUCED if k > n / 2 else NOT_REPRODUCED, f"{k} of {n}"))
    if lo < reference_lambda:
        k, n, s = moved("mean_sq_correlation", lo, reference_lambda, True)
        rows.append(claim_row("Low λ allows redundancy", f"output correlation higher at λ = {lo:g} than at "
                              f"{reference_lambda:g} in every seed for {k} of {n} activations",
                              "higher output correlation at the lowest λ than at the reference λ in every seed, for "
                              "most activations", REPRODUCED if k > n / 2 else NOT_REPRODUCED, f"{k} of {n}"))
    if hi > reference_lambda:
        k, n, s = moved("mean_log_variance", reference_lambda, hi, True)
        rows.append(claim_row("High λ hurts optimisation", f"entropy term (mean log Var(a)) lower at λ = {hi:g} than at "
                              f"{reference_lambda:g} in every seed for {k} of {n} activations",
                              "the variance (entropy) term, what the loss maximises besides decorrelation, ends lower at "
                              "the highest λ in every seed, for most activations",
                              REPRODUCED if k > n / 2 else NOT_REPRODUCED, f"{k} of {n}"))
    return rows
