"""The verdict vocabulary shared by every claims table of the book, and the rules for drawing one.

- *reproduced*: the measured numbers meet the claim's criterion, with their uncertainty;
- *differs*: part of the statement holds, or it holds with another number;
- *not reproduced*: the statement fails, with its uncertainty;
- *not testable here*: this run cannot decide it: its dataset, seeds, width, epochs or images are not
  the claim's, or the uncertainty interval is wider than the effect in question.

A verdict that rests on a number is drawn from an interval (:func:`band`), never from the point
estimate alone, and a threshold that a verdict depends on is shown with the verdicts it would give
if it moved (:func:`sensitivity`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

REPRODUCED, DIFFERS, NOT_REPRODUCED, NOT_TESTABLE = "reproduced", "differs", "not reproduced", "not testable here"
VERDICTS = (REPRODUCED, DIFFERS, NOT_REPRODUCED, NOT_TESTABLE)
Z95 = 1.959963984540054      # two-sided 95 % normal quantile


def q95(df: int | None = None) -> float:
    """The two-sided 95 % quantile: Student's t with ``df`` degrees of freedom (a mean over a few
    seeds, whose standard error is itself estimated), or the normal one for ``df=None``."""
    if df is None:
        return Z95
    if not df >= 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df!r}")
    from scipy import stats
    return float(stats.t.ppf(0.975, df))


def _interval_name(df):
    return "95 % interval" if df is None else f"95 % t interval ({df} df)"


def claim_row(claim, measured, criterion, status, reason, scale: str | None = None) -> dict:
    """One row of a claims table; ``scale``: the dataset and scale its numbers come from."""
    if status not in VERDICTS:
        raise ValueError(f"verdict {status!r} is not one of {VERDICTS}")
    row = {"claim": claim, "measured": measured, "criterion": criterion, "status": status, "reason": reason}
    if scale is not None:
        row["scale"] = scale
    return row


def band(estimate: float, se: float, target: float, tolerance: float, df: int | None = None) -> tuple[str, str]:
    """(verdict, why) for "the quantity is ``target`` ± ``tolerance``", from ``estimate`` ± q ``se``
    (q: :func:`q95`, t with ``df`` degrees of freedom when given): reproduced when the whole 95 %
    interval lies inside the band, not reproduced when it lies wholly outside, not testable here when
    it straddles an edge (the interval is too wide to decide)."""
    if not (math.isfinite(estimate) and math.isfinite(se) and se >= 0):
        return NOT_TESTABLE, "no finite estimate with a standard error"
    q = q95(df)
    lo, hi = estimate - q * se, estimate + q * se
    interval = f"{_interval_name(df)} [{lo:.3g}, {hi:.3g}]"
    if target - tolerance <= lo and hi <= target + tolerance:
        return REPRODUCED, f"{interval} inside {target:g} ± {tolerance:g}"
    if hi < target - tolerance or lo > target + tolerance:
        return NOT_REPRODUCED, f"{interval} outside {target:g} ± {tolerance:g}"
    return NOT_TESTABLE, f"{interval} straddles the edge of {target:g} ± {tolerance:g}: too wide to decide"


def sensitivity(verdict_at, threshold: float, factors=(0.5, 2.0)) -> str:
    """How a verdict moves with its threshold: ``verdict_at(t)`` at ``threshold`` times each factor,
    as text ("at 0.025: reproduced; at 0.1: differs"), or "the same at ..." when it does not move."""
    base = verdict_at(threshold)
    moved = [(threshold * f, verdict_at(threshold * f)) for f in factors]
    if all(v == base for _, v in moved):
        return f"the same at {' and '.join(f'{t:.3g}' for t, _ in moved)}"
    return "; ".join(f"at {t:.3g}: {v}" for t, v in moved)


@dataclass
class Scale:
    """The scale a run's numbers come from, and what a claim needs to be testable."""
    dataset: str
    seeds: int = 1
    width: float = 1.0
    epochs: int | None = None
    images: int | None = None
    extra: dict = field(default_factory=dict)

    def text(self) -> str:
        parts = [self.dataset, f"{self.seeds} seed{'s' if self.seeds != 1 else ''}"]
        if self.width != 1.0:
            parts.append(f"width ×{self.width:g}")
        if self.epochs is not None:
            parts.append(f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}")
        if self.images is not None:
            parts.append(f"{self.images} training images")
        parts += [f"{k} {v}" for k, v in self.extra.items()]
        return ", ".join(parts)

    def missing(self, dataset: str | None = None, seeds: int = 1, width: float | None = None,
                epochs: int | None = None, images: int | None = None) -> list[str]:
        """What this scale lacks for a claim that needs the given dataset, seeds, width, epochs and
        images (empty: testable at this scale)."""
        out = []
        if dataset is not None and self.dataset != dataset:
            out.append(f"the claim is about {dataset}, this run used {self.dataset}")
        if self.seeds < seeds:
            out.append(f"{self.seeds} seed{'s' if self.seeds != 1 else ''} (at least {seeds} needed to know the spread)")
        if width is not None and self.width < width:
            out.append(f"width ×{self.width:g} (the claim: ×{width:g})")
        if epochs is not None and (self.epochs or 0) < epochs:
            out.append(f"{self.epochs} epoch{'s' if self.epochs != 1 else ''} (the claim: {epochs})")
        if images is not None and (self.images or 0) < images:
            out.append(f"{self.images} training images (the claim: {images})")
        return out


def columns(claim_header: str) -> list[tuple]:
    """The columns of every claims table (for :func:`actfn.report.markdown_table`)."""
    return [("claim", claim_header), ("measured", "measured here"), ("criterion", "criterion"), ("status", "verdict"),
            ("reason", "why"), ("if the threshold moves", "if the threshold moves")]


def above_zero(estimate: float, se: float, df: int | None = None) -> tuple[str, float, float]:
    """(verdict, low, high) for "the difference is positive", from its 95 % interval (t with ``df``
    degrees of freedom when given): reproduced when the interval lies above 0, not reproduced when
    below, not testable here when it holds 0."""
    q = q95(df)
    lo, hi = estimate - q * se, estimate + q * se
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return NOT_TESTABLE, lo, hi
    return (REPRODUCED if lo > 0 else NOT_REPRODUCED if hi < 0 else NOT_TESTABLE), lo, hi


def combine(parts) -> str:
    """One verdict for a claim of several parts: not testable if any part is, reproduced if all are,
    not reproduced if all fail, else differs."""
    parts = tuple(parts)
    if NOT_TESTABLE in parts:
        return NOT_TESTABLE
    if all(p == REPRODUCED for p in parts):
        return REPRODUCED
    return NOT_REPRODUCED if all(p == NOT_REPRODUCED for p in parts) else DIFFERS


def agreement(stored: list[dict], recomputed: list[dict], keys=("status",)) -> list[str]:
    """The claims (by their text) whose ``keys`` differ between a stored and a recomputed claims table."""
    old = {c["claim"]: c for c in stored}
    return [c["claim"] for c in recomputed if c["claim"] not in old or any(old[c["claim"]][k] != c[k] for k in keys)]
