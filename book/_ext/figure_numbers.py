"""Sphinx extension: figures numbered through the whole book in reading order.

Every figure cell names its figure (``mystnb: figure: name``), so Sphinx numbers them: with no
numbered table of contents the counter runs across the pages in the order of ``_toc.yml``, and
``{numref}`` references follow.  Captions carry no numbers of their own; where a figure redraws
one of the outline's, its caption says which.  This runs after sphinx_jupyterbook_latex's
config-inited handler, which sets ``numfig`` too.

Every page also says, in a ``figure-min-text-px`` meta tag, how high (in PNG pixels) the smallest
text of its figures is: the book's plotting style guarantees it (``actfn.plotting``), the site's
``legible.js`` reads it to keep figures legible on a phone, and ``scripts/check_site.py`` reads it to
measure the text as displayed.
"""
from sphinx.errors import ExtensionError


def _figure_text_height(app, pagename, templatename, context, doctree):
    try:
        from actfn.plotting import min_text_px
    except ImportError as exc:
        raise ExtensionError(f"figure_numbers: the book's plotting style (actfn.plotting) is not importable: {exc}")
    context["metatags"] = context.get("metatags", "") + \
        f'\n<meta name="figure-min-text-px" content="{min_text_px():.2f}" />'


def _numbered(app, config):
    config.numfig = True
    config.numfig_format = {"figure": "Fig. %s", "table": "Table %s", "code-block": "Listing %s",
                            "section": "Section %s"}


def setup(app):
    app.connect("config-inited", _numbered, priority=900)
    app.connect("html-page-context", _figure_text_height)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
