"""Figures of the trust checks (Modality contributions, Trust panel), from ``<run>/trust.json``.

Each builder takes one check's entry of the report (``status``, ``reason``,
``n``, ``numbers``; see ``docs/TRUST.md``) and returns a ``go.Figure``; a check
without the numbers a figure needs gives a figure that says so.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import plotly.graph_objects as go

from ui.figures.style import empty_figure, esc, modality_color, style_figure
from ui.labels import pretty_modality

#: One colour per status, the same in the table and the figures.
STATUS_COLORS: dict[str, str] = {"pass": "#1B9E77", "warn": "#E69F00", "fail": "#C0392B", "skip": "#999999"}
STAGE_LABELS = {"head": "Head re-initialised", "head+encoders": "Head + encoders re-initialised"}


def _numbers(check: Mapping[str, Any] | None) -> Mapping[str, Any]:
    numbers = (check or {}).get("numbers")
    return numbers if isinstance(numbers, Mapping) else {}


def make_randomisation_figure(check: Mapping[str, Any] | None, thresholds: Mapping[str, Any] | None = None, *,
                              title: str = "Model randomisation: |phi| maps vs the trained model's") -> go.Figure:
    """Per-sample Spearman correlation of |phi| maps at each randomisation stage, the median marked,
    with the pass (and fail) thresholds."""
    stages = _numbers(check).get("stages")
    if not isinstance(stages, Mapping) or not stages:
        return empty_figure("No randomisation result: run the trust checks.", title)
    fig = go.Figure()
    for stage, values in stages.items():
        per = values.get("per_sample") if isinstance(values, Mapping) else None
        if not isinstance(per, Mapping):
            continue
        label = STAGE_LABELS.get(stage, stage)
        ids = [str(k) for k in per]
        fig.add_trace(go.Box(
            x=[label] * len(ids), y=[v for v in per.values()], customdata=ids, name=label, boxpoints="all",
            jitter=0.3, pointpos=0, marker_color=STATUS_COLORS["skip"], line_color="#404040", showlegend=False,
            hovertemplate="%{x}<br>Sample: %{customdata}<br>Spearman: %{y:.2f}<extra></extra>"))
    for name, dash, key in (("pass below", "dash", "RANDOMISATION_PASS"), ("fail from", "dot", "RANDOMISATION_FAIL")):
        value = (thresholds or {}).get(key)
        if isinstance(value, (int, float)):
            fig.add_hline(y=value, line_dash=dash, line_color=STATUS_COLORS["pass" if name == "pass below" else "fail"],
                          annotation_text=f"{name} {value:g}", annotation_position="top left")
    n = (check or {}).get("n")
    style_figure(fig, f"{title} (n = {n})" if n is not None else title, "Weights re-initialised",
                 "Spearman correlation of |phi| maps", height=380)
    fig.update_yaxes(range=[-1.05, 1.05])
    return fig


def make_reliance_figure(check: Mapping[str, Any] | None, *, subset: str = "all", modality: str | None = None,
                         title: str = "Designed reliance") -> go.Figure:
    """Mean share of one reported modality (``modality``, else the first) per variant (or reliance value,
    or sufficient sets), ordered by the expected order, MM-SHAP and exact share side by side, in the
    modality's colour."""
    numbers = _numbers(check)
    results = numbers.get("modalities")
    if not isinstance(results, Mapping) or not results:
        return empty_figure("No reliance result for this run.", title)
    if modality is None:
        modality = next(iter(results))
    result = results.get(modality)
    if not isinstance(result, Mapping):
        return empty_figure(f"No reliance result for {pretty_modality(modality)}.", title)
    design = "sufficient sets" if numbers.get("rule") == "sufficient" else "reliance"
    fig = go.Figure()
    color = modality_color(modality)
    for kind, opacity, label in (("mmshap", 1.0, "MM-SHAP share"), ("exact", 0.45, "exact share")):
        measured = result.get(f"{subset}/{kind}")
        groups = measured.get("groups") if isinstance(measured, Mapping) else None
        if not groups:
            continue
        groups = sorted(groups, key=lambda g: (-float(g.get("expected", 0)), str(g.get("group"))))
        fig.add_trace(go.Bar(
            x=[esc(g["group"]) for g in groups], y=[g["mean"] for g in groups], name=label, opacity=opacity,
            marker_color=color, customdata=[[g["n"], esc(g["reliance"]), g["expected"]] for g in groups],
            hovertemplate="%{x}<br>" + label + ": %{y:.2f}<br>n = %{customdata[0]}<br>" + design
                          + ": %{customdata[1]}<br>expected rank: %{customdata[2]}<extra></extra>"))
    if not fig.data:
        return empty_figure("No explained sample with a designed reliance.", title)
    grouped = numbers.get("grouped_by", "variant")
    style_figure(fig, f"{title}: mean {pretty_modality(modality)} share per {grouped} ({subset} predictions)",
                 f"{str(grouped).capitalize()} (expected {pretty_modality(modality)} share: high to low)",
                 f"Mean {pretty_modality(modality)} share", legend_title="Share", height=420)
    fig.update_layout(barmode="group")
    fig.update_yaxes(range=[0, 1.0], tickformat=".0%")
    return fig


