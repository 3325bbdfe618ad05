"""Figures of the results of many runs (Compare fusion methods): accuracy bars and per-class recall.

The table behind them is :func:`core.results.results_table`; per-class recall comes
from each run's ``metrics.json`` (:func:`ui.tables.per_class_recall_table`).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.errors import cli_command
from ui.figures.style import (
    BASE_FONT_SIZE,
    MAX_FIT_WIDTH,
    class_pitch,
    class_ticks,
    empty_figure,
    esc,
    label_extent,
    short_label,
    style_figure,
)
from ui.labels import pretty


def make_results_bar_figure(
    results_df: pd.DataFrame,
    metrics: Sequence[str] = ("top1", "top3", "top5"),
    *,
    title: str = "Accuracy per run",
    horizontal: bool | None = None,
) -> go.Figure:
    """Grouped bars: one group per run (``run`` column), one bar per metric.

    ``horizontal`` (default: when there are more than 12 runs) puts runs on the
    y axis, first row on top, so long run names stay readable.
    """
    if results_df is None or len(results_df) == 0:
        return empty_figure(f"No runs yet: build the experiment with `{cli_command()} build`.", title)
    metrics = [m for m in metrics if m in results_df.columns]
    if not metrics:
        return empty_figure("None of the requested metrics are in the results table.", title)
    runs = results_df["run"].astype(str).tolist() if "run" in results_df.columns else [str(i) for i in results_df.index]
    horizontal = len(runs) > 12 if horizontal is None else bool(horizontal)
    hover_extra = [c for c in ("encoders", "fusion", "strategy", "modalities") if c in results_df.columns]
    extra = results_df[hover_extra].astype(str).to_numpy() if hover_extra else None
    shades = ["#1B4F72", "#2E86C1", "#85C1E9", "#D4E6F1", "#7F8C8D"]
    fig = go.Figure()
    for i, metric in enumerate(metrics):
        values = pd.to_numeric(results_df[metric], errors="coerce").to_numpy(dtype=float)
        name_axis = "y" if horizontal else "x"
        value_axis = "x" if horizontal else "y"
        hover = f"<b>%{{{name_axis}}}</b><br>" + esc(pretty(metric)) + f": %{{{value_axis}:.3f}}"
        for j, col in enumerate(hover_extra):
            hover += f"<br>{esc(pretty(col))}: %{{customdata[{j}]}}"
        bar = dict(
            name=pretty(metric), marker_color=shades[i % len(shades)],
            text=[f"{v:.3f}" if np.isfinite(v) else "" for v in values], textposition="outside",
            textfont={"size": BASE_FONT_SIZE - 3}, customdata=extra, hovertemplate=hover + "<extra></extra>",
        )
        if horizontal:
            fig.add_trace(go.Bar(y=runs, x=values, orientation="h", **bar))
        else:
            fig.add_trace(go.Bar(x=runs, y=values, **bar))
    unit = all(m in ("top1", "top3", "top5", "macro_f1") for m in metrics)
    if horizontal:
        style_figure(fig, title, "Score", "Run", legend_title="Metric",
                     height=max(360, 110 + len(runs) * (6 + 9 * len(metrics))))
        fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=runs)
        if unit:
            fig.update_xaxes(range=[0, 1.1], tickformat=".2f")
        fig.update_layout(legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0})
    else:
        style_figure(fig, title, "Run", "Score", legend_title="Metric")
        if unit:
            fig.update_yaxes(range=[0, 1.08], tickformat=".2f")
    fig.update_layout(barmode="group", bargap=0.25 if not horizontal else 0.2)
    return fig


def make_per_class_heatmap_figure(
    per_class_acc_df: pd.DataFrame, *, title: str = "Per-class accuracy (recall) across runs",
    classes: Sequence[Any] | None = None, transpose: bool | None = None,
) -> go.Figure:
    """Heatmap of a runs x classes table (index: run names, columns: class names, values in [0, 1]).

    ``classes`` shows those classes in that order (default: all). ``transpose``
    (default: more than 12 classes) puts one row per class and one column per
    run, so the class axis grows downwards with every class named; the figure
    gets an explicit width when its run columns do not fit :data:`MAX_FIT_WIDTH`.
    """
    if per_class_acc_df is None or per_class_acc_df.size == 0:
        return empty_figure("No per-class metrics yet: build at least one run.", title)
    table = per_class_acc_df
    if classes is not None:
        table = table[[c for c in table.columns if str(c) in {str(k) for k in classes}]]
        order = {str(c): i for i, c in enumerate(classes)}
        table = table[sorted(table.columns, key=lambda c: order[str(c)])]
        if table.shape[1] == 0:
            return empty_figure("None of the selected classes is in these runs: pick other classes.", title)
    runs = [str(r) for r in table.index]
    names = [str(c) for c in table.columns]
    transpose = len(names) > 12 if transpose is None else bool(transpose)
    z = table.to_numpy(dtype=float)
    if transpose:
        z, x, y = z.T, runs, names
        hover = "Class: <b>%{y}</b><br>Run: %{x}<br>Recall: %{z:.3f}<extra></extra>"
        row_pitch, col_pitch = class_pitch(len(names)), 56
    else:
        x, y = names, runs
        hover = "Run: <b>%{y}</b><br>Class: %{x}<br>Recall: %{z:.3f}<extra></extra>"
        row_pitch, col_pitch = (40 if len(runs) <= 12 else 24), class_pitch(len(names)) + 12
    show_text = z.size <= 600 and row_pitch >= 24
    fig = go.Figure(
        go.Heatmap(
            z=z, x=x, y=y, zmin=0, zmax=1, colorscale="Viridis",
            colorbar={"title": {"text": "Recall"}},
            text=np.vectorize(lambda v: "" if not np.isfinite(v) else f"{v:.2f}")(z) if show_text else None,
            texttemplate="%{text}" if show_text else None,
            textfont={"size": BASE_FONT_SIZE - 3},
            hovertemplate=hover, xgap=1, ygap=1,
        )
    )
    run_font = BASE_FONT_SIZE - 2
    run_ticks = {"tickmode": "array", "tickvals": runs, "ticktext": [esc(short_label(r, 40)) for r in runs],
                 "tickfont": {"size": run_font}}
    x_ticks, y_ticks = (run_ticks, class_ticks(names)) if transpose else (class_ticks(names), run_ticks)
    x_font, y_font = x_ticks["tickfont"]["size"], y_ticks["tickfont"]["size"]
    angle = 0 if len(x) <= 4 and not transpose else -45 if len(x) <= 20 else -90
    x_labels = (label_extent(x, x_font) if angle else x_font + 12) * (3 if angle == -45 else 4) // 4
    # one row per class: the run names go on top, where the view of a tall (scrolled) figure starts
    margin = {"l": label_extent(y, y_font) + 50, "r": 120, "t": 80 + (x_labels + 40 if transpose else 0),
              "b": 30 if transpose else x_labels + 50}
    height = max(320, margin["t"] + margin["b"] + row_pitch * len(y))
    width = margin["l"] + margin["r"] + col_pitch * len(x)
    style_figure(fig, title, "Run" if transpose else "Class", "Class" if transpose else "Run", height=height)
    fig.update_layout(margin=margin)
    if width > MAX_FIT_WIDTH:
        fig.update_layout(width=width)
    fig.update_yaxes(autorange="reversed", **y_ticks)
    fig.update_xaxes(tickangle=angle, side="top" if transpose else "bottom", **x_ticks)
    if transpose:
        fig.update_layout(title={"yref": "container", "y": 1.0, "yanchor": "top", "pad": {"t": 18}})
    return fig
