"""The unit chapter's explorer: precomputed cells, self-contained HTML, and (with Chromium) a page
that draws the chosen cell and redraws when the reader picks another."""
import importlib.util
import json
import re
from pathlib import Path

import pytest

from actfn.unit.explorer import explorer_cells, explorer_html

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("check_site", ROOT / "scripts" / "check_site.py")
check_site = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_site)


@pytest.fixture(scope="module")
def cells():
    return explorer_cells([2, 5], [0.6, 1.0], [2.0], show_progress=False, steps=30)


def test_cells_hold_the_learned_f_its_fit_and_the_correlations(cells):
    assert [(c["K"], c["sigma"]) for c in cells] == [(2, 0.6), (2, 1.0), (5, 0.6), (5, 1.0)]
    for c in cells:
        assert len(c["knots"]) == len(c["values"]) == 33 and len(c["rho"]) == len(c["means"]) == c["K"]
        assert abs(sum(c["rho"])) < 1e-6 or c["K"] == 2     # the zero-sum identity of the theory chapter
    assert cells[0]["fit"] is None and set(cells[2]["fit"]) >= {"a", "beta", "x0", "c", "r2", "identified"}


def test_the_html_is_self_contained(cells):
    page = explorer_html(cells)
    data = json.loads(re.search(r"<script type=\"application/json\">(.*?)</script>", page, re.S).group(1))
    assert len(data) == len(cells) and "http" not in page.replace("http://www.w3.org/2000/svg", "")
    assert page.count("<option") == 2 + 2 + 1
    with pytest.raises(ValueError):
        explorer_html([])


@pytest.mark.skipif(not (Path(check_site.CHROMIUM).exists() and Path(check_site.CHROMEDRIVER).exists()
                         and importlib.util.find_spec("selenium")), reason="needs chromium and selenium")
def test_the_page_draws_and_redraws_in_a_browser(cells, tmp_path):
    from selenium.webdriver.support.ui import Select

    page = tmp_path / "explorer.html"
    page.write_text(f"<!doctype html><html><body>{explorer_html(cells, defaults={'K': 5, 'sigma': 1.0})}</body></html>")
    d = check_site.driver(390)
    try:
        d.set_window_size(390, 900)     # (the window's first size has a floor of 500 px in headless Chromium)
        d.get(page.as_uri())
        note = lambda: d.find_element("css selector", ".explorer-note").text
        points = lambda: d.find_element("css selector", "polyline.learned").get_attribute("points")
        assert note().startswith("K = 5, σ = 1,") and "Swish fit" in note()
        assert len(d.find_elements("css selector", "rect.bar")) == 5
        before = points()
        Select(d.find_element("css selector", "select[name='sigma']")).select_by_value("0.6")
        assert note().startswith("K = 5, σ = 0.6,") and points() != before
        Select(d.find_element("css selector", "select[name='K']")).select_by_value("2")
        assert "no Swish fit" in note() and len(d.find_elements("css selector", "rect.bar")) == 2
        assert [e for e in d.get_log("browser") if e["level"] == "SEVERE"] == []
        width = d.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390
    finally:
        d.quit()
