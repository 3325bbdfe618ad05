"""Overview: the experiment's story (with links to the pages that prove it), the best run over every
modality, the HTML report, then the dataset, the runs and what is precomputed for the selected run."""
from __future__ import annotations

import streamlit as st

from core.data.manifest import describe_preparation
from core.errors import FusionLensError, cli_command
from core.projection import METHOD_LABELS
from ui import figures as F
from ui import loaders as L
from ui import precomputed as P
from ui import queries as Q
from ui import tables as T
from ui import widgets as W
from ui.commands import build_commands
from ui.context import K_RUN, PAGE_BY_KEY, context
from ui.report import render_report
from ui.stamps import experiment_stamp, path_stamp
from ui.viewers import registered_viewer

ctx = context("overview")
W.page_header("Overview", ctx)

if not ctx.experiment:
    W.empty_no_runs(ctx)
    st.stop()

loaded = L.dataset(ctx, quiet=not (ctx.exp_dir / "dataset.json").exists())
results, problems = L.results_table(ctx) if ctx.runs else (None, [])

# ---------------------------------------------------------------- the story
story = L.story(ctx, results)
with st.container(border=True):
    st.markdown("#### The story")
    if story.state == "no-runs":
        if ctx.runs:
            st.info("**No run of this experiment can be read**, so there is no story yet: the **Runs** tab below "
                    "says what is wrong with each and how to fix it.", icon=":material/info:")
        else:
            W.empty_no_runs(ctx)
    for sentence in story.sentences:
        text, link = st.columns([4.2, 1.5], vertical_alignment="center")
        text.markdown(sentence.markdown())
        spec = PAGE_BY_KEY[sentence.page]
        shown = sentence.run or ctx.run  # the run the sentence is about, else the selected one
        link.page_link(spec.path, label=spec.title, icon=":material/arrow_forward:",
                       query_params={"exp": ctx.experiment, **({"run": shown} if shown else {})},
                       help="The page that shows this in detail")
    if story.state == "no-full-run":
        W.show_commands(build_commands(ctx.experiment, root=ctx.root)["build"],
                        intro="The experiment file lists the fusion runs; build them with:")
    elif story.state == "ready":
        st.caption("Differences in top-1 come with a paired bootstrap 95 % interval over the test samples both runs "
                   "predicted; a share with its Student-t 95 % interval and the number of explained samples.")

# ---------------------------------------------------------------- headline numbers
if loaded is not None:
    ds, info = loaded
    counts = Q.split_counts(ds.frame, ds.classes)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Samples", f"{len(ds.frame):,}")
    c2.metric("Classes", len(ds.classes))
    c3.metric("Modalities", len(ds.modalities), help=", ".join(f"{m} ({k})" for m, k in ds.modalities.items()))
    c4.metric("Runs", len(ctx.runs))
    st.markdown("**Modalities:** " + " · ".join(
        f"<span style='color:{F.modality_color(m, list(ds.modalities))};font-weight:600'>■ {m}</span> ({k})"
        for m, k in ds.modalities.items()), unsafe_allow_html=True)
else:
    st.info("The dataset description of this experiment is missing: it is written by "
            f"`{cli_command()} prepare {ctx.experiment}` (part of `build`).")

best = L.best_run(ctx, results)
overall = L.best_overall_run(ctx, results)
n_classes = len(ds.classes) if loaded is not None else L.n_classes(ctx)
trivial = T.trivial_topk(n_classes)
if best is not None:
    row = results.set_index("run").loc[best]
    st.subheader("Best run over every modality" if story.state == "ready" else "Best run")
    b1, b2, b3, b4 = st.columns([2.2, 1, 1, 1])
    with b1:
        st.markdown(f"### `{best}`")
        st.caption(f"{row['strategy']} fusion · {row['fusion']} · {row['modalities']}")
        if ctx.run != best:
            st.button("Show this run", key="ov_best", icon=":material/arrow_forward:",
                      on_click=lambda: st.session_state.__setitem__(K_RUN, best))
    b2.metric("Top-1", f"{row['top1']:.1%}")
    if "top5" in trivial:  # with 5 classes or fewer every run has top-5 = 100 %
        b3.metric("Top-5", "n/a", help=f"Not meaningful with {n_classes} classes: every prediction's top 5 "
                  "holds the true class.")
    else:
        b3.metric("Top-5", f"{row['top5']:.1%}")
    b4.metric("Macro-F1", f"{row['macro_f1']:.3f}")
    if overall is not None and overall != best:
        other = results.set_index("run").loc[overall]
        o1, o2 = st.columns([4, 1.2], vertical_alignment="center")
        o1.markdown(f"**Best overall:** `{overall}` ({other['modalities']}, {other['fusion']}) at "
                    f"**{other['top1']:.1%}** top-1, {100 * (other['top1'] - row['top1']):+.1f} points (the story "
                    "says whether that is more than noise).")
        if ctx.run != overall:
            o2.button("Show this run", key="ov_overall", icon=":material/arrow_forward:",
                      on_click=lambda: st.session_state.__setitem__(K_RUN, overall))
    st.caption("Best = highest top-1 among the runs that use every modality (the best overall is shown too); a tie "
               "goes to the run over more modalities, then to a run with stored explanations, then by name (the "
               "build explains the same run).")

