"""Figures of modality contributions (Modality contributions, Misclassifications, Sample
explorer): shares per class and per sample, in both meanings, and modality interactions.

Per-class means come from :func:`core.explain.class_share_table` (the one per-class
share table, MM-SHAP or exact shares) and :func:`core.explain.class_interaction_table`;
per-sample shares (``samples_df``) are one row per explained sample with ``id``, the
true class (``label``), ``correct`` (bool; or ``pred`` to derive it), one
``share_<modality>`` column per modality and, where stored, ``exact_share_<modality>``
and ``flat``.

Two meanings of a share: the MM-SHAP share sums ``|phi|`` over the modality's
tokens / patches (:data:`SHARE_MEANINGS`); the exact modality share takes the
modality as one player, so its positive and negative parts cancel.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.errors import DataError, cli_command
from core.explain import flat_mask, interaction_columns
from ui.figures.style import (
    BASE_FONT_SIZE,
    CORRECTNESS_COLORS,
    MAX_FIT_WIDTH,
    check_columns,
    class_ticks,
    empty_figure,
    esc,
    font_size,
    modality_colors,
    share_columns,
    style_figure,
)
from ui.labels import SUBSET_LABELS, SUBSETS, pretty_modality

#: the two meanings of a modality's share, as the pages name and explain them
SHARE_MEANINGS: dict[str, str] = {
    "mmshap": "MM-SHAP share: sum of |phi| of the modality's tokens / patches",
    "exact": "Exact modality share: the modality as one player, positive and negative parts cancel",
}
#: colours of the prediction subsets in the interaction figure
SUBSET_COLORS: dict[str, str] = {"all": "#404040", "correct": CORRECTNESS_COLORS["Correct"],
                                 "incorrect": CORRECTNESS_COLORS["Incorrect"]}
#: the unit of the explained output, by ``output_kind``
OUTPUT_UNITS: dict[str, str] = {"logit": "logit"}


def _with_correct(samples_df: pd.DataFrame) -> pd.DataFrame:
    if "correct" in samples_df.columns:
        return samples_df
    if {"label", "pred"} <= set(samples_df.columns):
        return samples_df.assign(correct=samples_df["label"].astype(str) == samples_df["pred"].astype(str))
    raise DataError("per-sample shares lack a 'correct' column", fix="join the explanations with predictions.parquet")


def with_shares(samples_df: pd.DataFrame) -> pd.DataFrame:
    """The rows that have a share: flat predictions (:func:`core.explain.flat_mask`) have none."""
    return samples_df[~flat_mask(samples_df)]


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
    samples_df = with_shares(samples_df)
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
    df = _with_correct(with_shares(samples_df))
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


# --------------------------------------------------------------------------- both meanings of a share


def _meaning_legend(fig: go.Figure) -> None:
    """Legend entries of the two meanings in neutral grey (the bars themselves wear modality colours)."""
    for meaning, pattern in (("MM-SHAP share", ""), ("Exact modality share", "/")):
        fig.add_trace(go.Bar(x=[None], y=[None], name=meaning, showlegend=True, hoverinfo="skip",
                             marker={"color": "#8A8A8A", "pattern": {"shape": pattern, "fgcolor": "white"}}))


def output_unit(output_kind: Any) -> str:
    """The unit interactions are in: ``probability`` (every probability output) or ``logit``."""
    return OUTPUT_UNITS.get(str(output_kind), "probability")


def make_share_meanings_figure(
    samples_df: pd.DataFrame,
    modalities: Sequence[str],
    *,
    title: str = "Mean modality share: MM-SHAP and exact",
) -> go.Figure:
    """Per modality, the mean MM-SHAP share (solid) beside the mean exact modality share
    (hatched), in the modality's colour, over the samples that have a share (flat
    predictions, :func:`core.explain.flat_mask`, have none)."""
    if samples_df is None or samples_df.empty:
        return empty_figure(f"No explanations yet: run `{cli_command()} explain` for this run.", title)
    check_columns(samples_df, share_columns(modalities), "per-sample shares")
    keep = ~flat_mask(samples_df)
    if not keep.any():
        return empty_figure("No share: every prediction shown barely depends on its inputs.", title)
    rows = samples_df[keep]
    colors = modality_colors(modalities)
    names = [pretty_modality(m) for m in modalities]
    fig = go.Figure()
    for meaning, prefix, pattern in (("MM-SHAP share", "share_", ""), ("Exact modality share", "exact_share_", "/")):
        means, counts = [], []
        for m in modalities:
            col = prefix + m
            vals = pd.to_numeric(rows[col], errors="coerce").to_numpy(dtype=float) if col in rows.columns \
                else np.full(len(rows), np.nan)
            vals = vals[np.isfinite(vals)]
            means.append(float(vals.mean()) if len(vals) else np.nan)
            counts.append(len(vals))
        fig.add_trace(go.Bar(
            x=names, y=means, name=meaning, showlegend=False, marker={"color": [colors[m] for m in modalities],
                                                    "pattern": {"shape": pattern, "fgcolor": "white"}},
            customdata=np.array(counts)[:, None],
            text=["n/a" if not np.isfinite(v) else f"{v:.0%}" for v in means], textposition="outside",
            hovertemplate="%{x}<br>" + meaning + ": %{y:.1%} (n=%{customdata[0]})<extra></extra>",
        ))
    _meaning_legend(fig)
    style_figure(fig, title, "Modality", "Mean share", legend_title="Meaning")
    fig.update_yaxes(range=[0, 1.1], tickformat=".0%")
    fig.update_layout(barmode="group", bargap=0.25)
    return fig


def make_sample_share_meanings_figure(
    shares: Mapping[str, float],
    exact: Mapping[str, float] | None,
    modalities: Sequence[str],
    *,
    stderr: Mapping[str, float] | None = None,
    title: str = "Modality shares: MM-SHAP and exact",
) -> go.Figure:
    """One prediction's shares in both meanings: per modality a solid bar (MM-SHAP, with the
    estimator's 95 % interval, 1.96 x its ``stderr``, where known) and a hatched one (exact
    modality share; "n/a" when the modality game was not computed; the modality game is exact,
    so it has no sampling error)."""
    if not shares:
        return empty_figure("No explanation for this sample yet.", title)
    mods = list(modalities)
    colors = modality_colors(mods)
    names = [pretty_modality(m) for m in mods][::-1]
    fig = go.Figure()
    # exact first: horizontal groups stack their traces bottom-up, so MM-SHAP is the upper bar
    for meaning, values, pattern in (("Exact modality share", exact or {}, "/"), ("MM-SHAP share", shares, "")):
        vals = [float(values.get(m, np.nan)) for m in mods][::-1]
        errors = [1.96 * float((stderr or {}).get(m, np.nan)) for m in mods][::-1]
        shown = meaning == "MM-SHAP share" and any(np.isfinite(e) for e in errors)
        fig.add_trace(go.Bar(
            x=vals, y=names, orientation="h", name=meaning, showlegend=False,
            error_x={"type": "data", "array": [e if np.isfinite(e) else 0.0 for e in errors], "visible": shown,
                     "color": "#333"},
            marker={"color": [colors[m] for m in mods][::-1], "pattern": {"shape": pattern, "fgcolor": "white"}},
            text=["n/a" if not np.isfinite(v) else f"{v:.0%}" for v in vals], textposition="auto",
            hovertemplate="%{y}: " + meaning + " %{x:.1%}<extra></extra>",
        ))
    _meaning_legend(fig)
    style_figure(fig, title, "Share of the prediction", "Modality", legend_title="Meaning",
                 height=max(240, 110 + 64 * len(mods)))
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_layout(barmode="group")
    return fig


# --------------------------------------------------------------------------- interactions


def interaction_rows(interaction_table: pd.DataFrame, modalities: Sequence[str]) -> pd.DataFrame:
    """:func:`core.explain.class_interaction_table` in long form: one row per class, pair and
    subset (``class``, ``pair`` (``(a, b)``), ``subset``, ``n``, ``mean``, ``low``, ``high``),
    classes in the table's order."""
    pairs = interaction_columns(modalities)
    check_columns(interaction_table, ["class", *(f"{c}_{s}{x}" for c in pairs.values() for s in SUBSETS
                                                 for x in ("", "_n", "_low", "_high"))], "interaction table")
    parts = []
    for pair, c in pairs.items():
        for s in SUBSETS:
            parts.append(pd.DataFrame({
                "class": interaction_table["class"].astype(str).to_numpy(), "pair": [pair] * len(interaction_table),
                "subset": s, "n": interaction_table[f"{c}_{s}_n"].astype(int).to_numpy(),
                "mean": interaction_table[f"{c}_{s}"].to_numpy(dtype=float),
                "low": interaction_table[f"{c}_{s}_low"].to_numpy(dtype=float),
                "high": interaction_table[f"{c}_{s}_high"].to_numpy(dtype=float)}))
    if not parts:
        return pd.DataFrame(columns=["class", "pair", "subset", "n", "mean", "low", "high"])
    return pd.concat(parts, ignore_index=True)


