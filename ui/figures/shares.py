"""Figures of modality contributions (Modality contributions, Misclassifications): MM-SHAP
shares per class and per sample.

Per-class means come from :func:`core.explain.class_share_table` (the one per-class
share table); per-sample shares (``samples_df``) are one row per explained sample
with ``id``, the true class (``label``), ``correct`` (bool; or ``pred`` to derive
it) and one ``share_<modality>`` column per modality.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.errors import DataError, cli_command
from ui.figures.style import (
    BASE_FONT_SIZE,
    MAX_FIT_WIDTH,
    check_columns,
    class_ticks,
    empty_figure,
    esc,
    modality_colors,
    share_columns,
    style_figure,
)
from ui.labels import SUBSET_LABELS, SUBSETS, pretty_modality


def _with_correct(samples_df: pd.DataFrame) -> pd.DataFrame:
    if "correct" in samples_df.columns:
        return samples_df
    if {"label", "pred"} <= set(samples_df.columns):
        return samples_df.assign(correct=samples_df["label"].astype(str) == samples_df["pred"].astype(str))
    raise DataError("per-sample shares lack a 'correct' column", fix="join the explanations with predictions.parquet")


def share_rows(share_table: pd.DataFrame, modalities: Sequence[str]) -> pd.DataFrame:
    """:func:`core.explain.class_share_table` in long form for plotting: one row per class and
    subset (``class``, ``subset``, ``n``, ``share_<modality>``...), classes in the table's order."""
    check_columns(share_table, ["class", *(f"n_{s}" for s in SUBSETS),
                                *(f"share_{m}_{s}" for m in modalities for s in SUBSETS)], "share table")
    parts = [pd.DataFrame({"class": share_table["class"].astype(str).to_numpy(), "subset": s,
                           "n": share_table[f"n_{s}"].astype(int).to_numpy(),
                           **{f"share_{m}": share_table[f"share_{m}_{s}"].to_numpy(dtype=float) for m in modalities}})
             for s in SUBSETS]
    rows = pd.concat(parts, ignore_index=True)
    order = {c: i for i, c in enumerate(dict.fromkeys(rows["class"]))}
    rows = rows.assign(_c=rows["class"].map(order), _s=rows["subset"].map(SUBSETS.index))
    return rows.sort_values(["_c", "_s"], kind="stable").drop(columns=["_c", "_s"]).reset_index(drop=True)


def make_modality_share_bar_figure(
    share_table: pd.DataFrame,
    modalities: Sequence[str],
    *,
    subsets: Sequence[str] = SUBSETS,
    title: str = "Mean modality share per class",
    horizontal: bool = False,
) -> go.Figure:
    """Stacked bars of mean modality share per class (and per subset when several).

    ``share_table`` is :func:`core.explain.class_share_table`'s output (one row per
    class; leave out its ``(all classes)`` row with ``overall=False`` unless it should
    be a bar too). With several subsets the class axis groups all / correct /
    incorrect under each class. ``horizontal`` puts classes on the y axis (first
    class on top), which keeps many classes readable, also in a half-width column.
    """
    if share_table is None or share_table.empty:
        return empty_figure(f"No explanations yet: run `{cli_command()} explain` for this run.", title)
    shares = share_columns(modalities)
    rows = share_rows(share_table, modalities)
    subsets = [s for s in subsets if s in SUBSETS]
    table = rows[rows["subset"].isin(subsets) & (rows["n"] > 0)]
    if table.empty:
        return empty_figure("No explained samples in the selected subsets.", title)
    colors = modality_colors(modalities)
    multi = len(subsets) > 1
    order = {s: i for i, s in enumerate(subsets)}
    class_pos = {c: i for i, c in enumerate(dict.fromkeys(rows["class"]))}
    table = table.assign(_c=table["class"].map(class_pos), _s=table["subset"].map(order)).sort_values(["_c", "_s"])
    cats: Any = [table["class"].astype(str).tolist(), [SUBSET_LABELS[s] for s in table["subset"]]] if multi else table["class"].astype(str).tolist()
    value_axis = "x" if horizontal else "y"
    fig = go.Figure()
    for m, col in zip(modalities, shares):
        bar: dict[str, Any] = dict(
            name=pretty_modality(m), marker_color=colors[m],
            customdata=np.stack([table["class"].astype(str), table["subset"].map(SUBSET_LABELS), table["n"]], axis=1),
            hovertemplate="Class: <b>%{customdata[0]}</b> (%{customdata[1]}, n=%{customdata[2]})<br>"
            + esc(pretty_modality(m)) + f" share: %{{{value_axis}:.1%}}<extra></extra>",
            text=[f"{v:.0%}" for v in table[col]], textposition="inside", insidetextanchor="middle",
            textfont={"size": BASE_FONT_SIZE - 3, "color": "white"},
        )
        if horizontal:
            fig.add_trace(go.Bar(y=cats, x=table[col], orientation="h", **bar))
        else:
            fig.add_trace(go.Bar(x=cats, y=table[col], **bar))
    class_title = "Class" + (" / predictions" if multi else "")
    if horizontal:
        style_figure(fig, title, "Mean modality share", class_title, legend_title="Modality",
                     height=max(320, 130 + 26 * len(table)))
        fig.update_xaxes(range=[0, 1.0], tickformat=".0%")
        fig.update_yaxes(autorange="reversed")
        fig.update_layout(legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0})
    else:
        style_figure(fig, title, class_title, "Mean modality share", legend_title="Modality")
        fig.update_yaxes(range=[0, 1.0], tickformat=".0%")
    fig.update_layout(barmode="stack", bargap=0.2)
    return fig


