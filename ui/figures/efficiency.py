"""Figures of the Efficiency page: accuracy against GFLOPs with the Pareto front, an adaptive run's
selection rates per modality and class, and one item's decision timeline (segments x modalities).

The tables behind them are :func:`core.results.results_table` (with
:func:`core.adaptive.pareto_front`), :func:`core.adaptive.class_selection_rates` and
:func:`core.adaptive.sample_decisions`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.errors import cli_command
from ui.figures.style import (
    CLASS_COLORS,
    class_pitch,
    class_ticks,
    empty_figure,
    esc,
    esc_values,
    legend_under_title,
    modality_colors,
    style_figure,
)

#: colour of a skipped segment in the decision timeline
SKIPPED_COLOR = "#E5E7EB"
#: marker of each strategy in the accuracy-vs-GFLOPs scatter
STRATEGY_SYMBOLS = {"unimodal": "circle", "early": "square", "intermediate": "diamond", "late": "triangle-up",
                    "classical": "cross", "adaptive": "star"}


def make_pareto_figure(results: pd.DataFrame, front: pd.Series | None = None, *,
                       highlight: Sequence[str] = (), title: str = "Accuracy against compute") -> go.Figure:
    """Top-1 against GFLOPs per item (log axis) of every run, one marker shape per strategy, the Pareto
    front as a line; run names on hover. ``front``: a bool per row (:func:`core.adaptive.pareto_front`);
    ``highlight``: runs drawn larger (the selected run)."""
    if results is None or results.empty:
        return empty_figure(f"No runs yet: build the experiment with `{cli_command()} build`.", title)
    frame = results[np.isfinite(pd.to_numeric(results["gflops"], errors="coerce").astype(float))
                    & (pd.to_numeric(results["gflops"], errors="coerce") > 0)]
    if frame.empty:
        return empty_figure(f"No run has a GFLOPs count: `{cli_command()} compute <experiment>` adds it.", title)
    fig = go.Figure()
    for i, (strategy, group) in enumerate(frame.groupby("strategy", sort=False)):
        sizes = [16 if r in highlight else 11 for r in group["run"]]
        fig.add_trace(go.Scatter(
            x=group["gflops"], y=group["top1"], mode="markers", name=str(strategy),
            marker={"symbol": STRATEGY_SYMBOLS.get(str(strategy), "circle"), "size": sizes,
                    "color": CLASS_COLORS[i % len(CLASS_COLORS)], "line": {"width": 1, "color": "#333"}},
            customdata=np.stack([esc_values(group["run"]), esc_values(group.get("modalities", group["run"]))], 1),
            hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]}<br>top-1 %{y:.3f}<br>%{x:.4g} GFLOPs"
                          "<extra></extra>"))
    if front is not None:
        on = frame[front.reindex(frame.index).fillna(False).astype(bool)].sort_values("gflops")
        if len(on):
            fig.add_trace(go.Scatter(x=on["gflops"], y=on["top1"], mode="lines", name="Pareto front",
                                     line={"shape": "hv", "dash": "dot", "color": "#404040"}, hoverinfo="skip"))
    style_figure(fig, title, "GFLOPs per item (log scale)", "Top-1 accuracy", height=460, legend_title="Strategy")
    fig.update_xaxes(type="log")
    return fig


def make_selection_rate_figure(rates: pd.DataFrame, *, title: str = "How often each modality runs") -> go.Figure:
    """Grouped bars: per class (rows of :func:`core.adaptive.class_selection_rates`, ``all`` last), the fraction
    of segments in which each policy modality runs, in the modality's colour."""
    if rates is None or rates.empty:
        return empty_figure("This run has no stored decisions (only adaptive runs have them).", title)
    mods = [c for c in rates.columns if c != "n"]
    colors = modality_colors(mods)
    classes = [str(c) for c in rates.index]
    fig = go.Figure()
    for m in mods:
        fig.add_trace(go.Bar(
            x=classes, y=rates[m].to_numpy(dtype=float), name=m, marker_color=colors[m],
            customdata=rates["n"].to_numpy() if "n" in rates.columns else None,
            hovertemplate=f"<b>%{{x}}</b><br>{esc(m)}: %{{y:.1%}} of segments<br>%{{customdata}} items<extra></extra>"))
    height = 420
    style_figure(fig, title, "True class", "Selection rate (share of segments)", height=height, legend_title="Modality")
    fig.update_layout(barmode="group", bargap=0.25)
    fig.update_xaxes(**class_ticks(classes))
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%")
    legend_under_title(fig, height)
    width = max(600, class_pitch(len(classes)) * len(classes) * max(1, len(mods)) // 2)
    if width > 1000:
        fig.update_layout(width=width)
    return fig


def make_decision_timeline_figure(decisions: pd.DataFrame, *, always_on: Sequence[str] = (),
                                  spans: Sequence[str] | None = None,
                                  title: str = "Decisions per segment") -> go.Figure:
    """One row per modality, one cell per segment: the modality's colour where it ran, grey where the policy
    skipped it; always-on modalities run in every segment. ``decisions``: a (modality x segment) table of
    bools (:func:`core.adaptive.sample_decisions`); ``spans``: a label per segment (its frames or seconds)."""
    if decisions is None or decisions.empty:
        return empty_figure("No decisions stored for this item (only adaptive runs have them).", title)
    segments = [int(s) for s in decisions.columns]
    rows = [*[str(m) for m in decisions.index], *[str(m) for m in always_on]]
    colors = modality_colors(rows)
    labels = list(spans) if spans is not None and len(spans) == len(segments) else [f"segment {s}" for s in segments]
    fig = go.Figure()
    for m in rows:
        used = [True] * len(segments) if m in always_on else [bool(v) for v in decisions.loc[m].to_numpy()]
        state = ["always on" if m in always_on else "used" if u else "skipped" for u in used]
        fig.add_trace(go.Bar(
            y=[m] * len(segments), x=[1] * len(segments), base=segments, orientation="h", name=m, showlegend=False,
            marker={"color": [colors[m] if u else SKIPPED_COLOR for u in used], "line": {"color": "white", "width": 2}},
            text=["" if u else "skipped" for u in used], textposition="inside", insidetextanchor="middle",
            customdata=np.stack([esc_values(labels), np.asarray(state, dtype=object)], 1),
            hovertemplate=f"<b>{esc(m)}</b><br>%{{customdata[0]}}: %{{customdata[1]}}<extra></extra>"))
    height = 110 + 48 * len(rows)
    style_figure(fig, title, "Segment (time)", "Modality", height=height)
    fig.update_layout(barmode="overlay", bargap=0.15)
    fig.update_xaxes(tickmode="array", tickvals=[s + 0.5 for s in segments], ticktext=[esc(t) for t in labels],
                     range=[min(segments), max(segments) + 1])
    fig.update_yaxes(autorange="reversed")
    return fig
