"""The bibliography: every work in book/references.bib is cited on a page, and every citation on a
page names a work in it (sphinxcontrib-bibtex only warns about a missing key)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")


def bib_keys(text: str) -> list[str]:
    return re.findall(r"^@\w+\{([^,\s]+),", text, flags=re.M)


def cited_keys() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for page in sorted(BOOK.glob("*.md")):
        for match in CITE.finditer(page.read_text()):
            for key in match.group(1).split(","):
                found.setdefault(key.strip(), []).append(page.name)
    return found


def test_every_citation_has_an_entry_and_every_entry_is_cited():
    keys = bib_keys((BOOK / "references.bib").read_text())
    assert len(keys) == len(set(keys)), "a key appears twice in references.bib"
    cited = cited_keys()
    assert not sorted(set(cited) - set(keys)), f"cited but not in references.bib: {sorted(set(cited) - set(keys))}"
    assert not sorted(set(keys) - set(cited)), f"in references.bib but cited nowhere: {sorted(set(keys) - set(cited))}"


def test_the_works_the_book_builds_on_are_in_the_bibliography():
    text = re.sub(r"\s+", " ", re.sub(r"[{}]", "", (BOOK / "references.bib").read_text())).lower()
    for work in ["searching for activation functions", "gaussian error linear units", "exponential linear units",
                 "pad\\'e activation units", "deep (spline) neural networks",
                 "learning activation functions to improve", "kolmogorov", "self-organization in a perceptual network",
                 "information-maximization approach", "vicreg", "barlow twins", "the effective rank",
                 "sequentially rejective", "very deep convolutional", "identity mappings", "fashion-mnist",
                 "tiny images", "document recognition", "gaussian copula", "entropy of a random vector"]:
        assert work.lower() in text, work


def test_the_bibliography_page_is_in_the_table_of_contents():
    assert "{bibliography}" in (BOOK / "bibliography.md").read_text()
    assert "file: bibliography" in (ROOT / "_toc.yml").read_text()


def test_the_checker_sees_a_missing_key():
    assert CITE.findall("as in {cite:p}`a,b` and {cite:t}`c`") == ["a,b", "c"]
    assert bib_keys("@article{x1,\n title={t}}\n@book{y2,\n}") == ["x1", "y2"]
