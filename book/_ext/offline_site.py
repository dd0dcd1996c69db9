"""Sphinx extension: a site that needs no network.

* **MathJax from the site itself.**  MathJax 3's ``tex-svg.js`` and the components it loads on
  demand are copied into ``_static/mathjax`` from the PyPI package ``sphinx-mathjax-offline`` (a
  requirement of the book), and ``mathjax_path`` points there.  SVG output draws glyphs as paths,
  so no web font has to load -- fonts are what browsers refuse to load from ``file://``.
* **The executed notebook of every chapter** can be downloaded from the page's download menu (the
  theme offers it only when launch buttons are on).
* **The repository link and the Binder and Colab buttons** follow one setting, ``repository.url``
  in ``_config.yml``: with it empty (no public repository yet) they are off, and no page links to a
  placeholder.
* **No Thebe unless it is configured.**  ``sphinx_thebe`` (always on in Jupyter Book 1.x) puts a
  ``const THEBE_JS_URL`` script on every page -- twice after an incremental build, a console error
  -- and a loader.  They are dropped unless ``launch_buttons.thebe`` is on in ``_config.yml``.
"""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from sphinx.errors import ExtensionError
from sphinx.util.fileutil import copy_asset

MATHJAX_ENTRY = "tex-svg.js"
# what tex-svg.js loads on demand: TeX packages (\require, autoload), the menu's a11y tools, SVG output
MATHJAX_PARTS = ("input", "output", "ui", "a11y", "adaptors", "sre")


def mathjax_source() -> Path:
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionError("offline_site: the package sphinx-mathjax-offline is not installed; it supplies the "
                             "site's own MathJax (pip install -r requirements.txt, or make setup)")
    root = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax"
    if not (root / MATHJAX_ENTRY).is_file():
        raise ExtensionError(f"offline_site: {root / MATHJAX_ENTRY} is missing; reinstall sphinx-mathjax-offline")
    return root


def _use_local_mathjax(app, config):
    mathjax_source()                        # fail at the start of the build, not after it
    config.mathjax_path = f"mathjax/{MATHJAX_ENTRY}"


def _copy_mathjax(app, exc):
    if exc is not None or app.builder.format != "html":
        return
    src, dest = mathjax_source(), Path(app.outdir) / "_static" / "mathjax"
    dest.mkdir(parents=True, exist_ok=True)
    copy_asset(str(src / MATHJAX_ENTRY), str(dest))
    for part in MATHJAX_PARTS:
        if (src / part).is_dir():
            copy_asset(str(src / part), str(dest / part))


def _repository_or_nothing(app, config):
    # (Jupyter Book refuses use_repository_button without a URL, so _config.yml leaves it off and
    # the URL alone turns it on here)
    options = config.html_theme_options
    # (a template variable; unset, the theme logs "Got invalid theme mode" on a reader's first page)
    config.html_context.setdefault("default_mode", "light")
    if str(options.get("repository_url") or "").strip():
        options["use_repository_button"] = True
    else:
        for button in ("use_repository_button", "use_issues_button", "use_edit_page_button"):
            options[button] = False
        options["launch_buttons"] = {}


def _offer_executed_notebook(app, pagename, templatename, context, doctree):
    """As sphinx-book-theme does with launch buttons on: the executed notebook into _sources, and
    ``ipynb_source`` set before the theme builds its download menu (priority 501)."""
    if not context.get("sourcename", "").endswith((".md", ".md.txt")) or context.get("ipynb_source"):
        return
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if executed.is_file():
        target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(executed, target)
        context["ipynb_source"] = f"{pagename}.ipynb"


def _thebe_wanted(app) -> bool:
    launch = (app.config.html_theme_options or {}).get("launch_buttons", {}) or {}
    return bool(launch.get("thebe"))


def _is_thebe(script) -> bool:
    text = f"{getattr(script, 'filename', script) or ''} {getattr(script, 'attributes', {}).get('body', '')}"
    return "THEBE_JS_URL" in text or "thebe" in str(getattr(script, "filename", "") or "")


def _drop_thebe(app, pagename, templatename, context, doctree):
    if "script_files" in context and not _thebe_wanted(app):
        context["script_files"] = [s for s in context["script_files"] if not _is_thebe(s)]


def setup(app):
    app.connect("config-inited", _use_local_mathjax, priority=900)
    app.connect("config-inited", _repository_or_nothing, priority=900)
    app.connect("html-page-context", _offer_executed_notebook, priority=450)
    app.connect("build-finished", _copy_mathjax)
    app.connect("html-page-context", _drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
