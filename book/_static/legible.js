// Figures stay legible on a phone.  A PNG figure shrinks to fit the column, and on a phone's column
// that would leave its smallest text under 9 px high.  There the figure is shown no smaller than
// keeps that text 9 px high, and scrolls sideways in its own box.  The smallest text of the book's
// figures, in PNG pixels, is in the page's figure-min-text-px meta tag (book/_ext/figure_numbers.py).
(function () {
  const LEGIBLE_PX = 9;
  const PHONE = window.matchMedia("(max-width: 600px)");

  function fit(img, textPx) {
    if (!img.naturalWidth) return;
    const need = Math.min(img.naturalWidth, Math.ceil(img.naturalWidth * LEGIBLE_PX / textPx));
    img.style.minWidth = PHONE.matches ? need + "px" : "";
  }

  function fitAll() {
    const meta = document.querySelector('meta[name="figure-min-text-px"]');
    const textPx = meta ? parseFloat(meta.content) : NaN;
    if (!(textPx > 0)) return;
    for (const img of document.querySelectorAll(".bd-article .cell_output img")) {
      if (img.complete) fit(img, textPx);
      else img.addEventListener("load", () => fit(img, textPx), {once: true});
    }
  }

  document.addEventListener("DOMContentLoaded", fitAll);
  PHONE.addEventListener("change", fitAll);
})();
