"""The look every dashboard figure shares: fonts, colours, class axes, empty states.

Demo-ready conventions, used by every builder of :mod:`ui.figures`:
- every axis is titled, classes are shown by name, base font ``BASE_FONT_SIZE``;
- a modality has the same colour in every figure (:func:`modality_colors`);
- contributions use one diverging scale, red positive / blue negative,
  symmetric around 0 (:data:`CONTRIBUTION_COLORSCALE`);
- an empty input gives a figure that says what is missing instead of failing;
- while presenting (:func:`scaled_figures`), :func:`style_figure` enlarges every font,
  margin and the figure's size by :func:`figure_scale`; a builder that sets a font or margin
  after it uses :func:`font_size` / :func:`scaled_px`, which follow the same scale.
"""
from __future__ import annotations

import contextlib
import html
import zlib
from contextvars import ContextVar
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.errors import DataError

BASE_FONT_SIZE = 15
TITLE_FONT_SIZE = 20
FONT_FAMILY = "Inter, 'Segoe UI', Helvetica, Arial, sans-serif"
# Okabe-Ito colour-blind-safe palette. The primary visual modality (image / rgb)
# is always blue; text-like modalities orange/green; depth vermillion.
MODALITY_COLORS: dict[str, str] = {
    "image": "#0072B2",
    "rgb": "#0072B2",
    "title": "#E69F00",
    "text": "#E69F00",
    "name": "#E69F00",
    "description": "#009E73",
    "category": "#CC79A7",
    "depth": "#D55E00",
    "audio": "#CC79A7",
    "tabular": "#56B4E9",
    "fused": "#404040",
}
FALLBACK_COLORS: tuple[str, ...] = (
    "#56B4E9", "#CC79A7", "#009E73", "#E69F00", "#D55E00", "#F0E442",
    "#882255", "#44AA99", "#999933", "#AA4499", "#332288", "#117733",
)
# Classes: a long qualitative palette (plotly Dark24 + Light24 style), cycled.
CLASS_COLORS: tuple[str, ...] = (
    "#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D", "#DA16FF", "#222A2A", "#B68100",
    "#750D86", "#EB663B", "#511CFB", "#00A08B", "#FB00D1", "#FC0080", "#B2828D",
    "#6C7C32", "#778AAE", "#862A16", "#A777F1", "#620042", "#1616A7", "#DA60CA",
    "#6C4516", "#0D2A63", "#AF0038", "#FD3216", "#00FE35", "#6A76FC", "#FED4C4",
    "#FE00CE", "#0DF9FF", "#F6F926", "#FF9616", "#479B55", "#EEA6FB", "#DC587D",
    "#D626FF", "#6E899C", "#00B5F7", "#B68E00", "#C9FBE5", "#FF0092", "#22FFA7",
    "#E3EE9E", "#86CE00", "#BC7196", "#7E7DCD", "#FC6955", "#E48F72",
)
CORRECTNESS_COLORS: dict[str, str] = {"Correct": "#1B9E77", "Incorrect": "#C0392B"}
# Red = pushes towards the predicted class, blue = against it; white at 0.
CONTRIBUTION_COLORSCALE: list[list[Any]] = [
    [0.0, "#2166AC"], [0.25, "#67A9CF"], [0.5, "#F7F7F7"], [0.75, "#EF8A62"], [1.0, "#B2182B"],
]

# Depth (a single-channel clip): grey, near dark and far light as in the frame viewer's pictures, so that the
# red/blue contribution overlay stays readable over it.
DEPTH_COLORSCALE: list[list[Any]] = [[0.0, "#141414"], [1.0, "#F2F2F2"]]


def modality_colors(modalities: Sequence[str]) -> dict[str, str]:
    """Colour of each modality in ``modalities``: known names first, then the fallback palette.

    Deterministic in the order of ``modalities``; no two modalities of the list
    share a colour, so the same list gives the same colours in every figure.
    """
    taken: set[str] = set()
    out: dict[str, str] = {}
    for name in modalities:
        color = MODALITY_COLORS.get(str(name).lower())
        if color is not None and color not in taken:
            out[name] = color
            taken.add(color)
    fallback = [c for c in FALLBACK_COLORS if c not in taken]
    for name in modalities:
        if name in out:
            continue
        color = fallback.pop(0) if fallback else FALLBACK_COLORS[zlib.crc32(str(name).encode()) % len(FALLBACK_COLORS)]
        out[name] = color
        taken.add(color)
    return out


def modality_color(name: str, modalities: Sequence[str] | None = None) -> str:
    """The colour of modality ``name`` within the run's ``modalities`` (see :func:`modality_colors`)."""
    if modalities is None:
        known = MODALITY_COLORS.get(str(name).lower())
        if known is not None:
            return known
        return FALLBACK_COLORS[zlib.crc32(str(name).encode()) % len(FALLBACK_COLORS)]
    mods = list(modalities)
    if name not in mods:
        mods.append(name)
    return modality_colors(mods)[name]


