"""Robustness: each run's accuracy with a modality missing, under noise and missing at random."""
from __future__ import annotations

import streamlit as st

from ui import loaders as L
from ui import widgets as W
from ui.commands import build_commands
from ui.context import context
from ui.figures.robustness import make_noise_curve_figure, make_share_noise_figure
from ui.labels import pretty_modality
from ui.robustness import best_rows, condition_columns, pick_runs, robustness_table

ctx = context("robustness")
W.page_header("Robustness", ctx, "accuracy when a modality is missing or degraded (docs/ROBUSTNESS.md)")
if not ctx.experiment or not ctx.runs:
    W.empty_no_runs(ctx)
    st.stop()

reports, problems = L.robustness_reports(ctx)
for name, exc in problems.items():
    W.show_error(exc, f"The robustness table of `{name}` cannot be read")
command = build_commands(ctx.experiment, root=ctx.root)["robustness"]
if not reports:
    st.info(f"**No robustness tables yet** for experiment `{ctx.experiment}`: compute them with",
            icon=":material/info:")
    st.code(command, language="bash")
    st.stop()
missing_runs = [r for r in ctx.runs if r not in reports and r not in problems]
if missing_runs:
    st.caption(f"{len(missing_runs)} run(s) have no table yet ({', '.join(missing_runs[:5])}"
               f"{' ...' if len(missing_runs) > 5 else ''}): `{command}`.")

# ------------------------------------------------------------------ runs x conditions
st.markdown("### Runs x conditions")
st.caption("Top-1 accuracy on the same seeded test subsample (n) for every run: clean, with each modality "
           "missing (filled by the run's own rule), with modalities missing at random (one seeded table for "
           "every run), and MultiBench's summaries of each noise sweep: relative robustness (area under the "
           "accuracy-vs-noise curve) and effective robustness (against a late-fusion baseline shifted to the "
           "same clean accuracy). Click a column to sort; the best value of each column is highlighted.")
table = robustness_table(reports)
best = best_rows(table)
scores = condition_columns(table)


def _highlight(column):
    rows = set(best.get(column.name, []))
    return ["background-color: #d4edda; font-weight: 600" if i in rows else "" for i in range(len(column))]


styled = table.style.apply(_highlight, subset=scores).format({c: "{:.3f}" for c in scores}, na_rep="—")
st.dataframe(styled, hide_index=True, width="stretch", key="rob_table")
rules = {r.get("rule"): r.get("rule_text") for r in reports.values() if r.get("rule_text")}
st.caption("Missing rule: " + "; ".join(f"**{k}**: {v}" for k, v in rules.items()) + ".")

# ------------------------------------------------------------------ curves
st.markdown("### Accuracy vs noise")
names = list(reports)
controls = st.container(key="fl_controls_robustness")  # hidden while presenting (ui.presentation)
chosen = controls.multiselect("Runs", names, default=pick_runs(reports, ctx.run), key="rob_runs",
                              help="The sidebar's run, its late-fusion baselines and the modality-dropout runs first.")
swept = list(dict.fromkeys(m for r in chosen for m in (reports[r].get("noise") or {})))
shown_mods = controls.multiselect("Degraded modalities", swept, default=swept, format_func=pretty_modality,
                                  key="rob_mods") if swept else []
W.show_figure(make_noise_curve_figure(reports, chosen, shown_mods or None), key="rob_curves")

# ------------------------------------------------------------------ shares vs noise
st.markdown("### Modality shares as a modality is degraded")
with_shares = [n for n, r in reports.items() if r.get("shares")]
if not with_shares:
    st.info("No explanations of perturbed inputs yet: the robustness step computes them for one run "
            f"(`{command} --share-run <run>`).", icon=":material/info:")
else:
    share_run = ctx.run if ctx.run in with_shares else with_shares[0]
    if share_run != ctx.run:
        st.caption(f"Computed for run `{share_run}` (the build's first explained run).")
    report = reports[share_run]
    degraded = list(report["shares"])
    pick = st.selectbox("Degraded modality", degraded, format_func=pretty_modality, key="rob_share_mod")
    modalities = list(report.get("missing") or degraded)
    W.show_figure(make_share_noise_figure(report["shares"].get(pick), pick, modalities), key="rob_shares")
    st.caption("Mean MM-SHAP share of each modality over the same few test samples, explained again with the "
               "degraded modality perturbed at each level; flat predictions have no share and are left out "
               "(n per level in the hover).")
