"""Pure Plotly figure builders and table helpers for the dashboard.

Every builder takes plain data in the formats of ``docs/FORMATS.md`` (pandas
frames, dicts, arrays) and returns a ``go.Figure``; nothing here reads files or
imports streamlit, so pages stay thin and every figure is testable.

Demo-ready conventions, shared by all builders:
- every axis is titled, classes are shown by name, base font ``BASE_FONT_SIZE``;
- a modality has the same colour in every figure (:func:`modality_colors`);
- contributions use one diverging scale, red positive / blue negative,
  symmetric around 0 (:data:`CONTRIBUTION_COLORSCALE`);
- an empty input gives a figure that says what is missing instead of failing.

Per-sample modality shares (``samples_df``) are expected as one row per
explained sample with ``id``, the true class (``label``), ``correct`` (bool; or
``pred`` to derive it) and one ``share_<modality>`` column per modality.
"""
from __future__ import annotations

import html
import math
import zlib
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.errors import cli_command

__all__ = [
    "BASE_FONT_SIZE",
    "MODALITY_COLORS",
    "FALLBACK_COLORS",
    "CLASS_COLORS",
    "CORRECTNESS_COLORS",
    "CONTRIBUTION_COLORSCALE",
    "METRIC_LABELS",
    "modality_color",
    "modality_colors",
    "class_colors",
    "class_pitch",
    "class_font_size",
    "class_ticks",
    "short_label",
    "top_error_classes",
    "lowest_classes",
    "make_results_bar_figure",
    "make_per_class_heatmap_figure",
    "make_confusion_figure",
    "make_confused_pairs_figure",
    "make_precision_recall_figure",
    "make_modality_share_bar_figure",
    "make_share_distribution_figure",
    "make_share_correct_vs_incorrect_figure",
    "make_embedding_figure",
    "make_topk_figure",
    "make_split_counts_figure",
    "make_sample_share_figure",
    "make_image_overlay_figure",
    "make_frames_overlay_figure",
    "token_html",
    "per_class_share_table",
    "pivot_share_table",
    "per_class_recall_table",
    "confused_pairs_table",
    "best_rows",
    "trivial_topk",
    "INDICATIVE",
    "results_latex",
]

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
    "features": "#56B4E9",
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
METRIC_LABELS: dict[str, str] = {
    "top1": "Top-1 accuracy",
    "top3": "Top-3 accuracy",
    "top5": "Top-5 accuracy",
    "macro_f1": "Macro-F1",
    "n_params": "Parameters",
    "inference_ms": "Inference (ms/sample)",
    "train_seconds": "Training time (s)",
}
# Prediction-table columns as people read them (hover labels, legend titles).
COLUMN_LABELS: dict[str, str] = {"label": "True class", "pred": "Predicted class", "dominant": "Dominant modality",
                                 "id": "Sample"}
SUBSET_LABELS: dict[str, str] = {"all": "All", "correct": "Correct", "incorrect": "Incorrect"}
SUBSETS: tuple[str, ...] = ("all", "correct", "incorrect")
# Metrics where lower is better (for "best per column").
LOWER_IS_BETTER: frozenset[str] = frozenset({"n_params", "inference_ms", "train_seconds", "inference_ms_per_sample"})


# --------------------------------------------------------------------------- colours & style


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


def _pretty(name: str) -> str:
    """Readable name of a column or modality: ``share_rgb`` -> ``RGB share``."""
    name = str(name)
    if name in METRIC_LABELS:
        return METRIC_LABELS[name]
    if name in COLUMN_LABELS:
        return COLUMN_LABELS[name]
    if name.startswith("share_"):
        return f"{_pretty_modality(name[6:])} share"
    return name.replace("_", " ").capitalize()


def _pretty_modality(name: str) -> str:
    upper = {"rgb": "RGB", "rgbd": "RGB-D"}
    return upper.get(str(name).lower(), str(name).replace("_", " ").capitalize())


def _style(
    fig: go.Figure,
    title: str | None = None,
    xtitle: str | None = None,
    ytitle: str | None = None,
    *,
    height: int | None = None,
    legend_title: str | None = None,
) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        font={"size": BASE_FONT_SIZE, "family": FONT_FAMILY},
        title={"text": title or "", "font": {"size": TITLE_FONT_SIZE}, "x": 0.0, "xanchor": "left"},
        margin={"l": 70, "r": 30, "t": 70 if title else 30, "b": 60},
        hoverlabel={"font": {"size": BASE_FONT_SIZE}},
        legend={"font": {"size": BASE_FONT_SIZE - 1}},
    )
    if legend_title is not None:
        fig.update_layout(legend_title_text=legend_title)
    if xtitle is not None:
        fig.update_xaxes(title={"text": xtitle, "font": {"size": BASE_FONT_SIZE + 1}}, automargin=True)
    if ytitle is not None:
        fig.update_yaxes(title={"text": ytitle, "font": {"size": BASE_FONT_SIZE + 1}}, automargin=True)
    if height is not None:
        fig.update_layout(height=height)
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
    """Tick label size for ``n`` classes: never below :data:`MIN_CLASS_FONT_SIZE`."""
    return BASE_FONT_SIZE - 1 if n <= 20 else 13 if n <= 40 else MIN_CLASS_FONT_SIZE


