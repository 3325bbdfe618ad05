"""An adaptive run's decisions for one item, as the Sample explorer and the Efficiency page show them."""
from __future__ import annotations

from typing import Any

import streamlit as st

from core.adaptive import sample_decisions
from ui import figures as F
from ui import loaders as L

__all__ = ["segment_spans", "show_decisions"]


def segment_spans(segments: int) -> list[str]:
    """Each segment's part of the item, in percent of its length (the policy cuts the encoder's input, which
    spans the whole clip, into equal parts)."""
    return [f"{100 * s / segments:.0f}\u2013{100 * (s + 1) / segments:.0f} %" for s in range(segments)]


def show_decisions(run: Any, sample_id: str, *, key: str) -> bool:
    """The decision timeline of ``sample_id`` under an adaptive ``run`` (segments x modalities, used or
    skipped) with a caption; False (and nothing shown) for another run."""
    table = L.decisions(run)
    if table is None:
        return False
    cfg = run.config.get("adaptive", {})
    policy, always = list(cfg.get("policy", [])), list(cfg.get("always_on", []))
    one = sample_decisions(table, sample_id, policy)
    segments = int(cfg.get("segments", len(one.columns) or 1))
    st.plotly_chart(F.make_decision_timeline_figure(one, always_on=always, spans=segment_spans(segments),
                                                    title="What the policy ran, per segment"), key=key)
    if one.empty:
        st.caption("The run stored no decisions for this item (decisions are stored for its test split).")
    else:
        used = int(one.to_numpy().sum())
        st.caption(f"The policy ran {used} of {one.size} (segment, modality) encoder passes for this item"
                   + (f"; {', '.join(always)} always run on the whole item" if always else "") + ".")
    return True
