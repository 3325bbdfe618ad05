"""Embeddings: 2-D projections of each modality's and the fused embedding, side by side."""
from __future__ import annotations

import streamlit as st

from core.projection import METHOD_LABELS, METHODS
from ui import figures as F
from ui import loaders as L
from ui import queries as Q
from ui import widgets as W
from ui.commands import build_commands
from ui.context import context, open_in_explorer, set_sample
from ui.stamps import experiment_stamp, run_stamp

ctx = context("embeddings")
W.page_header("Embeddings", ctx, "PCA, t-SNE and UMAP of the test embeddings")

run = L.need_run(ctx)
if run is None:
    st.stop()

view = L.predictions_view(ctx, run)
has_shares = view["dominant"].notna().any()
embeddings = [*run.modalities, "fused"]

COLOR_BY = {"label": "True class", "pred": "Predicted class", "correct": "Correctness"}
MAX_COLORED = 20  # classes with a colour and a legend entry of their own (the rest: one grey "Other")
if has_shares:
    COLOR_BY.update({f"share_{m}": f"{m} share (MM-SHAP)" for m in run.modalities})
    COLOR_BY["dominant"] = "Dominant modality"

with st.container(border=True, key="fl_controls_embeddings"):  # hidden while presenting (ui.presentation)
    c1, c2, c3 = st.columns([1.1, 1.4, 2])
    stored = [m for m in METHODS if L.projection_or_problem(run.path, "fused", m)[0] is not None]
    default = "tsne" if "tsne" in stored else (stored[0] if stored else "pca")
    method = c1.radio("Projection", list(METHODS), index=list(METHODS).index(default), format_func=METHOD_LABELS.get,
                      horizontal=True, key="emb_method")
    color_by = c2.selectbox("Colour by", list(COLOR_BY), format_func=COLOR_BY.get, key="emb_color",
                            help=None if has_shares else "Modality shares appear here once the run is explained.")
    picked = c3.multiselect("Embeddings", embeddings, default=embeddings, key="emb_which",
                            format_func=lambda e: "fused (the head's input)" if e == "fused" else e)

if not picked:
    st.warning("**No embedding selected.** Pick at least one above.", icon=":material/filter_alt_off:")
    st.stop()

found, damaged = {}, {}
for e in picked:
    found[e], problem = L.projection_or_problem(run.path, e, method)
    if problem is not None:
        damaged[e] = problem
for e, problem in damaged.items():  # a damaged file is reported as damage, never as "not computed yet"
    W.show_error(problem, f"The stored {METHOD_LABELS[method]} projection of `{e}` cannot be read")
missing = [e for e, p in found.items() if p is None]
if missing:
    label = METHOD_LABELS[method]
    absent = [e for e in missing if e not in damaged]
    if absent:
        st.info(f"**No {label} projection yet** of {', '.join(absent)}. It is computed by the build, or now:",
                icon=":material/info:")
    else:
        st.caption(f"Recompute the damaged {label} projection(s) with:")
    st.code(build_commands(ctx.experiment, ctx.run, root=ctx.root)["project"] + f" --methods {method}",
            language="bash")
    help_text = ("The first UMAP in a session compiles numba code (about a minute); later ones take seconds."
                 if method == "umap" else "Seconds for a few thousand samples; stored with the run.")
    if st.button(f"Compute {label} now", key=f"compute_{method}", icon=":material/play_arrow:", help=help_text):
        L.compute_projections(run, [method])
        st.rerun()

if ctx.sample:
    st.caption(f"The ringed point is the selected sample `{ctx.sample}`.")

if color_by == "dominant":
    colors, order = F.modality_colors(run.modalities), list(run.modalities)
elif color_by in ("label", "pred"):
    colors, order = F.class_colors(run.classes), list(run.classes)
else:
    colors, order = None, None
colored: tuple[str, ...] | None = None
if color_by in ("label", "pred") and len(run.classes) > MAX_COLORED:
    # more classes than distinguishable colours: the most frequent get one, the rest are grey "Other"
    freq = view[color_by].astype(str).value_counts()
    by_size = sorted(map(str, run.classes), key=lambda c: (-int(freq.get(c, 0)), run.classes.index(c)))
    picked_classes = st.multiselect(
        "Classes in colour", by_size, key=f"emb_colored_{color_by}", max_selections=MAX_COLORED,
        placeholder=f"the {MAX_COLORED - 1} largest classes",
        help=f"At most {MAX_COLORED} classes get a colour of their own; every other point is grey (\"Other\"), "
             "and hovering a point names its class.")
    colored = tuple(picked_classes or by_size[: MAX_COLORED - 1])

hover = ["label", "pred", "confidence", "correct", *[f"share_{m}" for m in run.modalities if has_shares]]