def short_label(name: Any, limit: int = CLASS_LABEL_CHARS) -> str:
    """``name`` as an axis label: at most ``limit`` characters, shortened with an ellipsis."""
    text = str(name)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def class_ticks(names: Sequence[Any]) -> dict[str, Any]:
    """Axis settings that name every class: explicit tick values, shortened texts, a readable size."""
    names = [str(n) for n in names]
    return {"tickmode": "array", "tickvals": names, "ticktext": [_esc(short_label(n)) for n in names],
            "tickfont": {"size": class_font_size(len(names))}}


def _legend_under_title(fig: go.Figure, height: int) -> None:
    """A one-line legend between the title and the plot, in pixels from the figure's top (a tall
    figure that scrolls keeps title, legend and its top axis together where the view starts)."""
    fig.update_layout(
        title={"yref": "container", "y": 1.0, "yanchor": "top", "pad": {"t": 18}},
        legend={"orientation": "h", "title": {"text": ""}, "xref": "container", "x": 0.01, "xanchor": "left",
                "yref": "container", "y": 1.0 - 58 / max(height, 1), "yanchor": "top"})


def _label_extent(names: Sequence[Any], font_size: int) -> int:
    """Pixels the longest (shortened) label takes along its own direction."""
    longest = max((len(short_label(n)) for n in names), default=4)
    return int(0.52 * font_size * longest) + 14


def _empty_figure(message: str, title: str | None = None) -> go.Figure:
    """A blank figure that says what is missing and what to do."""
    fig = go.Figure()
    fig.add_annotation(
        text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
        font={"size": BASE_FONT_SIZE + 1, "color": "#555"},
    )
    _style(fig, title)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _esc_values(values: Any) -> np.ndarray:
    """HTML-escaped strings of an array, escaping each distinct value once."""
    strings = pd.Series(np.asarray(values, dtype=object)).astype(str)
    mapping = {u: html.escape(u, quote=True) for u in pd.unique(strings)}
    return strings.map(mapping).to_numpy(dtype=object)


def _fmt(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "n/a"
        if value != 0 and (abs(value) >= 1000 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.3f}"
    return _esc(value)


def _share_columns(modalities: Sequence[str]) -> list[str]:
    return [f"share_{m}" for m in modalities]


def _check_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    from core.errors import DataError

    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{what} lacks column(s) {missing}", fix=f"provide {what} with columns {list(columns)}")


# --------------------------------------------------------------------------- results


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
        return _empty_figure(f"No runs yet: build the experiment with `{cli_command()} build`.", title)
    metrics = [m for m in metrics if m in results_df.columns]
    if not metrics:
        return _empty_figure("None of the requested metrics are in the results table.", title)
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
        hover = f"<b>%{{{name_axis}}}</b><br>" + _esc(_pretty(metric)) + f": %{{{value_axis}:.3f}}"
        for j, col in enumerate(hover_extra):
            hover += f"<br>{_esc(_pretty(col))}: %{{customdata[{j}]}}"
        bar = dict(
            name=_pretty(metric), marker_color=shades[i % len(shades)],
            text=[f"{v:.3f}" if np.isfinite(v) else "" for v in values], textposition="outside",
            textfont={"size": BASE_FONT_SIZE - 3}, customdata=extra, hovertemplate=hover + "<extra></extra>",
        )
        if horizontal:
            fig.add_trace(go.Bar(y=runs, x=values, orientation="h", **bar))
        else:
            fig.add_trace(go.Bar(x=runs, y=values, **bar))
    unit = all(m in ("top1", "top3", "top5", "macro_f1") for m in metrics)
    if horizontal:
        _style(fig, title, "Score", "Run", legend_title="Metric",
               height=max(360, 110 + len(runs) * (6 + 9 * len(metrics))))
        fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=runs)
        if unit:
            fig.update_xaxes(range=[0, 1.1], tickformat=".2f")
        fig.update_layout(legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0})
    else:
        _style(fig, title, "Run", "Score", legend_title="Metric")
        if unit:
            fig.update_yaxes(range=[0, 1.08], tickformat=".2f")
    fig.update_layout(barmode="group", bargap=0.25 if not horizontal else 0.2)
    return fig


