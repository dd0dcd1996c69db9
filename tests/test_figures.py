"""Every figure of the book is named (so Sphinx numbers it in reading order), captioned, and has alt
text that says what it shows; no caption or plot title carries a number of its own."""
import re
from pathlib import Path

import yaml

BOOK = Path(__file__).resolve().parents[1] / "book"
CELL = re.compile(r"```\{code-cell\} ipython3\n(.*?)```", re.S)
DRAWS = re.compile(r"plt\.subplots|plt\.figure\(|\bplot_[a-z_]+\(")


def figure_cells():
    for page in sorted(BOOK.glob("*.md")):
        for body in CELL.findall(page.read_text()):
            if DRAWS.search(body):
                meta = yaml.safe_load(body.split("\n---\n", 1)[0][4:]) if body.startswith("---\n") else {}
                yield page.name, body, meta or {}


def test_every_figure_is_named_captioned_and_described():
    names = []
    for page, body, meta in figure_cells():
        nb = meta.get("mystnb", {})
        figure, image = nb.get("figure", {}), nb.get("image", {})
        where = f"{page}: the figure cell starting {body.splitlines()[-1][:60]!r}"
        assert figure.get("name", "").startswith("fig-"), f"{where} has no figure name"
        assert len(figure.get("caption", "")) > 20, f"{where} has no caption"
        assert not re.match(r"\s*Fig(ure)?\.?\s*[0-9IVX]", figure["caption"]), f"{where}: the caption numbers itself"
        alt = image.get("alt", "")
        assert len(alt.split()) >= 6 and not alt.endswith(".png"), f"{where}: alt text must say what it shows"
        names.append(figure["name"])
    assert len(names) == len(set(names)), "two figures share a name"
    assert len(names) >= 20


def test_no_plot_title_carries_a_figure_number():
    for page, body, _ in figure_cells():
        assert not re.search(r"title=f?[\"']Fig\.", body), f"{page}: a plot title numbers its figure"


def test_the_checker_sees_an_unnamed_figure():
    text = "```{code-cell} ipython3\nfig, ax = plt.subplots()\n```"
    body = CELL.findall(text)[0]
    assert DRAWS.search(body) and not body.startswith("---\n")
