"""The report's HTML page: its frame (head, style, print layout, header), figures and pictures.

Self-contained: plotly.js is inlined once in the head, every figure is a ``<div>`` and a
script that draws it with that copy, pictures are ``data:`` PNGs, and nothing refers to
another file or a server (no CDN, web font or MathJax). Every text that comes from data
goes through :func:`esc`.
"""
from __future__ import annotations

import base64
import html
import io
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ui.figures import CONTRIBUTION_COLORSCALE
from ui.figures.overlays import to_rgb_uint8

__all__ = ["FIGURE_CLASS", "PRINT_WIDTH", "esc", "figure_html", "table_html", "png_data_uri", "overlay_rgb",
           "page_html"]

#: The class of the ``<div>`` around every figure (the browser test counts the drawn ones).
FIGURE_CLASS = "fl-figure"
_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["sendDataToCloud"]}


def esc(value: Any) -> str:
    """Text from data (class names, texts, run names) as HTML."""
    return html.escape(str(value), quote=True)


def figure_html(fig: go.Figure, caption: str | None = None) -> str:
    """One figure drawn by the inlined plotly.js (``include_plotlyjs=False``, no MathJax), in a
    ``<div class="fl-figure">`` that scrolls sideways when the figure is wider than the page. An
    animated figure (the clip player) waits for its Play button: plotly's autoplay animates with a
    transition, which does not redraw pictures (they would vanish)."""
    body = fig.to_html(full_html=False, include_plotlyjs=False, include_mathjax=False, config=_PLOTLY_CONFIG,
                       auto_play=False)
    note = f'<p class="caption">{esc(caption)}</p>' if caption else ""
    return f'<div class="{FIGURE_CLASS}">{body}</div>{note}'


def table_html(frame: pd.DataFrame, *, index: bool = False, highlight: Mapping[Any, str] | None = None,
               formats: Mapping[str, str] | None = None) -> str:
    """A table as HTML, every cell escaped; ``highlight`` gives a row (by index label) a CSS class,
    ``formats`` a column a format spec (``.1%``)."""
    formats = dict(formats or {})
    columns = list(frame.columns)

    def cell(col: Any, value: Any) -> str:
        spec = formats.get(col)
        if spec and isinstance(value, (int, float, np.number)) and np.isfinite(value):
            return esc(format(value, spec))
        if isinstance(value, float) and not np.isfinite(value):
            return "\u2014"
        return esc(value)

    def header(col: Any) -> str:
        return esc(" / ".join(map(str, col)) if isinstance(col, tuple) else col)

    head = (f"<th>{esc(frame.index.name or '')}</th>" if index else "") + "".join(
        f"<th>{header(c)}</th>" for c in columns)
    rows = []
    for label, row in frame.iterrows():
        css = (highlight or {}).get(label)
        first = f"<th>{esc(label)}</th>" if index else ""
        cells = "".join(f"<td>{cell(c, row[c])}</td>" for c in columns)
        rows.append(f'<tr{f" class={chr(34)}{esc(css)}{chr(34)}" if css else ""}>{first}{cells}</tr>')
    return f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


# --------------------------------------------------------------------------- pictures


def _colour(values: np.ndarray) -> np.ndarray:
    """RGB of ``values`` in [-1, 1] on the dashboard's contribution scale (blue - white - red)."""
    stops = np.array([s for s, _ in CONTRIBUTION_COLORSCALE], dtype=float)
    rgb = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for _, c in CONTRIBUTION_COLORSCALE], dtype=float)
    pos = (np.clip(values, -1, 1) + 1) / 2
    return np.stack([np.interp(pos, stops, rgb[:, k]) for k in range(3)], axis=-1)