def per_class_recall_table(metrics_by_run: Mapping[str, Mapping[str, Any]], value: str = "recall") -> pd.DataFrame:
    """Runs x classes table of ``value`` (recall = per-class accuracy) from each run's metrics.json."""
    rows: dict[str, dict[str, float]] = {}
    classes: list[str] = []
    for run, metrics in metrics_by_run.items():
        per_class = (metrics or {}).get("per_class", {}) or {}
        rows[str(run)] = {str(c): float(v.get(value, float("nan"))) for c, v in per_class.items()}
        for c in per_class:
            if str(c) not in classes:
                classes.append(str(c))
    table = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=classes)
    table.index.name = "run"
    return table


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
        return _empty_figure("No per-class metrics yet: build at least one run.", title)
    table = per_class_acc_df
    if classes is not None:
        table = table[[c for c in table.columns if str(c) in {str(k) for k in classes}]]
        order = {str(c): i for i, c in enumerate(classes)}
        table = table[sorted(table.columns, key=lambda c: order[str(c)])]
        if table.shape[1] == 0:
            return _empty_figure("None of the selected classes is in these runs: pick other classes.", title)
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
    run_ticks = {"tickmode": "array", "tickvals": runs, "ticktext": [_esc(short_label(r, 40)) for r in runs],
                 "tickfont": {"size": run_font}}
    x_ticks, y_ticks = (run_ticks, class_ticks(names)) if transpose else (class_ticks(names), run_ticks)
    x_font, y_font = x_ticks["tickfont"]["size"], y_ticks["tickfont"]["size"]
    angle = 0 if len(x) <= 4 and not transpose else -45 if len(x) <= 20 else -90
    x_labels = (_label_extent(x, x_font) if angle else x_font + 12) * (3 if angle == -45 else 4) // 4
    # one row per class: the run names go on top, where the view of a tall (scrolled) figure starts
    margin = {"l": _label_extent(y, y_font) + 50, "r": 120, "t": 80 + (x_labels + 40 if transpose else 0),
              "b": 30 if transpose else x_labels + 50}
    height = max(320, margin["t"] + margin["b"] + row_pitch * len(y))
    width = margin["l"] + margin["r"] + col_pitch * len(x)
    _style(fig, title, "Run" if transpose else "Class", "Class" if transpose else "Run", height=height)
    fig.update_layout(margin=margin)
    if width > MAX_FIT_WIDTH:
        fig.update_layout(width=width)
    fig.update_yaxes(autorange="reversed", **y_ticks)
    fig.update_xaxes(tickangle=angle, side="top" if transpose else "bottom", **x_ticks)
    if transpose:
        fig.update_layout(title={"yref": "container", "y": 1.0, "yanchor": "top", "pad": {"t": 18}})
    return fig


#: Columns that are measured, not scored: shown, never crowned "best" (a timing depends on the
#: machine and its load; see core.train's inference timing).
INDICATIVE: frozenset[str] = frozenset({"inference_ms", "inference_ms_per_sample", "train_seconds"})


def trivial_topk(n_classes: int | None) -> list[str]:
    """The top-k columns that say nothing with ``n_classes`` classes (k >= classes: always 1.0)."""
    if not n_classes:
        return []
    return [f"top{k}" for k in (3, 5) if int(n_classes) <= k]


def best_rows(results_df: pd.DataFrame, columns: Sequence[str] | None = None, *,
              n_classes: int | None = None) -> dict[str, list[Any]]:
    """Index labels of the best row(s) per numeric metric column (ties all count).

    Higher is better except for cost columns (:data:`LOWER_IS_BETTER`). No row
    wins an :data:`INDICATIVE` column (timings) or a top-k column that is
    trivially 1.0 with ``n_classes`` classes (:func:`trivial_topk`).
    """
    if columns is None:
        columns = [c for c in results_df.columns if c in METRIC_LABELS or c in LOWER_IS_BETTER]
    skip = INDICATIVE | set(trivial_topk(n_classes))
    out: dict[str, list[Any]] = {}
    for col in columns:
        if col not in results_df.columns or col in skip:
            continue
        values = pd.to_numeric(results_df[col], errors="coerce")
        if values.notna().sum() == 0:
            continue
        best = values.min() if col in LOWER_IS_BETTER else values.max()
        out[col] = list(results_df.index[np.isclose(values.to_numpy(dtype=float), best, rtol=0, atol=1e-12)])
    return out


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def _latex_escape(text: Any) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))


def results_latex(results_df: pd.DataFrame, *, caption: str | None = None, label: str | None = None,
                  n_classes: int | None = None) -> str:
    """The results table as LaTeX (booktabs), best value per metric column in bold.

    Needs ``\\usepackage{booktabs}``. Accuracy-like columns are formatted with 3
    decimals, parameter counts in millions. Timings and trivial top-k columns
    (see :func:`best_rows`) are never bold.
    """
    df = results_df.reset_index(drop=True)
    text_cols = [c for c in ("run", "encoders", "fusion", "strategy", "modalities") if c in df.columns]
    num_cols = [c for c in df.columns if c not in text_cols and pd.api.types.is_numeric_dtype(df[c])]
    cols = text_cols + num_cols
    best = best_rows(df, [c for c in num_cols if c in METRIC_LABELS or c in LOWER_IS_BETTER], n_classes=n_classes)
    header_names = {
        "run": "Run", "encoders": "Encoders", "fusion": "Fusion", "strategy": "Strategy",
        "modalities": "Modalities", "top1": "Top-1", "top3": "Top-3", "top5": "Top-5",
        "macro_f1": "Macro-F1", "n_params": "Params (M)", "inference_ms": "ms/sample",
    }

    def cell(col: str, i: int) -> str:
        v = df.at[i, col]
        if col in text_cols:
            return _latex_escape(v)
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            return "--"
        if col == "n_params":
            s = f"{float(v) / 1e6:.2f}"
        elif isinstance(v, (int, np.integer)):
            s = str(int(v))
        else:
            s = f"{float(v):.3f}"
        return rf"\textbf{{{s}}}" if i in best.get(col, []) else s

    lines = []
    if caption or label:
        lines += [r"\begin{table}[t]", r"\centering"]
    lines.append(r"\begin{tabular}{" + "l" * len(text_cols) + "r" * len(num_cols) + "}")
    lines.append(r"\toprule")
    lines.append(" & ".join(_latex_escape(header_names.get(c, c)) for c in cols) + r" \\")
    lines.append(r"\midrule")
    for i in range(len(df)):
        lines.append(" & ".join(cell(c, i) for c in cols) + r" \\")
    lines.append(r"\bottomrule")
    lines.append(r"\end{tabular}")
    if caption or label:
        if caption:
            lines.append(rf"\caption{{{_latex_escape(caption)}}}")
        if label:
            lines.append(rf"\label{{{label}}}")
        lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- misclassifications


