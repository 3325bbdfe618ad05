"""Sample explorer: filter the predictions, select one, see its inputs, contributions and top-5."""
from __future__ import annotations

import math

import streamlit as st

from core.errors import FusionLensError
from core.explain import describe_estimate, flat_threshold, interaction_column, interaction_pairs
from ui import figures as F
from ui import loaders as L
from ui import precomputed as P
from ui import queries as Q
from ui import widgets as W
from ui.commands import build_commands
from ui.context import K_SELECTION, context, selection
from ui.decisions import show_decisions
from ui.labels import pretty_modality
from ui.viewers import show_sample

def _interactions(interactions, output_kind) -> None:
    """The modality interactions of one prediction, each with its reading."""
    small = flat_threshold(output_kind)
    st.markdown(f"**Modality interactions** ({F.output_unit(output_kind)}): the part of the prediction that only "
                "exists when both are seen together")
    for (a, b), value in interactions.items():
        reading = "about 0: they add up" if abs(value) < small else \
            "more together than apart" if value > 0 else "either one alone already gives much of it"
        st.markdown(f"- {pretty_modality(a)} \u00d7 {pretty_modality(b)}: **{value:+.4f}**, {reading}")


def _exact_of_every_prediction(run, sample_id) -> None:
    """A sample with no MM-SHAP explanation: its exact modality shares and interactions from the modality game
    the blame step stores for every test prediction (when current)."""
    game, current, _ = L.modality_game(run)
    rows = None if game is None or not current else game[game["id"].astype(str) == str(sample_id)]
    if rows is None or not len(rows):
        return
    r = rows.iloc[0]
    mods = list(run.modalities)
    if bool(r["flat"]):
        st.warning("**No share: the prediction barely depends on its inputs** (its modality game moves it by less "
                   f"than {flat_threshold('pred_prob'):g}).", icon=":material/do_not_disturb_on:")
        return
    st.plotly_chart(F.make_sample_share_meanings_figure(
        {m: float("nan") for m in mods}, {m: float(r[f"exact_share_{m}"]) for m in mods}, mods,
        title="Modality shares: exact (MM-SHAP not computed)"), key="sample_exact_shares")
    st.caption(f"{F.SHARE_MEANINGS['exact']}: from the modality game the blame step stores for every test "
               "prediction (each modality wholly masked, 2^M coalitions: exact, no estimate).")
    pairs = {(a, b): float(r[interaction_column(a, b)]) for a, b in interaction_pairs(mods)}
    if pairs:
        _interactions(pairs, "pred_prob")


ctx = context("explorer")
W.page_header("Sample explorer", ctx, "every test prediction of the run, one sample in detail")

run = L.need_run(ctx)
if run is None:
    st.stop()

view = L.predictions_view(ctx, run)
has_shares = view["dominant"].notna().any()
loaded = L.dataset(ctx, quiet=True)
modality_kinds = loaded[0].modalities if loaded is not None else {}
# the columns of modalities whose kind keeps readable text in the manifest: listed and searched
text_cols = [m for m in Q.text_modalities(modality_kinds, run.modalities) if m in view.columns]

# ---------------------------------------------------------------- a selection opened from another page
picked = selection()
if picked is not None:
    chip, clear = st.columns([4, 1.1], vertical_alignment="center")
    elsewhere = picked.get("experiment") not in (None, ctx.experiment)
    chip.info(f"**Selection: {picked['name']}** ({len(picked['ids']):,} samples)"
              + (f", made under experiment `{picked['experiment']}`" if elsewhere else "")
              + ". The table shows only these samples, with the filters below.", icon=":material/filter_alt:")
    clear.button("Clear selection", key="ex_clear_selection", icon=":material/close:",
                 on_click=lambda: st.session_state.pop(K_SELECTION, None))

# ---------------------------------------------------------------- filters
with st.container(border=True, key="fl_controls_explorer"):  # hidden while presenting (ui.presentation)
    r1 = st.columns([1.2, 1.2, 1.45, 1.15])
    true_classes = r1[0].multiselect("True class", run.classes, key="ex_true", placeholder="any")
    pred_classes = r1[1].multiselect("Predicted class", run.classes, key="ex_pred", placeholder="any")
    correctness = r1[2].segmented_control("Prediction", ["All", "Correct", "Incorrect"], default="All",
                                          key="ex_correct") or "All"
    confidence = r1[3].slider("Confidence", 0.0, 1.0, (0.0, 1.0), 0.01, key="ex_conf")
    r2 = st.columns([2.6, 2.2])
    search = r2[0].text_input("Search", key="ex_search", placeholder="id, class or text (" + ", ".join(
        text_cols or ["no text modality"]) + ")")
    dominant = r2[1].multiselect(
        "Dominant modality", run.modalities, key="ex_dominant", disabled=not has_shares,
        placeholder="any" if has_shares else "needs explanations",
        help="The modality with the largest MM-SHAP share of the prediction.")

