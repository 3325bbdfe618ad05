"""Figures of embeddings (Embeddings): a 2-D projection, coloured by class, correctness or share.

:func:`make_embedding_figure` draws every point (WebGL); above
:data:`DENSITY_MIN_POINTS` points the page draws :func:`make_density_figure`
instead (a 2-D histogram binned here, in numpy, so the browser receives a grid
instead of every point, with a seeded sample of points on top for hovering and
for box or lasso selection)."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.errors import cli_command
from ui.figures.style import (
    BASE_FONT_SIZE,
    CORRECTNESS_COLORS,
    check_columns,
    class_colors,
    empty_figure,
    esc,
    esc_values,
    font_size,
    scaled_px,
    short_label,
    style_figure,
)
from ui.labels import pretty

#: Above this many points the Embeddings page opens in the density view (a scatter is a solid blot there).
DENSITY_MIN_POINTS = 200_000
#: Above this many points a scatter's hover names only the sample and its colour value: the full hover
#: text (about 100 bytes a point) would dominate what the browser receives.
HOVER_FULL_MAX = 100_000


def _is_categorical(series: pd.Series) -> bool:
    if isinstance(series.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(series) or series.dtype == object:
        return True
    if pd.api.types.is_string_dtype(series):
        return True
    if pd.api.types.is_integer_dtype(series):
        return series.nunique() <= 50
    return False


def make_embedding_figure(
    coords_df: pd.DataFrame,
    color_by: str | None = None,
    hover_cols: Sequence[str] = (),
    title: str = "",
    *,
    axis_label: str = "Dimension",
    highlight_id: str | None = None,
    category_colors: Mapping[Any, str] | None = None,
    category_order: Sequence[Any] | None = None,
    colored: Sequence[Any] | None = None,
    max_categories: int = 20,
) -> go.Figure:
    """WebGL scatter of a 2-D projection, coloured by a categorical or continuous column.

    ``coords_df`` has ``id``, ``x``, ``y`` and any columns named in ``color_by``
    / ``hover_cols``. Every trace's ``customdata`` is the sample id, so a
    click, box or lasso selection yields ids; hovering names the sample.
    ``correct`` (bool) is shown as Correct / Incorrect. ``highlight_id`` rings
    one sample (e.g. the one open in the sample explorer).

    A legend stays readable above 20 categories: ``colored`` names the
    categories that get a colour and a legend entry (default: the
    ``max_categories - 1`` most frequent when there are more than
    ``max_categories``); every other point is drawn in grey as one "Other"
    entry, and its hover still names its category.
    """
    if coords_df is None or coords_df.empty:
        return empty_figure(f"No projection yet: compute it with `{cli_command()} project` or the button above.", title)
    check_columns(coords_df, ["id", "x", "y"], "projection")
    n = len(coords_df)
    size = 4 if n > 20000 else 6 if n > 3000 else 8
    ids = coords_df["id"].astype(str).to_numpy()
    hover_cols = [c for c in hover_cols if c in coords_df.columns and c != "id"]
    if n > HOVER_FULL_MAX:
        hover_cols = [c for c in hover_cols if c == color_by]
    # hover text, built column by column (a 10,000-point scatter stays well under 0.1 s)
    hover = ("<b>" + esc_values(ids) + "</b>").astype(object)
    for col in hover_cols:
        values = coords_df[col]
        if pd.api.types.is_bool_dtype(values):
            shown = np.where(values.fillna(False).astype(bool).to_numpy(), "yes", "no").astype(object)
        elif str(col).startswith("share_") and pd.api.types.is_float_dtype(values):
            arr = values.to_numpy(dtype=float)
            shown = np.where(np.isfinite(arr), np.char.mod("%.1f%%", np.nan_to_num(arr) * 100), "n/a").astype(object)
        elif pd.api.types.is_float_dtype(values):
            arr = values.to_numpy(dtype=float)
            shown = np.where(np.isfinite(arr), np.char.mod("%.3f", np.nan_to_num(arr)), "n/a").astype(object)
        else:
            shown = esc_values(values)
        hover = hover + f"<br>{esc(pretty(col))}: " + shown
    hovertemplate = "%{text}<extra></extra>"
    fig = go.Figure()
    marker_base = {"size": size, "opacity": 0.8, "line": {"width": 0}}
    legend_title = None
    if color_by is None or color_by not in coords_df.columns:
        fig.add_trace(go.Scattergl(
            x=coords_df["x"], y=coords_df["y"], mode="markers", customdata=ids, text=hover,
            hovertemplate=hovertemplate, marker={**marker_base, "color": "#2E86C1"}, name="Samples", showlegend=False,
        ))
    elif _is_categorical(coords_df[color_by]):
        values = coords_df[color_by]
        if pd.api.types.is_bool_dtype(values):
            labels = pd.Series(np.where(values.fillna(False).astype(bool), "Correct", "Incorrect"), index=coords_df.index)
            palette: Mapping[Any, str] = dict(CORRECTNESS_COLORS)
            order = ["Correct", "Incorrect"]
        else:
            labels = values.astype(str)
            order = [str(c) for c in category_order] if category_order is not None else sorted(labels.unique())
            order += sorted(set(labels.unique()) - set(order))  # a category missing from the given order
            palette = {str(k): v for k, v in (category_colors or class_colors(order)).items()}
            present = [c for c in order if (labels == c).any()]
            if colored is not None or len(present) > max_categories:
                if colored is not None:
                    keep = [str(c) for c in colored if str(c) in set(present)]
                else:  # the most frequent categories, ties in the given order
                    freq = labels.value_counts()
                    keep = sorted(present, key=lambda c: (-int(freq.get(c, 0)), present.index(c)))
                    keep = keep[: max(1, max_categories - 1)]
                keep = [c for c in present if c in set(keep)]
                rest = [c for c in present if c not in set(keep)]
                if category_colors is None or len({palette.get(c) for c in keep}) < len(keep):
                    palette = class_colors(keep)  # distinct colours for the coloured ones
                mask = labels.isin(rest).to_numpy()
                if mask.any():  # drawn first, under the coloured points
                    fig.add_trace(go.Scattergl(
                        x=coords_df["x"].to_numpy()[mask], y=coords_df["y"].to_numpy()[mask], mode="markers",
                        name=f"Other ({len(rest)} {'classes' if color_by in ('label', 'pred') else 'values'})",
                        customdata=ids[mask], text=hover[mask], hovertemplate=hovertemplate, legendrank=2000,
                        marker={**marker_base, "color": "#B8BEC4", "opacity": 0.55},
                    ))
                order = keep
        for cat in order:
            mask = (labels == cat).to_numpy()
            if not mask.any():
                continue
            fig.add_trace(go.Scattergl(
                x=coords_df["x"].to_numpy()[mask], y=coords_df["y"].to_numpy()[mask], mode="markers",
                name=esc(short_label(cat, 20)), customdata=ids[mask], text=hover[mask], hovertemplate=hovertemplate,
                marker={**marker_base, "color": palette.get(cat, "#7F8C8D")},
            ))
        legend_title = pretty(color_by)
    else:
        values = pd.to_numeric(coords_df[color_by], errors="coerce").to_numpy(dtype=float)
        is_share = color_by.startswith("share_") or (np.nanmin(values) >= 0 and np.nanmax(values) <= 1)
        fig.add_trace(go.Scattergl(
            x=coords_df["x"], y=coords_df["y"], mode="markers", customdata=ids, text=hover,
            hovertemplate=hovertemplate, name=pretty(color_by), showlegend=False,
            marker={
                **marker_base, "color": values, "colorscale": "Viridis",
                "cmin": 0 if is_share else None, "cmax": 1 if is_share else None,
                "colorbar": {"title": {"text": pretty(color_by)}, "tickformat": ".0%" if is_share else None},
            },
        ))
    if highlight_id is not None and str(highlight_id) in set(ids):
        row = coords_df.loc[coords_df["id"].astype(str) == str(highlight_id)].iloc[0]
        fig.add_trace(go.Scattergl(
            x=[row["x"]], y=[row["y"]], mode="markers", name="Selected sample", customdata=[str(highlight_id)],
            text=[f"<b>{esc(highlight_id)}</b> (selected)"], hovertemplate=hovertemplate,
            marker={"size": size + 10, "color": "rgba(0,0,0,0)", "line": {"width": 3, "color": "#111"}, "symbol": "circle"},
        ))
    entries = sum(1 for t in fig.data if t.showlegend is not False)
    below = entries > 8  # a long legend goes under the plot, in rows, so it never squeezes the plot
    legend_rows = math.ceil(entries / 2) + 1  # two entries a row in a half-width column, and the title
    style_figure(fig, title, f"{axis_label} 1", f"{axis_label} 2", legend_title=legend_title,
                 height=560 + (22 * legend_rows + 20 if below else 0))
    fig.update_layout(dragmode="lasso", hovermode="closest", uirevision=title or "embedding", clickmode="event+select",
                      legend={"itemsizing": "constant"})
    if below:
        fig.update_layout(
            margin={"b": scaled_px(22 * legend_rows + 90)},
            legend={"orientation": "h", "x": 0.0, "xanchor": "left", "yref": "container", "y": 0.0,
                    "yanchor": "bottom", "entrywidth": 0.5, "entrywidthmode": "fraction", "title": {"side": "top"},
                    "font": {"size": font_size(BASE_FONT_SIZE - 2)}})
    fig.update_xaxes(zeroline=False, showticklabels=False)
    fig.update_yaxes(zeroline=False, showticklabels=False)
    return fig


def make_density_figure(
    coords_df: pd.DataFrame,
    title: str = "",
    *,
    axis_label: str = "Dimension",
    bins: int = 200,
    overlay: int = 5000,
    seed: int = 0,
    highlight_id: str | None = None,
) -> go.Figure:
    """Point density of a large 2-D projection: a ``bins`` x ``bins`` histogram (log colour scale).

    The counts are binned here, so the figure's size does not grow with the
    points. A seeded sample of ``overlay`` points is drawn on top, faintly, with
    the sample id as ``customdata``: it names points on hover, and a box or
    lasso drawn over it reports its region (the page then selects every point
    inside, see ``ui.queries.ids_in_selection``).
    """
    if coords_df is None or coords_df.empty:
        return empty_figure(f"No projection yet: compute it with `{cli_command()} project` or the button above.", title)
    check_columns(coords_df, ["id", "x", "y"], "projection")
    x = coords_df["x"].to_numpy(dtype=np.float64)
    y = coords_df["y"].to_numpy(dtype=np.float64)
    counts, x_edges, y_edges = np.histogram2d(x, y, bins=bins)
    with np.errstate(divide="ignore"):
        z = np.where(counts > 0, np.log10(np.maximum(counts, 1)), np.nan).T  # empty bins stay blank
    top = max(1, int(np.ceil(np.nanmax(z)))) if np.isfinite(z).any() else 1
    fig = go.Figure(go.Heatmap(
        x=(0.5 * (x_edges[:-1] + x_edges[1:])).astype(np.float32),
        y=(0.5 * (y_edges[:-1] + y_edges[1:])).astype(np.float32),
        z=z.astype(np.float32), colorscale="Viridis", zmin=0, zmax=top, hoverongaps=False,
        customdata=counts.T.astype(np.int64), hovertemplate="%{customdata:,} points<extra></extra>",
        colorbar={"title": {"text": "Points per bin"}, "tickvals": list(range(top + 1)),
                  "ticktext": [f"{10 ** v:,}" for v in range(top + 1)]},
        name="Density", showscale=True,
    ))
    n = len(coords_df)
    ids = coords_df["id"].astype(str).to_numpy()
    if overlay > 0:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=min(overlay, n), replace=False))
        fig.add_trace(go.Scattergl(
            x=x[rows].astype(np.float32), y=y[rows].astype(np.float32), mode="markers", customdata=ids[rows],
            hovertemplate="<b>%{customdata}</b><extra></extra>", name=f"{len(rows):,} sampled points",
            marker={"size": 3, "color": "rgba(255,255,255,0.35)", "line": {"width": 0}}, showlegend=False,
        ))
    if highlight_id is not None:
        where = np.flatnonzero(ids == str(highlight_id))
        if where.size:
            i = int(where[0])
            fig.add_trace(go.Scattergl(
                x=[x[i]], y=[y[i]], mode="markers", name="Selected sample", customdata=[str(highlight_id)],
                hovertemplate=f"<b>{esc(highlight_id)}</b> (selected)<extra></extra>", showlegend=False,
                marker={"size": 14, "color": "rgba(0,0,0,0)", "line": {"width": 3, "color": "#E74C3C"}},
            ))
    style_figure(fig, title, f"{axis_label} 1", f"{axis_label} 2", height=560)
    fig.update_layout(dragmode="lasso", hovermode="closest", uirevision=title or "embedding-density",
                      clickmode="event+select", plot_bgcolor="#FFFFFF")
    fig.update_xaxes(zeroline=False, showticklabels=False, showgrid=False)
    fig.update_yaxes(zeroline=False, showticklabels=False, showgrid=False)
    return fig