def _confusion_array(labels: Sequence[Any], matrix: Any) -> tuple[list[str], np.ndarray]:
    from core.errors import DataError

    names = [str(l) for l in labels]
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape != (len(names), len(names)):
        raise DataError(
            f"confusion matrix has shape {m.shape} for {len(names)} labels",
            fix="use metrics.json 'confusion': a square matrix with one row per label",
        )
    return names, m


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
    all_names, all_counts = _confusion_array(labels, matrix)
    if len(all_names) == 0:
        return _empty_figure("No confusion matrix: the run has no test predictions.", title)
    keep = list(range(len(all_names)))
    if classes is not None:
        wanted = {str(c) for c in classes}
        keep = [i for i, name in enumerate(all_names) if name in wanted]
        if not keep:
            return _empty_figure("None of the selected classes is in this run: pick other classes.", title)
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
    x_labels = _label_extent(columns, font) if angle else font + 12
    if angle == -45:
        x_labels = int(x_labels * 0.75)
    top = n_rows > 30  # the view starts at the top of a tall matrix: name the columns there
    margin = {"l": _label_extent(names, font) + 50, "r": 130,
              "t": 80 + (x_labels + 40 if top else 0), "b": 30 + (0 if top else x_labels + 40)}
    height = max(420, margin["t"] + margin["b"] + n_rows * pitch)
    width = margin["l"] + margin["r"] + n_cols * pitch
    _style(fig, title, "Predicted class", "True class", height=height)
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


def top_error_classes(labels: Sequence[Any], matrix: Any, top: int | None = None) -> list[str]:
    """Classes by the number of errors they take part in (as true or as predicted class), most first.

    Ties keep the run's class order; classes without errors come last. ``top``
    keeps the first ``top`` (the default view of a large confusion matrix).
    """
    names, counts = _confusion_array(labels, matrix)
    errors = counts.copy()
    np.fill_diagonal(errors, 0)
    involved = errors.sum(axis=1) + errors.sum(axis=0)
    order = sorted(range(len(names)), key=lambda i: (-involved[i], i))
    ranked = [names[i] for i in order]
    return ranked if top is None else ranked[: int(top)]


def confused_pairs_table(labels: Sequence[Any], matrix: Any, top: int = 10) -> pd.DataFrame:
    """The ``top`` most frequent (true, predicted) confusions, off-diagonal and non-zero.

    Columns: true, pred, count, share (of the true class's samples).
    """
    names, counts = _confusion_array(labels, matrix)
    totals = counts.sum(axis=1)
    rows = [
        {"true": names[i], "pred": names[j], "count": int(counts[i, j]),
         "share": float(counts[i, j] / totals[i]) if totals[i] > 0 else 0.0}
        for i in range(len(names)) for j in range(len(names))
        if i != j and counts[i, j] > 0
    ]
    table = pd.DataFrame(rows, columns=["true", "pred", "count", "share"])
    if len(table):
        table = table.sort_values(["count", "share", "true", "pred"], ascending=[False, False, True, True], kind="stable")
    return table.head(int(top)).reset_index(drop=True)


def make_confused_pairs_figure(labels: Sequence[Any], matrix: Any, top: int = 10, *, title: str = "Most confused class pairs") -> go.Figure:
    """Horizontal bars of the most frequent confusions, largest on top; customdata = [true, pred]."""
    table = confused_pairs_table(labels, matrix, top)
    if table.empty:
        return _empty_figure("No misclassifications: every test sample is predicted correctly.", title)
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
    _style(fig, title, "Misclassified samples", "True class → predicted class", height=max(320, 80 + 34 * len(table)))
    fig.update_yaxes(tickmode="array", tickvals=ylabels, ticktext=[
        _esc(f"{short_label(t, 22)} → {short_label(p, 22)}") for t, p in zip(table["true"], table["pred"])])
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
        return _empty_figure("No per-class metrics in this run.", title)
    known = {str(c): v for c, v in per_class_dict.items()}
    names = [str(c) for c in (classes if classes is not None else per_class_dict) if str(c) in known]
    if not names:
        return _empty_figure("None of the selected classes is in this run: pick other classes.", title)
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
                  "l": _label_extent(names, class_font_size(n)) + 50, "r": 30}
        height = margin["t"] + margin["b"] + group * n
        _style(fig, title, "Score", "Class", height=height)
        fig.update_layout(margin=margin)
        _legend_under_title(fig, height)
        fig.update_xaxes(range=[0, 1.05], side="top" if top else "bottom")
        fig.update_yaxes(autorange="reversed", **class_ticks(names))
    else:
        _style(fig, title, "Class", "Score", legend_title="Metric")
        fig.update_yaxes(range=[0, 1.05])
        fig.update_xaxes(tickangle=-35 if n > 6 else 0, **class_ticks(names))
    fig.update_layout(barmode="group")
    return fig