def class_colors(classes: Sequence[Any]) -> dict[Any, str]:
    """A stable colour per class, in the given class order."""
    return {c: CLASS_COLORS[i % len(CLASS_COLORS)] for i, c in enumerate(classes)}


#: How much larger fonts, margins and figures are while presenting on a projector.
PRESENT_SCALE = 1.35
# Per script run: Streamlit runs each session's script in its own thread, so one session
# presenting never enlarges another session's figures.
_FIGURE_SCALE: ContextVar[float] = ContextVar("fusionlens_figure_scale", default=1.0)


def figure_scale() -> float:
    """The factor :func:`style_figure` enlarges figures by in this context (1.0 unless presenting)."""
    return _FIGURE_SCALE.get()


@contextlib.contextmanager
def scaled_figures(scale: float) -> Iterator[None]:
    """Figures styled inside this block get fonts, margins and sizes ``scale`` times larger."""
    if not (0.5 <= float(scale) <= 3.0):
        raise ValueError(f"figure scale {scale!r} is outside 0.5-3")
    token = _FIGURE_SCALE.set(float(scale))
    try:
        yield
    finally:
        _FIGURE_SCALE.reset(token)


def font_size(points: float) -> float:
    """A font size for a builder that sets one after :func:`style_figure`: ``points`` enlarged by
    :func:`figure_scale` while presenting (fonts set before it are enlarged by it)."""
    return round(float(points) * figure_scale(), 1)


def scaled_px(pixels: float) -> int:
    """A margin or offset in pixels set after :func:`style_figure`, enlarged like its own margins."""
    return int(round(float(pixels) * figure_scale()))


def _times(size: Any, factor: float) -> Any:
    if isinstance(size, (int, float)) and not isinstance(size, bool):
        return round(size * factor, 1)
    if isinstance(size, (list, tuple, np.ndarray)):
        return [_times(v, factor) for v in size]
    return size


def _font_updates(obj: Any, factor: float) -> Any:
    """The sparse update that scales every ``*font.size`` in a figure's JSON (``None``: nothing to do).

    Lists of objects (annotations, sliders) come back whole: plotly replaces a list on update.
    """
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if key.endswith("font") and isinstance(value, dict):
                if "size" in value:
                    out[key] = {"size": _times(value["size"], factor)}
            elif isinstance(value, (dict, list)):
                sub = _font_updates(value, factor)
                if sub is not None:
                    out[key] = sub
        return out or None
    if isinstance(obj, list) and obj and all(isinstance(v, dict) for v in obj):
        subs = [_font_updates(v, factor) for v in obj]
        if not any(sub is not None for sub in subs):
            return None
        return [_merged(v, sub) for v, sub in zip(obj, subs)]
    return None


def _merged(base: dict, update: dict | None) -> dict:
    if not update:
        return base
    out = dict(base)
    for key, value in update.items():
        out[key] = _merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) \
            else value
    return out


def scale_figure(fig: go.Figure, factor: float) -> go.Figure:
    """Enlarge every font size, the margins and an explicit height or width of ``fig`` by ``factor``
    (in place; returns ``fig``)."""
    if factor == 1.0:
        return fig
    layout = fig.layout.to_plotly_json()
    update = _font_updates(layout, factor) or {}
    for key in ("height", "width"):
        if isinstance(layout.get(key), (int, float)):
            update[key] = int(round(layout[key] * factor))
    margin = layout.get("margin") or {}
    scaled = {k: int(round(margin[k] * factor)) for k in ("l", "r", "t", "b") if isinstance(margin.get(k), (int, float))}
    if scaled:
        update["margin"] = scaled
    if update:
        fig.update_layout(update)
    for trace in fig.data:
        sub = _font_updates(trace.to_plotly_json(), factor)
        if sub:
            trace.update(sub)
    return fig


