"""The build's own guarantees, on a tiny book that uses this repository's configuration:
a cell that raises fails `jupyter-book build book/`, and a change under lib/ re-executes cached pages."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JB = str(Path(sys.executable).parent / "jupyter-book")

PAGE = """---
jupytext:
  text_representation: {{extension: .md, format_name: myst, format_version: 0.13}}
kernelspec: {{display_name: Python 3, language: python, name: python3}}
---
# Page

```{{code-cell}} ipython3
{code}
```
"""


def _tiny_book(tmp_path: Path, code: str) -> Path:
    root = tmp_path / "repo"
    (root / "book").mkdir(parents=True)
    (root / "lib" / "tiny").mkdir(parents=True)
    (root / "lib" / "tiny" / "__init__.py").write_text("VALUE = 1\n")
    (root / "pyproject.toml").write_text("[project]\nname = 'tiny'\n")
    shutil.copy(ROOT / "_config.yml", root / "_config.yml")
    shutil.copytree(ROOT / "book" / "_ext", root / "book" / "_ext")
    (root / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    (root / "book" / "_toc.yml").symlink_to("../_toc.yml")
    (root / "book" / "page.md").write_text(PAGE.format(code=code))
    return root


def _build(root: Path):
    return subprocess.run([JB, "build", "book/"], cwd=root, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not Path(JB).exists(), reason="jupyter-book is not installed beside this Python")
def test_a_raising_cell_fails_the_build(tmp_path):
    root = _tiny_book(tmp_path, "raise ValueError('boom')")
    result = _build(root)
    assert result.returncode != 0
    assert "boom" in result.stdout + result.stderr


@pytest.mark.skipif(not Path(JB).exists(), reason="jupyter-book is not installed beside this Python")
def test_changing_lib_re_executes_cached_pages(tmp_path):
    root = _tiny_book(tmp_path, "print('hello')")
    first = _build(root)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "Executing notebook" in first.stdout
    cached = _build(root)
    assert cached.returncode == 0 and "Executing notebook" not in cached.stdout
    (root / "lib" / "tiny" / "__init__.py").write_text("VALUE = 2\n")
    after = _build(root)
    assert after.returncode == 0 and "Executing notebook" in after.stdout
