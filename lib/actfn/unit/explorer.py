"""The reader's explorer: pick K, σ and the spread of the class means, see the learned f, its Swish
fit and the class-wise correlations.

Every cell of the grid is trained and fitted by the build (:func:`explorer_cells`, the analytic
trainer of the chapter), and :func:`explorer_html` writes them with a few lines of JavaScript that
draw the chosen cell as SVG: no server, no kernel and no library to load, so it works offline and
from ``file://``.
"""
from __future__ import annotations

import html
import json
from itertools import product

from ..theory.fitting import fit_swish
from ..theory.gaussian import class_means
from .trainer import UnitConfig, train_unit


def explorer_cells(classes, sigmas, mean_ranges, show_progress: bool = True, **common) -> list[dict]:
    """One dict per (K, σ, r): knots and knot values of the analytic trainer's f, the class means and
    the class-wise correlations, the objective, and the Swish fit (None for K = 2, where f does not
    move, and ``identified`` False where the knots cannot pin β)."""
    cells = list(product(classes, sigmas, mean_ranges))
    if show_progress:
        from ..progress import progress
        cells = progress(cells, desc="explorer")
    out = []
    for k, s, r in cells:
        run = train_unit(UnitConfig(classes=k, sigma=s, mode="analytic", **{**common, "mean_range": r}))
        fit = None
        if k > 2:
            sw = fit_swish(run.knots, run.values)
            fit = {**{p: float(v) for p, v in sw.params.items()}, "r2": float(sw.r2), "identified": bool(sw.identified)}
        out.append({"K": int(k), "sigma": float(s), "r": float(r), "knots": [float(v) for v in run.knots],
                    "values": [float(v) for v in run.values], "means": [float(v) for v in class_means(k, r)],
                    "rho": [float(v) for v in run.correlations], "loss": float(run.final_loss), "fit": fit})
    return out


def _rounded(cells: list[dict]) -> list[dict]:
    r4 = lambda v: round(v, 4)
    return [{**c, "knots": [r4(v) for v in c["knots"]], "values": [r4(v) for v in c["values"]],
             "means": [r4(v) for v in c["means"]], "rho": [r4(v) for v in c["rho"]]} for c in cells]


