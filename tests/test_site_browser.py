"""The real-browser check of the site (scripts/check_site.py) on a tiny book built with this
repository's configuration: a clean page passes, and each thing it must catch, broken on purpose on
a page of its own, fails on that page and nowhere else."""
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JB = str(Path(sys.executable).parent / "jupyter-book")
spec = importlib.util.spec_from_file_location("check_site", ROOT / "scripts" / "check_site.py")
check_site = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_site)

HEAD = """---
jupytext:
  text_representation: {extension: .md, format_name: myst, format_version: 0.13}
kernelspec: {display_name: Python 3, language: python, name: python3}
---
"""
CLEAN = HEAD + """# Clean

A formula $E = mc^2$ and a display

$$
\\frac{1}{2} \\sum_{i=1}^{n} x_i^2 ,
$$

a [link to a section](#a-section) and one to [another page](broken_link.md).

| a | b |
|---|---|
| 1 | 2 |

## A section

```{code-cell} ipython3
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(4, 3))
ax.plot([0, 1], [0, 1])
print("stdout is fine")
```
"""
BROKEN = {   # page -> (what is broken, the words check_site must say about it)
    "console_error": ('<script>throw new Error("boom on purpose")</script>', "console"),
    "missing_image": ('<img src="no_such_image.png" alt="missing">', "image not loaded"),
    "raw_tex": ("<p>\\(\\frac{a}{b}\\) left as text</p>", "raw TeX"),
    "untypeset": ('<span class="math tex2jax_ignore">\\(x^2\\)</span>', "formula not typeset"),
    "broken_link": ('<a href="no_such_page.html">gone</a> <a href="#no-such-anchor">gone too</a>', "broken link"),
    "too_wide": ('<div style="width: 3000px; background: #eee">a block wider than any column</div>', "wider than the column"),
    "stderr": ("```{code-cell} ipython3\nimport sys\nprint('on stderr', file=sys.stderr)\n```", "debris: .output.stderr"),
    "widget": ('<div class="jupyter-widgets">a widget</div>', "debris: .jupyter-widgets"),
    "small_figure": ("```{code-cell} ipython3\nimport matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(16, 3))\n"
                     "ax.plot([0, 1], [0, 1])\n```", "figure text too small"),
    "small_svg": ('<svg viewBox="0 0 2400 300" style="width: 100%"><text x="10" y="100" font-size="16">tiny</text></svg>',
                  "figure text too small: svg text"),
    "traceback": ("<pre>not code</pre><p>Traceback (most recent call last): a pasted error</p>", "a traceback"),
}

# A figure too wide for a desktop column is shrunk there past legibility; on a phone the site's
# legible.js shows it at a legible scale instead (it scrolls in its own box), so it passes there.
ONLY_AT = {"small_figure": (1280,)}


def _browser_ready() -> bool:
    return (Path(JB).exists() and Path(check_site.CHROMIUM).exists() and Path(check_site.CHROMEDRIVER).exists()
            and importlib.util.find_spec("selenium") is not None)


@pytest.fixture(scope="module")
def tiny_site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("site") / "repo"
    (root / "book").mkdir(parents=True)
    shutil.copy(ROOT / "_config.yml", root / "_config.yml")
    shutil.copytree(ROOT / "book" / "_ext", root / "book" / "_ext")
    shutil.copytree(ROOT / "book" / "_static", root / "book" / "_static")
    (root / "book" / "references.bib").write_text("")
    pages = ["clean", *BROKEN]
    (root / "_toc.yml").write_text("format: jb-book\nroot: clean\nchapters:\n" + "".join(f"  - file: {p}\n" for p in pages[1:]))
    (root / "book" / "_toc.yml").symlink_to("../_toc.yml")
    (root / "book" / "clean.md").write_text(CLEAN)
    for page, (body, _) in BROKEN.items():
        (root / "book" / f"{page}.md").write_text(HEAD + f"# {page}\n\nSome text.\n\n{body}\n")
    built = subprocess.run([JB, "build", "book/"], cwd=root, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return root / "_build" / "html"


@pytest.mark.skipif(not _browser_ready(), reason="needs chromium, chromium-driver (make browser) and selenium")
def test_the_browser_check_passes_a_clean_page_and_fails_each_broken_one(tiny_site, tmp_path):
    problems = check_site.check_site(tiny_site, widths=(1280, 390), shots=tmp_path / "shots")
    by_page = {p: [x for x in problems if x.startswith(f"{p}.html @")] for p in ["clean", *BROKEN]}
    assert by_page["clean"] == [], by_page["clean"]
    for page, (_, words) in BROKEN.items():
        for width in (1280, 390):
            caught = any(f"@ {width} px" in x and words in x for x in by_page[page])
            assert caught == (width in ONLY_AT.get(page, (1280, 390))), (page, width, by_page[page])
    assert sorted(p.name for p in (tmp_path / "shots").iterdir())[:2] == ["broken_link-1280.png", "broken_link-390.png"]
    assert len(list((tmp_path / "shots").iterdir())) == 2 * (1 + len(BROKEN))


@pytest.mark.skipif(not _browser_ready(), reason="needs chromium, chromium-driver (make browser) and selenium")
def test_the_tiny_site_needs_no_network(tiny_site):
    html = "".join(p.read_text() for p in tiny_site.glob("*.html"))
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html and "THEBE_JS_URL" not in html
    assert (tiny_site / "_static" / "mathjax" / "tex-svg.js").is_file()


def test_links_and_redirects_are_resolved_against_the_files(tmp_path):
    (tmp_path / "a.html").write_text('<h1 id="top">A</h1>')
    (tmp_path / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=gone.html" />')
    bad = check_site.broken_links(tmp_path / "a.html", ["a.html#top", "a.html#nope", "b.html", "#top"], tmp_path, {})
    assert bad == ["a.html#nope: no anchor #nope in a.html", "b.html: no such file"]
    assert check_site.broken_redirects(tmp_path) == ["index.html: redirects to gone.html, which is missing"]
    assert check_site.pages_of(tmp_path) == [tmp_path / "a.html"]
