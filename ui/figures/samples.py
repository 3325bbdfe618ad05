"""Figures of one sample (Sample explorer, Overview gallery): its top-5, its modality shares,
patch contributions over an image, tube contributions over a video frame, tokens
coloured by contribution, a vector's columns with their contributions. The sample
viewers (:mod:`ui.viewers`) draw them."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.errors import DataError
from ui.figures.overlays import clip_value_range, overlay_trace, symmetric_max, to_rgb_uint8, tube_array, tube_slice
from ui.figures.style import (
    BASE_FONT_SIZE,
    FONT_FAMILY,
    empty_figure,
    esc,
    font_size,
    modality_colors,
    style_figure,
)
from ui.labels import pretty_modality


def make_topk_figure(pred_row: Mapping[str, Any] | pd.Series, *, title: str = "Top-5 predictions") -> go.Figure:
    """Horizontal bars of the top-k labels and probabilities of one predictions.parquet row.

    The true class (``label``) is green when it is in the top-k, others grey.
    """
    row = dict(pred_row)
    labels, probs = [], []
    for k in range(1, 6):
        if f"top{k}_label" in row and row[f"top{k}_label"] is not None:
            labels.append(str(row[f"top{k}_label"]))
            probs.append(float(row.get(f"top{k}_prob", float("nan"))))
    if not labels:
        return empty_figure("This prediction has no top-k columns.", title)
    true = str(row.get("label", ""))
    colors = ["#1B9E77" if l == true else ("#C0392B" if i == 0 else "#95A5A6") for i, l in enumerate(labels)]
    fig = go.Figure(
        go.Bar(
            x=probs[::-1], y=labels[::-1], orientation="h", marker_color=colors[::-1],
            text=[f"{p:.1%}" for p in probs[::-1]], textposition="auto",
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    style_figure(fig, title, "Probability", "Class", height=max(260, 80 + 44 * len(labels)))
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    if true:
        fig.add_annotation(
            text=f"True class: <b>{esc(true)}</b>", xref="paper", yref="paper", x=1, y=1.02,
            xanchor="right", yanchor="bottom", showarrow=False, font={"size": font_size(BASE_FONT_SIZE - 1)},
        )
    return fig


def make_sample_share_figure(
    shares: Mapping[str, float], modalities: Sequence[str] | None = None, *, title: str = "Modality shares"
) -> go.Figure:
    """One horizontal bar per modality: its MM-SHAP share of one prediction, in its modality colour."""
    if not shares:
        return empty_figure("No explanation for this sample yet.", title)
    mods = list(modalities) if modalities is not None else list(shares)
    colors = modality_colors(mods)
    values = [float(shares.get(m, float("nan"))) for m in mods]
    fig = go.Figure(go.Bar(
        x=values[::-1], y=[pretty_modality(m) for m in mods][::-1], orientation="h",
        marker_color=[colors[m] for m in mods][::-1],
        text=["n/a" if not np.isfinite(v) else f"{v:.0%}" for v in values[::-1]], textposition="auto",
        hovertemplate="%{y}: %{x:.1%}<extra></extra>",
    ))
    style_figure(fig, title, "Share of the prediction (MM-SHAP)", "Modality", height=max(220, 90 + 48 * len(mods)))
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    return fig


def _patch_grid(patch_values: Any) -> np.ndarray:
    """(ph, pw) array from a 2-D array, a square 1-D vector, or rows with ``value``.

    Rows (a DataFrame) give the grid through ``patch_row``/``patch_col`` columns,
    or in order (``patch``/``feature_index`` sorted) for a square number of patches.
    """
    if isinstance(patch_values, pd.DataFrame):
        df = patch_values
        if "value" not in df.columns:
            raise DataError("patch rows lack a 'value' column", fix="pass the image modality's feature rows")
        if {"patch_row", "patch_col"} <= set(df.columns):
            grid = np.full((int(df["patch_row"].max()) + 1, int(df["patch_col"].max()) + 1), np.nan)
            grid[df["patch_row"].astype(int), df["patch_col"].astype(int)] = df["value"].astype(float)
            return grid
        order_col = next((c for c in ("patch", "feature_index", "index") if c in df.columns), None)
        values = (df.sort_values(order_col) if order_col else df)["value"].to_numpy(dtype=float)
        patch_values = values
    arr = np.asarray(patch_values, dtype=float)
    if arr.ndim == 1:
        side = int(round(math.sqrt(arr.size)))
        if side * side != arr.size:
            raise DataError(f"{arr.size} patch values do not form a square grid", fix="pass a (rows, cols) array")
        arr = arr.reshape(side, side)
    if arr.ndim != 2:
        raise DataError(f"patch values must be 2-D (rows, cols), got shape {arr.shape}", fix="pass one grid per image")
    return arr


def _image_layout(fig: go.Figure, title: str, height: int, width: int) -> go.Figure:
    style_figure(fig, title)
    fig.update_xaxes(visible=False, range=[-0.5, width - 0.5], constrain="domain")
    fig.update_yaxes(visible=False, range=[height - 0.5, -0.5], scaleanchor="x", constrain="domain")
    fig.update_layout(height=520, margin={"l": 10, "r": 10, "t": 60 if title else 10, "b": 10})
    return fig


def make_image_overlay_figure(
    image_uint8: np.ndarray,
    patch_values: Any,
    title: str = "Patch contributions",
    *,
    opacity: float = 0.55,
    zmax: float | None = None,
) -> go.Figure:
    """The image with a semi-transparent diverging heatmap of patch contributions.

    ``patch_values`` is a (rows, cols) grid, a square vector, or feature rows
    (see :func:`_patch_grid`). The colour range is symmetric around 0 (red
    pushes towards the prediction, blue against); the colourbar reads "SHAP value".
    """
    img = to_rgb_uint8(image_uint8)
    grid = _patch_grid(patch_values)
    h, w = img.shape[:2]
    zmax = float(zmax) if zmax else symmetric_max(grid)
    fig = go.Figure([go.Image(z=img, hoverinfo="skip"), overlay_trace(grid, h, w, zmax, opacity)])
    return _image_layout(fig, title, h, w)


def make_frames_overlay_figure(
    frames: np.ndarray,
    tube_values: Any,
    frame_index: int,
    *,
    title: str | None = None,
    opacity: float = 0.55,
) -> go.Figure:
    """One video frame with the contributions of the tubes that cover it.

    ``frames`` is (T, H, W[, C]); ``tube_values`` is (T', rows, cols) with one
    temporal slice per T / T' frames (T' = T for per-frame values), or
    (rows, cols) for tubes spanning the whole clip. The colour range is
    symmetric and shared by all frames, so moving the slider never rescales it.
    Single-channel frames (depth) are shown in grey, scaled over the clip.
    """
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4):
        raise DataError(f"frames must be (T, H, W[, C]), got shape {frames.shape}", fix="pass one clip")
    t_total = frames.shape[0]
    if t_total == 0:
        return empty_figure("This clip has no frames.", title)
    idx = int(np.clip(frame_index, 0, t_total - 1))
    values = tube_array(tube_values)
    t_slice = tube_slice(values.shape[0], idx, t_total)
    img = to_rgb_uint8(frames[idx], *clip_value_range(frames))
    h, w = img.shape[:2]
    zmax = symmetric_max(values)
    title = title if title is not None else f"Frame {idx + 1} of {t_total}"
    fig = go.Figure([go.Image(z=img, hoverinfo="skip"), overlay_trace(values[t_slice], h, w, zmax, opacity)])
    return _image_layout(fig, title, h, w)


def make_column_contribution_figure(
    columns: Sequence[str],
    values: Sequence[float],
    contributions: Sequence[float] | None = None,
    *,
    color: str,
    title: str | None = None,
) -> go.Figure:
    """One horizontal bar per column of a tabular sample, in the modality's ``color``: its
    contribution (Shapley value) when ``contributions`` are given, else its value; every bar
    is labelled with the column's value, first column on top."""
    names = [str(c) for c in columns]
    vals = np.asarray(list(values), dtype=float)
    if len(names) != len(vals):
        raise DataError(f"{len(names)} column names for {len(vals)} values", fix="pass one name per value")
    if not names:
        return empty_figure("This sample has no columns.", title)
    phis = None if contributions is None else np.asarray(list(contributions), dtype=float)
    if phis is not None and len(phis) != len(vals):
        raise DataError(f"{len(phis)} contributions for {len(vals)} columns", fix="pass one contribution per column")
    shown = [f"{v:.4g}" for v in vals]
    x = vals if phis is None else phis
    hover = ("%{y}: %{x:.4g}<extra></extra>" if phis is None
             else "%{y} = %{customdata}<br>contribution %{x:+.4f}<extra></extra>")
    fig = go.Figure(go.Bar(
        x=x[::-1], y=[esc(n) for n in names][::-1], orientation="h", marker_color=color,
        text=[f"= {t}" if phis is not None else t for t in shown][::-1], textposition="auto",
        customdata=shown[::-1], hovertemplate=hover,
    ))
    xtitle = "Value" if phis is None else "Contribution to the explained output (Shapley value)"
    style_figure(fig, title, xtitle, "Column", height=max(220, 100 + 34 * len(names)))
    if phis is not None:
        fig.add_vline(x=0, line_width=1, line_color="#555")
    return fig