SCRIPT = r"""
(function () {
  const root = document.getElementById("%(id)s");
  const cells = JSON.parse(root.querySelector("script[type='application/json']").textContent);
  const pick = (name) => root.querySelector(`select[name='${name}']`);
  const NS = "http://www.w3.org/2000/svg", W = 480, H = 300, L = 64, R = 16, T = 16, B = 52;
  const el = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const ticks = (lo, hi) => { const s = (hi - lo) / 4; return [0, 1, 2, 3, 4].map((i) => lo + i * s); };
  const fmt = (v) => Math.abs(v) >= 10 ? v.toFixed(0) : v.toFixed(2);
  function axes(svg, xlo, xhi, ylo, yhi, xlabel, ylabel) {
    const sx = (x) => L + (x - xlo) / (xhi - xlo) * (W - L - R);
    const sy = (y) => H - B - (y - ylo) / (yhi - ylo) * (H - T - B);
    svg.append(el("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#444"}));
    svg.append(el("line", {x1: L, y1: T, x2: L, y2: H - B, stroke: "#444"}));
    for (const t of ticks(xlo, xhi)) svg.append(el("text", {x: sx(t), y: H - B + 20, "text-anchor": "middle"}, fmt(t)));
    for (const t of ticks(ylo, yhi)) svg.append(el("text", {x: L - 6, y: sy(t) + 5, "text-anchor": "end"}, fmt(t)));
    svg.append(el("text", {x: (L + W - R) / 2, y: H - 8, "text-anchor": "middle"}, xlabel));
    svg.append(el("text", {x: 16, y: (T + H - B) / 2, "text-anchor": "middle",
                           transform: `rotate(-90 16 ${(T + H - B) / 2})`}, ylabel));
    return [sx, sy];
  }
  const swish = (x, p) => p.a * (x - p.x0) / (1 + Math.exp(-p.beta * (x - p.x0))) + p.c;
  function draw() {
    const K = +pick("K").value, s = +pick("sigma").value, r = +pick("r").value;
    const c = cells.find((c) => c.K === K && c.sigma === s && c.r === r);
    const [fsvg, rsvg] = root.querySelectorAll("svg");
    fsvg.replaceChildren(); rsvg.replaceChildren();
    const note = root.querySelector(".explorer-note");
    if (!c) { note.textContent = "This combination was not run by this build."; return; }
    const xs = c.knots, ys = c.values;
    const fitted = c.fit ? xs.map((x) => swish(x, c.fit)) : [];
    const all = ys.concat(fitted), ylo = Math.min(...all), yhi = Math.max(...all) + 1e-9;
    const [sx, sy] = axes(fsvg, xs[0], xs[xs.length - 1], ylo, yhi, "x", "f(x)");
    const line = (pts, attrs) => fsvg.append(el("polyline", {points: pts.map(([x, y]) => `${sx(x)},${sy(y)}`).join(" "), fill: "none", ...attrs}));
    line(xs.map((x, i) => [x, ys[i]]), {stroke: "#1f77b4", "stroke-width": 3, class: "learned"});
    if (c.fit) line(xs.map((x, i) => [x, fitted[i]]), {stroke: "#000", "stroke-width": 2, "stroke-dasharray": "7 5", class: "swish"});
    const rlo = Math.min(0, ...c.rho), rhi = Math.max(0, ...c.rho) + 1e-9;
    const [bx, by] = axes(rsvg, -0.5, c.K - 0.5, rlo, rhi, "class k (ordered by mean)", "ρ_k");
    const w = 0.8 * (W - L - R) / c.K;
    c.rho.forEach((v, k) => rsvg.append(el("rect", {x: bx(k) - w / 2, y: Math.min(by(v), by(0)), width: w,
      height: Math.abs(by(v) - by(0)), fill: v >= 0 ? "#2ca02c" : "#d62728", class: "bar"})));
    const fit = !c.fit ? "no Swish fit: for two classes the objective is identically zero and f stays at its start"
      : c.fit.identified ? `Swish fit: β = ${c.fit.beta.toFixed(2)}, x₀ = ${c.fit.x0.toFixed(2)}, R² = ${c.fit.r2.toFixed(4)}`
      : `Swish fit: β not pinned by the knots (R² = ${c.fit.r2.toFixed(4)})`;
    note.textContent = `K = ${c.K}, σ = ${c.sigma}, means on [−${c.r}, ${c.r}]: objective L = ${c.loss.toFixed(4)}; ${fit}.`;
  }
  root.querySelectorAll("select").forEach((s) => s.addEventListener("change", draw));
  draw();
})();
"""

STYLE = """
#%(id)s svg { width: 100%%; max-width: 560px; height: auto; display: block; font-size: 16px; font-family: sans-serif; }
#%(id)s .explorer-controls { display: flex; flex-wrap: wrap; gap: 0.5em 1.5em; margin-bottom: 0.5em; }
#%(id)s .explorer-plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 1em; }
"""


def explorer_html(cells: list[dict], element_id: str = "unit-explorer", defaults: dict | None = None) -> str:
    """Self-contained HTML (controls, two SVG plots, the data as JSON, the drawing script) for ``cells``."""
    if not cells:
        raise ValueError("explorer_html needs at least one cell")
    defaults = defaults or {}

    def select(name: str, label: str, values) -> str:
        values = sorted(set(values))
        chosen = defaults.get(name, values[len(values) // 2])
        opts = "".join(f'<option value="{v:g}"{" selected" if v == chosen else ""}>{v:g}</option>' for v in values)
        return f'<label>{html.escape(label)} <select name="{name}">{opts}</select></label>'

    data = json.dumps(_rounded(cells), separators=(",", ":")).replace("</", "<\\/")
    return (f'<div id="{element_id}" class="unit-explorer">'
            f"<style>{STYLE % {'id': element_id}}</style>"
            '<div class="explorer-controls">'
            + select("K", "classes K", [c["K"] for c in cells])
            + select("sigma", "σ", [c["sigma"] for c in cells])
            + select("r", "class means on [−r, r], r", [c["r"] for c in cells])
            + '</div><div class="explorer-plots">'
            '<svg viewBox="0 0 480 300" role="img" aria-label="the learned f (solid) and its Swish fit (dashed)"></svg>'
            '<svg viewBox="0 0 480 300" role="img" aria-label="the class-wise correlations, one bar per class"></svg>'
            '</div><p class="explorer-note"></p>'
            f'<script type="application/json">{data}</script>'
            f"<script>{SCRIPT % {'id': element_id}}</script></div>")