filtered = Q.filter_predictions(
    view, true_classes=true_classes, pred_classes=pred_classes, correctness=correctness, confidence=confidence,
    dominant=dominant, search=search, search_columns=["id", "label", "pred", *text_cols])
if picked is not None:
    filtered = filtered[filtered["id"].isin(set(picked["ids"]))]

left, right = st.columns([1.05, 1], gap="large")
player = st.container()  # the clip player, full width below the columns (in the right one its pictures were tiny)
with left:
    st.markdown(f"**{len(filtered):,} of {len(view):,} test samples**")
    if filtered.empty:
        st.warning("**No sample matches these filters.** Widen the confidence range, remove a class or clear "
                   "the search box.", icon=":material/filter_alt_off:")
    else:
        columns = ["id", "label", "pred", "confidence", "correct", *(["dominant"] if has_shares else []), *text_cols]
        shown = filtered[columns].reset_index(drop=True)
        if "dominant" in shown.columns:
            shown["dominant"] = shown["dominant"].fillna("—")  # not explained yet
        # a new filter is a new table, so an old row selection cannot point at another sample
        table_key = "ex_table_" + str(abs(hash((tuple(true_classes), tuple(pred_classes), correctness, confidence,
                                                search, tuple(dominant), picked and picked["name"]))))
        st.dataframe(
            shown, hide_index=True, width="stretch", height=min(560, 38 + 35 * len(shown)), key=table_key,
            on_select=W.on_row_select(table_key, shown["id"].astype(str).tolist()), selection_mode="single-row",
            column_config={
                "id": st.column_config.TextColumn("Sample"),
                "label": st.column_config.TextColumn("True class"),
                "pred": st.column_config.TextColumn("Predicted"),
                "confidence": st.column_config.ProgressColumn("Confidence", format="%.2f", min_value=0, max_value=1),
                "correct": st.column_config.CheckboxColumn("Correct"),
                "dominant": st.column_config.TextColumn("Dominant"),
            },
        )
        st.caption("Select a row to see the sample in detail.")
        W.download_selection(filtered, f"{ctx.experiment}-{run.name}-" + (picked["name"] if picked else "explorer"),
                             "ex_download", manifest=L.sample_columns(ctx))


