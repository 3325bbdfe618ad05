"""Figures of one time series (Sample explorer): its channels over time with the contributions of
its time segments as shaded bands, and a top-down track map of its x/y position pairs.

The players of a time series are time segments of the resampled series (``t0``, ``t1``: half-open
steps of ``length``) times channel groups; these builders draw them over the series as loaded
(``T`` steps), mapping a resampled step ``k`` to the original position ``k * (T - 1) / (length - 1)``.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.figures.style import (
    BASE_FONT_SIZE,
    CONTRIBUTION_COLORSCALE,
    empty_figure,
    esc,
    font_size,
    scaled_px,
    style_figure,
)

#: line styles of a modality's channels (all in the modality's colour)
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
POSITIVE, NEGATIVE = CONTRIBUTION_COLORSCALE[-1][1], CONTRIBUTION_COLORSCALE[0][1]
#: the opacity of the band of the largest |contribution|
MAX_BAND_OPACITY = 0.5


def _as_series(series: Any) -> np.ndarray:
    arr = np.asarray(series, dtype=float)
    return arr[:, None] if arr.ndim == 1 else arr


def segment_span(t0: int, t1: int, length: int, steps: int) -> tuple[float, float]:
    """The span of resampled steps ``[t0, t1)`` (of ``length``) in the original series' step
    coordinates (``steps`` of them): neighbouring segments meet halfway between their steps."""
    scale = (steps - 1) / (length - 1) if length > 1 else 0.0
    return max(0.0, (t0 - 0.5) * scale), min(float(steps - 1), (t1 - 0.5) * scale)


def point_contributions(steps: int, contributions: pd.DataFrame, group: int) -> np.ndarray:
    """The contribution of the segment each of the original ``steps`` falls in, for channel group
    ``group`` (``contributions``: one row per player with ``segment``, ``group``, ``t0``, ``t1``, ``phi``;
    the resampled length is the largest ``t1``); NaN where no player covers it."""
    rows = contributions[contributions["group"].astype(int) == int(group)].sort_values("t0")
    out = np.full(steps, np.nan)
    if rows.empty:
        return out
    length = int(contributions["t1"].max())
    resampled = np.rint(np.arange(steps) * ((length - 1) / (steps - 1) if steps > 1 else 0.0)).astype(int)
    t0 = rows["t0"].to_numpy(dtype=int)
    t1 = rows["t1"].to_numpy(dtype=int)
    idx = np.searchsorted(t0, resampled, side="right") - 1
    inside = (idx >= 0) & (resampled < t1[np.clip(idx, 0, None)])
    out[inside] = rows["phi"].to_numpy(dtype=float)[idx[inside]]
    return out


def _symmetric_max(values: Any) -> float:
    v = np.abs(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    return float(v.max()) if v.size and v.max() > 0 else 1.0


def make_series_figure(series: Any, channels: Sequence[str], *, contributions: pd.DataFrame | None = None,
                       groups: Sequence[Sequence[str]] | None = None, color: str = "#56B4E9",
                       title: str = "Time series") -> go.Figure:
    """Each channel over time (one panel per channel group, lines in the modality's ``color``), with
    the players' contributions as shaded bands: red pushes towards the explained class, blue
    against it, the opacity is ``|phi|`` over the largest ``|phi|``; hovering a band's marker
    names its steps and value. ``contributions``: one row per player (``segment``, ``group``,
    ``t0``, ``t1``, ``phi``), None before an explanation; ``groups``: channel names per group
    (default: one group of every channel)."""
    arr = _as_series(series)
    if arr.size == 0:
        return empty_figure("This series is empty.", title)
    names = [str(c) for c in channels] if len(channels) == arr.shape[1] else [f"c{i}" for i in range(arr.shape[1])]
    index = {n: i for i, n in enumerate(names)}
    panels = [[index[str(c)] for c in g if str(c) in index] for g in (groups or [names])]
    panels = [p for p in panels if p] or [list(range(arr.shape[1]))]
    n = len(panels)
    fig = make_subplots(rows=n, cols=1, shared_xaxes=True, vertical_spacing=0.08 if n > 1 else 0.0,
                        subplot_titles=[esc(", ".join(names[c] for c in p)) for p in panels] if n > 1 else None)
    steps = np.arange(arr.shape[0])
    for row, cols in enumerate(panels, start=1):
        for c in cols:  # one line style per channel, so the legend tells the channels apart across panels
            fig.add_trace(go.Scatter(x=steps, y=arr[:, c], mode="lines", name=esc(names[c]),
                                     line={"color": color, "dash": DASHES[c % len(DASHES)], "width": 2},
                                     hovertemplate=f"{esc(names[c])}, step %{{x}}: %{{y:.4g}}<extra></extra>"),
                          row=row, col=1)
    if contributions is not None and not contributions.empty:
        zmax = _symmetric_max(contributions["phi"])
        length = int(contributions["t1"].max())
        for row, cols in enumerate(panels, start=1):
            rows = contributions[contributions["group"].astype(int) == row - 1]
            top = float(np.nanmax(arr[:, cols])) if np.isfinite(arr[:, cols]).any() else 0.0
            centres, custom = [], []
            for r in rows.itertuples():
                x0, x1 = segment_span(int(r.t0), int(r.t1), length, arr.shape[0])
                phi = float(r.phi)
                fig.add_vrect(x0=x0, x1=x1, fillcolor=POSITIVE if phi >= 0 else NEGATIVE, line_width=0,
                              opacity=MAX_BAND_OPACITY * abs(phi) / zmax, layer="below", row=row, col=1)
                centres.append((x0 + x1) / 2)
                custom.append([int(r.t0), int(r.t1), phi])
            fig.add_trace(go.Scatter(
                x=centres, y=[top] * len(centres), mode="markers", name="segment contribution",
                showlegend=False, customdata=custom,
                marker={"size": 9, "symbol": "square", "color": [c[2] for c in custom],
                        "colorscale": CONTRIBUTION_COLORSCALE, "cmin": -zmax, "cmax": zmax, "showscale": row == 1,
                        "colorbar": {"title": {"text": "Contribution"}, "len": 0.8}},
                hovertemplate="resampled steps %{customdata[0]}-%{customdata[1]}: %{customdata[2]:.4g}<extra></extra>",
            ), row=row, col=1)
    style_figure(fig, title, None, "Value", height=max(340, 130 + 210 * n))
    fig.update_xaxes(title={"text": "Time step", "font": {"size": font_size(BASE_FONT_SIZE + 1)}}, row=n, col=1)
    # the channels' legend under the plot, so that the colour bar of the contributions has the right side
    fig.update_layout(hovermode="closest", margin={"b": scaled_px(110)},
                      legend={"orientation": "h", "yref": "container", "y": 0.0, "yanchor": "bottom",
                              "x": 0.0, "xanchor": "left"})
    return fig


def pair_name(x: str, y: str) -> str:
    """A name for an x/y channel pair: their common prefix up to a separator (``worker_x``, ``worker_y``
    -> ``worker``), else both names (``lon/lat``)."""
    prefix = os.path.commonprefix([str(x), str(y)])
    return prefix.rstrip("_-. ") if prefix[-1:] in ("_", "-", ".", " ") and prefix.rstrip("_-. ") else f"{x}/{y}"


def make_track_figure(series: Any, channels: Sequence[str], xy: Sequence[str], *,
                      contributions: pd.DataFrame | None = None, groups: Sequence[Sequence[str]] | None = None,
                      color: str = "#56B4E9", title: str = "Track map (top-down)") -> go.Figure:
    """A top-down map of each x/y channel pair (metres, equal aspect): the track as a thin line,
    its points coloured by the contribution of the segment (and channel group of the x channel)
    they fall in, or in the modality's ``color`` before an explanation; a diamond marks the start."""
    arr = _as_series(series)
    names = [str(c) for c in channels]
    index = {n: i for i, n in enumerate(names)}
    pairs = [(str(xy[i]), str(xy[i + 1])) for i in range(0, len(xy) - 1, 2)]
    pairs = [(x, y) for x, y in pairs if x in index and y in index]
    if arr.size == 0 or not pairs:
        return empty_figure("No x/y channel pair to draw (the modality's xy option).", title)
    group_of = {str(c): g for g, grp in enumerate(groups or [names]) for c in grp}
    explained = contributions is not None and not contributions.empty
    zmax = _symmetric_max(contributions["phi"]) if explained else 1.0
    fig = go.Figure()
    for k, (x, y) in enumerate(pairs):
        xs, ys = arr[:, index[x]], arr[:, index[y]]
        name = esc(pair_name(x, y))
        values = point_contributions(len(arr), contributions, group_of.get(x, 0)) if explained else None
        marker: dict[str, Any] = {"size": 7, "symbol": ["diamond"] + ["circle"] * (len(arr) - 1),
                                  "line": {"width": 0.5, "color": "#555"}}
        if values is not None:
            marker.update(color=values, colorscale=CONTRIBUTION_COLORSCALE, cmin=-zmax, cmax=zmax,
                          showscale=k == 0, colorbar={"title": {"text": "Contribution"}})
        else:
            marker["color"] = color
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines+markers", name=name, line={"color": "#BBBBBB", "width": 1}, marker=marker,
            customdata=np.stack([np.arange(len(arr)), values if values is not None else np.full(len(arr), np.nan)],
                                axis=1),
            hovertemplate=f"{name}, step %{{customdata[0]}}: x %{{x:.2f}} m, y %{{y:.2f}} m"
                          + (", contribution %{customdata[1]:.4g}" if values is not None else "") + "<extra></extra>",
        ))
    style_figure(fig, title, "x (m)", "y (m)", height=480)
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig
