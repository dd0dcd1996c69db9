"""Sphinx extension: no automatic figure numbers.

Captions carry the source outline's own figure numbers ("Fig. 4 — ..."), so Sphinx's running
numbers would contradict them.  sphinx_jupyterbook_latex switches ``numfig`` on in its
config-inited handler; this runs after it and switches it off again.
"""


def _no_numfig(app, config):
    config.numfig = False


def setup(app):
    app.connect("config-inited", _no_numfig, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
