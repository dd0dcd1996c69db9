"""Sphinx extension: a change to what the pages import or read re-executes every page.

myst-nb's execution cache keys each notebook on its code cells only, and Sphinx re-reads only
pages whose source changed, so an edit to lib/actfn would leave pages built with the old code.
This extension hashes lib/ (Python and C++ sources, and pyproject.toml), the benchmark scripts the
benchmarks appendix imports, and the `make bench` table it shows (results/benchmarks.json); when the
hash differs from the one stored beside the build, it empties the execution cache and marks every
page outdated.
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

STAMP = ".lib_fingerprint"


def lib_fingerprint(root: Path) -> str:
    h = hashlib.sha256()
    # Python and the compiled kernels' sources
    files = sorted(f for f in (root / "lib").rglob("*") if f.suffix in (".py", ".cpp", ".h", ".cu"))
    files += sorted((root / "benchmarks").glob("*.py"))
    files += [root / "pyproject.toml", root / "results" / "benchmarks.json"]
    for f in files:
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def _paths(app):
    root = Path(app.confdir).resolve()
    while root != root.parent and not (root / "pyproject.toml").is_file():
        root = root.parent
    build = Path(app.outdir).resolve().parent  # _build/ (outdir is _build/html)
    return root, build / STAMP, build / ".jupyter_cache"


def _check(app, config):
    root, stamp, cache = _paths(app)
    current = lib_fingerprint(root)
    previous = stamp.read_text().strip() if stamp.is_file() else None
    app.env_lib_changed = previous != current
    if app.env_lib_changed:
        if cache.exists():
            shutil.rmtree(cache)
        app._lib_fingerprint = current


def _outdated(app, env, added, changed, removed):
    if getattr(app, "env_lib_changed", False):
        return [d for d in env.found_docs if d not in added]
    return []


def _write_stamp(app, exception):
    if exception is None and getattr(app, "env_lib_changed", False):
        _, stamp, _ = _paths(app)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(app._lib_fingerprint)


def setup(app):
    app.connect("config-inited", _check, priority=100)
    app.connect("env-get-outdated", _outdated)
    app.connect("build-finished", _write_stamp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
