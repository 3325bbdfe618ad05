"""Misclassifications: confusion matrix with drill-down, confused pairs, precision/recall, shares, and which
modality misled the model (modality blame for errors)."""
from __future__ import annotations

import streamlit as st

from core.explain import blame_sentences, blame_table
from ui import figures as F
from ui import loaders as L
from ui import tables as T
from ui import widgets as W
from ui.blame import blame_caption, blame_display_table
from ui.commands import build_commands
from ui.context import context, open_in_explorer
from ui.figures.blame import blame_classes
from ui.labels import pretty_modality

ctx = context("misclassifications")
W.page_header("Misclassifications", ctx, "where the model is wrong, and which samples")

run = L.need_run(ctx)
if run is None:
    st.stop()

confusion = run.metrics.get("confusion") or {}
labels, matrix = confusion.get("labels", []), confusion.get("matrix", [])
view = L.predictions_view(ctx, run)
n_wrong = int((~view["correct"].astype(bool)).sum())
c1, c2, c3 = st.columns(3)
c1.metric("Test samples", f"{len(view):,}")
c2.metric("Misclassified", f"{n_wrong:,} ({n_wrong / max(len(view), 1):.1%})")
c3.metric("Macro-F1", f"{run.metrics.get('macro_f1', float('nan')):.3f}")

many = len(labels) > 20
t1, t2 = st.container(key="fl_controls_misclassifications").columns(2)  # hidden while presenting
normalize = t1.toggle("Normalise rows (share of each true class)", key="mis_norm")
errors_only = t2.toggle("Errors only (leave the diagonal blank)", value=many, key="mis_errors",
                        help="With many classes the correct predictions dominate the colour scale.")
left, right = (st.container(), st.container()) if many else st.columns([1.35, 1], gap="large")
with left:
    shown_classes: list[str] | None = None
    try:
        # many classes: the 40 taking part in the most errors first, "show all" and a search for the rest
        shown_classes = W.class_filter("mis_classes", T.top_error_classes(labels, matrix), default_n=40,
                                       ranking="most confused (most errors as true or predicted class)")
        fig = F.make_confusion_figure(labels, matrix, normalize=normalize, hide_diagonal=errors_only,
                                      classes=shown_classes)
    except Exception as exc:  # a matrix from another format version
        W.show_error(exc, "The confusion matrix of this run cannot be drawn")
        fig = None
    cell_event = None
    if fig is not None:
        subset = "" if shown_classes is None or len(shown_classes) == len(labels) else \
            f"_{abs(hash(tuple(shown_classes)))}"
        cell_event = W.show_figure(fig, key=f"mis_confusion_{normalize}_{errors_only}{subset}", on_select="rerun",
                                   selection_mode="points")
        st.caption("Click a cell to list its samples." + (
            f" The last column, {F.OTHER_CLASSES}, counts predictions into the classes not shown."
            if F.OTHER_CLASSES in (fig.data[0].x or ()) else ""))

# which cell: a click on the matrix, else the pickers (also reachable without a mouse)
clicked = None
points = (cell_event.selection.points if cell_event is not None and cell_event.selection else []) or []
if points:
    p = points[0]
    cd = p.get("customdata")
    clicked = (str(cd[0]), str(cd[1])) if cd else (str(p.get("y")), str(p.get("x")))