# ---------------------------------------------------------------- the report
if ctx.run:
    # a rebuilt run or new explanations make a new report
    report_key = (ctx.experiment, ctx.run, experiment_stamp(ctx.root, ctx.experiment),
                  path_stamp(ctx.run_dir / "explanations"))
    with st.container(border=True):
        st.markdown(f"#### Report of `{ctx.run}`")
        r1, r2 = st.columns([1, 2.2], vertical_alignment="center")
        if r1.button("Prepare report", key="ov_report_prepare", icon=":material/description:",
                     help="One HTML file with the story, the results, modality shares, the confusion matrix and "
                          "sample cards, readable offline (no server, no network). Takes a few seconds."):
            with st.status("Preparing the report…", expanded=False) as status:
                try:
                    document = render_report(ctx.root, ctx.experiment, ctx.run, progress=lambda done, total, label:
                                             status.update(label=f"Preparing the report: {label} ({done}/{total})"))
                    st.session_state["ov_report"] = {"key": report_key, "html": document}
                    status.update(label="The report is ready", state="complete")
                except FusionLensError as exc:
                    status.update(label="The report could not be prepared", state="error")
                    W.show_error(exc, "The report could not be prepared")
        ready = st.session_state.get("ov_report")
        if ready is not None and ready["key"] == report_key:
            r2.download_button("Download report (HTML)", ready["html"], key="ov_report_download",
                               file_name=f"fusionlens-{ctx.experiment}-{ctx.run}.html", mime="text/html",
                               icon=":material/download:", on_click="ignore")
        else:
            r2.caption(f"Or from a shell: `{build_commands(ctx.experiment, ctx.run, root=ctx.root)['report']}`")

plan = L.explanation_plan(ctx)
if plan is not None and (plan["missing"] > 0).any():
    lines, fill = L.plan_gaps(ctx, plan)
    st.warning(
        f"**Explanations incomplete:** the build explains a seeded sample of the test split for "
        f"{len(plan)} run(s) and stopped before finishing (its time budget ran out, or it was "
        f"interrupted). Missing: " + "; ".join(lines) + ". "
        "Fill them with (each command skips the samples already stored):", icon=":material/warning:")
    W.show_commands(*fill)

tab_data, tab_runs, tab_pre = st.tabs(["Dataset", "Runs", f"Precomputed for {ctx.run or 'the run'}"])

with tab_data:
    if loaded is None:
        st.info("No dataset to show yet.")
    else:
        W.show_figure(F.make_split_counts_figure(counts), key="split_counts")  # scrolls with many classes
        with st.expander("Counts per class and split (table)"):
            st.dataframe(counts, width="stretch")
        notes = describe_preparation(ds.report)  # empty-text rule, classes dropped by min_per_class, ...
        if notes:
            with st.expander(f"What preparation changed ({len(notes)})", icon=":material/filter_alt:"):
                st.markdown("\n".join(f"- {line}" for line in notes))
        st.markdown("#### A few test samples")
        ids = Q.gallery_ids(ds.frame, n=8, seed=0)
        cols = st.columns(4)
        labels = ds.frame.set_index("id").loc[ids, "label"].astype(str).tolist() if ids else []
        # each modality's kind says how it shows in the gallery: one picture, then lines of text
        viewers = {m: registered_viewer(k) for m, k in ds.modalities.items()}
        image_mod = next((m for m, v in viewers.items() if v is not None and v.picture is not None), None)
        text_mods = [m for m, v in viewers.items() if v is not None and v.caption is not None]
        images = L.items(ctx, image_mod, ids) if image_mod and ids else None
        texts = {m: L.items(ctx, m, ids) for m in text_mods} if ids else {}
        for i, sid in enumerate(ids):
            with cols[i % 4].container(border=True):
                if images is not None:
                    st.image(viewers[image_mod].picture(images[i]), width=viewers[image_mod].picture_width)
                st.markdown(f"**{labels[i]}**")
                for m in text_mods:
                    if texts.get(m) is not None:
                        st.caption(f"{m}: {viewers[m].caption(texts[m][i])}")
                st.caption(f"id `{sid}`")

