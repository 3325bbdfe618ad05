"""Figures of where a run is wrong (Misclassifications): the confusion matrix, the most
confused pairs, per-class precision and recall. Every class is named at any class count."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from ui.figures.style import (
    BASE_FONT_SIZE,
    MAX_FIT_WIDTH,
    class_font_size,
    class_pitch,
    class_ticks,
    empty_figure,
    esc,
    label_extent,
    legend_under_title,
    short_label,
    style_figure,
)
from ui.tables import confused_pairs_table, confusion_array


#: The last column of a confusion matrix of some classes: predictions into the classes left out.
OTHER_CLASSES = "(other classes)"


def make_confusion_figure(
    labels: Sequence[Any], matrix: Any, normalize: bool = False, *, title: str | None = None,
    hide_diagonal: bool = False, classes: Sequence[Any] | None = None,
) -> go.Figure:
    """Confusion matrix heatmap (rows: true class, columns: predicted class).

    ``normalize`` divides each row by its total (so the diagonal is recall).
    ``hide_diagonal`` leaves the correct predictions blank, so the colour scale
    spans the errors only (with many classes the diagonal otherwise hides them).
    ``classes`` shows only those classes (rows and columns, in the run's class
    order); predictions of their samples into the classes left out are summed in
    a last column, :data:`OTHER_CLASSES`, so every row still accounts for all its
    samples (and a row-normalised share stays a share of the whole class).
    Each cell's ``customdata`` is ``[true, predicted, count, share]``: a click
    on a cell gives the (true, predicted) pair.

    Every class is named at any size: cells are :func:`class_pitch` pixels, so
    the figure grows with the class count (it gets an explicit ``width`` when
    it is wider than :data:`MAX_FIT_WIDTH`, to be scrolled); with more than 30
    rows the predicted classes are labelled on top, where the view starts.
    """
    title = title or ("Confusion matrix (row-normalised)" if normalize else "Confusion matrix (counts)")
    if hide_diagonal:
        title += ", errors only"
    all_names, all_counts = confusion_array(labels, matrix)
    if len(all_names) == 0:
        return empty_figure("No confusion matrix: the run has no test predictions.", title)
    keep = list(range(len(all_names)))
    if classes is not None:
        wanted = {str(c) for c in classes}
        keep = [i for i, name in enumerate(all_names) if name in wanted]
        if not keep:
            return empty_figure("None of the selected classes is in this run: pick other classes.", title)
    names = [all_names[i] for i in keep]
    counts = all_counts[np.ix_(keep, keep)]
    totals = all_counts[keep].sum(axis=1, keepdims=True)
    outside = totals[:, 0] - counts.sum(axis=1)
    columns = list(names)
    if len(keep) < len(all_names) and (outside > 0).any():
        counts = np.hstack([counts, outside[:, None]])
        columns.append(OTHER_CLASSES)
    share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    z = (share if normalize else counts).copy()
    n_rows, n_cols = counts.shape
    if hide_diagonal:  # correct predictions and empty cells stay blank: only the errors are coloured
        diagonal = np.arange(n_rows)
        z[diagonal, diagonal] = np.nan
        z[counts == 0] = np.nan
    custom = np.empty((n_rows, n_cols, 4), dtype=object)
    for i in range(n_rows):
        for j in range(n_cols):
            custom[i, j] = [names[i], columns[j], int(counts[i, j]), float(share[i, j])]
    n = max(n_rows, n_cols)
    show_text = n <= 25
    text = np.vectorize(lambda v: "" if not np.isfinite(v) else f"{v:.2f}" if normalize else f"{int(v)}")(z) \
        if show_text else None
    finite = z[np.isfinite(z)]
    zmax = (1.0 if not hide_diagonal else max(0.05, float(finite.max()) if finite.size else 1.0)) if normalize \
        else max(1.0, float(finite.max()) if finite.size else 1.0)
    hover = ("True: <b>%{customdata[0]}</b><br>Predicted: <b>%{customdata[1]}</b>"
             "<br>Count: %{customdata[2]}<br>Share of true class: %{customdata[3]:.1%}<extra></extra>")
    fig = go.Figure(
        go.Heatmap(
            z=z, x=columns, y=names, customdata=custom, colorscale="Blues" if not hide_diagonal else "Reds",
            zmin=0, zmax=zmax, hoverongaps=False,
            colorbar={"title": {"text": "Share of true class" if normalize else "Samples"}},
            text=text, texttemplate="%{text}" if show_text else None,
            textfont={"size": max(10, BASE_FONT_SIZE - 2 - n // 8)},
            hovertemplate=hover, xgap=1, ygap=1, hoverinfo="skip",
        )
    )
    # Heatmap cells cannot be selected by a click; an invisible marker on each cell can, and it
    # carries the hover label, so a click on a cell selects (true, predicted) like a point.
    pitch = class_pitch(n)
    rows, cols = np.divmod(np.arange(n_rows * n_cols), n_cols)
    fig.add_trace(go.Scatter(
        x=[columns[j] for j in cols], y=[names[i] for i in rows], mode="markers", showlegend=False,
        marker={"symbol": "square", "size": max(6, min(40, pitch - 2)), "color": "rgba(0,0,0,0)"},
        customdata=custom.reshape(n_rows * n_cols, 4), name="cells", hovertemplate=hover,
        selected={"marker": {"opacity": 1}}, unselected={"marker": {"opacity": 1}},
    ))
    font = class_font_size(n)
    angle = 0 if n <= 5 else -45 if n <= 20 else -90
    x_labels = label_extent(columns, font) if angle else font + 12
    if angle == -45:
        x_labels = int(x_labels * 0.75)
    top = n_rows > 30  # the view starts at the top of a tall matrix: name the columns there
    margin = {"l": label_extent(names, font) + 50, "r": 130,
              "t": 80 + (x_labels + 40 if top else 0), "b": 30 + (0 if top else x_labels + 40)}
    height = max(420, margin["t"] + margin["b"] + n_rows * pitch)
    width = margin["l"] + margin["r"] + n_cols * pitch
    style_figure(fig, title, "Predicted class", "True class", height=height)
    fig.update_layout(margin=margin, title={"yref": "container", "y": 1.0, "yanchor": "top", "pad": {"t": 18}})
    if width > MAX_FIT_WIDTH:
        fig.update_layout(width=width)
    # explicit ranges: the invisible click markers would otherwise pad the axes
    fig.update_yaxes(range=[n_rows - 0.5, -0.5], **class_ticks(names))
    fig.update_xaxes(range=[-0.5, n_cols - 0.5], tickangle=angle, side="top" if top else "bottom",
                     **class_ticks(columns))
    if n <= 25:  # square cells; a large matrix fills its (explicitly sized) figure instead
        fig.update_yaxes(scaleanchor="x", constrain="domain")
        fig.update_xaxes(constrain="domain")
    fig.update_layout(clickmode="event+select")
    return fig


def make_confused_pairs_figure(labels: Sequence[Any], matrix: Any, top: int = 10, *, title: str = "Most confused class pairs") -> go.Figure:
    """Horizontal bars of the most frequent confusions, largest on top; customdata = [true, pred]."""
    table = confused_pairs_table(labels, matrix, top)
    if table.empty:
        return empty_figure("No misclassifications: every test sample is predicted correctly.", title)
    table = table.iloc[::-1]
    ylabels = [f"{t} → {p}" for t, p in zip(table["true"], table["pred"])]
    fig = go.Figure(
        go.Bar(
            x=table["count"], y=ylabels, orientation="h", marker_color="#C0392B",
            customdata=table[["true", "pred", "share"]].to_numpy(dtype=object),
            text=[f"{c} ({s:.0%})" for c, s in zip(table["count"], table["share"])], textposition="auto",
            hovertemplate="True: <b>%{customdata[0]}</b><br>Predicted: <b>%{customdata[1]}</b>"
            "<br>Count: %{x}<br>Share of true class: %{customdata[2]:.1%}<extra></extra>",
        )
    )
    style_figure(fig, title, "Misclassified samples", "True class → predicted class", height=max(320, 80 + 34 * len(table)))
    fig.update_yaxes(tickmode="array", tickvals=ylabels, ticktext=[
        esc(f"{short_label(t, 22)} → {short_label(p, 22)}") for t, p in zip(table["true"], table["pred"])])
    fig.update_xaxes(dtick=max(1, int(math.ceil(float(table["count"].max()) / 6))))  # whole samples
    return fig


def make_precision_recall_figure(
    per_class_dict: Mapping[str, Mapping[str, Any]], *, title: str = "Per-class precision and recall",
    classes: Sequence[Any] | None = None, horizontal: bool | None = None,
) -> go.Figure:
    """Grouped bars of precision, recall (and F1) per class, from metrics.json ``per_class``.

    ``classes`` shows those classes in that order (default: all, in the run's
    order). ``horizontal`` (default: more than 12 classes) puts one row per class,
    first on top, every class named; the figure grows with the class count.
    """
    if not per_class_dict:
        return empty_figure("No per-class metrics in this run.", title)
    known = {str(c): v for c, v in per_class_dict.items()}
    names = [str(c) for c in (classes if classes is not None else per_class_dict) if str(c) in known]
    if not names:
        return empty_figure("None of the selected classes is in this run: pick other classes.", title)
    rows = [known[c] for c in names]
    support = [r.get("support", "") for r in rows]
    horizontal = len(names) > 12 if horizontal is None else bool(horizontal)
    fig = go.Figure()
    for key, color in (("precision", "#2E86C1"), ("recall", "#E67E22"), ("f1", "#7F8C8D")):
        values = [float(r.get(key, float("nan"))) for r in rows]
        if all(not np.isfinite(v) for v in values):
            continue
        label = key.upper() if key == "f1" else key.capitalize()
        name_axis, value_axis = ("y", "x") if horizontal else ("x", "y")
        bar = dict(name=label, marker_color=color, customdata=np.stack([names, support], axis=1),
                   hovertemplate=f"Class: <b>%{{customdata[0]}}</b><br>{label}: %{{{value_axis}:.3f}}"
                   "<br>Support: %{customdata[1]}<extra></extra>")
        if horizontal:
            fig.add_trace(go.Bar(y=names, x=values, orientation="h", **bar))
        else:
            fig.add_trace(go.Bar(x=names, y=values, **bar))
    n = len(names)
    if horizontal:
        group = max(class_pitch(n), 9 * len(fig.data) + 6)
        top = n > 30  # a tall figure scrolls: the score axis is where the view starts
        margin = {"t": 70 + 36 + (56 if top else 0), "b": 20 if top else 70,
                  "l": label_extent(names, class_font_size(n)) + 50, "r": 30}
        height = margin["t"] + margin["b"] + group * n
        style_figure(fig, title, "Score", "Class", height=height)
        fig.update_layout(margin=margin)
        legend_under_title(fig, height)
        fig.update_xaxes(range=[0, 1.05], side="top" if top else "bottom")
        fig.update_yaxes(autorange="reversed", **class_ticks(names))
    else:
        style_figure(fig, title, "Class", "Score", legend_title="Metric")
        fig.update_yaxes(range=[0, 1.05])
        fig.update_xaxes(tickangle=-35 if n > 6 else 0, **class_ticks(names))
    fig.update_layout(barmode="group")
    return fig
