"""Efficiency: accuracy against compute for every run (Pareto front), the reference's table of the adaptive
runs, and what an adaptive run chooses to run, per class and per item."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.adaptive import TARGET_DROP, TARGET_SAVING, class_selection_rates, is_adaptive, pareto_front
from core.errors import cli_command
from ui import figures as F
from ui import loaders as L
from ui import widgets as W
from ui.context import context, set_sample
from ui.decisions import show_decisions
from ui.viewers import show_sample

ctx = context("efficiency")
W.page_header("Efficiency", ctx, "accuracy against GFLOPs per item, and what an adaptive run chooses to run")

if not ctx.experiment or not ctx.runs:
    W.empty_no_runs(ctx)
    st.stop()

results, problems = L.results_table(ctx)
W.unreadable_runs(problems)

# ---------------------------------------------------------------- every run: accuracy against compute
front = pareto_front(results) if not results.empty else pd.Series(dtype=bool)
W.show_figure(F.make_pareto_figure(results, front, highlight=[ctx.run or ""]), key="eff_pareto")
if not results.empty:
    st.caption("A run is on the Pareto front when no other run costs no more GFLOPs per item and is no less "
               "accurate (one of them strictly). An adaptive run's GFLOPs are its expected cost: each modality's "
               "encoder cost times the share of segments the policy runs it in.")
    on_front = results[front][["run", "strategy", "modalities", "top1", "gflops"]].sort_values("gflops")
    st.dataframe(on_front, hide_index=True, width="stretch", column_config={
        "top1": st.column_config.NumberColumn("Top-1", format="%.3f"),
        "gflops": st.column_config.NumberColumn("GFLOPs per item", format="%.4g")})

# ---------------------------------------------------------------- the reference's table
st.subheader("Adaptive runs against every modality alone and fused")
selected = L.load_run(ctx, ctx.run) if ctx.run else None  # a broken run: its problem and fix
adaptive = selected.name if selected is not None and is_adaptive(selected) else None
table = L.efficiency_table(ctx, adaptive)
if table.empty:
    st.info("**No adaptive run in this experiment.** Add a `[fusion.adaptive]` table to the experiment file "
            "(`policy`, `segments`, `cost`; see the README), then train it:", icon=":material/info:")
    W.show_commands(f"{cli_command()} train {ctx.experiment}")
    st.stop()
shown = table.copy()
sel_cols = [c for c in shown.columns if c.startswith("sel_")]
st.dataframe(shown[["method", "run", "top1", *sel_cols, "gflops", "saving", "top1_drop", "meets_target"]],
             hide_index=True, width="stretch", column_config={
                 "method": st.column_config.TextColumn("Method"),
                 "run": st.column_config.TextColumn("Run"),
                 "top1": st.column_config.NumberColumn("Top-1", format="percent"),
                 **{c: st.column_config.NumberColumn(f"{c[4:]} selected", format="percent") for c in sel_cols},
                 "gflops": st.column_config.NumberColumn("GFLOPs per item", format="%.4g"),
                 "saving": st.column_config.NumberColumn("GFLOPs saved", format="percent",
                                                         help="1 - GFLOPs / the best all-modality fusion's"),
                 "top1_drop": st.column_config.NumberColumn("Top-1 drop", format="percent",
                                                            help="the best all-modality fusion's top-1 minus this"),
                 "meets_target": st.column_config.CheckboxColumn(
                     "Target met", help=f"at least {TARGET_SAVING:.0%} fewer GFLOPs than the best all-modality "
                                        f"fusion at no more than {100 * TARGET_DROP:g} point lower top-1"),
             })
st.caption("Selection rate: the share of segments in which the modality's encoder runs (100 % for a modality "
           "that runs on every item). Several adaptive rows: one per factor on the cost weights "
           "(`[fusion.adaptive] cost_scales`), the trade-off between accuracy and compute.")

# ---------------------------------------------------------------- one adaptive run
if adaptive is None:
    st.info("Pick an adaptive run in the sidebar to see its selection rates per class and its decisions per item.",
            icon=":material/touch_app:")
    st.stop()
decisions = L.decisions(selected)
if decisions is None:
    st.stop()
st.subheader(f"What `{selected.name}` runs")
W.show_figure(F.make_selection_rate_figure(class_selection_rates(selected, decisions)), key="eff_rates")

ids = selected.predictions["id"].astype(str).tolist()
default = ids.index(ctx.sample) if ctx.sample in ids else 0
sample_id = st.selectbox("Item", ids, index=default, key="eff_sample",
                         on_change=lambda: set_sample(st.session_state.get("eff_sample")),
                         help="A test item of the run; the Sample explorer opens the same one.")
row = selected.predictions[selected.predictions["id"].astype(str) == sample_id].iloc[0]
verdict = ":green[correct]" if bool(row["correct"]) else ":red[wrong]"
st.markdown(f"True class **{row['label']}** · predicted **{row['pred']}** ({row['confidence']:.1%}) · {verdict}")
left, right = st.columns([1, 1], gap="large")
with left:
    show_decisions(selected, sample_id, key="eff_timeline")
with right:
    loaded = L.dataset(ctx, quiet=True)
    if loaded is None:
        st.info("The dataset of this experiment is not available, so the inputs cannot be shown.")
    else:
        policy = selected.config.get("adaptive", {}).get("policy", [])
        show_sample(ctx, sample_id, {m: loaded[0].modalities.get(m) for m in policy}, None)
