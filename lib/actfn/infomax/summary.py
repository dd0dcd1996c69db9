"""The InfoMax chapter's verdicts from one study's results, for the live run and the record alike.

:func:`analyse` computes, from a study's model records (and its linear probes), everything the page
judges: the two pre-specified test families, the design's criterion, the dissociation, the leaders
on the design's axes and the claims table.  The ``*_table`` functions turn them into ``(rows,
columns)`` for :func:`actfn.report.markdown_table`, so the live run and the record are shown by the
same code.
"""
from __future__ import annotations

import numpy as np

from . import claims as infomax_claims
from . import report as rep
from . import stats as it
from ..verdicts import columns

MARK = {"better": "+", "worse": "−", "no significant difference": "·", "underpowered": "?"}


def reference(records, reference_lambda: float) -> list[dict]:
    """The comparison's records: unconstrained, InfoMax at the reference λ, every baseline."""
    return [r for r in rep.select(records, constraint="none")
            if r["objective"] != "infomax" or r["lambda"] == reference_lambda]


def stability(infomax_ref, activations, Ks, metric: str) -> dict[str, float]:
    """Per activation, the spread over seeds (std) of a scale-free metric, mean over K: stability on a
    common scale (losses of different activations live on different, unbounded scales)."""
    n_seeds = len({r["seed"] for r in infomax_ref})
    if n_seeds < 2:
        return {a: float("nan") for a in activations}
    return {a: float(np.mean([np.std([r[metric] for r in rep.select(infomax_ref, activation=a, K=k)], ddof=1)
                              for k in Ks])) for a in activations}


def axis_values(infomax_ref, activations, Ks, probe) -> dict[str, tuple[dict[str, float], bool]]:
    """The design's axes of comparison between activations: {axis: (value by activation, higher is better)}."""
    mean = lambda a, m: float(np.mean([r[m] for r in rep.select(infomax_ref, activation=a) if r[m] is not None]))
    probe_acc = {a: float(np.mean([r["probe_accuracy"] for r in rep.select(probe, activation=a, objective="infomax")]))
                 for a in activations}
    return {"lowest redundancy (effective rank / K)": ({a: mean(a, "effective_rank_fraction") for a in activations}, True),
            "fewest dead units": (rep.dead_fraction(infomax_ref, activations), False),
            "best independence (TC per unit)": ({a: mean(a, "tc_per_unit") for a in activations}, False),
            "most stable optimisation (seed spread of effective rank / K)":
                (stability(infomax_ref, activations, Ks, "effective_rank_fraction"), False),
            "best transfer (probe accuracy)": (probe_acc, True)}


def analyse(records, activations, reference_lambda: float) -> dict:
    """The two test families, the design's criterion and the dissociation of one study."""
    primary = it.family_tests(records, "primary", reference_lambda)
    secondary = it.family_tests(records, "secondary", reference_lambda)
    return {"primary": primary, "secondary": secondary, "tests": primary + secondary,
            "criterion": it.criterion(primary), "dissociation": rep.dissociation(records, activations, reference_lambda)}


def judge(records, summary: dict, probe, activations, Ks, lambdas, reference_lambda: float) -> dict:
    """The leaders on the design's axes and the claims table, given :func:`analyse`'s ``summary``."""
    infomax_ref = rep.select(reference(records, reference_lambda), objective="infomax")
    axes = axis_values(infomax_ref, activations, Ks, probe)
    leaders_all = sorted(set.intersection(*(set(rep.leaders(v, high)) for v, high in axes.values())))
    claims = infomax_claims.primary_claims(summary["criterion"], len({r["seed"] for r in records}))
    claims += infomax_claims.outcome_claims(records, activations, lambdas, reference_lambda, summary["primary"],
                                            leaders_all)
    return {"axes": axes, "claims": claims}


METRICS = ("effective_rank", "effective_rank_entropy", "weight_redundancy", "mean_abs_cosine",
           "survivor_mean_abs_cosine", "dead_units", "dead_units_magnitude", "variance_ratio", "output_correlation",
           "total_correlation", "final_loss", "convergence_epoch", "responsibility_concentration", "weight_norm")


def metric_tables(ref, n_eval: int) -> list[tuple[str, list[dict], list[tuple]]]:
    """(title, rows, columns) of the two metric tables: InfoMax's models of :func:`reference`, mean ±
    std over seeds per activation and K; ``n_eval``: the held-out samples the metrics were computed on."""
    table = rep.with_pm(rep.aggregate(rep.select(ref, objective="infomax"), ("activation", "K"), METRICS), METRICS)
    return [("**Redundancy of W**", table,
             [("activation", "activation"), ("K", "K"), ("effective_rank_pm", "eff. rank (PR)"),
              ("effective_rank_entropy_pm", "eff. rank (entropy)"), ("weight_redundancy_pm", "R_W"),
              ("mean_abs_cosine_pm", "mean abs cos"), ("survivor_mean_abs_cosine_pm", "mean abs cos (alive units)"),
              ("weight_norm_pm", "row norm")]),
            ("**Dead units, collapse, independence and optimisation** (held-out ‖Corr−I‖² floor for independent "
             f"units: K(K−1)/{n_eval - 1})", table,
             [("activation", "activation"), ("K", "K"), ("dead_units_pm", "dead (gain)"),
              ("dead_units_magnitude_pm", "dead (abs a > eps)"), ("variance_ratio_pm", "var ratio"),
              ("responsibility_concentration_pm", "max E[r] (softmax)"), ("output_correlation_pm", "‖Corr−I‖²"),
              ("total_correlation_pm", "TC"), ("final_loss_pm", "final loss"),
              ("convergence_epoch_pm", "epochs to 90 %")])]


