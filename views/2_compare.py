"""Compare fusion methods: the results table, bars, per-class accuracy, CSV and LaTeX downloads."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from ui import figures as F
from ui import loaders as L
from ui import queries as Q
from ui import tables as T
from ui import widgets as W
from ui.commands import build_commands
from ui.context import K_RUN, context
from ui.labels import METRIC_LABELS

ctx = context("compare")
W.page_header("Compare fusion methods", ctx, "top-1/3/5, macro-F1 and cost of every run")

if not ctx.experiment or not ctx.runs:
    W.empty_no_runs(ctx)
    st.stop()

results, problems = L.results_table(ctx)
W.unreadable_runs(problems)
if results.empty:
    st.info("No run of this experiment could be read. Rebuild it with:", icon=":material/info:")
    W.show_commands(build_commands(ctx.experiment, root=ctx.root)["build"] + " --force")
    st.stop()

def _encoders_per_modality(frame: pd.DataFrame) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for cell in frame["encoders"].astype(str):
        for part in cell.split(", "):
            modality, _, name = part.partition("=")
            out.setdefault(modality, []).append(name)
    return out


# ---------------------------------------------------------------- filters
with st.container(border=True, key="fl_controls_compare"):  # hidden while presenting (ui.presentation)
    f1, f2, f3, f4 = st.columns([1, 1.4, 1.4, 1.2])
    strategies = f1.multiselect("Strategy", sorted(results["strategy"].unique()), key="cmp_strategy",
                                placeholder="all")
    fusions = f2.multiselect("Fusion method", sorted(results["fusion"].unique()), key="cmp_fusion", placeholder="all")
    subsets = f3.multiselect("Modality subset", sorted(results["modalities"].unique()), key="cmp_subset",
                             placeholder="all")
    search = f4.text_input("Run name contains", key="cmp_search", placeholder="e.g. gated")
    encoders = []
    several_encoders = any(len(set(names)) > 1 for names in _encoders_per_modality(results).values())
    if several_encoders:
        encoders = st.multiselect("Encoders", sorted(results["encoders"].unique()), key="cmp_encoders",
                                  placeholder="all")

shown = Q.filter_results(results, strategies=strategies, fusions=fusions, modalities=subsets, encoders=encoders,
                         search=search).reset_index(drop=True)
if not several_encoders:
    shown = shown.drop(columns=["encoders"])  # one encoder per modality: the column says nothing
if shown.empty:
    st.warning("**No run matches these filters.** Remove a filter or clear the search box.",
               icon=":material/filter_alt_off:")
    st.stop()

# ---------------------------------------------------------------- table
n_classes = L.n_classes(ctx)
trivial = T.trivial_topk(n_classes)  # top-k with k >= classes is 1.0 for every run
# inference time is indicative (it depends on the build machine and its load): never crowned
# GFLOPs are counted, not timed (the same on every machine): the lowest is marked like the fewest parameters
best = T.best_rows(shown, ["top1", "top3", "top5", "macro_f1", "n_params", "inference_ms", "gflops"],
                   n_classes=n_classes)


def _highlight(column: pd.Series) -> list[str]:
    winners = set(best.get(column.name, []))
    return ["background-color: #D5F5E3; font-weight: 700" if i in winners else "" for i in column.index]


styled = shown.style.apply(_highlight, subset=[c for c in best]).format(
    {"top1": "{:.3f}", "top3": "{:.3f}", "top5": "{:.3f}", "macro_f1": "{:.3f}", "n_params": "{:,}",
     "inference_ms": "{:.2f}", "gflops": "{:.3g}"}, na_rep="\u2014")  # no count: a run built before them
st.markdown(f"**{len(shown)} of {len(results)} runs** · best value per column in green · click a header to sort · "
            "select a row to make it the sidebar run")
st.caption("Inference ms/sample is indicative: CPU time per sample on one thread, measured once when the run was "
           "built, so it depends on that machine; no run is marked best on it."
           + (f" {' and '.join(METRIC_LABELS[k] for k in trivial)} say nothing with {n_classes} classes "
              "(every run scores 1): not marked." if trivial else ""))


def _topk_label(k: str) -> str:
    return {"top3": "Top-3", "top5": "Top-5"}[k] + (" (not meaningful)" if k in trivial else "")


def _make_current(run: str) -> None:
    st.session_state[K_RUN] = run


event = st.dataframe(
    styled, hide_index=True, width="stretch", key="cmp_table", height=min(600, 38 + 35 * len(shown)),
    on_select=W.on_row_select("cmp_table", shown["run"].tolist(), _make_current), selection_mode="single-row",
    column_config={
        "run": st.column_config.TextColumn("Run", width="medium"),
        "top1": st.column_config.NumberColumn("Top-1"), "top3": st.column_config.NumberColumn(_topk_label("top3")),
        "top5": st.column_config.NumberColumn(_topk_label("top5")),
        "macro_f1": st.column_config.NumberColumn("Macro-F1"),
        "n_params": st.column_config.NumberColumn("Parameters"),
        "inference_ms": st.column_config.NumberColumn(
            "Inference ms/sample (indicative)", help="CPU ms per sample on one thread at build time; "
            "depends on the machine, so it is not ranked"),
        "gflops": st.column_config.NumberColumn(
            "GFLOPs / sample", help="Floating-point operations per test sample (mean, batch of 1) counted by torch's "
            "FLOP counter: matrix products, convolutions and attention of every modality encoder (its torch "
            "preprocessing included) and the head; a multiply-add is 2 FLOPs; element-wise work and loading "
            "files are not counted. \u2014: a run built before the count (`fusionlens compute` adds it)"),
    },
)

d1, d2, _ = st.columns([1, 1, 3])
name = W.download_name(ctx.experiment, "results")
d1.download_button("Download CSV", shown.to_csv(index=False).encode(), f"{name}.csv", "text/csv",
                   icon=":material/download:")
d2.download_button("Download LaTeX", T.results_latex(
    shown.drop(columns=["encoders"], errors="ignore"), caption=f"Fusion methods on {ctx.experiment}",
    label=f"tab:{name}", n_classes=n_classes).encode(),
    f"{name}.tex", "text/x-tex", icon=":material/download:", help="booktabs table, best value per column in bold")

# ---------------------------------------------------------------- charts
st.subheader("Accuracy per run")
useful = [m for m in ("top1", "top3", "top5") if m not in trivial] + ["macro_f1"]
metrics = st.container(key="fl_controls_compare_metrics").multiselect(  # hidden while presenting
    "Metrics", ["top1", "top3", "top5", "macro_f1"], default=useful[:3] if len(shown) <= 12 else ["top1", "macro_f1"],
    format_func=lambda m: METRIC_LABELS[m], key="cmp_metrics")
ordered = shown.sort_values("top1", ascending=False)
fig = F.make_results_bar_figure(ordered, metrics or ["top1"], title="Accuracy per run (sorted by top-1)")
st.plotly_chart(fig, key="cmp_bars")

st.subheader("Per-class accuracy across runs")
metrics_by_run = L.all_metrics(ctx, shown["run"].tolist())
table = T.per_class_recall_table({r: metrics_by_run[r] for r in ordered["run"] if r in metrics_by_run})
if table.empty:
    st.info("No per-class metrics in these runs.")
else:
    # hardest classes first (lowest mean recall over the shown runs), ties in class order
    mean_recall = table.mean(axis=0, skipna=True).fillna(float("inf"))
    ranked = sorted(table.columns, key=lambda c: (mean_recall[c], list(table.columns).index(c)))
    picked = W.class_filter("cmp_classes", [str(c) for c in ranked], default_n=30,
                            ranking="hardest (lowest mean recall)")
    W.show_figure(F.make_per_class_heatmap_figure(table, classes=picked), key="cmp_heatmap")
