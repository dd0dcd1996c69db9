"""Progress bars that work in notebooks (widgets) and in logs (text)."""
from __future__ import annotations

import os


def progress(iterable=None, **kwargs):
    """``tqdm.auto``: a widget inside a notebook kernel (one bar that updates in place, also in the
    built book), a text bar on a terminal or in a log.  ``ACTFN_PROGRESS=off`` silences them."""
    from tqdm.auto import tqdm

    if os.environ.get("ACTFN_PROGRESS", "auto") == "off":
        kwargs["disable"] = True
    kwargs.setdefault("mininterval", 1.0)
    return tqdm(iterable, **kwargs)
