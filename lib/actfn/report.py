"""Small helpers that turn computed rows into the tables a page shows."""
from __future__ import annotations

import math


def _fmt(value, fmt):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if callable(fmt):
        return fmt(value)
    return format(value, fmt) if fmt else str(value)


def markdown_table(rows: list[dict], columns: list[tuple]) -> str:
    """``columns`` are ``(key, header)`` or ``(key, header, format_spec_or_callable)``."""
    cols = [c if len(c) == 3 else (c[0], c[1], "") for c in columns]
    head = "| " + " | ".join(h.replace("|", "\\|") for _, h, _ in cols) + " |"
    rule = "|" + "|".join("---" for _ in cols) + "|"
    body = ["| " + " | ".join(_fmt(r.get(k), f).replace("|", "\\|") for k, _, f in cols) + " |" for r in rows]
    return "\n".join([head, rule, *body])
