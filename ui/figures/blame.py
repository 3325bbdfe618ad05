"""Figures of modality blame for errors (``core.explain.blame_table``, ``blame.parquet``; docs/EXPLAIN.md).

- :func:`make_blame_class_figure`: per true class (the ones with the most errors when there are many),
  the share of its errors each modality pushed toward the wrong class, one colour per modality, the
  counts on the bars;
- :func:`make_sample_blame_figure`: one prediction's signed push of each modality toward the rival
  class (the prediction when wrong, the runner-up when right) vs the true class.

Each builder takes plain data and says what is missing instead of failing.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.explain import ALL_CLASSES
from ui.figures.style import class_pitch, class_ticks, empty_figure, esc, modality_colors, style_figure
from ui.labels import pretty_modality

__all__ = ["BLAME_TOP_CLASSES", "blame_classes", "make_blame_class_figure", "make_sample_blame_figure"]

#: Classes shown by :func:`make_blame_class_figure` at most (those with the most errors).
BLAME_TOP_CLASSES = 12


def blame_classes(table: pd.DataFrame, top: int = BLAME_TOP_CLASSES) -> list[str]:
    """The classes with errors, most errors first (ties by name), at most ``top``."""
    rows = table[(table["class"].astype(str) != ALL_CLASSES) & (table["n_errors"] > 0)]
    rows = rows.sort_values(["n_errors", "class"], ascending=[False, True], kind="stable")
    return rows["class"].astype(str).head(int(top)).tolist()


def make_blame_class_figure(table: pd.DataFrame, modalities: Sequence[str], *, top: int = BLAME_TOP_CLASSES,
                            title: str | None = None) -> go.Figure:
    """Per true class (overall first, then the ``top`` classes with the most errors), the share of the
    class's errors in which each modality pushed toward the wrong class (``misled_share_<m>``); each bar
    says ``k/n`` and its hover the culprit count and the mean push with its interval."""
    classes = blame_classes(table, top) if len(table) else []
    n_classes = int(((table["class"].astype(str) != ALL_CLASSES) & (table["n_errors"] > 0)).sum()) if len(table) else 0
    title = title or ("Which modality misled the model<br><sup>share of each class's errors in which it pushed "
                      "toward the wrong class" + (f"; {len(classes)} of {n_classes} classes with errors, most errors "
                                                  "first" if n_classes > len(classes) else "") + "</sup>")
    overall = table[table["class"].astype(str) == ALL_CLASSES] if len(table) else table
    if not classes or overall.empty:
        return empty_figure("No errors: no modality misled the model.", title)
    rows = pd.concat([overall, table.set_index(table["class"].astype(str)).loc[classes].reset_index(drop=True)],
                     ignore_index=True)
    labels = [f"{c} (n = {int(n)})" for c, n in zip(rows["class"].astype(str), rows["n_errors"])]
    colors = modality_colors(list(modalities))
    fig = go.Figure()
    for m in modalities:
        k, share = rows[f"misled_{m}"].astype(int), rows[f"misled_share_{m}"].astype(float)
        mean, low, high = (rows[f"blame_{m}_errors{x}"].astype(float) for x in ("", "_low", "_high"))
        interval = [f"{a:+.2f} [{b:+.2f}, {c:+.2f}]" if np.isfinite(b) else (f"{a:+.2f}" if np.isfinite(a) else "-")
                    for a, b, c in zip(mean, low, high)]
        fig.add_trace(go.Bar(
            x=labels, y=share, name=esc(pretty_modality(m)), marker_color=colors[m],
            text=[f"{a}/{int(n)}" for a, n in zip(k, rows["n_errors"])], textposition="outside", textangle=-90,
            textfont={"size": 12}, cliponaxis=False,
            customdata=np.stack([k, rows["n_errors"].astype(int), rows[f"culprit_{m}"].astype(int),
                                 np.asarray(interval, dtype=object)], axis=1),
            hovertemplate=(f"{esc(pretty_modality(m))}<br>%{{x}}<br>misled the model in %{{customdata[0]}} of "
                           "%{customdata[1]} errors (%{y:.0%})<br>culprit in %{customdata[2]}<br>mean push toward "
                           "the wrong class %{customdata[3]} logit<extra></extra>")))
    height = 460
    style_figure(fig, title, "True class (errors)", "Share of the errors misled", height=height,
                 legend_title="Modality")
    fig.update_layout(barmode="group", bargap=0.25, uniformtext={"minsize": 11, "mode": "show"})
    fig.update_xaxes(**class_ticks(labels))
    fig.update_yaxes(range=[0, 1.22], tickvals=[0, 0.2, 0.4, 0.6, 0.8, 1.0], tickformat=".0%")
    width = 140 + len(labels) * max(class_pitch(len(labels)), 22 * len(modalities))
    if width > 1000:
        fig.update_layout(width=width)
    return fig


def make_sample_blame_figure(row: Mapping[str, Any], modalities: Sequence[str], *,
                             title: str | None = None) -> go.Figure:
    """One prediction's blame (a ``blame.parquet`` row): each modality's exact Shapley value of the logit
    margin ``rival - true``, positive (right) = toward the rival class, one colour per modality."""
    label, against = str(row.get("label")), str(row.get("against"))
    wrong = not bool(row.get("correct"))
    title = title or (f"Push toward the {'predicted' if wrong else 'runner-up'} <b>{esc(against)}</b> vs the true "
                      f"<b>{esc(label)}</b>")
    values = [row.get(f"blame_{m}") for m in modalities]
    if not any(v is not None and np.isfinite(float(v)) for v in values):
        return empty_figure("No blame for this sample.", title)
    colors = modality_colors(list(modalities))
    names = [pretty_modality(m) for m in modalities]
    phi = [float(v) if v is not None else float("nan") for v in values]
    fig = go.Figure(go.Bar(
        x=phi, y=[esc(n) for n in names], orientation="h", marker_color=[colors[m] for m in modalities],
        text=[f"{v:+.2f}" for v in phi], textposition="outside",
        hovertemplate="%{y}: %{x:+.3f} logit<extra></extra>"))
    style_figure(fig, title, f"Shapley value of the logit margin (+ toward {esc(against)}, - toward "
                                  f"{esc(label)})", "Modality", height=140 + 44 * len(modalities))
    fig.add_vline(x=0, line={"color": "#555", "width": 1})
    span = max(1e-6, max(abs(v) for v in phi if np.isfinite(v)))
    fig.update_xaxes(range=[-1.3 * span, 1.3 * span], zeroline=False)
    fig.update_layout(showlegend=False)
    return fig