def lowest_classes(per_class_dict: Mapping[str, Mapping[str, Any]], metric: str = "f1",
                   top: int | None = None) -> list[str]:
    """Classes by ``metric`` from metrics.json ``per_class``, lowest first (ties keep the class order)."""
    names = [str(c) for c in per_class_dict]
    values = [float((v or {}).get(metric, float("nan"))) for v in per_class_dict.values()]
    order = sorted(range(len(names)), key=lambda i: (np.nan_to_num(values[i], nan=np.inf), i))
    ranked = [names[i] for i in order]
    return ranked if top is None else ranked[: int(top)]


# --------------------------------------------------------------------------- modality shares


def _with_correct(samples_df: pd.DataFrame) -> pd.DataFrame:
    if "correct" in samples_df.columns:
        return samples_df
    if {"label", "pred"} <= set(samples_df.columns):
        return samples_df.assign(correct=samples_df["label"].astype(str) == samples_df["pred"].astype(str))
    from core.errors import DataError

    raise DataError("per-sample shares lack a 'correct' column", fix="join the explanations with predictions.parquet")


def per_class_share_table(
    samples_df: pd.DataFrame,
    modalities: Sequence[str],
    *,
    class_col: str = "label",
    classes: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """Mean modality share per class, for all, correct and incorrect predictions.

    The reference's per-class MM-SHAP table in long form: columns ``class``,
    ``subset`` (``all`` / ``correct`` / ``incorrect``), ``n`` (samples) and one
    ``share_<modality>`` column per modality; three rows per class, shares NaN
    where ``n`` is 0. Classes follow ``classes`` if given, else sorted order.
    :func:`pivot_share_table` turns it into the reference's wide layout.
    """
    shares = _share_columns(modalities)
    _check_columns(samples_df, [class_col, *shares], "per-sample shares")
    df = _with_correct(samples_df)
    if classes is None:
        classes = sorted(df[class_col].astype(str).unique())
    classes = [str(c) for c in classes]
    labels = df[class_col].astype(str)
    correct = df["correct"].astype(bool)
    rows = []
    for cls in classes:
        in_class = labels == cls
        for subset, mask in (("all", in_class), ("correct", in_class & correct), ("incorrect", in_class & ~correct)):
            part = df.loc[mask, shares]
            row = {"class": cls, "subset": subset, "n": int(mask.sum())}
            for col in shares:
                row[col] = float(part[col].mean()) if len(part) else float("nan")
            rows.append(row)
    return pd.DataFrame(rows, columns=["class", "subset", "n", *shares])


def pivot_share_table(share_table: pd.DataFrame, modalities: Sequence[str]) -> pd.DataFrame:
    """The reference's wide layout: one row per class; columns (subset, modality) and (subset, "n")."""
    shares = _share_columns(modalities)
    parts = []
    for subset in SUBSETS:
        part = share_table[share_table["subset"] == subset].set_index("class")
        cols = {"n": (SUBSET_LABELS[subset], "n")}
        cols.update({f"share_{m}": (SUBSET_LABELS[subset], _pretty_modality(m)) for m in modalities})
        part = part[["n", *shares]].rename(columns=cols)
        part.columns = pd.MultiIndex.from_tuples(part.columns)
        parts.append(part)
    wide = pd.concat(parts, axis=1)
    wide.index.name = "Class"
    return wide


def make_modality_share_bar_figure(
    share_table: pd.DataFrame,
    modalities: Sequence[str],
    *,
    subsets: Sequence[str] = SUBSETS,
    title: str = "Mean modality share per class",
    horizontal: bool = False,
) -> go.Figure:
    """Stacked bars of mean modality share per class (and per subset when several).

    ``share_table`` is :func:`per_class_share_table`'s output. With several
    subsets the class axis groups all / correct / incorrect under each class.
    ``horizontal`` puts classes on the y axis (first class on top), which keeps
    many classes readable, also in a half-width column.
    """
    if share_table is None or share_table.empty:
        return _empty_figure(f"No explanations yet: run `{cli_command()} explain` for this run.", title)
    shares = _share_columns(modalities)
    _check_columns(share_table, ["class", "subset", "n", *shares], "share table")
    subsets = [s for s in subsets if s in set(share_table["subset"])]
    table = share_table[share_table["subset"].isin(subsets) & (share_table["n"] > 0)]
    if table.empty:
        return _empty_figure("No explained samples in the selected subsets.", title)
    colors = modality_colors(modalities)
    multi = len(subsets) > 1
    order = {s: i for i, s in enumerate(subsets)}
    classes = list(dict.fromkeys(share_table["class"].astype(str)))
    table = table.assign(_c=table["class"].astype(str).map({c: i for i, c in enumerate(classes)}), _s=table["subset"].map(order))
    table = table.sort_values(["_c", "_s"])
    cats: Any = [table["class"].astype(str).tolist(), [SUBSET_LABELS[s] for s in table["subset"]]] if multi else table["class"].astype(str).tolist()
    value_axis = "x" if horizontal else "y"
    fig = go.Figure()
    for m, col in zip(modalities, shares):
        bar: dict[str, Any] = dict(
            name=_pretty_modality(m), marker_color=colors[m],
            customdata=np.stack([table["class"].astype(str), table["subset"].map(SUBSET_LABELS), table["n"]], axis=1),
            hovertemplate="Class: <b>%{customdata[0]}</b> (%{customdata[1]}, n=%{customdata[2]})<br>"
            + _esc(_pretty_modality(m)) + f" share: %{{{value_axis}:.1%}}<extra></extra>",
            text=[f"{v:.0%}" for v in table[col]], textposition="inside", insidetextanchor="middle",
            textfont={"size": BASE_FONT_SIZE - 3, "color": "white"},
        )
        if horizontal:
            fig.add_trace(go.Bar(y=cats, x=table[col], orientation="h", **bar))
        else:
            fig.add_trace(go.Bar(x=cats, y=table[col], **bar))
    class_title = "Class" + (" / predictions" if multi else "")
    if horizontal:
        _style(fig, title, "Mean modality share", class_title, legend_title="Modality",
               height=max(320, 130 + 26 * len(table)))
        fig.update_xaxes(range=[0, 1.0], tickformat=".0%")
        fig.update_yaxes(autorange="reversed")
        fig.update_layout(legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0})
    else:
        _style(fig, title, class_title, "Mean modality share", legend_title="Modality")
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
        return _empty_figure(f"No explanations yet: run `{cli_command()} explain` for this run.", title)
    shares = _share_columns(modalities)
    _check_columns(samples_df, [class_col, *shares], "per-sample shares")
    colors = modality_colors(modalities)
    classes = sorted(samples_df[class_col].astype(str).unique())
    x = samples_df[class_col].astype(str)
    ids = samples_df["id"].astype(str) if "id" in samples_df.columns else None
    trace_cls = go.Violin if kind == "violin" else go.Box
    fig = go.Figure()
    for m, col in zip(modalities, shares):
        kwargs: dict[str, Any] = {
            "x": x, "y": samples_df[col], "name": _pretty_modality(m), "customdata": ids,
            "marker_color": colors[m], "line_color": colors[m],
            "hovertemplate": "Class: %{x}<br>" + _esc(_pretty_modality(m)) + " share: %{y:.1%}"
            + ("<br>Sample: %{customdata}" if ids is not None else "") + "<extra></extra>",
        }
        if kind == "violin":
            kwargs.update(box_visible=True, meanline_visible=True, points=False, scalemode="width")
        else:
            kwargs.update(boxmean=True, boxpoints="outliers")
        fig.add_trace(trace_cls(**kwargs))
    _style(fig, title, "Class", "Per-sample modality share", legend_title="Modality")
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
        return _empty_figure(f"No explanations yet: run `{cli_command()} explain` for this run.", title)
    shares = _share_columns(modalities)
    _check_columns(samples_df, shares, "per-sample shares")
    df = _with_correct(samples_df)
    group = np.where(df["correct"].astype(bool), "Correct predictions", "Incorrect predictions")
    counts = pd.Series(group).value_counts()
    colors = modality_colors(modalities)
    fig = go.Figure()
    for m, col in zip(modalities, shares):
        fig.add_trace(
            go.Box(
                x=group, y=df[col], name=_pretty_modality(m), marker_color=colors[m], line_color=colors[m],
                boxmean=True, boxpoints="outliers",
                hovertemplate="%{x}<br>" + _esc(_pretty_modality(m)) + " share: %{y:.1%}<extra></extra>",
            )
        )
    _style(fig, title, "Predictions", "Per-sample modality share", legend_title="Modality")
    cats = ["Correct predictions", "Incorrect predictions"]
    fig.update_xaxes(
        categoryorder="array", categoryarray=cats,
        tickvals=cats, ticktext=[f"{c} (n={int(counts.get(c, 0))})" for c in cats],
    )
    fig.update_layout(boxmode="group")
    fig.update_yaxes(range=[0, 1.0], tickformat=".0%")
    return fig