def _token_background(value: float, scale: float) -> str:
    if not np.isfinite(value) or scale <= 0:
        return "transparent"
    alpha = min(1.0, abs(value) / scale) * 0.85
    r, g, b = (178, 24, 43) if value > 0 else (33, 102, 172)
    return f"rgba({r},{g},{b},{alpha:.3f})"


def token_html(tokens: Sequence[str], values: Sequence[float], *, max_abs: float | None = None, font_size: int = BASE_FONT_SIZE + 2) -> str:
    """Tokens as HTML spans coloured by contribution (red positive, blue negative).

    The scale is symmetric (``max_abs`` or the largest |value|), text is
    HTML-escaped, each span's tooltip shows the value. WordPiece continuations
    (``##ing``) join the previous token; ``Ġ``/``▁`` prefixes mark a new word.
    """
    tokens = [str(t) for t in tokens]
    vals = np.asarray(list(values), dtype=float)
    if len(tokens) != len(vals):
        raise DataError(f"{len(tokens)} tokens but {len(vals)} values", fix="pass one value per token")
    scale = float(max_abs) if max_abs else (float(np.nanmax(np.abs(vals))) if len(vals) and np.isfinite(vals).any() else 0.0)
    # sentencepiece / byte-BPE mark word starts; WordPiece marks continuations
    marks_starts = any(t[:1] in ("Ġ", "▁") for t in tokens)
    parts = []
    for i, (tok, v) in enumerate(zip(tokens, vals)):
        if tok.startswith("##"):
            tok, new_word = tok[2:], False
        elif marks_starts:
            new_word = tok[:1] in ("Ġ", "▁")
            tok = tok[1:] if new_word else tok
        else:
            new_word = True
        glue = " " if new_word and i else ""
        bg = _token_background(float(v), scale)
        color = "#fff" if np.isfinite(v) and scale > 0 and abs(v) / scale > 0.6 else "#111"
        label = "n/a" if not np.isfinite(v) else f"{v:+.4f}"
        parts.append(
            f'{glue}<span title="{esc(tok)}: {label}" style="background-color:{bg};color:{color};'
            f'padding:1px 3px;border-radius:4px;">{esc(tok)}</span>'
        )
    return (
        f'<div class="fusionlens-tokens" style="font-size:{int(font_size)}px;line-height:1.9;'
        f'font-family:{esc(FONT_FAMILY)};">' + "".join(parts) + "</div>"
    )
