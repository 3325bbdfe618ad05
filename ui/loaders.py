"""The pages' one cache layer: every read of run files goes through here.

Pages call these plain functions; each is backed by ``st.cache_data`` (tables,
arrays) or ``st.cache_resource`` (models, shared and never mutated), keyed by a
run or experiment folder plus the stamps of its files (:mod:`ui.stamps`), so a
rebuilt run is read again. A read that fails shows the problem and the fix on
the page (a damaged run or file never takes the other runs down) and returns None.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core import catalog
from core import slices as slice_finder
from core.adaptive import DECISIONS_FILE, efficiency_table as experiment_efficiency, is_adaptive, load_decisions
from core.bundle import load_run as load_bundle
from core.catalog import RunEntry
from core.data import load_experiment_dataset
from core.errors import BundleError, FusionLensError
from core.explain import (
    BLAME_FILE,
    BLAME_META_FILE,
    MODALITY_GAME_FILE,
    blame_is_current,
    load_blame,
    load_modality_game,
)
from core.experiment import runs_root
from core.projection import ensure_projections, load_projection, load_run_embeddings
from core.ranking import best_full_run as rank_best_full_run
from core.ranking import best_run as rank_best_run
from core.results import results_table as experiment_results
from core.robustness import ROBUSTNESS_FILE, load_robustness
from core.trust import TRUST_FILE, load_trust
from ui import precomputed, queries
from ui.context import Context
from ui.models import build_run_model
from ui.commands import build_commands
from ui.slices import search_slices
from ui.story import Story, make_story
from ui.stamps import bundle_stamp, dataset_stamp, experiment_stamp, path_stamp, run_stamp
from ui.widgets import empty_no_runs, show_error

__all__ = [
    "load_run",
    "need_run",
    "results_table",
    "best_run",
    "best_overall_run",
    "experiment_modalities",
    "story",
    "n_classes",
    "sample_columns",
    "explanation_plan",
    "plan_gaps",
    "run_entries",
    "all_metrics",
    "all_predictions",
    "dataset",
    "items",
    "explanation_problem",
    "explanation_summaries",
    "shares",
    "predictions_view",
    "projection",
    "projection_or_problem",
    "shared_run",
    "compute_projections",
    "trust_report",
    "decisions",
    "efficiency_table",
    "robustness_reports",
    "blame",
    "compute_blame",
    "slice_features",
    "slices",
]


# --------------------------------------------------------------------------- runs and the experiment


@st.cache_data(show_spinner=False, max_entries=128)
def _load_run_cached(run_dir: str, stamp: tuple) -> Any:
    return load_bundle(Path(run_dir))


def load_run(ctx: Context, run: str, *, quiet: bool = False) -> Any | None:
    """A run bundle, or None after an error message naming the problem and the fix
    (the catalog's, for a run it found broken, incomplete or refused)."""
    try:
        entry = ctx.entries.get(run)
        if entry is not None and not entry.usable:
            raise entry.error()
        run_dir = ctx.run_path(run)
        return _load_run_cached(str(run_dir), run_stamp(run_dir))
    except FusionLensError as exc:
        if not quiet:
            show_error(exc, f"Run `{run}` cannot be shown")
            st.caption("The other runs stay usable: pick one in the sidebar.")
        return None


def need_run(ctx: Context) -> Any | None:
    """The loaded selected run, or None after showing what is wrong (no runs, broken bundle)."""
    if not ctx.experiment or not ctx.run:
        empty_no_runs(ctx)
        return None
    return load_run(ctx, ctx.run)


@st.cache_data(show_spinner=False, max_entries=16)
def _experiment_cached(exp_dir: str, root: str, stamp: tuple) -> tuple[list[RunEntry], pd.DataFrame, list[str]]:
    """One catalog scan of an experiment: its runs' entries and its results table, each run read once."""
    entries = catalog.scan_runs(Path(exp_dir), Path(root))
    frame, problems = experiment_results(Path(exp_dir), Path(root), entries=entries)
    # the loaded bundles stay out of the cache (the pages load the run they show)
    return [RunEntry(e.name, e.path, e.state, e.problem, e.fix) for e in entries], frame, problems


def results_table(ctx: Context) -> tuple[pd.DataFrame, list[str]]:
    """(results table, problems) of the selected experiment: one damaged run is a problem, not an error."""
    stamp = experiment_stamp(ctx.root, ctx.experiment)
    _, frame, problems = _experiment_cached(str(ctx.exp_dir), str(ctx.root), stamp)
    return frame, problems


def experiment_modalities(ctx: Context, results: pd.DataFrame | None = None) -> list[str]:
    """Every modality of the selected experiment: its dataset description's, else every modality
    a run of ``results`` uses."""
    try:
        info = queries.dataset_info(ctx.root, ctx.experiment) if ctx.experiment else None
    except FusionLensError:
        info = None
    mods = (info or {}).get("modalities")
    if isinstance(mods, dict) and mods:
        return [str(m) for m in mods]
    if results is None or results.empty or "modalities" not in results.columns:
        return []
    return list(dict.fromkeys(m for text in results["modalities"].astype(str) for m in text.split("+") if m))


def best_run(ctx: Context, results: pd.DataFrame | None) -> str | None:
    """The experiment's best run among those that use every modality (the Overview's best run and
    the sidebar's default, so the first screen shows every modality), else the best run overall;
    ties broken as the build breaks them (see core.ranking)."""
    if results is None or results.empty:
        return None
    explained = queries.explained_runs(ctx.root, ctx.experiment, results["run"].tolist())
    return (rank_best_full_run(results, experiment_modalities(ctx, results), explained=explained)
            or rank_best_run(results, explained=explained))


def best_overall_run(ctx: Context, results: pd.DataFrame | None) -> str | None:
    """The experiment's best run whatever modalities it uses (see core.ranking.best_run)."""
    if results is None or results.empty:
        return None
    return rank_best_run(results, explained=queries.explained_runs(ctx.root, ctx.experiment, results["run"].tolist()))


def story(ctx: Context, results: pd.DataFrame | None) -> Story:
    """The experiment's story (:func:`ui.story.make_story`) from the cached tables: the predictions of
    the runs it compares and the stored shares of the run it names (a damaged store is a sentence)."""
    if results is None or results.empty:
        return make_story(results, experiment_modalities(ctx))
    mods = dict(zip(results["run"].astype(str), results["modalities"].astype(str).str.split("+")))

    def predictions(run: str) -> pd.DataFrame | None:
        loaded = load_run(ctx, run, quiet=True)
        return None if loaded is None else loaded.predictions

    def shares_of(run: str) -> pd.DataFrame | None:
        problem = explanation_problem(ctx, run)
        if problem is not None:
            raise problem
        return queries.share_frame(explanation_summaries(ctx, run), mods.get(run, []))

    return make_story(results, experiment_modalities(ctx, results),
                      explained=queries.explained_runs(ctx.root, ctx.experiment, results["run"].tolist()),
                      predictions=predictions, shares=shares_of,
                      explain_command=lambda run: build_commands(ctx.experiment, run, root=ctx.root)["explain"])


def n_classes(ctx: Context) -> int | None:
    """Number of classes of the selected experiment (from its dataset description), or None."""
    try:
        info = queries.dataset_info(ctx.root, ctx.experiment) if ctx.experiment else None
    except FusionLensError:
        return None
    classes = (info or {}).get("classes")
    return len(classes) if isinstance(classes, list) else None


def _stored_ids(run_dir: Path) -> set[str]:
    try:
        frame = precomputed.explanation_summaries(run_dir)
    except FusionLensError:  # damaged parts are reported on their run's pages
        return set()
    return set() if frame is None else set(frame["sample_id"].astype(str))


@st.cache_data(show_spinner=False, max_entries=16)
def _plan_cached(root: str, experiment: str, stamp: tuple) -> pd.DataFrame:
    return precomputed.explanation_plan(Path(root), experiment, _stored_ids)


def explanation_plan(ctx: Context) -> pd.DataFrame | None:
    """The build's explanation plan of the experiment with what is stored (see
    :func:`ui.precomputed.explanation_plan`), or None (after a message when it cannot be read)."""
    if not ctx.experiment or not ctx.runs:
        return None
    stamp = experiment_stamp(ctx.root, ctx.experiment) + tuple(
        path_stamp(ctx.exp_dir / r / "explanations") for r in ctx.runs)
    try:
        return _plan_cached(str(ctx.root), ctx.experiment, stamp)
    except FusionLensError as exc:
        show_error(exc, "The build's explanation plan cannot be read")
        return None


def plan_gaps(ctx: Context, plan: pd.DataFrame) -> tuple[list[str], list[str]]:
    """What the build's explanation plan misses and the commands that fill it (:func:`ui.precomputed.plan_gaps`)."""
    return precomputed.plan_gaps(plan, build_commands(ctx.experiment, None, root=ctx.root)["explain_all"])


def run_entries(ctx: Context) -> list[RunEntry]:
    """The catalog's entry (state, problem, fix) of every run of the selected experiment."""
    return _experiment_cached(str(ctx.exp_dir), str(ctx.root), experiment_stamp(ctx.root, ctx.experiment))[0]


@st.cache_data(show_spinner=False, max_entries=16)
def _all_metrics_cached(exp_dir: str, runs: tuple[str, ...], stamp: tuple) -> dict[str, dict]:
    out = {}
    for r in runs:
        try:
            out[r] = load_bundle(Path(exp_dir) / r).metrics
        except BundleError:
            continue
    return out


def all_metrics(ctx: Context, runs: list[str]) -> dict[str, dict]:
    """``metrics.json`` of each readable run of ``runs``, by name."""
    return _all_metrics_cached(str(ctx.exp_dir), tuple(runs), experiment_stamp(ctx.root, ctx.experiment))


@st.cache_data(show_spinner=False, max_entries=16)
def _all_predictions_cached(exp_dir: str, runs: tuple[str, ...], stamp: tuple) -> dict[str, pd.DataFrame]:
    wanted = ["id", "label", "pred", "confidence", "correct", *[f"top{k}_label" for k in range(1, 6)]]
    out = {}
    for r in runs:
        try:
            frame = load_bundle(Path(exp_dir) / r).predictions
        except BundleError:  # a broken run is reported on its own page; leave it out here
            continue
        out[r] = frame[[c for c in wanted if c in frame.columns]]
    return out


def all_predictions(ctx: Context) -> dict[str, pd.DataFrame]:
    """Predictions of every readable run (for 'the same sample under the other runs')."""
    runs = tuple(ctx.runs)
    return _all_predictions_cached(str(ctx.exp_dir), runs, experiment_stamp(ctx.root, ctx.experiment))


# --------------------------------------------------------------------------- the dataset


@st.cache_data(show_spinner=False, max_entries=8)
def _dataset_cached(exp_dir: str, stamp: tuple) -> Any:
    return load_experiment_dataset(Path(exp_dir))


def dataset(ctx: Context, *, quiet: bool = False) -> Any | None:
    """(Dataset, info) of the experiment, or None after a message."""
    exp_dir = ctx.exp_dir
    try:
        return _dataset_cached(str(exp_dir), dataset_stamp(exp_dir))
    except (FusionLensError, KeyError, TypeError) as exc:
        if not quiet:
            show_error(exc, f"The dataset of `{ctx.experiment}` cannot be read")
        return None


@st.cache_data(show_spinner=False, max_entries=8)
def _sample_columns_cached(exp_dir: str, stamp: tuple) -> pd.DataFrame:
    ds, _ = _dataset_cached(exp_dir, stamp)
    try:
        return ds.sample_metadata()
    except FusionLensError:  # a damaged metadata file: the manifest's own columns
        return ds.frame


def sample_columns(ctx: Context) -> pd.DataFrame | None:
    """Every per-sample column of the experiment's data: the manifest with the data's metadata (e.g. a
    simulated clip's variant, :meth:`core.data.Dataset.sample_metadata`), read once per dataset; the
    manifest alone when the metadata file is damaged; None when the dataset cannot be read."""
    try:
        return _sample_columns_cached(str(ctx.exp_dir), dataset_stamp(ctx.exp_dir))
    except (FusionLensError, KeyError, TypeError):
        return None


@st.cache_data(show_spinner=False, max_entries=512)
def _items_cached(exp_dir: str, stamp: tuple, modality: str, ids: tuple[str, ...]) -> list[Any]:
    ds, _ = _dataset_cached(exp_dir, stamp)
    return queries.safe_items(ds, modality, list(ids))


def items(ctx: Context, modality: str, ids: list[str]) -> list[Any] | None:
    """Raw items (text, images, clips) of samples, or None after a message."""
    exp_dir = ctx.exp_dir
    try:
        return _items_cached(str(exp_dir), dataset_stamp(exp_dir), modality, tuple(str(i) for i in ids))
    except FusionLensError as exc:
        show_error(exc, f"The {modality} of {', '.join(map(str, ids[:3]))} cannot be shown")
        return None


# --------------------------------------------------------------------------- explanations


@st.cache_data(show_spinner=False, max_entries=64)
def _summaries_cached(run_dir: str, stamp: tuple) -> pd.DataFrame | None:
    return precomputed.explanation_summaries(Path(run_dir))


def explanation_problem(ctx: Context, run: str | None = None) -> FusionLensError | None:
    """Why a run's stored explanations cannot be read (a damaged part), or None when they can
    (stored or genuinely absent). Pages use it to say "damaged" instead of "nothing yet"."""
    try:
        run_dir = ctx.run_path(run or ctx.run)
        if run_dir is not None:
            _summaries_cached(str(run_dir), run_stamp(run_dir))
    except FusionLensError as exc:
        return exc
    return None


def explanation_summaries(ctx: Context, run: str | None = None) -> pd.DataFrame | None:
    """The stored per-sample explanation rows of a run (``sample_id``...), or None (after
    showing the problem and the fix when a stored file is damaged)."""
    run_dir = ctx.run_path(run or ctx.run)
    if run_dir is None:
        return None
    try:
        return _summaries_cached(str(run_dir), run_stamp(run_dir))
    except FusionLensError as exc:
        show_error(exc, "Stored explanations cannot be read")
        return None


def shares(ctx: Context, run_obj: Any) -> pd.DataFrame:
    """Per-sample shares keyed by ``id`` (empty frame when nothing is explained)."""
    return queries.share_frame(explanation_summaries(ctx, Path(run_obj.path).name), run_obj.modalities)


@st.cache_data(show_spinner=False, max_entries=32)
def _view_cached(run_dir: str, stamp: tuple, exp_dir: str, ds_stamp: tuple,
                 modalities: tuple[str, ...]) -> pd.DataFrame:
    run = _load_run_cached(run_dir, stamp)
    try:
        summaries = _summaries_cached(run_dir, stamp)
    except FusionLensError:  # damaged explanations: the view without shares (predictions_view says why)
        summaries = None
    share_rows = queries.share_frame(summaries, list(modalities))
    texts = None
    try:
        ds, _ = _dataset_cached(exp_dir, ds_stamp)
        text_mods = queries.text_modalities(ds.modalities, run.modalities)
        if text_mods:
            texts = ds.frame[["id", *text_mods]]
    except FusionLensError:
        texts = None
    return queries.predictions_view(run.predictions, list(modalities),
                                    share_rows if not share_rows.empty else None, texts)


def predictions_view(ctx: Context, run_obj: Any) -> pd.DataFrame:
    """predictions + shares + dominant modality + text columns of a run (cached); damaged stored
    explanations are reported here and the view comes without shares."""
    run_dir = run_obj.path
    exp_dir = ctx.exp_dir
    problem = explanation_problem(ctx, run_obj.path.name)
    if problem is not None:
        show_error(problem, "Stored explanations cannot be read")
    try:
        return _view_cached(str(run_dir), run_stamp(run_dir), str(exp_dir), dataset_stamp(exp_dir),
                            tuple(run_obj.modalities))
    except FusionLensError as exc:
        show_error(exc, "The predictions of this run cannot be shown with their texts")
        return queries.predictions_view(run_obj.predictions, run_obj.modalities)


# --------------------------------------------------------------------------- projections


@st.cache_data(show_spinner=False, max_entries=256)
def _projection_cached(run_dir: str, stamp: tuple, embedding: str, method: str) -> dict[str, Any] | None:
    found = load_projection(Path(run_dir), embedding, method)
    if found is None:
        return None
    ids, proj = found
    return {"ids": ids, "coords": proj.coords, "trustworthiness": proj.trustworthiness,
            "k": proj.trustworthiness_k, "params": proj.params, "label": proj.label, "seed": proj.seed,
            "trust_interval": proj.trustworthiness_interval, "trust_n": proj.trustworthiness_n, "fit": proj.fit}


def projection(run_dir: Path, embedding: str, method: str) -> dict[str, Any] | None:
    """A stored projection as plain data (ids, coords, trustworthiness...), or None when absent.
    A damaged one raises :class:`BundleError` naming the file and the fix (see :func:`projection_or_problem`)."""
    return _projection_cached(str(run_dir), run_stamp(run_dir), embedding, method)


def projection_or_problem(run_dir: Path, embedding: str,
                          method: str) -> tuple[dict[str, Any] | None, FusionLensError | None]:
    """``(projection or None, None)``, or ``(None, error)`` when the stored projection is damaged."""
    try:
        return projection(run_dir, embedding, method), None
    except FusionLensError as exc:
        return None, exc


def compute_projections(run_obj: Any, methods: list[str]) -> None:
    """Compute missing projections of a run with a progress bar; they are stored with the run."""
    bar = st.progress(0.0, text="Loading embeddings…")

    def progress(done: int, total: int, label: str) -> None:
        bar.progress(min(1.0, done / max(total, 1)), text=f"Projecting {label} ({done}/{total})…")

    try:
        ids, embs = load_run_embeddings(run_obj.path)
        ensure_projections(run_obj.path, embs, ids, methods, progress=progress)
    except FusionLensError as exc:
        show_error(exc, "Projections could not be computed")
        return
    bar.progress(1.0, text="Stored.")


# --------------------------------------------------------------------------- models


@st.cache_resource(show_spinner=False, max_entries=4)
def _shared_run(run_dir: str, root: str, stamp: tuple) -> Any:
    run = load_bundle(Path(run_dir))
    build_run_model(run, root)  # the bundle's model sources are checked before anything is loaded
    return run


def shared_run(run_obj: Any) -> Any:
    """One ``Run`` per bundle for the whole server: its model (``Run.model()``) is rebuilt once, never
    mutated, under the dashboard's rules for what a bundle may load (:func:`ui.models.build_run_model`)."""
    return _shared_run(str(run_obj.path), str(runs_root()), bundle_stamp(run_obj.path))


# --------------------------------------------------------------------------- trust checks


@st.cache_data(show_spinner=False, max_entries=64)
def _trust_cached(run_dir: str, stamp: tuple) -> dict[str, Any] | None:
    return load_trust(Path(run_dir))


def trust_report(run_obj: Any) -> tuple[dict[str, Any] | None, FusionLensError | None]:
    """``(report, None)`` of a run's stored trust checks (``<run>/trust.json``; report None when they
    were never computed), or ``(None, error)`` when the file is damaged: the error names the file
    and the fix, for the page to show."""
    run_dir = Path(run_obj.path)
    try:
        return _trust_cached(str(run_dir), path_stamp(run_dir / TRUST_FILE)), None
    except FusionLensError as exc:
        return None, exc


# --------------------------------------------------------------------------- robustness tables


@st.cache_data(show_spinner=False, max_entries=256)
def _robustness_cached(run_dir: str, stamp: tuple) -> dict[str, Any] | None:
    return load_robustness(Path(run_dir))


def robustness_reports(ctx: Context) -> tuple[dict[str, dict[str, Any]], dict[str, FusionLensError]]:
    """The stored robustness tables (``<run>/robustness.json``) of the experiment's usable runs, by run
    name (a run without one is left out), and the error of each damaged one (naming the file and the
    fix, for the page to show; the other runs stay shown)."""
    reports: dict[str, dict[str, Any]] = {}
    problems: dict[str, FusionLensError] = {}
    for name in ctx.runs:
        entry = ctx.entries.get(name)
        if entry is not None and not entry.usable:
            continue
        try:
            run_dir = ctx.run_path(name)
            if run_dir is None:
                continue
            report = _robustness_cached(str(run_dir), path_stamp(run_dir / ROBUSTNESS_FILE))
        except FusionLensError as exc:
            problems[name] = exc
            continue
        if report is not None:
            reports[name] = report
    return reports, problems


# --------------------------------------------------------------------------- modality blame for errors


#: the tables ``blame.json`` describes: their file and checked loader
_BLAME_TABLES = {"blame": (BLAME_FILE, load_blame), "game": (MODALITY_GAME_FILE, load_modality_game)}


@st.cache_data(show_spinner=False, max_entries=128)
def _blame_cached(run_dir: str, table: str, stamp: tuple) -> tuple[pd.DataFrame | None, bool]:
    frame = _BLAME_TABLES[table][1](Path(run_dir))
    return frame, frame is not None and blame_is_current(Path(run_dir))


def _blame_table(run_obj: Any, table: str) -> tuple[pd.DataFrame | None, bool, FusionLensError | None]:
    run_dir = Path(run_obj.path)
    stamp = (path_stamp(run_dir / _BLAME_TABLES[table][0]), path_stamp(run_dir / BLAME_META_FILE),
             *bundle_stamp(run_dir))
    try:
        frame, current = _blame_cached(str(run_dir), table, stamp)
    except FusionLensError as exc:
        return None, False, exc
    return frame, current, None


def blame(run_obj: Any) -> tuple[pd.DataFrame | None, bool, FusionLensError | None]:
    """``(table, current, None)`` of a run's stored modality blame (``<run>/blame.parquet``; table None when
    it was never computed; ``current``: computed for this training of the run), or ``(None, False, error)``
    when the file is damaged: the error names the file and the fix, for the page to show."""
    return _blame_table(run_obj, "blame")


def modality_game(run_obj: Any) -> tuple[pd.DataFrame | None, bool, FusionLensError | None]:
    """``(table, current, None)`` of a run's modality game of every test prediction
    (``<run>/modality_game.parquet``, stored by the blame step; table None when never computed), or
    ``(None, False, error)`` when the file is damaged (the error names the file and the fix)."""
    return _blame_table(run_obj, "game")


def compute_blame(run_obj: Any) -> bool:
    """Compute and store a run's modality blame (every test prediction) inside a status box with a
    progress bar; False after showing what went wrong."""
    from core.explain import blame_run  # imports torch: only when asked

    with st.status("Computing which modality misled the model…", expanded=True) as status:
        bar = st.progress(0.0, text="Encoding each modality present and wholly masked…")

        def progress(done: int, total: int) -> None:
            bar.progress(min(1.0, done / max(total, 1)), text=f"Encoding each modality present and wholly masked… "
                                                             f"{done:,}/{total:,}")

        try:
            blame_run(shared_run(run_obj), force=True, progress=progress)
        except FusionLensError as exc:
            status.update(label="The blame could not be computed", state="error")
            show_error(exc, "The blame of this run could not be computed")
            return False
        status.update(label="Stored with the run.", state="complete")
    return True


# --------------------------------------------------------------------------- adaptive runs


@st.cache_data(show_spinner=False, max_entries=64)
def _decisions_cached(run_dir: str, stamp: tuple) -> pd.DataFrame:
    return load_decisions(Path(run_dir))


def decisions(run_obj: Any, *, quiet: bool = False) -> pd.DataFrame | None:
    """An adaptive run's decisions (``decisions.parquet``); None for another run, or after showing what is
    wrong with the file."""
    if run_obj is None or not is_adaptive(run_obj):
        return None
    try:
        return _decisions_cached(str(run_obj.path), (*bundle_stamp(run_obj.path),
                                                     path_stamp(Path(run_obj.path) / DECISIONS_FILE)))
    except FusionLensError as exc:
        if not quiet:
            show_error(exc, f"The decisions of run `{run_obj.name}` cannot be read")
        return None


@st.cache_data(show_spinner=False, max_entries=16)
def _efficiency_cached(exp_dir: str, root: str, stamp: tuple, adaptive: str | None) -> pd.DataFrame:
    runs = [e.run for e in catalog.scan_runs(Path(exp_dir), Path(root)) if e.usable and e.run is not None]
    return experiment_efficiency(runs, adaptive)


def efficiency_table(ctx: Context, adaptive: str | None = None) -> pd.DataFrame:
    """The reference's efficiency table of the experiment (``core.adaptive.efficiency_table``): empty
    without an adaptive run."""
    if not ctx.experiment:
        return pd.DataFrame()
    stamp = experiment_stamp(ctx.root, ctx.experiment)
    return _efficiency_cached(str(ctx.exp_dir), str(ctx.root), stamp, adaptive)


# --------------------------------------------------------------------------- slices


@st.cache_data(show_spinner=False, max_entries=32)
def _slice_features_cached(run_dir: str, stamp: tuple, exp_dir: str, ds_stamp: tuple,
                           modalities: tuple[str, ...]) -> pd.DataFrame:
    view = _view_cached(run_dir, stamp, exp_dir, ds_stamp, modalities)
    try:
        ds, _ = _dataset_cached(exp_dir, ds_stamp)
    except (FusionLensError, KeyError, TypeError):  # no manifest columns: the predictions' own features
        ds = None
    return slice_finder.slice_features(view, list(modalities), ds)


def slice_features(ctx: Context, run_obj: Any) -> pd.DataFrame | None:
    """The slice features of a run's test predictions (:func:`core.slices.slice_features`, with the
    dataset's manifest columns), or None after showing the problem and the fix."""
    try:
        return _slice_features_cached(str(run_obj.path), run_stamp(run_obj.path), str(ctx.exp_dir),
                                      dataset_stamp(ctx.exp_dir), tuple(run_obj.modalities))
    except FusionLensError as exc:
        show_error(exc, "The slice features of this run cannot be made")
        return None


@st.cache_data(show_spinner=False, max_entries=64)
def _slices_cached(run_dir: str, stamp: tuple, exp_dir: str, ds_stamp: tuple, modalities: tuple[str, ...],
                   columns: tuple[str, ...], min_size: int, max_conditions: int, alpha: float) -> pd.DataFrame:
    features = _slice_features_cached(run_dir, stamp, exp_dir, ds_stamp, modalities)
    view = _view_cached(run_dir, stamp, exp_dir, ds_stamp, modalities)
    return search_slices(features, view, columns=list(columns), min_size=min_size, max_conditions=max_conditions,
                         alpha=alpha)


def slices(ctx: Context, run_obj: Any, *, columns: list[str], min_size: int, max_conditions: int,
           alpha: float) -> pd.DataFrame | None:
    """The run's slices found by SliceLine (:func:`core.slices.find_slices`; ``attrs`` carry the summary
    and, for an empty table, the reason), or None after showing the problem and the fix."""
    try:
        return _slices_cached(str(run_obj.path), run_stamp(run_obj.path), str(ctx.exp_dir), dataset_stamp(ctx.exp_dir),
                              tuple(run_obj.modalities), tuple(columns), int(min_size), int(max_conditions),
                              float(alpha))
    except FusionLensError as exc:
        show_error(exc, "Slices cannot be searched")
        return None
