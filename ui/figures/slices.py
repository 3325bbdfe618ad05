"""Figures of the Slice finder: each slice's error rate, with its interval, against the overall one."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ui.figures.style import CORRECTNESS_COLORS, empty_figure, esc, esc_values, short_label, style_figure

#: bar colours: a significant slice in the colour of errors, the others grey
SLICE_COLORS: dict[str, str] = {"significant": CORRECTNESS_COLORS["Incorrect"], "not significant": "#95A5A6"}


def make_slice_figure(table: pd.DataFrame, *, title: str = "Error rate per slice") -> go.Figure:
    """Horizontal bars of each slice's error rate (rows of :func:`core.slices.find_slices`, best first
    at the top) with its Wilson 95 % interval, its size and errors as text, and the overall error rate
    as a dashed line; significant slices (q < alpha) in red, the others grey."""
    if table is None or table.empty:
        reason = (table.attrs.get("reason") if table is not None else None) or "no slice found"
        return empty_figure(f"No slice to draw: {reason}.", title)
    rows = table.reset_index(drop=True)
    labels = [esc(f"#{int(r)} {short_label(d, 60)}") for r, d in zip(rows["rank"], rows["description"])]
    overall = float(rows["overall_error_rate"].iloc[0])
    fig = go.Figure()
    for name, flag in (("significant", True), ("not significant", False)):
        part = rows[rows["significant"].astype(bool) == flag]
        if part.empty:
            continue
        idx = part.index.to_list()
        fig.add_trace(go.Bar(
            y=[labels[i] for i in idx], x=part["error_rate"], orientation="h", name=name.capitalize(),
            marker_color=SLICE_COLORS[name],
            error_x={"type": "data", "symmetric": False, "array": part["ci_high"] - part["error_rate"],
                     "arrayminus": part["error_rate"] - part["ci_low"], "color": "#333", "thickness": 1.5},
            text=[f"{e}/{s}" for e, s in zip(part["errors"], part["size"])], textposition="inside",
            insidetextanchor="start",
            customdata=list(zip(esc_values(part["description"]), part["size"], part["errors"], part["ci_low"],
                                part["ci_high"], part["lift"], part["q_value"])),
            hovertemplate=("<b>%{customdata[0]}</b><br>%{customdata[2]} errors in %{customdata[1]} samples<br>"
                           "Error rate %{x:.1%} (95 % interval %{customdata[3]:.1%} to %{customdata[4]:.1%})<br>"
                           "Lift %{customdata[5]:.2f} · q-value %{customdata[6]:.2g}<extra></extra>"),
        ))
    fig.add_vline(x=overall, line_dash="dash", line_color="#333",
                  annotation_text=esc(f"overall {overall:.1%}"), annotation_position="top")
    height = 140 + 44 * len(rows)
    style_figure(fig, title, "Error rate (bar: errors / samples; whisker: Wilson 95 % interval)", "Slice",
                 height=height, legend_title=f"q-value < {table.attrs.get('alpha', 0.05):g}")
    fig.update_xaxes(range=[0, 1.02], tickformat=".0%")
    fig.update_yaxes(categoryorder="array", categoryarray=labels[::-1], automargin=True)
    fig.update_layout(barmode="overlay", bargap=0.25)
    return fig