def overlay_rgb(image: Any, grid: np.ndarray, *, opacity: float = 0.55) -> np.ndarray:
    """The image with each patch of ``grid`` (rows, cols Shapley values; NaN: none) blended in
    the dashboard's contribution colours, symmetric around 0 like its overlay figure."""
    img = to_rgb_uint8(image).astype(np.float64)
    h, w = img.shape[:2]
    grid = np.asarray(grid, dtype=float)
    finite = np.abs(grid[np.isfinite(grid)])
    scale = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    rows = np.minimum((np.arange(h) * grid.shape[0]) // max(h, 1), grid.shape[0] - 1)
    cols = np.minimum((np.arange(w) * grid.shape[1]) // max(w, 1), grid.shape[1] - 1)
    values = grid[rows[:, None], cols[None, :]] / scale
    colour = _colour(np.nan_to_num(values))
    alpha = np.where(np.isfinite(values), opacity, 0.0)[..., None]
    return np.clip(img * (1 - alpha) + colour * alpha + 0.5, 0, 255).astype(np.uint8)


def png_data_uri(rgb: np.ndarray, *, min_side: int = 128) -> str:
    """A ``data:image/png;base64,...`` URI of an HxWx3 uint8 picture, enlarged (nearest) so its
    shorter side is at least ``min_side`` pixels."""
    from PIL import Image

    picture = Image.fromarray(to_rgb_uint8(rgb))
    factor = max(1, int(np.ceil(min_side / max(1, min(picture.size)))))
    if factor > 1:
        picture = picture.resize((picture.width * factor, picture.height * factor), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# --------------------------------------------------------------------------- the page

_STYLE = """
:root { --ink: #1d2733; --muted: #5b6673; --line: #d9dee4; --soft: #f5f7f9; --accent: #0072B2; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1180px; padding: 24px 32px 64px; color: var(--ink);
       font: 15px/1.5 Inter, "Segoe UI", Helvetica, Arial, sans-serif; background: #fff; }
header.report { border-bottom: 3px solid var(--accent); margin-bottom: 18px; padding-bottom: 10px; }
header.report h1 { margin: 0 0 6px; font-size: 28px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0 0; }
dl.meta dt { color: var(--muted); } dl.meta dd { margin: 0; overflow-wrap: anywhere; }
nav.toc { margin: 10px 0 0; } nav.toc a { margin-right: 14px; color: var(--accent); text-decoration: none; }
section { margin: 34px 0 0; } section h2 { border-bottom: 1px solid var(--line); padding-bottom: 4px; }
p.caption, p.note { color: var(--muted); font-size: 13px; margin: 4px 0 14px; }
.fl-figure { overflow-x: auto; margin: 8px 0; }
.table { overflow-x: auto; margin: 8px 0 16px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
thead th { background: var(--soft); position: sticky; top: 0; }
tr.selected td { background: #e8f1f8; font-weight: 600; } tr.best td:first-child::after { content: " \\2605"; }
ul.story li { margin: 6px 0; } .proof { color: var(--muted); font-size: 13px; white-space: nowrap; }
code { background: var(--soft); padding: 0 4px; border-radius: 4px; font-size: 90%; overflow-wrap: anywhere; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 14px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; break-inside: avoid; }
.card h4 { margin: 0 0 4px; font-size: 15px; overflow-wrap: anywhere; }
.verdict { font-weight: 600; } .verdict.wrong { color: #C0392B; } .verdict.right { color: #1B9E77; }
.pictures { display: flex; gap: 8px; flex-wrap: wrap; margin: 6px 0; }
.pictures figure { margin: 0; } .pictures img { width: 128px; height: auto; image-rendering: pixelated;
       border: 1px solid var(--line); } .pictures figcaption { font-size: 12px; color: var(--muted); }
.sharebar { display: flex; height: 16px; border-radius: 4px; overflow: hidden; margin: 4px 0; background: var(--soft); }
.sharebar span { display: block; height: 100%; }
.legend span.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 4px 0 8px; }
.modality { margin: 6px 0; } .modality b { font-size: 13px; }
button.print { float: right; padding: 6px 12px; border: 1px solid var(--line); border-radius: 6px;
       background: var(--soft); cursor: pointer; font: inherit; }
@page { size: A4; margin: 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  .no-print, button, .modebar, .modebar-container { display: none !important; }
  section { break-before: page; } section:first-of-type { break-before: auto; }
  .fl-figure { overflow: visible; break-inside: avoid; } .table { overflow: visible; }
  thead th { position: static; } .cards { grid-template-columns: 1fr 1fr; }
  a { color: inherit; text-decoration: none; }
}
"""

#: Widest a figure is drawn on paper (pixels): A4 less the page margins at 96 dpi.
PRINT_WIDTH = 700
# Figures are drawn at the screen's width: printing redraws them at the paper's width first (the
# print button waits for that; Ctrl+P gets the same on the beforeprint event) and back after.
_PRINT_SCRIPT = """
(function () {
  var PRINT_WIDTH = %d;
  function plots() { return window.Plotly ? document.querySelectorAll('.js-plotly-plot') : []; }
  function toPaper() {
    plots().forEach(function (p) {
      if (p._flScreen !== undefined) { return; }
      p._flScreen = p.layout.width === undefined ? null : p.layout.width;
      var now = (p._fullLayout && p._fullLayout.width) || PRINT_WIDTH;
      window.Plotly.relayout(p, {width: Math.min(now, PRINT_WIDTH)});
    });
  }
  function toScreen() {
    plots().forEach(function (p) {
      if (p._flScreen === undefined) { return; }
      var width = p._flScreen;
      delete p._flScreen;
      window.Plotly.relayout(p, {width: width});
    });
  }
  window.addEventListener('beforeprint', toPaper);
  window.addEventListener('afterprint', toScreen);
  window.flPrint = function () { toPaper(); window.setTimeout(function () { window.print(); }, 400); };
})();
""" % PRINT_WIDTH


def page_html(title: str, header: str, toc: Sequence[tuple[str, str]], sections: Sequence[str], *,
              plotly_js: str) -> str:
    """The whole report: ``<head>`` with its style and the one inlined plotly.js, then the header,
    a table of contents (anchor, title), and the sections (HTML)."""
    links = "".join(f'<a href="#{esc(key)}">{esc(name)}</a>' for key, name in toc)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{esc(title)}</title>\n<style>{_STYLE}</style>\n"
        f"<script type=\"text/javascript\">{plotly_js}</script>\n"
        f"<script type=\"text/javascript\">{_PRINT_SCRIPT}</script>\n</head>\n<body>\n"
        f"{header}\n<nav class=\"toc no-print\">{links}</nav>\n" + "\n".join(sections) + "\n</body>\n</html>\n"
    )
