"""Open every page of a built book in a real browser, as a reader would, and check what it shows.

    python scripts/check_site.py _build/html [--screenshots _build/screenshots] [--widths 1280 390]

Headless Chromium (Debian's ``chromium`` and ``chromium-driver``; ``make browser`` installs them)
loads each page from ``file://`` -- no server, no network -- at each width, and checks:

* no console error;
* every image loaded;
* every formula typeset (each ``.math`` element holds MathJax output, no MathJax error) and no raw
  TeX left in the text;
* every internal link and anchor resolves;
* nothing wider than its column, unless it scrolls inside its own box;
* the text of every figure at least 9 px high as displayed: a PNG's smallest text (the page's
  ``figure-min-text-px`` meta tag, in PNG pixels) times the scale it is shown at, and an SVG's
  text size times its scale;
* no traceback, stderr block or widget output.

It saves a full-page screenshot of each page at each width, and exits 1 naming every failure.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import urllib.parse
from pathlib import Path

CHROMIUM = os.environ.get("ACTFN_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ACTFN_CHROMEDRIVER", "/usr/bin/chromedriver")
SKIP = {"genindex.html", "search.html", "py-modindex.html"}
MAX_SHOT_HEIGHT = 20000        # px: a screenshot taller than this is cut (Chromium's texture limit)

LEGIBLE_PX = 9                 # the smallest text a reader is asked to read, as displayed

# Run in the page once MathJax is done; returns what the reader would see as broken.
PAGE_CHECKS = r"""
const LEGIBLE_PX = %(legible)s;
const done = arguments[arguments.length - 1];
const ready = (window.MathJax && MathJax.startup && MathJax.startup.promise) ? MathJax.startup.promise : Promise.resolve();
ready.then(() => {
  const out = {images: [], untypeset: [], merror: 0, rawtex: [], wide: [], debris: [], links: [], small: []};
  for (const img of document.images) {
    if (!img.complete || img.naturalWidth === 0) out.images.push(img.getAttribute("src"));
  }
  const meta = document.querySelector('meta[name="figure-min-text-px"]');
  const textPx = meta ? parseFloat(meta.content) : NaN;
  for (const img of document.querySelectorAll(".bd-article .cell_output img")) {
    if (!img.naturalWidth) continue;
    const src = (img.getAttribute("src") || "").split("/").pop().slice(0, 16);
    const shown = img.getBoundingClientRect().width / img.naturalWidth * textPx;
    if (!(textPx > 0)) out.small.push(`${src}: no figure-min-text-px meta tag says how small its text is`);
    else if (shown < LEGIBLE_PX) out.small.push(`${src}: its smallest text is ${shown.toFixed(1)} px high as shown`);
  }
  for (const t of document.querySelectorAll(".bd-article svg text")) {
    if (t.closest("mjx-container") || !t.textContent.trim()) continue;
    const svg = t.ownerSVGElement, vb = svg.viewBox && svg.viewBox.baseVal;
    const scale = vb && vb.width ? svg.getBoundingClientRect().width / vb.width : 1;
    const shown = parseFloat(getComputedStyle(t).fontSize) * scale;
    if (svg.getBoundingClientRect().width > 0 && shown < LEGIBLE_PX) {
      out.small.push(`svg text ${JSON.stringify(t.textContent.trim().slice(0, 20))}: ${shown.toFixed(1)} px high as shown`);
    }
  }
  for (const el of document.querySelectorAll(".math, .output.text_latex")) {
    if (!el.querySelector("mjx-container")) out.untypeset.push(el.textContent.slice(0, 80));
  }
  out.merror = document.querySelectorAll("mjx-merror").length;
  const article = document.querySelector(".bd-article") || document.body;
  const clone = article.cloneNode(true);
  for (const el of clone.querySelectorAll("pre, code, mjx-container, script, style, .highlight, textarea")) el.remove();
  const text = clone.textContent;
  for (const m of text.matchAll(/\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\\frac\{|\\mathrm\{|\\sum_/g)) {
    out.rawtex.push(text.slice(Math.max(0, m.index - 30), m.index + 30));
  }
  const box = article.getBoundingClientRect();
  const scrolls = (el) => {
    for (let p = el.parentElement; p && p !== article.parentElement; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (["auto", "scroll"].includes(s.overflowX) && p.getBoundingClientRect().right <= box.right + 2) return true;
    }
    return false;
  };
  for (const el of article.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > box.right + 2 && !scrolls(el)) {
      out.wide.push(`${el.tagName.toLowerCase()}.${[...el.classList].join(".")} ${Math.round(r.width)} px`);
    }
  }
  for (const sel of [".output.traceback", ".output.stderr", ".jupyter-widgets", ".widget-area",
                     "script[type='application/vnd.jupyter.widget-view+json']", "script[src*='require']"]) {
    if (document.querySelector(sel)) out.debris.push(sel);
  }
  if (text.includes("Traceback (most recent call last)")) out.debris.push("a traceback in the text");
  for (const a of document.querySelectorAll("a[href]")) {
    const href = a.getAttribute("href");
    if (!/^(https?:|mailto:|javascript:)/.test(href)) out.links.push(href);
  }
  done(out);
}).catch((e) => done({error: String(e)}));
""".replace("%(legible)s", str(LEGIBLE_PX))


def driver(width: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")     # Selenium Manager must not look for a driver online
    for path, what in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).exists():
            raise SystemExit(f"check_site: {path} is missing: install Debian's {what} (make browser)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--allow-file-access-from-files", f"--window-size={width},900", "--hide-scrollbars"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    d.set_script_timeout(60)
    return d


def _anchor_ids(path: Path, cache: dict) -> set[str]:
    if path not in cache:
        cache[path] = set(re.findall(r'\bid="([^"]+)"', path.read_text(errors="replace")))
    return cache[path]


def broken_links(page: Path, hrefs: list[str], site: Path, cache: dict) -> list[str]:
    bad = []
    for href in sorted(set(hrefs)):
        parsed = urllib.parse.urlsplit(href)
        if parsed.scheme == "file":
            target = Path(urllib.parse.unquote(parsed.path))
        elif parsed.scheme:
            continue
        else:
            target = (page.parent / urllib.parse.unquote(parsed.path)).resolve() if parsed.path else page
        if not target.exists():
            bad.append(f"{href}: no such file")
        elif target.is_dir():
            if not (target / "index.html").exists():
                bad.append(f"{href}: a folder without index.html")
        elif parsed.fragment and target.suffix == ".html" and parsed.fragment not in _anchor_ids(target, cache):
            bad.append(f"{href}: no anchor #{parsed.fragment} in {target.name}")
    return bad


def check_page(d, page: Path, site: Path, width: int, shots: Path | None, cache: dict) -> list[str]:
    d.set_window_size(width, 900)
    d.get(page.resolve().as_uri())
    for _ in range(3):     # (a page still settling -- MathJax, the theme's scripts -- gets another look)
        found = d.execute_async_script(PAGE_CHECKS)
        if "error" not in found:
            break
    d.execute_script("localStorage.clear(); sessionStorage.clear();")   # every page as a reader's first
    shown = Path(urllib.parse.unquote(urllib.parse.urlsplit(d.current_url).path))   # (index.html redirects)
    name = f"{page.relative_to(site)} @ {width} px"
    if "error" in found:
        return [f"{name}: the checks could not run ({found['error']})"]
    problems = [f"{name}: console: {e['message'][:300]}" for e in d.get_log("browser") if e["level"] == "SEVERE"]
    problems += [f"{name}: image not loaded: {src}" for src in found["images"]]
    problems += [f"{name}: formula not typeset: {t!r}" for t in found["untypeset"][:5]]
    if found["merror"]:
        problems.append(f"{name}: {found['merror']} MathJax error(s)")
    problems += [f"{name}: raw TeX in the text: ...{t!r}..." for t in found["rawtex"][:5]]
    problems += [f"{name}: wider than the column and not scrolling: {w}" for w in found["wide"][:5]]
    problems += [f"{name}: debris: {x}" for x in found["debris"]]
    problems += [f"{name}: figure text too small: {x}" for x in found["small"][:5]]
    problems += [f"{name}: broken link {b}" for b in broken_links(shown, found["links"], site, cache)]
    if shots is not None:
        height = d.execute_script("return document.documentElement.scrollHeight")
        d.set_window_size(width, min(int(height), MAX_SHOT_HEIGHT))
        out = shots / f"{page.relative_to(site).with_suffix('')}-{width}.png".replace(os.sep, "_")
        d.save_screenshot(str(out))
    return problems


REDIRECT = re.compile(r'<meta http-equiv="refresh" content="0; url=([^"]+)"', re.I)


def pages_of(site: Path) -> list[Path]:
    """Every page a reader can open (not Sphinx's index and search pages, nor redirect stubs)."""
    return sorted(p for p in site.rglob("*.html")
                  if p.name not in SKIP and not any(part.startswith(("_", ".")) for part in p.relative_to(site).parts)
                  and not REDIRECT.search(p.read_text(errors="replace")[:2000]))


def broken_redirects(site: Path) -> list[str]:
    bad = []
    for stub in site.glob("*.html"):
        m = REDIRECT.search(stub.read_text(errors="replace")[:2000])
        if m and not (stub.parent / urllib.parse.urlsplit(m.group(1)).path).exists():
            bad.append(f"{stub.name}: redirects to {m.group(1)}, which is missing")
    return bad


def check_site(site: Path, widths=(1280, 390), shots: Path | None = None) -> list[str]:
    site = Path(site).resolve()
    pages = pages_of(site)
    if not pages:
        return [f"{site}: no pages (build the book first)"]
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
    problems, cache = broken_redirects(site), {}
    for width in widths:
        d = driver(width)
        try:
            for page in pages:
                problems += check_page(d, page, site, width, shots, cache)
        finally:
            d.quit()
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the built HTML, e.g. _build/html")
    parser.add_argument("--screenshots", type=Path, default=None, help="folder for one PNG per page and width")
    parser.add_argument("--widths", type=int, nargs="+", default=[1280, 390])
    args = parser.parse_args(argv)
    problems = check_site(args.site, tuple(args.widths), args.screenshots)
    pages = len(pages_of(args.site.resolve()))
    for p in problems:
        print("FAIL", p)
    print(f"check_site: {pages} pages at {args.widths} px: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
