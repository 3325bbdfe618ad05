"""Figures of an experiment's dataset (Overview): samples per class and split."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from core.errors import cli_command
from ui.figures.style import (
    class_font_size,
    class_pitch,
    class_ticks,
    empty_figure,
    esc,
    label_extent,
    legend_under_title,
    style_figure,
)


SPLIT_COLORS: dict[str, str] = {"train": "#2E86C1", "val": "#F5B041", "test": "#1B9E77"}


def make_split_counts_figure(counts_df: pd.DataFrame, *, title: str = "Samples per class and split") -> go.Figure:
    """Stacked bars of samples per class (rows of ``counts_df``) and split (its columns).

    ``counts_df`` is :func:`ui.queries.split_counts` output: index = class names,
    columns ``train`` / ``val`` / ``test`` (and an ignored ``total``).
    """
    if counts_df is None or counts_df.empty:
        return empty_figure(f"No dataset yet: build the experiment with `{cli_command()} build`.", title)
    splits = [c for c in counts_df.columns if c != "total"]
    classes = [str(c) for c in counts_df.index]
    horizontal = len(classes) > 20  # one row per class, every class named, the figure grows downwards
    fig = go.Figure()
    for split in splits:
        label = esc(str(split).capitalize())
        if horizontal:
            fig.add_trace(go.Bar(
                y=classes, x=counts_df[split], orientation="h", name=str(split).capitalize(),
                marker_color=SPLIT_COLORS.get(str(split), "#7F8C8D"),
                hovertemplate="Class: <b>%{y}</b><br>" + label + ": %{x}<extra></extra>",
            ))
        else:
            fig.add_trace(go.Bar(
                x=classes, y=counts_df[split], name=str(split).capitalize(),
                marker_color=SPLIT_COLORS.get(str(split), "#7F8C8D"),
                hovertemplate="Class: <b>%{x}</b><br>" + label + ": %{y}<extra></extra>",
            ))
    if horizontal:
        rows = class_pitch(len(classes)) * len(classes)
        margin = {"t": 70 + 36 + 56, "b": 20, "l": label_extent(classes, class_font_size(len(classes))) + 50, "r": 30}
        style_figure(fig, title, "Samples", "Class", height=margin["t"] + margin["b"] + rows)
        fig.update_layout(margin=margin)
        legend_under_title(fig, margin["t"] + margin["b"] + rows)
        fig.update_yaxes(autorange="reversed", **class_ticks(classes))
        fig.update_xaxes(side="top")  # a tall figure scrolls: the count axis is where the view starts
    else:
        style_figure(fig, title, "Class", "Samples", legend_title="Split", height=420)
        fig.update_xaxes(tickangle=-45 if len(classes) > 6 else 0, **class_ticks(classes))
    fig.update_layout(barmode="stack", bargap=0.15)
    return fig