with right:
    sample_id = ctx.sample
    row = None
    if sample_id:
        try:
            row = Q.require_sample(run.predictions, sample_id)
        except FusionLensError as exc:
            st.warning(f"{exc.problem}. Pick a sample in the table.", icon=":material/help:")
    if row is None:
        if not sample_id:
            st.info("**No sample selected.** Select a row in the table, a point on the **Embeddings** page, or a "
                    "cell of the confusion matrix on **Misclassifications**.", icon=":material/touch_app:")
        st.stop()

    verdict = ":green[correct]" if bool(row["correct"]) else ":red[wrong]"
    st.subheader(f"Sample `{sample_id}`")
    st.markdown(f"True class **{row['label']}** · predicted **{row['pred']}** ({row['confidence']:.1%}) · {verdict}")
    show_decisions(run, sample_id, key="ex_decisions")  # an adaptive run: what its policy ran for this sample
    explanation, damaged = None, None
    try:
        explanation = P.stored_explanation(run.path, sample_id)
    except FusionLensError as exc:  # damaged stored explanations: say so, never "not explained yet"
        damaged = exc
    if loaded is None:
        st.info("The dataset of this experiment is not available, so the inputs cannot be shown.")
    else:  # each modality drawn by its kind's viewer, with its contributions when explained
        show_sample(ctx, sample_id, {m: modality_kinds.get(m) for m in run.modalities}, explanation, player=player)

    if explanation is not None:
        if explanation.flat:  # core.explain.is_flat: noise, not a share
            st.warning(f"**No share: the prediction barely depends on its inputs** (sum of |phi| "
                       f"{explanation.sum_abs_phi:.2g}, |f(x) - base| "
                       f"{abs(explanation.full_value - explanation.base_value):.2g}, both meanings need "
                       f"{flat_threshold(explanation.output_kind):g} or more).", icon=":material/do_not_disturb_on:")
        else:
            st.plotly_chart(F.make_sample_share_meanings_figure(explanation.shares, explanation.exact_shares,
                                                                run.modalities, stderr=explanation.share_stderr),
                            key="sample_shares")
            errors = ", ".join(f"{pretty_modality(m)} ±{1.96 * v:.1%}" for m, v in
                               (explanation.share_stderr or {}).items() if math.isfinite(v))
            st.caption(f"{F.SHARE_MEANINGS['mmshap']}. {F.SHARE_MEANINGS['exact']}. MM-SHAP shares are estimated "
                       f"({describe_estimate(explanation.method, explanation.settings)}): "
                       + (f"95 % interval of the estimate {errors}." if errors else "no standard error stored."))
            if explanation.interactions:
                _interactions(explanation.interactions, explanation.output_kind)
            if explanation.interactions is None and len(explanation.modalities) > 1:
                st.caption("Interactions: not computed (this explanation was stored before they were kept).")
        st.caption(f"Explained class: {explanation.explained_class} · output {explanation.output_kind} · "
                   f"method {explanation.method}")
        if explanation.settings.get("explained"):  # an adaptive run: explained given its policy's decisions
            st.caption(f"Explained: {explanation.settings['explained']}.")
    elif damaged is not None:
        W.show_error(damaged, "The stored explanation of this sample cannot be read")
    else:
        _exact_of_every_prediction(run, sample_id)
        st.info("**No MM-SHAP explanation for this sample yet** (token, patch or tube values).", icon=":material/info:")
        if st.button("Explain this sample now", key="explain_now", icon=":material/bolt:"):
            bar = st.progress(0.0, text="Explaining…")
            try:
                P.explain_now(L.shared_run(run), sample_id, progress=lambda d, t: bar.progress(
                    min(1.0, d / max(t, 1)), text=f"Explaining… {d}/{t} model evaluations"))
                st.rerun()
            except FusionLensError as exc:
                W.show_error(exc, "This sample could not be explained")

    st.plotly_chart(F.make_topk_figure(row), key="sample_topk")
    # which modality pushed this prediction toward the wrong (or the runner-up) class
    blame, _, blame_damaged = L.blame(run)
    blamed = None if blame is None else blame[blame["id"].astype(str) == str(sample_id)]
    if blamed is not None and len(blamed):
        st.plotly_chart(F.make_sample_blame_figure(blamed.iloc[0], run.modalities), key="sample_blame")
        st.caption("Each modality's exact Shapley value of the logit margin (rival class - true class; the rival "
                   "is the prediction when wrong, the runner-up when right): + pushed toward the rival, - toward "
                   "the true class. Summed per class on **Misclassifications**.")
    elif blame_damaged is not None:
        st.caption(f"The stored blame of this run cannot be read: {blame_damaged}")
    elif not bool(row["correct"]):
        st.caption(f"Which modality misled the model here: compute the run's blame on **Misclassifications** or with "
                   f"`{build_commands(ctx.experiment, ctx.run, root=ctx.root)['blame']}`.")

# the page's full width: in the detail column, long run names pushed columns out of view
st.markdown(f"**The same sample under the other runs** · `{sample_id}`")
others = {r: p for r, p in L.all_predictions(ctx).items() if r != run.name}
across = Q.sample_across_runs(others, sample_id)
if across.empty:
    st.caption("No other run has this sample.")
else:
    st.dataframe(across, hide_index=True, width="stretch", height=min(600, 38 + 35 * len(across)), column_config={
        "run": st.column_config.TextColumn("Run", width="large"),
        "pred": st.column_config.TextColumn("Predicted", width="medium"),
        "confidence": st.column_config.ProgressColumn("Confidence", format="%.2f", min_value=0, max_value=1,
                                                      width="medium"),
        "correct": st.column_config.CheckboxColumn("Correct", width="small"),
        "true class rank": st.column_config.NumberColumn(
            "True class rank", format="%d", width="small",
            help="Where the true class is in the run's top 5 (1 = predicted); empty: not in the top 5"),
    })