pairs = T.confused_pairs_table(labels, matrix, top=10) if labels else None
with right:
    st.markdown("#### Samples of a cell")
    classes = list(run.classes)
    if clicked and clicked != st.session_state.get("_mis_click") and all(c in classes for c in clicked):
        st.session_state["mis_true"], st.session_state["mis_pred"] = clicked  # a new click moves the pickers
    st.session_state["_mis_click"] = clicked
    if st.session_state.get("mis_true") not in classes or st.session_state.get("mis_pred") not in classes:
        has_pairs = pairs is not None and len(pairs) > 0
        first = (pairs.iloc[0]["true"], pairs.iloc[0]["pred"]) if has_pairs else (classes[0],) * 2
        st.session_state["mis_true"], st.session_state["mis_pred"] = first  # the most confused pair
    p1, p2 = st.columns(2)
    true_cls = p1.selectbox("True class", classes, key="mis_true")
    pred_cls = p2.selectbox("Predicted class", classes, key="mis_pred")
    cell = view[(view["label"] == true_cls) & (view["pred"] == pred_cls)].sort_values("confidence", ascending=False)
    cell = cell.reset_index(drop=True)
    kind = "correct predictions" if true_cls == pred_cls else "misclassifications"
    st.markdown(f"**{len(cell):,} {kind}**: true *{true_cls}*, predicted *{pred_cls}*")
    if cell.empty:
        st.info("**No sample in this cell.** Click a non-empty cell or pick another pair.", icon=":material/info:")
    else:
        columns = ["id", "confidence", "correct", *[c for c in ("dominant",) if view["dominant"].notna().any()]]
        key = f"mis_cell_{abs(hash((true_cls, pred_cls)))}"
        st.dataframe(cell[columns].fillna({"dominant": "—"}), hide_index=True, width="stretch",
                     height=min(360, 40 + 35 * len(cell)), key=key,
                     on_select=W.on_row_select(key, cell["id"].astype(str).tolist()), selection_mode="single-row",
                     column_config={"confidence": st.column_config.ProgressColumn(
                         "Confidence", format="%.2f", min_value=0, max_value=1)})
        cell_name = f"true {true_cls}, predicted {pred_cls}"
        W.selection_actions(cell, cell_name, f"{ctx.experiment}-{run.name}-{cell_name}", open_key="mis_open_cell",
                            download_key="mis_cell_download", manifest=L.sample_columns(ctx),
                            what="this cell's samples")
        target = ctx.sample if ctx.sample in set(cell["id"]) else None
        if target:
            st.markdown(f"Selected **`{target}`**")
            if st.button("Open in the sample explorer", key="mis_open", icon=":material/open_in_new:"):
                open_in_explorer(target)
        else:
            st.caption("Select a row to open that sample in the sample explorer.")

st.divider()
a, b = st.columns(2, gap="large")
with a:
    if labels:
        st.plotly_chart(F.make_confused_pairs_figure(labels, matrix, top=12), key="mis_pairs")
with b:
    per_class = run.metrics.get("per_class", {}) or {}
    if len(per_class) > 12:  # worst first, the same classes as the matrix
        keep = set(shown_classes) if shown_classes else set(map(str, per_class))
        order = [c for c in T.lowest_classes(per_class, "f1") if c in keep]
        pr_fig = F.make_precision_recall_figure(per_class, classes=order,
                                                title="Per-class precision and recall (lowest F1 first)")
    else:
        pr_fig = F.make_precision_recall_figure(per_class)
    W.show_figure(pr_fig, key="mis_pr")

st.subheader("Modality shares: correct vs incorrect predictions")
if view["dominant"].notna().any():
    explained = view[view["dominant"].notna()]
    st.plotly_chart(F.make_share_correct_vs_incorrect_figure(explained, run.modalities), key="mis_shares")
elif L.explanation_problem(ctx, run.path.name) is not None:
    st.caption("The stored explanations of this run are damaged (see the message at the top of the page).")
else:
    st.info("**No explanations yet** for this run: compute them with", icon=":material/info:")
    st.code(build_commands(ctx.experiment, ctx.run, root=ctx.root)["explain"], language="bash")

# ------------------------------------------------------------------ modality blame for errors
st.subheader("Which modality misled the model")
blame, blame_current, blame_damaged = L.blame(run)
blame_cmd = build_commands(ctx.experiment, ctx.run, root=ctx.root)["blame"]
if blame_damaged is not None:
    W.show_error(blame_damaged, "The blame table of this run cannot be read")
elif blame is None:
    st.info("**No blame computed yet** for this run: for every test prediction, which modality pushed it toward "
            "the wrong class. Compute it here or with", icon=":material/info:")
    st.code(blame_cmd, language="bash")
    if st.button("Compute now", key="mis_blame_now", icon=":material/bolt:") and L.compute_blame(run):
        st.rerun()
else:
    if not blame_current:
        st.warning(f"This blame was computed for an earlier training of the run: recompute it with "
                   f"`{blame_cmd} --force`.", icon=":material/history:")
    blamed = blame_table(blame, run.classes)
    if int(blamed["n_errors"].iloc[-1]) == 0:
        st.success(f"**No errors** among the {len(blame):,} test predictions: no modality misled the model.",
                   icon=":material/check_circle:")
    else:
        st.markdown("\n".join(f"- {line}" for line in blame_sentences(blamed, name=pretty_modality)))
        W.show_figure(F.make_blame_class_figure(blamed, run.modalities), key="mis_blame")
        ranked = blame_classes(blamed, top=len(blamed))
        st.dataframe(blame_display_table(blamed, run.modalities, ranked), hide_index=True, width="stretch",
                     key="mis_blame_table")
        st.caption(blame_caption())