# --------------------------------------------------------------------------- embeddings & samples


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
        return _empty_figure(f"No projection yet: compute it with `{cli_command()} project` or the button above.", title)
    _check_columns(coords_df, ["id", "x", "y"], "projection")
    n = len(coords_df)
    size = 4 if n > 20000 else 6 if n > 3000 else 8
    ids = coords_df["id"].astype(str).to_numpy()
    hover_cols = [c for c in hover_cols if c in coords_df.columns and c != "id"]
    # hover text, built column by column (a 10,000-point scatter stays well under 0.1 s)
    hover = ("<b>" + _esc_values(ids) + "</b>").astype(object)
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
            shown = _esc_values(values)
        hover = hover + f"<br>{_esc(_pretty(col))}: " + shown
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
                name=_esc(short_label(cat, 20)), customdata=ids[mask], text=hover[mask], hovertemplate=hovertemplate,
                marker={**marker_base, "color": palette.get(cat, "#7F8C8D")},
            ))
        legend_title = _pretty(color_by)
    else:
        values = pd.to_numeric(coords_df[color_by], errors="coerce").to_numpy(dtype=float)
        is_share = color_by.startswith("share_") or (np.nanmin(values) >= 0 and np.nanmax(values) <= 1)
        fig.add_trace(go.Scattergl(
            x=coords_df["x"], y=coords_df["y"], mode="markers", customdata=ids, text=hover,
            hovertemplate=hovertemplate, name=_pretty(color_by), showlegend=False,
            marker={
                **marker_base, "color": values, "colorscale": "Viridis",
                "cmin": 0 if is_share else None, "cmax": 1 if is_share else None,
                "colorbar": {"title": {"text": _pretty(color_by)}, "tickformat": ".0%" if is_share else None},
            },
        ))
    if highlight_id is not None and str(highlight_id) in set(ids):
        row = coords_df.loc[coords_df["id"].astype(str) == str(highlight_id)].iloc[0]
        fig.add_trace(go.Scattergl(
            x=[row["x"]], y=[row["y"]], mode="markers", name="Selected sample", customdata=[str(highlight_id)],
            text=[f"<b>{_esc(highlight_id)}</b> (selected)"], hovertemplate=hovertemplate,
            marker={"size": size + 10, "color": "rgba(0,0,0,0)", "line": {"width": 3, "color": "#111"}, "symbol": "circle"},
        ))
    entries = sum(1 for t in fig.data if t.showlegend is not False)
    below = entries > 8  # a long legend goes under the plot, in rows, so it never squeezes the plot
    legend_rows = math.ceil(entries / 2) + 1  # two entries a row in a half-width column, and the title
    _style(fig, title, f"{axis_label} 1", f"{axis_label} 2", legend_title=legend_title,
           height=560 + (22 * legend_rows + 20 if below else 0))
    fig.update_layout(dragmode="lasso", hovermode="closest", uirevision=title or "embedding", clickmode="event+select",
                      legend={"itemsizing": "constant"})
    if below:
        fig.update_layout(
            margin={"b": 22 * legend_rows + 90},
            legend={"orientation": "h", "x": 0.0, "xanchor": "left", "yref": "container", "y": 0.0,
                    "yanchor": "bottom", "entrywidth": 0.5, "entrywidthmode": "fraction", "title": {"side": "top"},
                    "font": {"size": BASE_FONT_SIZE - 2}})
    fig.update_xaxes(zeroline=False, showticklabels=False)
    fig.update_yaxes(zeroline=False, showticklabels=False)
    return fig


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
        return _empty_figure("This prediction has no top-k columns.", title)
    true = str(row.get("label", ""))
    colors = ["#1B9E77" if l == true else ("#C0392B" if i == 0 else "#95A5A6") for i, l in enumerate(labels)]
    fig = go.Figure(
        go.Bar(
            x=probs[::-1], y=labels[::-1], orientation="h", marker_color=colors[::-1],
            text=[f"{p:.1%}" for p in probs[::-1]], textposition="auto",
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    _style(fig, title, "Probability", "Class", height=max(260, 80 + 44 * len(labels)))
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    if true:
        fig.add_annotation(
            text=f"True class: <b>{_esc(true)}</b>", xref="paper", yref="paper", x=1, y=1.02,
            xanchor="right", yanchor="bottom", showarrow=False, font={"size": BASE_FONT_SIZE - 1},
        )
    return fig


def _to_rgb_uint8(image: Any, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """HxW, HxWx1, HxWx3 or HxWx4 array (uint8 or float) as HxWx3 uint8."""
    from core.errors import DataError

    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise DataError(f"image must be HxW or HxWx3, got shape {arr.shape}", fix="pass one image or frame")
    if arr.dtype != np.uint8:
        f = arr.astype(np.float64)
        lo = float(np.nanmin(f)) if lo is None else lo
        hi = float(np.nanmax(f)) if hi is None else hi
        if arr.ndim == 3 and lo >= 0 and hi <= 1.0:
            lo, hi = 0.0, 1.0
        f = (f - lo) / (hi - lo) if hi > lo else np.zeros_like(f)
        arr = np.clip(np.nan_to_num(f) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return arr


def _patch_grid(patch_values: Any) -> np.ndarray:
    """(ph, pw) array from a 2-D array, a square 1-D vector, or rows with ``value``.

    Rows (a DataFrame) give the grid through ``patch_row``/``patch_col`` columns,
    or in order (``patch``/``feature_index`` sorted) for a square number of patches.
    """
    from core.errors import DataError

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


def _overlay_trace(grid: np.ndarray, height: int, width: int, zmax: float, opacity: float, show_scale: bool = True) -> go.Heatmap:
    ph, pw = grid.shape
    cell_h, cell_w = height / ph, width / pw
    rows = np.repeat(np.arange(ph), pw)
    cols = np.tile(np.arange(pw), ph)
    custom = np.stack([rows, cols], axis=1).reshape(ph, pw, 2)
    return go.Heatmap(
        z=grid,
        x=(np.arange(pw) + 0.5) * cell_w - 0.5,
        y=(np.arange(ph) + 0.5) * cell_h - 0.5,
        colorscale=CONTRIBUTION_COLORSCALE, zmin=-zmax, zmax=zmax, zmid=0, opacity=opacity,
        showscale=show_scale, customdata=custom,
        colorbar={"title": {"text": "SHAP value"}, "thickness": 16, "exponentformat": "e"},
        hovertemplate="Patch (row %{customdata[0]}, col %{customdata[1]})<br>SHAP value: %{z:.4f}<extra></extra>",
        hoverongaps=False,
    )


def _symmetric_max(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    m = float(finite.max()) if finite.size else 0.0
    return m if m > 0 else 1e-9


def _image_layout(fig: go.Figure, title: str, height: int, width: int) -> go.Figure:
    _style(fig, title)
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
    img = _to_rgb_uint8(image_uint8)
    grid = _patch_grid(patch_values)
    h, w = img.shape[:2]
    zmax = float(zmax) if zmax else _symmetric_max(grid)
    fig = go.Figure([go.Image(z=img, hoverinfo="skip"), _overlay_trace(grid, h, w, zmax, opacity)])
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
    from core.errors import DataError

    frames = np.asarray(frames)
    if frames.ndim not in (3, 4):
        raise DataError(f"frames must be (T, H, W[, C]), got shape {frames.shape}", fix="pass one clip")
    t_total = frames.shape[0]
    if t_total == 0:
        return _empty_figure("This clip has no frames.", title)
    idx = int(np.clip(frame_index, 0, t_total - 1))
    values = np.asarray(tube_values, dtype=float)
    if values.ndim == 2:
        values = values[None]
    if values.ndim != 3:
        raise DataError(f"tube values must be (T', rows, cols), got shape {values.shape}", fix="pass one grid per time slice")
    t_slice = min(values.shape[0] - 1, idx * values.shape[0] // t_total)
    single = frames.ndim == 3 or frames.shape[-1] == 1
    lo = hi = None
    if single and frames.dtype != np.uint8:
        finite = frames[np.isfinite(frames)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    img = _to_rgb_uint8(frames[idx], lo, hi)
    h, w = img.shape[:2]
    zmax = _symmetric_max(values)
    title = title if title is not None else f"Frame {idx + 1} of {t_total}"
    fig = go.Figure([go.Image(z=img, hoverinfo="skip"), _overlay_trace(values[t_slice], h, w, zmax, opacity)])
    return _image_layout(fig, title, h, w)


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
    from core.errors import DataError

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
            f'{glue}<span title="{_esc(tok)}: {label}" style="background-color:{bg};color:{color};'
            f'padding:1px 3px;border-radius:4px;">{_esc(tok)}</span>'
        )
    return (
        f'<div class="fusionlens-tokens" style="font-size:{int(font_size)}px;line-height:1.9;'
        f'font-family:{_esc(FONT_FAMILY)};">' + "".join(parts) + "</div>"
    )


# --------------------------------------------------------------------------- dataset & one sample

SPLIT_COLORS: dict[str, str] = {"train": "#2E86C1", "val": "#F5B041", "test": "#1B9E77"}


def make_split_counts_figure(counts_df: pd.DataFrame, *, title: str = "Samples per class and split") -> go.Figure:
    """Stacked bars of samples per class (rows of ``counts_df``) and split (its columns).

    ``counts_df`` is ``core.dashboard.split_counts`` output: index = class names,
    columns ``train`` / ``val`` / ``test`` (and an ignored ``total``).
    """
    if counts_df is None or counts_df.empty:
        return _empty_figure(f"No dataset yet: build the experiment with `{cli_command()} build`.", title)
    splits = [c for c in counts_df.columns if c != "total"]
    classes = [str(c) for c in counts_df.index]
    horizontal = len(classes) > 20  # one row per class, every class named, the figure grows downwards
    fig = go.Figure()
    for split in splits:
        label = _esc(str(split).capitalize())
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
        margin = {"t": 70 + 36 + 56, "b": 20, "l": _label_extent(classes, class_font_size(len(classes))) + 50, "r": 30}
        _style(fig, title, "Samples", "Class", height=margin["t"] + margin["b"] + rows)
        fig.update_layout(margin=margin)
        _legend_under_title(fig, margin["t"] + margin["b"] + rows)
        fig.update_yaxes(autorange="reversed", **class_ticks(classes))
        fig.update_xaxes(side="top")  # a tall figure scrolls: the count axis is where the view starts
    else:
        _style(fig, title, "Class", "Samples", legend_title="Split", height=420)
        fig.update_xaxes(tickangle=-45 if len(classes) > 6 else 0, **class_ticks(classes))
    fig.update_layout(barmode="stack", bargap=0.15)
    return fig


def make_sample_share_figure(
    shares: Mapping[str, float], modalities: Sequence[str] | None = None, *, title: str = "Modality shares"
) -> go.Figure:
    """One horizontal bar per modality: its MM-SHAP share of one prediction, in its modality colour."""
    if not shares:
        return _empty_figure("No explanation for this sample yet.", title)
    mods = list(modalities) if modalities is not None else list(shares)
    colors = modality_colors(mods)
    values = [float(shares.get(m, float("nan"))) for m in mods]
    fig = go.Figure(go.Bar(
        x=values[::-1], y=[_pretty_modality(m) for m in mods][::-1], orientation="h",
        marker_color=[colors[m] for m in mods][::-1],
        text=["n/a" if not np.isfinite(v) else f"{v:.0%}" for v in values[::-1]], textposition="auto",
        hovertemplate="%{y}: %{x:.1%}<extra></extra>",
    ))
    _style(fig, title, "Share of the prediction (MM-SHAP)", "Modality", height=max(220, 90 + 48 * len(mods)))
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    return fig