def make_interaction_figure(
    interaction_table: pd.DataFrame,
    modalities: Sequence[str],
    *,
    subsets: Sequence[str] = SUBSETS,
    unit: str = "probability",
    title: str = "Modality interaction per class",
) -> go.Figure:
    """Per class, the mean pairwise interaction of each pair of modalities for all / correct /
    incorrect predictions, with its 95 % interval as error bars (one panel per pair).

    ``interaction_table`` is :func:`core.explain.class_interaction_table`'s output. Above 0:
    the pair gives more together than apart (synergy); below: either modality alone already
    gives it (redundancy). ``unit`` names the explained output's unit on the value axis.
    """
    pairs = list(interaction_columns(modalities))
    if len(pairs) == 0:
        return empty_figure("Interactions need at least two explained modalities.", title)
    if interaction_table is None or interaction_table.empty:
        return empty_figure(f"No explanations yet: run `{cli_command()} explain` for this run.", title)
    rows = interaction_rows(interaction_table, modalities)
    subsets = [s for s in subsets if s in SUBSETS] or list(SUBSETS)
    rows = rows[rows["subset"].isin(subsets) & (rows["n"] > 0)]
    if rows.empty:
        return empty_figure("No interaction computed: the samples shown were explained before interactions were "
                            "kept, or barely depend on their inputs.", title)
    classes = list(dict.fromkeys(interaction_table["class"].astype(str)))
    fig = make_subplots(rows=len(pairs), cols=1, shared_xaxes=True, vertical_spacing=0.12 if len(pairs) > 1 else 0,
                        subplot_titles=[f"{esc(pretty_modality(a))} \u00d7 {esc(pretty_modality(b))}"
                                        for a, b in pairs])
    for r, pair in enumerate(pairs, start=1):
        for s in subsets:
            part = rows[(rows["pair"] == pair) & (rows["subset"] == s)]
            if part.empty:
                continue
            low = np.nan_to_num(part["mean"] - part["low"], nan=0.0)
            high = np.nan_to_num(part["high"] - part["mean"], nan=0.0)
            fig.add_trace(go.Scatter(
                x=part["class"], y=part["mean"], mode="markers", name=SUBSET_LABELS[s],
                legendgroup=s, showlegend=r == 1,
                marker={"color": SUBSET_COLORS[s], "size": 10, "symbol": "circle"},
                error_y={"type": "data", "symmetric": False, "array": high, "arrayminus": low,
                         "color": SUBSET_COLORS[s], "thickness": 1.5},
                customdata=np.stack([part["n"], part["low"], part["high"]], axis=1),
                hovertemplate="Class: <b>%{x}</b> (" + SUBSET_LABELS[s] + ", n=%{customdata[0]})<br>"
                + "mean interaction: %{y:+.4f}<br>95 % interval: [%{customdata[1]:+.4f}, %{customdata[2]:+.4f}]"
                + "<extra></extra>",
            ), row=r, col=1)
        fig.add_hline(y=0, line={"color": "#888", "width": 1, "dash": "dot"}, row=r, col=1)
        fig.update_yaxes(title={"text": f"Mean interaction ({unit})", "font": {"size": BASE_FONT_SIZE}},
                         zeroline=False, exponentformat="none", row=r, col=1)
    style_figure(fig, title, legend_title="Predictions", height=max(320, 120 + 240 * len(pairs)))
    fig.update_xaxes(categoryorder="array", categoryarray=classes, **class_ticks(classes))
    fig.update_xaxes(title={"text": "Class", "font": {"size": font_size(BASE_FONT_SIZE + 1)}}, row=len(pairs), col=1)
    fig.update_layout(scattermode="group")
    return fig
