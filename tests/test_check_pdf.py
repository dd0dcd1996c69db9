"""scripts/check_pdf.py on small PDFs with known contents: it passes a PDF that holds every
chapter's title, and names a missing chapter, a short PDF and a missing file."""
import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("check_pdf", ROOT / "scripts" / "check_pdf.py")
check_pdf = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_pdf)
needs_poppler = pytest.mark.skipif(shutil.which("pdfinfo") is None or shutil.which("pdftotext") is None,
                                   reason="needs poppler-utils (make tex)")


def _pdf(path: Path, pages: list[str]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    with matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(path) as pdf:   # (TrueType: text extractable)
        for text in pages:
            fig = plt.figure(figsize=(8, 3))
            fig.text(0.02, 0.5, text, fontsize=9)
            pdf.savefig(fig)
            plt.close(fig)
    return path


@needs_poppler
def test_a_pdf_with_every_chapter_passes_and_one_without_fails(tmp_path):
    titles = list(check_pdf.chapter_titles().values())
    good = _pdf(tmp_path / "good.pdf", titles)
    pages, problems = check_pdf.check_pdf(good, min_pages=len(titles))
    assert pages == len(titles) and problems == []
    short = _pdf(tmp_path / "short.pdf", titles[:-1])
    pages, problems = check_pdf.check_pdf(short, min_pages=len(titles))
    assert any("fewer than" in p for p in problems)
    assert any(repr(titles[-1]) in p and "not in its text" in p for p in problems)


def test_a_missing_pdf_is_named():
    pages, problems = check_pdf.check_pdf(Path("/nonexistent/book.pdf"), 1)
    assert pages == 0 and "no such file" in problems[0]


def test_titles_are_compared_with_hyphenation_and_dashes_evened_out():
    assert check_pdf.squash("Deep net-\nworks:  learned –  VGG’s") == "deep networks: learned - vgg's"
    assert "intro" in check_pdf.chapter_titles() and len(check_pdf.chapter_titles()) >= 8
