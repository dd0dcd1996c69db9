"""Sphinx extension: figures numbered through the whole book in reading order.

Every figure cell names its figure (``mystnb: figure: name``), so Sphinx numbers them: with no
numbered table of contents the counter runs across the pages in the order of ``_toc.yml``, and
``{numref}`` references follow.  Captions carry no numbers of their own; where a figure redraws
one of the outline's, its caption says which.  This runs after sphinx_jupyterbook_latex's
config-inited handler, which sets ``numfig`` too.
"""


def _numbered(app, config):
    config.numfig = True
    config.numfig_format = {"figure": "Fig. %s", "table": "Table %s", "code-block": "Listing %s",
                            "section": "Section %s"}


def setup(app):
    app.connect("config-inited", _numbered, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