@st.cache_resource(show_spinner=False, max_entries=48)
def _figure(run_dir: str, stamp: tuple, emb: str, method: str, color_by: str, highlight: str | None,
            colored: tuple[str, ...] | None, density: bool, scale: float = 1.0):
    """The plot of one embedding: built once per (run files, colouring, ringed sample, view, figure scale
    while presenting), never mutated."""
    proj = found[emb]
    title = f"{emb} · {proj['label']}"
    if density:  # colour and hover columns are not drawn: skip the join with the predictions
        coords = Q.projection_frame(proj["ids"], proj["coords"], view.iloc[:0][["id"]])
        return F.make_density_figure(coords, title, axis_label=proj["label"], highlight_id=highlight), len(coords)
    coords = Q.projection_frame(proj["ids"], proj["coords"], view)
    fig = F.make_embedding_figure(
        coords, color_by, hover, title, axis_label=proj["label"], highlight_id=highlight,
        category_colors=colors, category_order=order, colored=colored, max_categories=MAX_COLORED)
    return fig, len(coords)


def _quality_caption(proj: dict) -> str:
    """Trustworthiness (exact, or estimated with its interval) and how the coordinates were made."""
    n_all, n_trust = len(proj["ids"]), int(proj.get("trust_n") or 0)
    low, high = proj.get("trust_interval") or (float("nan"), float("nan"))
    text = f"Trustworthiness {proj['trustworthiness']:.3f}"
    if 0 < n_trust < n_all:
        text += f" ± {(high - low) / 2:.3f} (95 %, estimated on {n_trust:,} points, k={proj['k']})"
    else:
        text += f" (k={proj['k']})"
    fit = proj.get("fit") or {}
    if fit.get("transformed"):
        text += (f" · fitted on {int(fit['fit_n']):,} points, {int(fit['transformed']):,} placed by transform"
                 f" ({fit.get('backend', '?')})")
    return text


selected: list[str] = []
shown = [e for e in picked if found[e] is not None]
largest = max((len(found[e]["ids"]) for e in shown), default=0)
density = False
if largest >= F.DENSITY_MIN_POINTS:
    every = st.toggle("Draw every point", value=False, key="emb_every_point",
                      help=f"Above {F.DENSITY_MIN_POINTS:,} points a scatter is a solid blot and slow to send: "
                           "the density view bins the points here and draws a sample on top.")
    density = not every
    st.caption(f"{largest:,} points: " + ("density view (points per bin, log scale); box or lasso selects every "
                                           "point inside" if density else "every point drawn (WebGL)"))
grid = st.columns(2) if len(shown) > 1 else [st.container()]
stamp = run_stamp(run.path) + experiment_stamp(ctx.root, ctx.experiment)[:3]
for i, emb in enumerate(shown):
    proj = found[emb]
    dense = density and len(proj["ids"]) >= F.DENSITY_MIN_POINTS
    fig, n_points = _figure(str(run.path), stamp, emb, method, color_by, ctx.sample, colored, dense,
                             F.figure_scale())
    with grid[i % len(grid)]:
        event = st.plotly_chart(fig, key=f"emb_{emb}_{method}_{color_by}_{'d' if dense else 'p'}", on_select="rerun",
                                selection_mode=("points", "box", "lasso"))
        st.caption(f"{_quality_caption(proj)} · {n_points:,} samples · box or lasso to select, click a point to pick it")
        selected += Q.ids_in_selection(event, proj["ids"], proj["coords"]) if dense else Q.selected_ids(event)

# The selection outlives a redraw (ringing the selected sample redraws the plots, which clears
# plotly's own selection); "Clear selection" forgets it.
selection_key = f"emb_selection::{run.name}::{method}"
selected = list(dict.fromkeys(selected))
if selected:
    st.session_state[selection_key] = selected
else:
    selected = [i for i in st.session_state.get(selection_key, []) if i in set(view["id"])]
st.subheader("Selected samples")
if not selected:
    st.caption("Draw a box or lasso on a plot (or click a point) to list samples here.")
    st.stop()
st.button("Clear selection", key="emb_clear", icon=":material/deselect:",
          on_click=lambda: st.session_state.pop(selection_key, None))
if len(selected) == 1 and selected[0] != ctx.sample:
    set_sample(selected[0])

rows = view[view["id"].isin(selected)].reset_index(drop=True)
st.markdown(f"**{len(rows):,} selected** · {int((~rows['correct'].astype(bool)).sum())} misclassified")
sel_name = f"{METHOD_LABELS[method]} selection on Embeddings"
W.selection_actions(rows, sel_name, f"{ctx.experiment}-{run.name}-{method}-selection",
                    open_key="emb_open_selection", download_key="emb_download", manifest=L.sample_columns(ctx))
columns = ["id", "label", "pred", "confidence", "correct", *(["dominant"] if has_shares else [])]
table_key = "emb_sel_" + str(abs(hash(tuple(selected))))
st.dataframe(rows[columns].fillna({"dominant": "—"}), hide_index=True, width="stretch",
             height=min(400, 40 + 35 * len(rows)), key=table_key,
             on_select=W.on_row_select(table_key, rows["id"].astype(str).tolist()), selection_mode="single-row",
             column_config={"confidence": st.column_config.ProgressColumn("Confidence", format="%.2f", min_value=0,
                                                                           max_value=1)})
target = ctx.sample if ctx.sample in set(rows["id"]) else None
if target and st.button(f"Open `{target}` in the sample explorer", key="emb_open", icon=":material/open_in_new:"):
    open_in_explorer(target)
elif not target:
    st.caption("Select a row to open that sample in the sample explorer.")
