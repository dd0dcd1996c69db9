"""Every figure of the book is named (so Sphinx numbers it in reading order), captioned, and has alt
text that says what it shows; no caption or plot title carries a number of its own."""
import re
from pathlib import Path

import yaml

BOOK = Path(__file__).resolve().parents[1] / "book"
CELL = re.compile(r"```\{code-cell\} ipython3\n(.*?)```", re.S)
DRAWS = re.compile(r"plt\.subplots|plt\.figure\(|\bpanel_grid\(|\bplot_[a-z_]+\(")


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


# --- legibility: the book's style checks every figure as it is drawn --------------------------------

def _book_figure(**kwargs):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from actfn import plotting
    with matplotlib.rc_context():
        plotting.use_book_style()
        fig, ax = plt.subplots(**kwargs)
    return plt, plotting, fig, ax


def test_a_figure_with_small_text_fails_as_it_is_drawn():
    import io
    import pytest
    plt, plotting, fig, ax = _book_figure(figsize=(6, 3))
    ax.plot([0, 1], label="a line")
    ax.legend(fontsize=6.5)
    ax.text(0.5, 0.5, "")                          # empty text is not read by anyone
    with pytest.raises(plotting.IllegibleFigure, match=r"'a line' is 6.5 pt \(at least 9 pt\)"):
        fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)


def test_a_figure_too_wide_for_a_column_fails_and_a_grid_fits():
    import io
    import pytest
    plt, plotting, fig, ax = _book_figure(figsize=(12, 3))
    with pytest.raises(plotting.IllegibleFigure, match="12.0 in wide"):
        fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)
    assert plotting.legibility_problems(plt.figure(figsize=(plotting.MAX_WIDTH_IN, 3))) == []
    fig, axes = plotting.panel_grid(5)
    assert len(axes) == 5 and len(fig.axes) == 5 and fig.get_figwidth() <= plotting.MAX_WIDTH_IN
    assert fig.get_figheight() == pytest.approx(3 * plotting.PANEL[1])
    fig, axes = plotting.panel_grid(1)
    assert len(axes) == 1 and fig.get_figwidth() == pytest.approx(2 * plotting.PANEL[0])
    plotting.shade_key(fig, axes, labels=list(range(10)), title="layer")
    plotting.shade_key(fig, axes, title="depth")
    assert plotting.legibility_problems(fig) == []
    plt.close("all")


def test_the_smallest_text_is_nine_px_in_a_column():
    from actfn import plotting
    column = 672                                   # px: the article column at 1280 px
    assert plotting.min_text_px() * column / (plotting.MAX_WIDTH_IN * plotting.DPI) >= 9


def test_no_chapter_asks_for_text_under_the_minimum():
    from actfn.plotting import MIN_TEXT_PT
    for page, body, _ in figure_cells():
        for size in re.findall(r"fontsize=([0-9.]+)", body):
            assert float(size) >= MIN_TEXT_PT, f"{page}: fontsize={size} in {body.splitlines()[-1][:60]!r}"


def test_a_figure_cell_shows_its_figure_once():
    """A figure cell whose last line is an expression (``ax.legend()``, ``fig.suptitle(...)``) also
    shows that value, and the page gets the figure's name twice: it ends with ';' instead."""
    import ast
    for page, body, _ in figure_cells():
        code = body.split("\n---\n", 1)[1] if body.startswith("---\n") else body
        last = ast.parse(code).body[-1]
        if isinstance(last, ast.Expr) and isinstance(last.value, ast.Call):
            called = ast.unparse(last.value.func)
            ends = code.rstrip().splitlines()[-1].rstrip().endswith(";")
            assert ends or called in ("print", "legend_below", "fig.tight_layout"), f"{page}: the figure cell ending {called}(...) needs a ';'"
