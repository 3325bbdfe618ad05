"""Modality contributions (MM-SHAP): per-class shares for all / correct / incorrect predictions."""
from __future__ import annotations

import streamlit as st

from core.explain import (
    ADAPTIVE_EXPLAINED,
    FLAT_PROB_THRESHOLD,
    class_interaction_table,
    class_share_table,
    game_share_rows,
)
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
    # a run with no MM-SHAP explanation but every prediction's modality game opens on the exact shares
    opens_exact = shares_by_run[run.name].empty and L.modality_game(run)[1]
    meaning = c4.radio("Share", list(F.SHARE_MEANINGS), key="contrib_meaning", horizontal=True,
                       index=list(F.SHARE_MEANINGS).index("exact" if opens_exact else "mmshap"),
                       format_func={"mmshap": "MM-SHAP", "exact": "Exact"}.get)
st.caption(f"{F.SHARE_MEANINGS['mmshap']}. {F.SHARE_MEANINGS['exact']}. A prediction that barely depends on its "
           f"inputs (sum of |phi| or |f(x) - base| below {FLAT_PROB_THRESHOLD:g} of the probability) has no share.")


def _explained(r, samples):
    """The explained samples' rows with their predictions (label, pred, correct)."""
    preds = r.predictions[["id", "label", "pred", "correct"]].assign(id=lambda f: f["id"].astype(str))
    return samples.merge(preds, on="id", how="inner")


def _rows(r, samples):
    """(per-sample rows, what they are, whether they are every test prediction's modality game): the stored
    modality game of every test prediction for the exact shares when it is current, else the explanations."""
    game, current, problem = L.modality_game(r)
    if problem is not None:
        W.show_error(problem, "The modality game of every prediction cannot be read")
    blame_cmd = build_commands(ctx.experiment, r.name, root=ctx.root)["blame"]
    if meaning == "exact" and game is not None and current:
        rows = game_share_rows(game).assign(id=lambda f: f["id"].astype(str))
        return rows, (f"Exact modality shares of **every test prediction** ({len(rows):,}): the modality game "
                      "stored by the blame step (each modality wholly masked, 2^M coalitions, no estimate)"), True
    if meaning == "exact" and game is not None:
        st.caption(f"The stored modality game is of an earlier training of this run: `{blame_cmd}` computes it "
                   "again. Shown meanwhile: the explained samples' exact shares.")
    if samples.empty:
        return samples, "", False
    rows = _explained(r, samples)
    return rows, f"{len(rows):,} explained samples of {len(r.predictions):,}", False


columns = st.columns(len(runs)) if len(runs) > 1 else [st.container()]
for col, r in zip(columns, runs):
    with col:
        if len(runs) > 1:
            st.markdown(f"#### `{r.name}`")
        if r.config.get("strategy") == "adaptive":  # its shares are of the prediction given the policy's decisions
            st.caption(f"Adaptive run: each explanation is of {ADAPTIVE_EXPLAINED}.")
        samples = shares_by_run[r.name]
        joined, source, every = _rows(r, samples)
        if not len(joined) and samples.empty:
            _no_explanations(r)
            if meaning == "mmshap" and L.modality_game(r)[1]:
                st.caption("Every test prediction has exact modality shares and interactions: choose "
                           "**Share: Exact** above.")
            continue
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
        st.caption(f"{source}; showing {len(joined_shown):,} in {len(classes)} classes")
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
        exact_word = "exact " if every else ""
        W.show_figure(F.make_share_distribution_figure(joined_shown, r.modalities, kind=kind,
                                                       title=f"Per-sample {exact_word}modality share by class"),
                      key=f"dist_{r.name}")
        st.plotly_chart(F.make_share_correct_vs_incorrect_figure(
            joined, r.modalities, title=f"{'Exact m' if every else 'M'}odality share: correct vs incorrect predictions"),
            key=f"cvi_{r.name}")
        if not samples.empty:  # both meanings side by side: the explained samples (they have MM-SHAP shares)
            explained = joined_shown if not every else _explained(r, samples)
            explained = explained[explained["label"].isin(classes)]
            if len(explained):
                st.plotly_chart(F.make_share_meanings_figure(explained, r.modalities), key=f"meanings_{r.name}")
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
