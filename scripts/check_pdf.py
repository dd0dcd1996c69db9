"""Check the whole-book PDF: it opens, has at least a given number of pages, and holds every chapter.

    python scripts/check_pdf.py _build/latex/book.pdf [--min-pages 60]

The chapters are the files of ``_toc.yml``; each must appear in the PDF's text by its title (the
first ``# `` heading of its page; the root page's is the book's title from ``_config.yml``, which
the PDF's title page shows in its place).  Uses poppler's ``pdfinfo`` and ``pdftotext`` (``make tex``).
Exits 1 naming what is wrong.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def chapter_titles(root: Path = ROOT) -> dict[str, str]:
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for c in toc.get("chapters", [])]
    titles = {toc["root"]: yaml.safe_load((root / "_config.yml").read_text())["title"]}
    for f in files[1:]:
        text = (root / "book" / f"{f}.md").read_text()
        m = re.search(r"^# (.+)$", text, flags=re.M)
        titles[f] = m.group(1).strip() if m else f
    return titles


def squash(text: str) -> str:
    """Text with hyphenation, line breaks, spacing and typographic dashes and quotes evened out."""
    text = re.sub(r"-\n", "", text)
    text = text.replace("’", "'").replace("–", "-").replace("—", "-").replace("\u00a0", " ")
    return re.sub(r"\s+", " ", text).lower()


def check_pdf(pdf: Path, min_pages: int, root: Path = ROOT) -> tuple[int, list[str]]:
    if not pdf.is_file():
        return 0, [f"{pdf}: no such file (make pdf builds it)"]
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True)
    if info.returncode != 0:
        return 0, [f"{pdf}: pdfinfo cannot read it: {info.stderr.strip()[:300]}"]
    pages = int(re.search(r"^Pages:\s+(\d+)", info.stdout, flags=re.M).group(1))
    problems = [] if pages >= min_pages else [f"{pdf}: {pages} pages, fewer than {min_pages}"]
    text = squash(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout)
    for f, title in chapter_titles(root).items():
        if squash(title) not in text:
            problems.append(f"{pdf}: the chapter {f} ({title!r}) is not in its text")
    return pages, problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdf", type=Path)
    parser.add_argument("--min-pages", type=int, default=60)
    args = parser.parse_args(argv)
    pages, problems = check_pdf(args.pdf, args.min_pages)
    for p in problems:
        print("FAIL", p)
    print(f"check_pdf: {args.pdf.name}: {pages} pages, {len(chapter_titles())} chapters: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
