"""How a page was made: the line each chapter ends with.

The commit and whether the checkout differed from it, the build date, the machine and the device,
torch, the dataset, the parameters as :func:`actfn.params.validate` accepted them, and the time
from that check to this line (the page's own execution).  Nothing in it names a folder of the
machine that built the page.
"""
from __future__ import annotations

import datetime
import os
import time

from .params import _started, _validated
from .records import RecordError, git_commit, machine
from .results import repo_root


def _value(v) -> str:
    if isinstance(v, str) and os.path.isabs(v):
        root = str(repo_root().resolve())
        return repr(v.replace(root + os.sep, "")) if v.startswith(root + os.sep) else "'<a folder of this machine>'"
    return repr(v)


def page_provenance(chapter: str, dataset: str, checksums: dict | None = None, device: str = "cpu",
                    now: float | None = None) -> str:
    """One Markdown paragraph: how this build made the page of ``chapter`` (validated first) on
    ``dataset`` (words), with its data's ``checksums`` ({part: hex digest}, shown to 12 digits) where the
    chapter has them, and ``device``."""
    if chapter not in _validated:
        raise RuntimeError(f"page_provenance({chapter!r}) before validate({chapter!r}, ...)")
    import torch

    try:
        commit, dirty = git_commit(repo_root())
        code = f"commit `{commit[:12]}`" + (" with uncommitted changes" if dirty else "")
    except RecordError:
        code = "code outside a git checkout (no commit)"
    m = machine()
    where = f"{m['cpu']}, {m['cores']} cores" + (f", {m['gpu']}" if m["gpu"] else "")
    seconds = (time.perf_counter() if now is None else now) - _started[chapter]
    built = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sums = "" if not checksums else " (data checksums " + ", ".join(
        f"{k} `{str(v)[:12]}`" for k, v in checksums.items()) + ")"
    params = ", ".join(f"`{k}={_value(v)}`" for k, v in _validated[chapter].items())
    return (f"**How this page was made.** {code}; built {built} on {where}; device {device}; "
            f"torch {torch.__version__}. Dataset: {dataset}{sums}. Executed in {seconds:.0f} s (from the parameter "
            f"check to this line). Parameters: {params or 'none'}.")
