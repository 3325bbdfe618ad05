"""Figures of the Robustness page, from the runs' ``robustness.json`` (``docs/ROBUSTNESS.md``).

- :func:`make_noise_curve_figure`: accuracy vs noise level, one colour per degraded modality,
  one line style per run, one marker per noise;
- :func:`make_share_noise_figure`: the modality shares of a few samples' explanations as one
  modality is degraded, one colour per modality.

Each builder takes plain data (the reports' entries) and says what is missing instead of failing.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import plotly.graph_objects as go

from ui.figures.style import empty_figure, esc, modality_colors, style_figure
from ui.labels import pretty_modality

__all__ = ["RUN_DASHES", "NOISE_SYMBOLS", "make_noise_curve_figure", "make_share_noise_figure"]

#: Line style of each chosen run, in order (then repeating).
RUN_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
#: Marker of each noise of a modality, in order.
NOISE_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x")


def make_noise_curve_figure(reports: Mapping[str, Mapping[str, Any]], runs: Sequence[str],
                            modalities: Sequence[str] | None = None, *,
                            title: str = "Accuracy as one modality is degraded") -> go.Figure:
    """Top-1 accuracy vs noise level for each chosen run and each of its swept modalities and noises:
    colour = the degraded modality, line style = the run, marker = the noise."""
    shown = [r for r in runs if r in reports]
    if not shown:
        return empty_figure("No robustness table for the chosen runs: compute them with `fusionlens robustness`.",
                            title)
    every = list(dict.fromkeys(m for r in shown for m in (reports[r].get("noise") or {})))
    colors = modality_colors(list(modalities or every))
    fig = go.Figure()
    for i, run in enumerate(shown):
        dash = RUN_DASHES[i % len(RUN_DASHES)]
        for m, per in (reports[run].get("noise") or {}).items():
            if modalities is not None and m not in modalities:
                continue
            for j, (noise, curve) in enumerate(per.items()):
                levels, acc = curve.get("levels") or [], curve.get("accuracy") or []
                name = f"{run} · {pretty_modality(m)} {noise}"
                fig.add_trace(go.Scatter(
                    x=levels, y=acc, mode="lines+markers", name=esc(name),
                    line={"color": colors.get(m, "#404040"), "dash": dash, "width": 2.5},
                    marker={"symbol": NOISE_SYMBOLS[j % len(NOISE_SYMBOLS)], "size": 8},
                    hovertemplate=(f"{esc(run)}<br>{esc(pretty_modality(m))}: {esc(noise)}<br>level %{{x:.2f}}"
                                   "<br>top-1 %{y:.3f}<extra></extra>")))
    if not fig.data:
        return empty_figure("The chosen runs have no noise sweep of these modalities.", title)
    n = sorted({int(reports[r].get("n") or 0) for r in shown})
    suffix = f" (n = {n[0]})" if len(n) == 1 else f" (n = {', '.join(map(str, n))})"
    style_figure(fig, title + suffix, "Noise level (0 = clean, 1 = strongest)", "Top-1 accuracy", height=460,
                 legend_title="Run · modality noise")
    fig.update_yaxes(range=[-0.02, 1.02])
    fig.update_xaxes(range=[-0.02, 1.02])
    return fig


def make_share_noise_figure(entry: Mapping[str, Any] | None, degraded: str, modalities: Sequence[str], *,
                            title: str | None = None) -> go.Figure:
    """Mean MM-SHAP share of each modality vs the noise level of ``degraded`` (one ``shares`` entry of
    a report: ``{noise: {"levels", "n", "shares"}}``), each point's n in its hover."""
    title = title or f"Modality shares as {pretty_modality(degraded)} is degraded"
    if not isinstance(entry, Mapping) or not entry:
        return empty_figure("No explanations of perturbed inputs for this modality.", title)
    noise, data = next(iter(entry.items()))
    levels, counts = data.get("levels") or [], data.get("n") or []
    shares = data.get("shares") or {}
    colors = modality_colors(list(modalities))
    fig = go.Figure()
    for m in modalities:
        values = shares.get(m)
        if values is None:
            continue
        fig.add_trace(go.Scatter(
            x=levels, y=values, mode="lines+markers", name=esc(pretty_modality(m)), customdata=counts,
            line={"color": colors[m], "width": 3, "dash": "solid" if m == degraded else "dot"},
            hovertemplate=f"{esc(pretty_modality(m))}<br>level %{{x:.2f}}<br>share %{{y:.3f}}"
                          "<br>n = %{customdata}<extra></extra>"))
    if not fig.data:
        return empty_figure("No share was computed (every explained prediction was flat).", title)
    n = sorted(set(int(c) for c in counts))
    style_figure(fig, f"{title} ({esc(noise)}; n = {', '.join(map(str, n))})",
                 f"{pretty_modality(degraded)} noise level", "Mean MM-SHAP share", height=420,
                 legend_title="Modality")
    fig.update_yaxes(range=[-0.02, 1.02])
    return fig