def make_share_distribution_figure(
    samples_df: pd.DataFrame,
    modalities: Sequence[str],
    *,
    class_col: str = "label",
    kind: str = "box",
    title: str = "Per-sample modality share by class",
) -> go.Figure:
    """Per-class box (or violin) plots of per-sample shares, one colour per modality."""
    if samples_df is None or samples_df.empty:
        return empty_figure(f"No explanations yet: run `{cli_command()} explain` for this run.", title)
    shares = share_columns(modalities)
    check_columns(samples_df, [class_col, *shares], "per-sample shares")
    colors = modality_colors(modalities)
    classes = sorted(samples_df[class_col].astype(str).unique())
    x = samples_df[class_col].astype(str)
    ids = samples_df["id"].astype(str) if "id" in samples_df.columns else None
    trace_cls = go.Violin if kind == "violin" else go.Box
    fig = go.Figure()
    for m, col in zip(modalities, shares):
        kwargs: dict[str, Any] = {
            "x": x, "y": samples_df[col], "name": pretty_modality(m), "customdata": ids,
            "marker_color": colors[m], "line_color": colors[m],
            "hovertemplate": "Class: %{x}<br>" + esc(pretty_modality(m)) + " share: %{y:.1%}"
            + ("<br>Sample: %{customdata}" if ids is not None else "") + "<extra></extra>",
        }
        if kind == "violin":
            kwargs.update(box_visible=True, meanline_visible=True, points=False, scalemode="width")
        else:
            kwargs.update(boxmean=True, boxpoints="outliers")
        fig.add_trace(trace_cls(**kwargs))
    style_figure(fig, title, "Class", "Per-sample modality share", legend_title="Modality")
    fig.update_layout(**({"violinmode": "group"} if kind == "violin" else {"boxmode": "group"}))
    angle = -90 if len(classes) > 20 else -35 if len(classes) > 6 else 0
    fig.update_xaxes(categoryorder="array", categoryarray=classes, tickangle=angle, **class_ticks(classes))
    width = 260 + len(classes) * max(44, 16 * len(modalities))
    if width > MAX_FIT_WIDTH:  # a box per modality per class stays wide enough to read
        fig.update_layout(width=width)
    fig.update_yaxes(range=[0, 1.0], tickformat=".0%")
    return fig


def make_share_correct_vs_incorrect_figure(
    samples_df: pd.DataFrame,
    modalities: Sequence[str],
    *,
    title: str = "Modality share: correct vs incorrect predictions",
) -> go.Figure:
    """Box plots of per-sample shares for correct and incorrect predictions, per modality."""
    if samples_df is None or samples_df.empty:
        return empty_figure(f"No explanations yet: run `{cli_command()} explain` for this run.", title)
    shares = share_columns(modalities)
    check_columns(samples_df, shares, "per-sample shares")
    df = _with_correct(samples_df)
    group = np.where(df["correct"].astype(bool), "Correct predictions", "Incorrect predictions")
    counts = pd.Series(group).value_counts()
    colors = modality_colors(modalities)
    fig = go.Figure()
    for m, col in zip(modalities, shares):
        fig.add_trace(
            go.Box(
                x=group, y=df[col], name=pretty_modality(m), marker_color=colors[m], line_color=colors[m],
                boxmean=True, boxpoints="outliers",
                hovertemplate="%{x}<br>" + esc(pretty_modality(m)) + " share: %{y:.1%}<extra></extra>",
            )
        )
    style_figure(fig, title, "Predictions", "Per-sample modality share", legend_title="Modality")
    cats = ["Correct predictions", "Incorrect predictions"]
    fig.update_xaxes(
        categoryorder="array", categoryarray=cats,
        tickvals=cats, ticktext=[f"{c} (n={int(counts.get(c, 0))})" for c in cats],
    )
    fig.update_layout(boxmode="group")
    fig.update_yaxes(range=[0, 1.0], tickformat=".0%")
    return fig