def make_reliance_difference_figure(check: Mapping[str, Any] | None, modalities: Sequence[str] | None = None, *,
                                    subset: str = "all", title: str = "Designed reliance") -> go.Figure:
    """Each reported modality's share difference (where it alone suffices, or where it is relied on, minus
    where it carries no designed cue) with its 95 % interval, MM-SHAP and exact share, and the zero line."""
    numbers = _numbers(check)
    results = numbers.get("modalities")
    if not isinstance(results, Mapping) or not results:
        return empty_figure("No reliance result for this run.", title)
    names = [m for m, r in results.items() if isinstance(r, Mapping)]
    fig = go.Figure()
    for kind, symbol, opacity, label in (("mmshap", "circle", 1.0, "MM-SHAP share"),
                                         ("exact", "diamond", 0.5, "exact share")):
        cells = [results[m].get(f"{subset}/{kind}") or {} for m in names]
        diff = [c.get("difference") for c in cells]
        fig.add_trace(go.Scatter(
            x=[pretty_modality(m) for m in names], y=diff, mode="markers", name=label, opacity=opacity,
            marker=dict(symbol=symbol, size=11, color=[modality_color(m, modalities) for m in names]),
            error_y=dict(type="data", symmetric=False, color="#404040",
                         array=[_gap(c.get("high"), d) for c, d in zip(cells, diff)],
                         arrayminus=[_gap(d, c.get("low")) for c, d in zip(cells, diff)]),
            customdata=[[c.get("low"), c.get("high"), c.get("n_a"), c.get("n_b")] for c in cells],
            hovertemplate="%{x} (" + label + "): %{y:+.2f}<br>95 % CI %{customdata[0]:+.2f} to %{customdata[1]:+.2f}"
                          "<br>n = %{customdata[2]} / %{customdata[3]}<extra></extra>"))
    fig.add_hline(y=0, line_dash="dash", line_color=STATUS_COLORS["fail"], annotation_text="no difference",
                  annotation_position="top left")
    sufficient = numbers.get("rule") == "sufficient"
    what = ("where it alone suffices minus where it is in no set" if sufficient
            else "on samples relying on it minus on the others'")
    n = (check or {}).get("n")
    style_figure(fig, f"{title}: share {what} ({subset} predictions" + (f", n = {n})" if n is not None else ")"),
                 "Modality", "Difference of mean share (95 % interval)", legend_title="Share", height=400)
    fig.update_yaxes(tickformat="+.0%")
    return fig


def _gap(a: Any, b: Any) -> float | None:
    return a - b if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None


def make_controlled_figure(check: Mapping[str, Any] | None, modalities: Sequence[str] | None = None, *,
                           title: str = "Controlled variant: share of the shuffled modality") -> go.Figure:
    """Mean share of each shuffled modality in the original run and in its controlled copy."""
    numbers = _numbers(check)
    results = numbers.get("modalities")
    if not isinstance(results, Mapping) or not results:
        return empty_figure("The controlled-variant test has not been run for this run.", title)
    fig = go.Figure()
    names = [pretty_modality(m) for m in results]
    for key, label, opacity in (("original_share", "original run", 0.45), ("shuffled_share", "modality shuffled", 1.0)):
        fig.add_trace(go.Bar(
            x=names, y=[(r.get(key) or {}).get("mean") for r in results.values()], name=label, opacity=opacity,
            marker_color=[modality_color(m, modalities) for m in results],
            hovertemplate="%{x}: %{y:.2f} (" + label + ")<extra></extra>"))
    bound = numbers.get("pass_below")
    if isinstance(bound, (int, float)):
        fig.add_hline(y=bound, line_dash="dash", line_color=STATUS_COLORS["pass"],
                      annotation_text=f"pass below {bound:.2f}", annotation_position="top right")
    n = (check or {}).get("n")
    style_figure(fig, f"{title} (n = {n})" if n is not None else title, "Shuffled modality",
                 "Mean share of that modality", legend_title="Run", height=380)
    fig.update_layout(barmode="group")
    fig.update_yaxes(range=[0, 1.0], tickformat=".0%")
    return fig
