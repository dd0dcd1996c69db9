"""Compare two records of one chapter: the same study remade on another machine, by another launcher,
or after a code change.

    python scripts/compare_records.py records/infomax/paper-fashion_mnist.json other.json [--rtol 0.01]

A replay checks only a short prefix of a record; this compares the whole of two.  It reports:

- claims whose status differs (matched by the claim's text);
- statistical tests whose decision differs (``p_adjusted < alpha``), matched by family, activation,
  comparison and metric, and the largest change of an estimate;
- for each per-run table (``runs``, ``probe``, ``depth``, ``dissociation``), each numeric field's
  median and largest relative difference over the rows both records hold (rows are told apart by
  ``ROW_KEYS``), and the rows only one of them holds.

Exits 1 when a claim's status or a test's decision differs, or a field's largest relative difference
exceeds ``--rtol`` (when given); otherwise 0.  Floating-point training on different CPUs drifts, so
the verdicts, not the last digits, are what must agree.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from statistics import median

# What identifies a row in each chapter's per-run tables; every other numeric field is compared.
ROW_KEYS = {
    "runs": ("model", "mode", "activation", "K", "lambda", "seed", "objective", "constraint"),
    "probe": ("activation", "objective", "seed", "K"),
    "depth": ("activation", "seed"),
    "dissociation": ("activation",),
}
TEST_KEY = ("family", "activation", "comparison", "metric")
TEST_ESTIMATES = ("mean_difference", "effect_size", "p_adjusted")


def load(path: Path) -> dict:
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SystemExit(f"compare_records: cannot read {path}: {err}")
    if not isinstance(record, dict) or "results" not in record:
        raise SystemExit(f"compare_records: {path} is not a record (no 'results')")
    return record


def _key(row: dict, fields: tuple) -> tuple:
    return tuple((f, row[f]) for f in fields if f in row)


def _rel(a: float, b: float) -> float:
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


def _numeric(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def compare_claims(a: list, b: list) -> list[str]:
    sa, sb = ({c["claim"]: c["status"] for c in x} for x in (a, b))
    out = [f"claim only in {w}: {c}" for w, s, o in (("A", sa, sb), ("B", sb, sa)) for c in s if c not in o]
    out += [f"claim status {sa[c]!r} -> {sb[c]!r}: {c}" for c in sa if c in sb and sa[c] != sb[c]]
    return out


def compare_tests(a: list, b: list, alpha: float) -> tuple[list[str], dict]:
    ta, tb = ({_key(t, TEST_KEY): t for t in x} for x in (a, b))
    flips = []
    for k in ta.keys() & tb.keys():
        da, db = (t[k].get("p_adjusted", 1.0) < alpha for t in (ta, tb))
        if da != db:
            name = ", ".join(str(v) for _, v in k)
            flips.append(f"test decision {da} -> {db} (p_adj {ta[k]['p_adjusted']:.3g} -> "
                         f"{tb[k]['p_adjusted']:.3g}): {name}")
    shifts = {}
    for field in TEST_ESTIMATES:
        d = [abs(ta[k][field] - tb[k][field]) for k in ta.keys() & tb.keys()
             if _numeric(ta[k].get(field)) and _numeric(tb[k].get(field))]
        if d:
            shifts[field] = max(d)
    missing = len(ta.keys() ^ tb.keys())
    if missing:
        flips.append(f"{missing} test(s) in only one record")
    return flips, shifts


def compare_table(a: list, b: list, keys: tuple) -> tuple[dict, int, int]:
    """{field: (median relative difference, largest, rows compared)}, rows only in A, rows only in B."""
    ra, rb = ({_key(r, keys): r for r in x} for x in (a, b))
    if len(ra) < len(a) or len(rb) < len(b):
        raise SystemExit(f"compare_records: rows are not told apart by {keys}")
    shared = ra.keys() & rb.keys()
    fields: dict[str, list[float]] = {}
    for k in shared:
        for f, va in ra[k].items():
            vb = rb[k].get(f)
            if f not in keys and _numeric(va) and _numeric(vb):
                fields.setdefault(f, []).append(_rel(va, vb))
    stats = {f: (median(d), max(d), len(d)) for f, d in fields.items()}
    return stats, len(ra.keys() - rb.keys()), len(rb.keys() - ra.keys())


def compare(a: dict, b: dict, alpha: float = 0.05, rtol: float | None = None) -> tuple[list[str], list[str]]:
    """(report lines, problems): problems are what makes the records disagree."""
    if a.get("chapter") != b.get("chapter"):
        return [], [f"different chapters: {a.get('chapter')!r} and {b.get('chapter')!r}"]
    ra, rb = a["results"], b["results"]
    lines, problems = [], []
    for name in ("A", "B"):
        p = (a if name == "A" else b).get("provenance", {})
        lines.append(f"{name}: commit {str(p.get('commit'))[:10]}, {p.get('machine')}, "
                     f"{p.get('wall_seconds')} s")
    problems += compare_claims(ra.get("claims", []), rb.get("claims", []))
    lines.append(f"claims: {len(ra.get('claims', []))} in A, {len(rb.get('claims', []))} in B")
    if "tests" in ra or "tests" in rb:
        flips, shifts = compare_tests(ra.get("tests", []), rb.get("tests", []), alpha)
        problems += flips
        lines.append(f"tests: {len(ra.get('tests', []))}; largest change of "
                     + ", ".join(f"{f} {v:.3g}" for f, v in shifts.items()))
    for table, keys in ROW_KEYS.items():
        if table not in ra and table not in rb:
            continue
        stats, only_a, only_b = compare_table(ra.get(table, []), rb.get(table, []), keys)
        if only_a or only_b:
            problems.append(f"{table}: {only_a} row(s) only in A, {only_b} only in B")
        for f, (med, big, n) in sorted(stats.items()):
            lines.append(f"{table}.{f}: {n} rows, relative difference median {med:.2g}, largest {big:.2g}")
            if rtol is not None and big > rtol:
                problems.append(f"{table}.{f}: largest relative difference {big:.3g} > {rtol}")
    return lines, problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--alpha", type=float, default=0.05, help="level of a test's decision (p_adjusted)")
    ap.add_argument("--rtol", type=float, default=None, help="fail when a field differs by more than this")
    args = ap.parse_args(argv)
    lines, problems = compare(load(args.a), load(args.b), args.alpha, args.rtol)
    print("\n".join(lines))
    print("\n".join(problems) if problems else "verdicts agree: every claim's status and test's decision")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