with tab_runs:
    if not ctx.runs:
        W.empty_no_runs(ctx)
    else:
        if results is not None and not results.empty:
            shown = results[["run", "strategy", "fusion", "modalities", "top1", "top5", "macro_f1"]]
            st.dataframe(
                shown, hide_index=True, width="stretch",
                column_config={
                    "top1": st.column_config.ProgressColumn("Top-1", format="%.3f", min_value=0, max_value=1),
                    "top5": st.column_config.NumberColumn(
                        "Top-5" + (" (not meaningful)" if "top5" in trivial else ""), format="%.3f",
                        help=f"Always 1 with {n_classes} classes" if "top5" in trivial else None),
                    "macro_f1": st.column_config.NumberColumn("Macro-F1", format="%.3f"),
                },
            )
            st.caption("Compare them in depth on **Compare fusion methods**.")
        if problems:
            st.warning(f"{len(problems)} run(s) could not be read and are left out:", icon=":material/warning:")
            for p in problems:
                st.markdown(f"- {p}")

with tab_pre:
    run = L.need_run(ctx)
    if run is not None:
        status = P.precompute_status(run.path, run.modalities)
        cmds = build_commands(ctx.experiment, ctx.run, root=ctx.root)
        st.markdown("#### Explanations (MM-SHAP)")
        if status["explain_error"] is not None:
            W.show_error(status["explain_error"], "Stored explanations cannot be read")
        else:
            n_test, n_done = len(run.predictions), status["n_explained"] or 0
            mine = plan[plan["run"] == run.name] if plan is not None else None
            planned = mine.iloc[0] if mine is not None and len(mine) else None
            if planned is not None and planned["missing"] > 0:
                st.warning(f"**{planned['stored']:,} of the {planned['requested']:,} samples the build explains** "
                           f"for `{run.name}` are stored ({n_done:,} of {n_test:,} test samples in all). "
                           "Finish them with:", icon=":material/warning:")
                W.show_commands(planned["command"])
            elif n_done:
                st.success(f"{n_done:,} of {n_test:,} test samples explained.")
                if n_done < n_test:
                    W.show_commands(cmds["explain"], intro="The build explains a seeded sample; explain every "
                                    "test sample (the stored ones are skipped) with:")
            else:
                st.info(f"**No explanations yet** for `{ctx.run}`. Compute them with:", icon=":material/info:")
                W.show_commands(planned["command"] if planned is not None else cmds["explain"])
        st.markdown("#### Embedding projections")
        stored = status["projections"]
        if not stored.empty:
            table = stored.assign(method=stored["method"].map(METHOD_LABELS).fillna(stored["method"]))
            st.dataframe(
                table[["embedding", "method", "n", "trustworthiness", "seconds",
                       *(["error"] if table["error"].notna().any() else [])]], hide_index=True,
                width="stretch",
                column_config={
                    "trustworthiness": st.column_config.NumberColumn(
                        "Trustworthiness", format="%.3f",
                        help="1 = every 2-D neighbour is a true neighbour in the embedding space"),
                    "seconds": st.column_config.NumberColumn("Seconds", format="%.1f"),
                },
            )
        for problem in status["damaged_projections"]:
            st.warning(f"**Damaged projection file:** {problem}. It is recomputed over by the command or the "
                       "buttons below.", icon=":material/warning:")
        missing = status["missing_projections"]
        if missing:
            names = ", ".join(f"{e} {METHOD_LABELS[m]}" for e, m in missing)
            st.info(f"**Missing projections:** {names}.", icon=":material/info:")
            W.show_commands(cmds["project"], intro="Compute them all from the shell:")
            cheap = sorted({m for _, m in missing if m != "umap"})
            if cheap and st.button(f"Compute {' and '.join(METHOD_LABELS[m] for m in cheap)} now",
                                   key="compute_cheap",
                                   help="Seconds for a few thousand samples; stored with the run."):
                L.compute_projections(run, cheap)
                st.rerun()
            if any(m == "umap" for _, m in missing) and st.button(
                    "Compute UMAP now", key="compute_umap",
                    help="The first UMAP in a session compiles numba code (about a minute)."):
                L.compute_projections(run, ["umap"])
                st.rerun()
        else:
            st.success("Every PCA, t-SNE and UMAP projection of this run is stored.")
