"""Modality contributions (MM-SHAP): per-class shares for all / correct / incorrect predictions."""
from __future__ import annotations

import streamlit as st

from core.explain import ADAPTIVE_EXPLAINED, FLAT_PROB_THRESHOLD, class_interaction_table, class_share_table
from ui import figures as F
from ui import loaders as L
from ui import tables as T
from ui import widgets as W
from ui.commands import build_commands
from ui.context import context
from ui.trust import render_trust_panel

ctx = context("contributions")
W.page_header("Modality contributions", ctx, "MM-SHAP share of each modality in the predictions")

run = L.need_run(ctx)
if run is None:
    st.stop()

runs = [run]
if ctx.run2:
    other = L.load_run(ctx, ctx.run2)
    if other is not None:
        runs.append(other)


def _no_explanations(r) -> None:
    if L.explanation_problem(ctx, r.path.name) is not None:
        return  # damaged, not absent: the error with its fix is already on the page
    cmd = build_commands(ctx.experiment, r.name, root=ctx.root)["explain"]
    st.info(f"**No explanations yet** for `{r.name}`: compute them with", icon=":material/info:")
    st.code(cmd, language="bash")


shares_by_run = {r.name: L.shares(ctx, r) for r in runs}
all_classes = list(run.classes)

with st.container(border=True, key="fl_controls_contributions"):  # hidden while presenting (ui.presentation)
    c1, c2, c3, c4 = st.columns([2, 1.2, 1, 1.3])
    default_classes = all_classes if len(all_classes) <= 12 else []
    picked = c1.multiselect("Classes", all_classes, default=default_classes, key="contrib_classes",
                            placeholder=f"the {min(12, len(all_classes))} most frequent classes")
    subsets = c2.multiselect("Predictions", ["all", "correct", "incorrect"], default=["all", "correct", "incorrect"],
                             format_func=str.capitalize, key="contrib_subsets") or ["all"]
    kind = c3.radio("Distribution", ["box", "violin"], horizontal=True, key="contrib_kind", format_func=str.capitalize)
    meaning = c4.radio("Share", list(F.SHARE_MEANINGS), key="contrib_meaning", horizontal=True,
                       format_func={"mmshap": "MM-SHAP", "exact": "Exact"}.get)
st.caption(f"{F.SHARE_MEANINGS['mmshap']}. {F.SHARE_MEANINGS['exact']}. A prediction that barely depends on its "
           f"inputs (sum of |phi| or |f(x) - base| below {FLAT_PROB_THRESHOLD:g} of the probability) has no share.")

columns = st.columns(len(runs)) if len(runs) > 1 else [st.container()]
for col, r in zip(columns, runs):
    with col:
        if len(runs) > 1:
            st.markdown(f"#### `{r.name}`")
        if r.config.get("strategy") == "adaptive":  # its shares are of the prediction given the policy's decisions
            st.caption(f"Adaptive run: each explanation is of {ADAPTIVE_EXPLAINED}.")
        samples = shares_by_run[r.name]
        if samples.empty:
            _no_explanations(r)
            continue
        preds = r.predictions[["id", "label", "pred", "correct"]].assign(id=lambda f: f["id"].astype(str))
        joined = samples.merge(preds, on="id", how="inner")
        if joined.empty:
            st.warning("The stored explanations name no sample of this run's predictions: recompute them with "
                       f"`{build_commands(ctx.experiment, r.name, root=ctx.root)['explain']}`.")
            continue
        classes = picked or joined["label"].value_counts().index[:12].tolist()
        joined_shown = joined[joined["label"].isin(classes)]
        if joined_shown.empty:
            st.warning("**No explained sample in the selected classes.** Pick other classes.",
                       icon=":material/filter_alt_off:")
            continue
        st.caption(f"{len(joined):,} explained samples of {len(r.predictions):,}; "
                   f"showing {len(joined_shown):,} in {len(classes)} classes")
        # the per-class share table of core.explain (the CLI's explain-table), drawn here
        table = class_share_table(joined_shown, r.modalities, classes=[c for c in all_classes if c in classes],
                                  overall=False, share=meaning)
        if int(table["n_flat"].sum()):
            st.caption(f"{int(table['n_flat'].sum()):,} of these predictions have **no share: the prediction barely "
                       "depends on its inputs**; they are left out of the means.")
        horizontal = len(runs) > 1 or len(classes) > 8
        bar_title = "Mean exact modality share per class" if meaning == "exact" else "Mean modality share per class"
        st.plotly_chart(F.make_modality_share_bar_figure(table, r.modalities, subsets=subsets, horizontal=horizontal,
                                                         title=bar_title), key=f"bar_{r.name}")
        st.markdown("**Mean share per class** (the reference's table: all, correct and incorrect predictions; "
                    "in brackets the 95 % interval of the mean over the class's samples, none for one sample)")
        st.dataframe(T.share_table_display(table, r.modalities), width="stretch")  # "/": no such prediction
        W.show_figure(F.make_share_distribution_figure(joined_shown, r.modalities, kind=kind),
                      key=f"dist_{r.name}")
        st.plotly_chart(F.make_share_correct_vs_incorrect_figure(joined, r.modalities), key=f"cvi_{r.name}")
        st.plotly_chart(F.make_share_meanings_figure(joined_shown, r.modalities), key=f"meanings_{r.name}")
        if len(r.modalities) >= 2:  # the modality game's pairwise interactions (core.explain)
            st.markdown("**Modality interactions**: how much of the prediction only exists when the two modalities "
                        "are seen together (above 0: more together than apart; below 0: either one alone suffices)")
            inter = class_interaction_table(joined_shown, r.modalities,
                                            classes=[c for c in all_classes if c in classes], overall=False)
            unit = F.output_unit(joined["output_kind"].iloc[0] if "output_kind" in joined.columns else None)
            st.plotly_chart(F.make_interaction_figure(inter, r.modalities, subsets=subsets, unit=unit),
                            key=f"interactions_{r.name}")
            st.dataframe(T.interaction_table_display(inter, r.modalities), width="stretch")
            st.caption("Mean [95 % Student-t interval] (samples): flat predictions and samples explained before "
                       "interactions were kept are left out.")

render_trust_panel(ctx, runs)  # pass / warn / fail of each check, from <run>/trust.json (docs/TRUST.md)