def style_figure(
    fig: go.Figure,
    title: str | None = None,
    xtitle: str | None = None,
    ytitle: str | None = None,
    *,
    height: int | None = None,
    legend_title: str | None = None,
) -> go.Figure:
    """The house style on ``fig``: white template, base font, title top left, titled axes.

    While presenting (:func:`figure_scale` above 1) the fonts set so far are enlarged once and
    the house fonts, margins and ``height`` are set at the larger size.
    """
    k = figure_scale()
    if k != 1.0 and not getattr(fig, "_fl_scaled", False):
        scale_figure(fig, k)
        fig._fl_scaled = True  # a second style_figure on the same figure does not enlarge it again

    size = font_size
    fig.update_layout(
        template="plotly_white",
        font={"size": size(BASE_FONT_SIZE), "family": FONT_FAMILY},
        title={"text": title or "", "font": {"size": size(TITLE_FONT_SIZE)}, "x": 0.0, "xanchor": "left"},
        margin={m: int(round(v * k)) for m, v in {"l": 70, "r": 30, "t": 70 if title else 30, "b": 60}.items()},
        hoverlabel={"font": {"size": size(BASE_FONT_SIZE)}},
        legend={"font": {"size": size(BASE_FONT_SIZE - 1)}},
    )
    if legend_title is not None:
        fig.update_layout(legend_title_text=legend_title)
    if xtitle is not None:
        fig.update_xaxes(title={"text": xtitle, "font": {"size": size(BASE_FONT_SIZE + 1)}}, automargin=True)
    if ytitle is not None:
        fig.update_yaxes(title={"text": ytitle, "font": {"size": size(BASE_FONT_SIZE + 1)}}, automargin=True)
    if height is not None:
        fig.update_layout(height=int(round(height * k)))
    return fig


# Class axes, 2 to 200+ classes: every class is named (explicit ticks, never plotly's "every
# other label"); the pitch (pixels per class) and the label font shrink with the number of
# classes down to floors that stay readable on a projector, and beyond that the figure grows
# (the pages put tall or wide figures in a scrollable box). Long names are shortened on the
# axis only; hovering always shows the full name.
MIN_CLASS_FONT_SIZE = 12
CLASS_LABEL_CHARS = 30
#: A figure wider than this (pixels) gets an explicit width, to be scrolled sideways.
MAX_FIT_WIDTH = 1000


def class_pitch(n: int) -> int:
    """Pixels per class on a class axis with ``n`` classes (a row of a heatmap, a bar group)."""
    return 44 if n <= 8 else 32 if n <= 20 else 24 if n <= 40 else 18


def class_font_size(n: int) -> int:
    """Tick label size for ``n`` classes: never below :data:`MIN_CLASS_FONT_SIZE` (larger while presenting)."""
    return int(round((BASE_FONT_SIZE - 1 if n <= 20 else 13 if n <= 40 else MIN_CLASS_FONT_SIZE) * figure_scale()))


def short_label(name: Any, limit: int = CLASS_LABEL_CHARS) -> str:
    """``name`` as an axis label: at most ``limit`` characters, shortened with an ellipsis."""
    text = str(name)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def class_ticks(names: Sequence[Any]) -> dict[str, Any]:
    """Axis settings that name every class: explicit tick values, shortened texts, a readable size."""
    names = [str(n) for n in names]
    return {"tickmode": "array", "tickvals": names, "ticktext": [esc(short_label(n)) for n in names],
            "tickfont": {"size": class_font_size(len(names))}}


def legend_under_title(fig: go.Figure, height: int) -> None:
    """A one-line legend between the title and the plot, in pixels from the figure's top (a tall
    figure that scrolls keeps title, legend and its top axis together where the view starts)."""
    fig.update_layout(
        title={"yref": "container", "y": 1.0, "yanchor": "top", "pad": {"t": 18}},
        legend={"orientation": "h", "title": {"text": ""}, "xref": "container", "x": 0.01, "xanchor": "left",
                "yref": "container", "y": 1.0 - 58 / max(height, 1), "yanchor": "top"})


def label_extent(names: Sequence[Any], font_size: int) -> int:
    """Pixels the longest (shortened) label takes along its own direction."""
    longest = max((len(short_label(n)) for n in names), default=4)
    return int(0.52 * font_size * longest) + 14


def empty_figure(message: str, title: str | None = None) -> go.Figure:
    """A blank figure that says what is missing and what to do."""
    fig = go.Figure()
    fig.add_annotation(
        text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
        font={"size": BASE_FONT_SIZE + 1, "color": "#555"},
    )
    style_figure(fig, title)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def esc(value: Any) -> str:
    """``value`` as HTML-escaped text (names in hover labels and tick texts)."""
    return html.escape(str(value), quote=True)


def esc_values(values: Any) -> np.ndarray:
    """HTML-escaped strings of an array, escaping each distinct value once."""
    strings = pd.Series(np.asarray(values, dtype=object)).astype(str)
    mapping = {u: html.escape(u, quote=True) for u in pd.unique(strings)}
    return strings.map(mapping).to_numpy(dtype=object)


def share_columns(modalities: Sequence[str]) -> list[str]:
    """The per-sample share column of each modality: ``share_<modality>``."""
    return [f"share_{m}" for m in modalities]


def check_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """A DataError naming the columns ``frame`` lacks, if any."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{what} lacks column(s) {missing}", fix=f"provide {what} with columns {list(columns)}")
