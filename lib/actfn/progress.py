"""Progress bars that work in notebooks (widgets) and in logs (text)."""
from __future__ import annotations

import os
import sys


def progress(iterable=None, **kwargs):
    """``tqdm.auto`` in an interactive notebook; plain-text tqdm (to stderr) in builds and logs.

    Set ``ACTFN_PROGRESS=text`` to force text bars, ``ACTFN_PROGRESS=off`` to silence them.
    """
    choice = os.environ.get("ACTFN_PROGRESS", "auto")
    if choice == "off":
        kwargs["disable"] = True
    if choice == "text" or "ipykernel" not in sys.modules:
        from tqdm import tqdm
    else:
        from tqdm.auto import tqdm
    kwargs.setdefault("mininterval", 1.0)
    return tqdm(iterable, **kwargs)