def family_table(family: list[dict], criterion: dict | None = None) -> tuple[str, list[dict], list[tuple]]:
    """(title, rows, columns): one row per activation, one cell per test (its mark and mean difference),
    and the design's criterion when given."""
    if not family:
        return "**(no tests: fewer than two conditions)**", [], []
    grid = {}
    for t in family:
        column = f"{t['metric'].replace('_', ' ')} vs {t['comparison'].split(' - ')[1]} ({t['better_if']} is better)"
        grid.setdefault(t["activation"], {"activation": t["activation"]})[column] = \
            f"{MARK[t['verdict']]} {t['mean_difference']:+.3g}"
    columns = list(dict.fromkeys(c for row in grid.values() for c in row if c != "activation"))
    if criterion is not None:
        for act, row in grid.items():
            row["design's criterion"] = criterion[act]["verdict"]
        columns.append("design's criterion")
    title = (f"**{family[0]['family'].capitalize()} family**: {len(family)} tests, Holm over "
             f"{family[0]['family_size']} at a time, {family[0]['seeds']} seeds")
    return title, list(grid.values()), [("activation", "activation")] + [(c, c) for c in columns]


TESTS_COLUMNS = [("family", "family"), ("activation", "activation"), ("comparison", "comparison"), ("metric", "metric"),
                 ("better_if", "better if"), ("infomax_mean", "InfoMax", ".3g"), ("baseline_mean", "baseline", ".3g"),
                 ("mean_difference", "mean diff.", ".3g"), ("ci_low", "95 % CI low", ".3g"),
                 ("ci_high", "95 % CI high", ".3g"), ("effect_size", "d_z", ".2f"), ("p_value", "p", ".2g"),
                 ("p_adjusted", "p (Holm)", ".2g"), ("p_attainable", "smallest attainable p (Holm)", ".2g"),
                 ("verdict", "verdict"), ("seeds", "seeds")]

CLAIMS_COLUMNS = columns("claim (design 002)")


def scale(dataset: str, n_train: int, seeds, Ks, epochs: int, lambdas) -> str:
    """The scale a set of verdicts holds at, in words."""
    return (f"{dataset}, {n_train} training images, {len(seeds)} seeds, K in {list(Ks)}, {epochs} epochs, "
            f"λ in {list(lambdas)}")


def criterion_text(summary: dict, activations, where: str) -> str:
    """The design's criterion per activation, and the secondary family's decorrelation, in sentences."""
    by_verdict = {}
    for act, c in summary["criterion"].items():
        by_verdict.setdefault(c["verdict"], []).append(act)
    lines = [f"- **{v}** for {', '.join(acts)}" for v, acts in by_verdict.items()]
    reasons = [f"- {act}: {c['why']}" for act, c in summary["criterion"].items() if c["verdict"] != "confirmed"]
    decorrelates = [t["activation"] for t in summary["secondary"]
                    if t["metric"] == "mean_sq_correlation" and t["verdict"] == "better"]
    return (f"By the design's own criterion, {where}, the hypothesis is:\n\n" + "\n".join(lines)
            + ("\n\nWhy not confirmed:\n\n" + "\n".join(reasons) if reasons else "")
            + "\n\nSecondary family: InfoMax has a significantly lower held-out output correlation than variance only "
              f"for {len(decorrelates)} of {len(activations)} activations"
            + (f" ({', '.join(decorrelates)})." if decorrelates else "."))


def dissociation_table(diss: list[dict]) -> tuple[list[dict], list[tuple]]:
    rows = [{**r, "off": f"{r['units_mostly_off']:.0%}", "on": f"{r['units_mostly_on']:.0%}",
             "corr": f"{r['mean_sq_correlation_random']:.3g} → {r['mean_sq_correlation_infomax']:.3g}",
             "tcz": f"{r['tc_z_per_unit_random']:.3g} → {r['tc_z_per_unit_infomax']:.3g}",
             "cos": f"{r['mean_sq_cosine_random']:.3g} → {r['mean_sq_cosine_infomax']:.3g}"} for r in diss]
    return rows, [("activation", "activation"), ("corr", "output corr. (random → InfoMax)"), ("tcz", "TC of z / unit"),
                  ("cos", "mean cos²"), ("off", "units mostly closed"), ("on", "units mostly open"),
                  ("open_overlap", "open-set overlap", ".3f"), ("open_overlap_independent", "if independent", ".3f"),
                  ("bias_std", "sd of biases", ".3g")]


def results_of(records, depth, probe, probe_pixels: float, data, n_train: int, n_eval: int, parameters: dict,
               made_by: dict, summary: dict | None = None) -> dict:
    """The chapter's results file (and a record's body): the study's records and follow-ups, with the
    tests, the design's criterion, the dissociation and the claims judged on them (``summary``, from
    :func:`analyse` and :func:`judge`, when already computed).  The chapter writes it after training;
    a sweep (``python -m actfn.sweep ... --record NAME``) writes it from its run files."""
    import time

    from ..checkpoints import fingerprint
    p = parameters
    if summary is None:
        summary = analyse(records, p["activations"], p["reference_lambda"])
        summary.update(judge(records, summary, probe, p["activations"], p["Ks"], p["lambdas"], p["reference_lambda"]))
    return {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "made_by": made_by, "dataset": data.name,
            "source": data.source,
            "data_checksum": {"train": fingerprint(data.x_train, data.y_train), "test": fingerprint(data.x_test, data.y_test)},
            "n_train": n_train, "n_eval": n_eval, "parameters": parameters, "runs": records, "tests": summary["tests"],
            "criterion": summary["criterion"], "claims": summary["claims"], "dissociation": summary["dissociation"],
            "depth": depth, "probe": probe, "probe_pixels": probe_pixels}
