"""Slice finder: the groups of test samples where the model errs most (SliceLine), each one a selection."""
from __future__ import annotations

import streamlit as st

from core.slices import NOT_EXPLAINED, slice_ids
from ui import figures as F
from ui import loaders as L
from ui import widgets as W
from ui.commands import build_commands
from ui.context import context
from ui.slices import ALPHAS, CONDITIONS, default_settings, no_significant_text, slices_caption

ctx = context("slices")
W.page_header("Slice finder", ctx, "groups of test samples with the highest error rate, and whether it is chance")

run = L.need_run(ctx)
if run is None:
    st.stop()

view = L.predictions_view(ctx, run)
if view.empty:
    st.info("**This run has no test predictions**, so there is no slice to search. Rebuild the run with:",
            icon=":material/info:")
    st.code(build_commands(ctx.experiment, root=ctx.root)["build"], language="bash")
    st.stop()
features = L.slice_features(ctx, run)
if features is None:
    st.stop()
skipped = dict(features.attrs.get("skipped") or {})

n_explained = int(view["dominant"].notna().sum())
if n_explained == 0:
    if L.explanation_problem(ctx, run.path.name) is not None:
        st.caption("The stored explanations of this run are damaged (see the message above): the dominant "
                   "modality and the share columns are left out.")
    else:
        st.info("**No explanations yet** for this run: the dominant modality and the share columns need them. "
                "The other columns are searched now; compute the explanations with", icon=":material/info:")
        st.code(build_commands(ctx.experiment, ctx.run, root=ctx.root)["explain"], language="bash")
elif n_explained < len(view):
    st.caption(f"{n_explained:,} of {len(view):,} test samples are explained: the others are "
               f"*{NOT_EXPLAINED}* in the dominant modality and share columns.")

# ---------------------------------------------------------------- the search
n = len(view)
defaults = default_settings(n)  # the report searches with the same
with st.container(border=True, key="fl_controls_slices"):  # hidden while presenting (ui.presentation)
    c1, c2, c3, c4 = st.columns([3, 1.1, 1.3, 1.1])
    columns = c1.multiselect(
        "Columns to search", list(features.columns), default=list(features.columns), key="sl_columns",
        help="Slices are conditions on these columns: classes, dominant modality, share and confidence bins, "
             "and the dataset's manifest columns.")
    min_size = int(c2.number_input(
        "Smallest slice", min_value=1, max_value=max(1, n), value=defaults["min_size"], step=1,
        key="sl_min_size", help="Slices with fewer samples are not searched (default: 1 % of the samples, "
                                "at least 5)."))
    max_conditions = c3.segmented_control(
        "Conditions per slice", list(CONDITIONS), default=defaults["max_conditions"], key="sl_conditions",
        help="At most this many conditions joined by AND.") or defaults["max_conditions"]
    alpha = c4.selectbox("Significance level", list(ALPHAS), index=ALPHAS.index(defaults["alpha"]), key="sl_alpha",
                         help="A slice is significant when its q-value is below this level.")
if skipped:
    st.caption("Not searched: " + "; ".join(f"**{c}**, {why}" for c, why in skipped.items()) + ".")
if not columns:
    st.warning("**No column to search.** Pick at least one above.", icon=":material/filter_alt_off:")
    st.stop()

with st.spinner("Searching slices with SliceLine…"):
    table = L.slices(ctx, run, columns=columns, min_size=min_size, max_conditions=int(max_conditions), alpha=alpha)
if table is None:
    st.stop()
summary = table.attrs
m1, m2, m3 = st.columns(3)
m1.metric("Test samples", f"{summary['n']:,}")
m2.metric("Errors", f"{summary['n_errors']:,} ({summary['error_rate']:.1%})" if summary["n"] else "—")
m3.metric("Significant slices", f"{int(table['significant'].sum())} of {len(table)}" if len(table) else "—")
if summary.get("reason"):
    reason = str(summary["reason"])
    st.info(f"**No slice to show:** {reason}.", icon=":material/info:")
    st.stop()
if not table["significant"].any():
    st.info(f"**No significant slice.** {no_significant_text(summary)}", icon=":material/info:")

fig = F.make_slice_figure(table, title=f"Error rate per slice · run {run.name}")
W.show_figure(fig, key="sl_figure")
st.caption(slices_caption(summary))

# ---------------------------------------------------------------- the slices
ranks = [int(r) for r in table["rank"]]
names = {int(r): f"#{int(r)} {d}" for r, d in zip(table["rank"], table["description"])}
if st.session_state.get("sl_pick") not in ranks:
    st.session_state["sl_pick"] = ranks[0]
shown = table[["rank", "description", "size", "errors", "error_rate", "lift", "q_value", "significant"]]
key = "sl_table_" + str(abs(hash((tuple(columns), min_size, max_conditions, alpha))))


def _pick_row() -> None:
    rows = W.dataframe_selection(st.session_state.get(key))
    if rows and 0 <= rows[0] < len(ranks):
        st.session_state["sl_pick"] = ranks[rows[0]]


st.dataframe(shown, hide_index=True, width="stretch", key=key, on_select=_pick_row, selection_mode="single-row",
             height=min(460, 40 + 35 * len(shown)), column_config={
                 "rank": st.column_config.NumberColumn("Rank", format="%d", width="small"),
                 "description": st.column_config.TextColumn("Slice", width="large"),
                 "size": st.column_config.NumberColumn("Samples", format="%d"),
                 "errors": st.column_config.NumberColumn("Errors", format="%d"),
                 "error_rate": st.column_config.ProgressColumn("Error rate", format="percent", min_value=0,
                                                               max_value=1),
                 "lift": st.column_config.NumberColumn("Lift", format="%.2f",
                                                       help="Error rate / overall error rate"),
                 "q_value": st.column_config.NumberColumn("q-value", format="%.2g"),
                 "significant": st.column_config.CheckboxColumn("Significant"),
             })

pick = st.selectbox("Slice", ranks, format_func=names.get, key="sl_pick",
                    help="Select a row of the table, or pick a slice here.")
chosen = table[table["rank"] == pick].iloc[0]
ids = slice_ids(features, chosen["conditions"])
rows = view[view["id"].isin(set(ids))].sort_values(["correct", "confidence"], ascending=[True, False])
rows = rows.reset_index(drop=True)
st.markdown(f"**{len(rows):,} samples**, {int((~rows['correct'].astype(bool)).sum()):,} wrong "
            f"({chosen['error_rate']:.1%}, 95 % interval {chosen['ci_low']:.1%} to {chosen['ci_high']:.1%}): "
            f"*{chosen['description']}*")
W.selection_actions(rows, f"slice #{pick}: {chosen['description']}", f"{ctx.experiment}-{run.name}-slice-{pick}",
                    open_key="sl_open", download_key="sl_download", manifest=L.sample_columns(ctx),
                    what="this slice's samples")
sample_columns = ["id", "label", "pred", "confidence", "correct", *(["dominant"] if n_explained else [])]
sample_key = f"sl_samples_{pick}_{key}"
st.dataframe(rows[sample_columns].fillna({"dominant": "—"}) if n_explained else rows[sample_columns],
             hide_index=True, width="stretch", height=min(400, 40 + 35 * len(rows)), key=sample_key,
             on_select=W.on_row_select(sample_key, rows["id"].astype(str).tolist()), selection_mode="single-row",
             column_config={"confidence": st.column_config.ProgressColumn("Confidence", format="%.2f", min_value=0,
                                                                           max_value=1)})
st.caption("Wrong predictions first. Select a row to make it the selected sample of every page.")
