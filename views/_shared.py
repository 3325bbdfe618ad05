"""Streamlit glue shared by ``app.py`` and the pages.

The sidebar (experiment, run, second run) and the selected sample live in
``st.session_state`` and are mirrored in the URL (``?page=&exp=&run=&run2=&sample=``),
so a link reopens the same view. Loaders are cached with ``st.cache_data``
(tables, arrays) and ``st.cache_resource`` (models), keyed by the run folder
plus the modification times of its files, so a rebuilt run is read again.
Everything that is not Streamlit lives in :mod:`core.dashboard`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import streamlit as st

from core import catalog
from core import dashboard as D
from core.catalog import RunEntry
from core.errors import BundleError, FusionLensError


@dataclass(frozen=True)
class PageSpec:
    key: str
    title: str
    path: str
    icon: str


PAGES: tuple[PageSpec, ...] = (
    PageSpec("overview", "Overview", "views/1_overview.py", ":material/home:"),
    PageSpec("compare", "Compare fusion methods", "views/2_compare.py", ":material/leaderboard:"),
    PageSpec("contributions", "Modality contributions", "views/3_contributions.py", ":material/stacked_bar_chart:"),
    PageSpec("explorer", "Sample explorer", "views/4_explorer.py", ":material/image_search:"),
    PageSpec("embeddings", "Embeddings", "views/5_embeddings.py", ":material/scatter_plot:"),
    PageSpec("misclassifications", "Misclassifications", "views/6_misclassifications.py", ":material/grid_on:"),
)
PAGE_BY_KEY = {p.key: p for p in PAGES}

K_EXP, K_RUN, K_RUN2, K_SAMPLE = "fl_exp", "fl_run", "fl_run2", "fl_sample"
URL_KEYS = {"exp": K_EXP, "run": K_RUN, "run2": K_RUN2, "sample": K_SAMPLE}
WRITTEN = "_fl_url_written"
CTX, LAST_CTX = "fl_ctx", "fl_last_ctx"


@dataclass
class Context:
    """What the sidebar picked, shared by every page of one script run."""

    root: Path
    page: str
    experiments: list[str] = field(default_factory=list)
    experiment: str | None = None
    runs: list[str] = field(default_factory=list)
    run: str | None = None
    run2: str | None = None
    refused: list[str] = field(default_factory=list)
    #: the catalog's entry of every run of the experiment (refused ones included), by name
    entries: dict[str, RunEntry] = field(default_factory=dict)

    @property
    def exp_dir(self) -> Path | None:
        return D.safe_join(self.root, self.experiment) if self.experiment else None

    @property
    def run_dir(self) -> Path | None:
        return self.run_path(self.run)

    def run_path(self, run: str | None) -> Path | None:
        if not (self.experiment and run):
            return None
        return D.check_run_dir(self.root, self.experiment, run)

    @property
    def sample(self) -> str | None:
        value = st.session_state.get(K_SAMPLE)
        return str(value) if value else None


# --------------------------------------------------------------------------- sidebar & URL


def _adopt_url_values() -> tuple[list[str], set[str]]:
    """Copy URL values that changed outside the app (a pasted link) into the session state.

    Returns the refused names (not plain names) and the state keys taken from the URL in this
    run: only those are reported when they name nothing in the runs directory. A value left
    over from the widgets (a run of the experiment picked before) falls back silently.
    """
    refused: list[str] = []
    adopted: set[str] = set()
    written = st.session_state.setdefault(WRITTEN, {})
    for url_key, state_key in URL_KEYS.items():
        value = st.query_params.get(url_key)
        if value is None or written.get(url_key) == value:
            continue
        written[url_key] = value
        if url_key != "sample":
            try:
                D.check_name(value, {"exp": "experiment", "run2": "run"}.get(url_key, url_key))
            except D.PathRefused as exc:
                refused.append(exc.problem)
                continue
        st.session_state[state_key] = value
        adopted.add(state_key)
    return refused, adopted


def _pick(state_key: str, options: list[Any], default: Any, what: str, refused: list[str],
          from_url: set[str]) -> None:
    """Make the state of a selectbox valid before the widget is drawn.

    A name from the URL that is not among ``options`` is reported; a stale value (a run of the
    experiment shown before a switch) silently becomes ``default``.
    """
    value = st.session_state.get(state_key)
    if value is not None and value not in options:
        if state_key in from_url:
            refused.append(f"{what} {value!r} is not in the runs directory; showing {default!r} instead")
        value = None
    if value is None:
        st.session_state[state_key] = default


def sidebar(page_key: str) -> Context:
    """Draw the shared pickers in the sidebar and return the context of this script run."""
    from core.experiment import runs_root

    root = runs_root()
    ctx = Context(root=root, page=page_key)
    ctx.refused, from_url = _adopt_url_values()
    ctx.experiments = catalog.list_experiments(root)
    with st.sidebar:
        st.markdown("### FusionLens")
        if not ctx.experiments:
            st.info("No experiments yet.")
            st.caption(f"Runs directory: `{root}`")
            return ctx
        _pick(K_EXP, ctx.experiments, ctx.experiments[0], "experiment", ctx.refused, from_url)
        # persist_state="session": a page switch from code (open_in_explorer) would drop the pickers
        ctx.experiment = st.selectbox("Experiment", ctx.experiments, key=K_EXP, persist_state="session")
        ctx.entries = {e.name: e for e in run_entries(ctx)}
        ctx.runs = [name for name, e in ctx.entries.items() if e.state != catalog.REFUSED]
        if ctx.runs:
            results, _ = results_table(ctx)
            default = best_run(ctx, results) or ctx.runs[0]
            _pick(K_RUN, ctx.runs, default, "run", ctx.refused, from_url)
            states = {name: e.state for name, e in ctx.entries.items()}
            ctx.run = st.selectbox(
                "Run", ctx.runs, key=K_RUN, persist_state="session",
                format_func=lambda r: r if states.get(r) == catalog.COMPLETE else f"{r} ({states.get(r, 'missing')})",
                help="The model whose predictions, explanations and embeddings the pages show. A run marked "
                     "broken or incomplete shows its problem and the fix on its pages.",
            )
            others = [None, *[r for r in ctx.runs if r != ctx.run]]
            if st.session_state.get(K_RUN2) not in others:
                if K_RUN2 in from_url and st.session_state.get(K_RUN2) != ctx.run:
                    ctx.refused.append(f"run {st.session_state.get(K_RUN2)!r} is not in the runs directory")
                st.session_state[K_RUN2] = None
            ctx.run2 = st.selectbox(
                "Compare with", others, key=K_RUN2, persist_state="session",
                format_func=lambda r: "— none —" if r is None else (
                    r if states.get(r) == catalog.COMPLETE else f"{r} ({states.get(r, 'missing')})"),
                help="A second run, shown side by side where a page compares two.",
            )
        else:
            st.info("This experiment has no runs yet.")
        refused = [e for e in ctx.entries.values() if e.state == catalog.REFUSED]
        if refused:
            st.caption("Not offered (they lead outside the runs directory): "
                       + ", ".join(f"`{e.name}`" for e in refused))
        st.caption(f"Runs directory: `{root}`")
    return ctx


def write_url(ctx: Context) -> None:
    """Mirror the current view in the URL (only when it changed)."""
    desired = {"page": ctx.page, "exp": ctx.experiment, "run": ctx.run, "run2": ctx.run2, "sample": ctx.sample}
    desired = {k: str(v) for k, v in desired.items() if v}
    if st.query_params.to_dict() != desired:
        st.query_params.from_dict(desired)
    st.session_state[WRITTEN] = dict(desired)


def set_sample(sample_id: str | None) -> None:
    """Select a sample (shared by every page) and put it in the URL right away."""
    written = st.session_state.setdefault(WRITTEN, {})
    if sample_id:
        st.session_state[K_SAMPLE] = str(sample_id)
        st.query_params["sample"] = str(sample_id)
        written["sample"] = str(sample_id)
    else:
        st.session_state.pop(K_SAMPLE, None)
        st.query_params.pop("sample", None)
        written.pop("sample", None)


def context(page_key: str) -> Context:
    """The sidebar's context for the page ``page_key``; mirrors the view in the URL."""
    if CTX not in st.session_state:
        # A page script run on its own (``streamlit run views/x.py``): go through the frame.
        st.session_state.get(WRITTEN, {}).pop("page", None)
        st.switch_page("app.py", query_params={**st.query_params.to_dict(), "page": page_key})
    ctx = st.session_state[CTX]
    ctx.page = page_key
    write_url(ctx)
    return ctx


def open_in_explorer(sample_id: str) -> None:
    """Select ``sample_id`` and switch to the sample explorer, under the same experiment and runs.

    ``st.switch_page`` starts the new page without the browser's widget states, so Streamlit
    drops every widget value that is not persisted: the sidebar pickers use
    ``persist_state="session"`` for that reason, and the link carries the whole view as well.
    """
    set_sample(sample_id)
    ctx = st.session_state.get(CTX) or st.session_state.get(LAST_CTX)
    view = {"exp": ctx.experiment, "run": ctx.run, "run2": ctx.run2} if ctx is not None else {}
    params = st.query_params.to_dict() | {k: str(v) for k, v in view.items() if v}
    params.update(page="explorer", sample=str(sample_id))
    st.switch_page(PAGE_BY_KEY["explorer"].path, query_params=params)


# --------------------------------------------------------------------------- messages


def show_error(exc: BaseException, what: str) -> None:
    problem, fix = D.describe_error(exc)
    st.error(f"**{what}.** {problem}" + (f"\n\n**Fix:** {fix}" if fix else ""), icon=":material/error:")


def show_commands(*commands: str, intro: str | None = None) -> None:
    if intro:
        st.markdown(intro)
    st.code("\n".join(commands), language="bash")


def empty_no_runs(ctx: Context) -> None:
    """The page when there is nothing to show yet: what to run."""
    cmds = D.build_commands(ctx.experiment, root=ctx.root)
    if not ctx.experiments:
        st.info(f"**No runs yet** in `{ctx.root}`. Build the demo experiments and start the dashboard with:",
                icon=":material/info:")
        show_commands(cmds["everything"])
        show_commands(cmds["build"], intro="or build one experiment (then reload this page):")
        st.caption("A different runs directory: start the app with `fusionlens dashboard --runs-dir /path/to/runs` "
                   "(or set `FUSIONLENS_RUNS=/path/to/runs` before starting it).")
    else:
        st.info(f"**Experiment `{ctx.experiment}` has no runs yet.** Train them with:", icon=":material/info:")
        show_commands(cmds["build"])


def page_header(title: str, ctx: Context, caption: str | None = None) -> None:
    st.title(title)
    parts = []
    if ctx.experiment:
        parts.append(f"Experiment **{ctx.experiment}**")
    if ctx.run:
        parts.append(f"run **{ctx.run}**")
    if caption:
        parts.append(caption)
    if parts:
        st.caption(" · ".join(parts))


def need_run(ctx: Context) -> Any | None:
    """The loaded selected run, or None after showing what is wrong (no runs, broken bundle)."""
    if not ctx.experiment or not ctx.run:
        empty_no_runs(ctx)
        return None
    return load_run(ctx, ctx.run)


# --------------------------------------------------------------------------- cached loaders


@st.cache_data(show_spinner=False, max_entries=128)
def _load_run_cached(run_dir: str, stamp: tuple) -> Any:
    from core.bundle import load_run as _load

    return _load(Path(run_dir))


def load_run(ctx: Context, run: str, *, quiet: bool = False) -> Any | None:
    """A run bundle, or None after an error message naming the problem and the fix
    (the catalog's, for a run it found broken, incomplete or refused)."""
    try:
        entry = ctx.entries.get(run)
        if entry is not None and not entry.usable:
            raise entry.error()
        run_dir = ctx.run_path(run)
        return _load_run_cached(str(run_dir), D.run_stamp(run_dir))
    except FusionLensError as exc:
        if not quiet:
            show_error(exc, f"Run `{run}` cannot be shown")
            st.caption("The other runs stay usable: pick one in the sidebar.")
        return None


@st.cache_data(show_spinner=False, max_entries=16)
def _results_cached(exp_dir: str, root: str, stamp: tuple) -> tuple[pd.DataFrame, list[str]]:
    from core.results import results_table as _table

    return _table(Path(exp_dir), Path(root))


def results_table(ctx: Context) -> tuple[pd.DataFrame, list[str]]:
    """(results table, problems) of the selected experiment: one damaged run is a problem, not an error."""
    return _results_cached(str(ctx.exp_dir), str(ctx.root), D.experiment_stamp(ctx.root, ctx.experiment))


def best_run(ctx: Context, results: pd.DataFrame | None) -> str | None:
    """The experiment's best run, ties broken as the build breaks them (see core.ranking)."""
    if results is None or results.empty:
        return None
    return D.best_run(results, explained=D.explained_runs(ctx.root, ctx.experiment, results["run"].tolist()))


def n_classes(ctx: Context) -> int | None:
    """Number of classes of the selected experiment (from its dataset description), or None."""
    try:
        info = D.read_dataset_info(ctx.root, ctx.experiment) if ctx.experiment else None
    except FusionLensError:
        return None
    classes = (info or {}).get("classes")
    return len(classes) if isinstance(classes, list) else None


@st.cache_data(show_spinner=False, max_entries=16)
def _plan_cached(root: str, experiment: str, stamp: tuple) -> pd.DataFrame:
    def stored_ids(run_dir: Path) -> set[str]:
        try:
            frame = explanation_store().summaries(run_dir)
        except FusionLensError:  # damaged parts are reported on their run's pages
            return set()
        return set() if frame is None else set(frame["sample_id"].astype(str))

    return D.explanation_plan(Path(root), experiment, stored_ids)


def explanation_plan(ctx: Context) -> pd.DataFrame | None:
    """The build's explanation plan of the experiment with what is stored (see D.explanation_plan)."""
    if not ctx.experiment or not ctx.runs or not explanation_store().available:
        return None
    stamp = D.experiment_stamp(ctx.root, ctx.experiment) + tuple(
        D.path_stamp(ctx.exp_dir / r / "explanations") for r in ctx.runs)
    try:
        return _plan_cached(str(ctx.root), ctx.experiment, stamp)
    except FusionLensError as exc:
        show_error(exc, "The build's explanation plan cannot be read")
        return None


@st.cache_data(show_spinner=False, max_entries=16)
def _entries_cached(exp_dir: str, root: str, stamp: tuple) -> list[RunEntry]:
    # the loaded bundles stay out of the cache (the pages load the run they show)
    return [RunEntry(e.name, e.path, e.state, e.problem, e.fix) for e in catalog.scan_runs(Path(exp_dir), Path(root))]


def run_entries(ctx: Context) -> list[RunEntry]:
    """The catalog's entry (state, problem, fix) of every run of the selected experiment."""
    return _entries_cached(str(ctx.exp_dir), str(ctx.root), D.experiment_stamp(ctx.root, ctx.experiment))


@st.cache_data(show_spinner=False, max_entries=16)
def _all_metrics_cached(exp_dir: str, runs: tuple[str, ...], stamp: tuple) -> dict[str, dict]:
    from core.bundle import load_run as _load

    out = {}
    for r in runs:
        try:
            out[r] = _load(Path(exp_dir) / r).metrics
        except BundleError:
            continue
    return out


def all_metrics(ctx: Context, runs: list[str]) -> dict[str, dict]:
    return _all_metrics_cached(str(ctx.exp_dir), tuple(runs), D.experiment_stamp(ctx.root, ctx.experiment))


@st.cache_data(show_spinner=False, max_entries=16)
def _all_predictions_cached(exp_dir: str, runs: tuple[str, ...], stamp: tuple) -> dict[str, pd.DataFrame]:
    from core.bundle import load_run as _load

    wanted = ["id", "label", "pred", "confidence", "correct", *[f"top{k}_label" for k in range(1, 6)]]
    out = {}
    for r in runs:
        try:
            frame = _load(Path(exp_dir) / r).predictions
        except BundleError:  # a broken run is reported on its own page; leave it out here
            continue
        out[r] = frame[[c for c in wanted if c in frame.columns]]
    return out


def all_predictions(ctx: Context) -> dict[str, pd.DataFrame]:
    """Predictions of every readable run (for 'the same sample under the other runs')."""
    runs = tuple(ctx.runs)
    return _all_predictions_cached(str(ctx.exp_dir), runs, D.experiment_stamp(ctx.root, ctx.experiment))


@st.cache_data(show_spinner=False, max_entries=8)
def _dataset_cached(exp_dir: str, stamp: tuple) -> Any:
    from core.train import load_experiment_dataset

    return load_experiment_dataset(Path(exp_dir))


def dataset(ctx: Context, *, quiet: bool = False) -> Any | None:
    """(Dataset, info) of the experiment, or None after a message."""
    exp_dir = ctx.exp_dir
    try:
        stamp = (D.path_stamp(exp_dir / "dataset.json"), D.path_stamp(exp_dir / "dataset.parquet"))
        return _dataset_cached(str(exp_dir), stamp)
    except (FusionLensError, KeyError, TypeError) as exc:
        if not quiet:
            show_error(exc, f"The dataset of `{ctx.experiment}` cannot be read")
        return None


@st.cache_data(show_spinner=False, max_entries=512)
def _items_cached(exp_dir: str, stamp: tuple, modality: str, ids: tuple[str, ...]) -> list[Any]:
    ds, _ = _dataset_cached(exp_dir, stamp)
    return D.safe_items(ds, modality, list(ids))


def items(ctx: Context, modality: str, ids: list[str]) -> list[Any] | None:
    """Raw items (text, images, clips) of samples, or None after a message."""
    exp_dir = ctx.exp_dir
    stamp = (D.path_stamp(exp_dir / "dataset.json"), D.path_stamp(exp_dir / "dataset.parquet"))
    try:
        return _items_cached(str(exp_dir), stamp, modality, tuple(str(i) for i in ids))
    except FusionLensError as exc:
        show_error(exc, f"The {modality} of {', '.join(map(str, ids[:3]))} cannot be shown")
        return None


@st.cache_resource(show_spinner=False)
def explanation_store() -> D.ExplanationStore:
    return D.explanation_store()


@st.cache_data(show_spinner=False, max_entries=64)
def _summaries_cached(run_dir: str, stamp: tuple) -> pd.DataFrame | None:
    return explanation_store().summaries(Path(run_dir))


def explanation_problem(ctx: Context, run: str | None = None) -> FusionLensError | None:
    """Why a run's stored explanations cannot be read (a damaged part), or None when they can
    (stored or genuinely absent). Pages use it to say "damaged" instead of "nothing yet"."""
    try:
        run_dir = ctx.run_path(run or ctx.run)
        if run_dir is not None and explanation_store().available:
            _summaries_cached(str(run_dir), D.run_stamp(run_dir))
    except FusionLensError as exc:
        return exc
    return None


def explanation_summaries(ctx: Context, run: str | None = None) -> pd.DataFrame | None:
    """The stored per-sample explanation rows of a run (``sample_id``...), or None (after
    showing the problem and the fix when a stored file is damaged)."""
    run_dir = ctx.run_path(run or ctx.run)
    if run_dir is None or not explanation_store().available:
        return None
    try:
        return _summaries_cached(str(run_dir), D.run_stamp(run_dir))
    except FusionLensError as exc:
        show_error(exc, "Stored explanations cannot be read")
        return None


def shares(ctx: Context, run_obj: Any) -> pd.DataFrame:
    """Per-sample shares keyed by ``id`` (empty frame when nothing is explained)."""
    return D.share_frame(explanation_summaries(ctx, Path(run_obj.path).name), run_obj.modalities)


@st.cache_data(show_spinner=False, max_entries=32)
def _view_cached(run_dir: str, stamp: tuple, exp_dir: str, ds_stamp: tuple,
                 modalities: tuple[str, ...]) -> pd.DataFrame:
    run = _load_run_cached(run_dir, stamp)
    try:
        summaries = _summaries_cached(run_dir, stamp) if explanation_store().available else None
    except FusionLensError:  # damaged explanations: the view without shares (predictions_view says why)
        summaries = None
    share_rows = D.share_frame(summaries, list(modalities))
    texts = None
    try:
        ds, _ = _dataset_cached(exp_dir, ds_stamp)
        text_mods = [m for m in run.modalities if ds.modalities.get(m) == "text"]
        if text_mods:
            texts = ds.frame[["id", *text_mods]]
    except FusionLensError:
        texts = None
    return D.predictions_view(run.predictions, list(modalities), share_rows if not share_rows.empty else None, texts)


def predictions_view(ctx: Context, run_obj: Any) -> pd.DataFrame:
    """predictions + shares + dominant modality + text columns of a run (cached); damaged stored
    explanations are reported here and the view comes without shares."""
    run_dir = run_obj.path
    exp_dir = ctx.exp_dir
    ds_stamp = (D.path_stamp(exp_dir / "dataset.json"), D.path_stamp(exp_dir / "dataset.parquet"))
    problem = explanation_problem(ctx, run_obj.path.name)
    if problem is not None:
        show_error(problem, "Stored explanations cannot be read")
    try:
        return _view_cached(str(run_dir), D.run_stamp(run_dir), str(exp_dir), ds_stamp, tuple(run_obj.modalities))
    except FusionLensError as exc:
        show_error(exc, "The predictions of this run cannot be shown with their texts")
        return D.predictions_view(run_obj.predictions, run_obj.modalities)


@st.cache_data(show_spinner=False, max_entries=256)
def _projection_cached(run_dir: str, stamp: tuple, embedding: str, method: str) -> dict[str, Any] | None:
    from core.projection import load_projection

    found = load_projection(Path(run_dir), embedding, method)
    if found is None:
        return None
    ids, proj = found
    return {"ids": ids, "coords": proj.coords, "trustworthiness": proj.trustworthiness,
            "k": proj.trustworthiness_k, "params": proj.params, "label": proj.label, "seed": proj.seed}


def projection(run_dir: Path, embedding: str, method: str) -> dict[str, Any] | None:
    """A stored projection as plain data (ids, coords, trustworthiness...), or None when absent.
    A damaged one raises :class:`BundleError` naming the file and the fix (see :func:`projection_or_problem`)."""
    return _projection_cached(str(run_dir), D.run_stamp(run_dir), embedding, method)


def projection_or_problem(run_dir: Path, embedding: str,
                          method: str) -> tuple[dict[str, Any] | None, FusionLensError | None]:
    """``(projection or None, None)``, or ``(None, error)`` when the stored projection is damaged."""
    try:
        return projection(run_dir, embedding, method), None
    except FusionLensError as exc:
        return None, exc


@st.cache_resource(show_spinner=False, max_entries=4)
def _shared_run(run_dir: str, root: str, stamp: tuple) -> Any:
    from core.bundle import load_run as _load

    run = _load(Path(run_dir))
    D.build_run_model(run, root)  # the bundle's model sources are checked before anything is loaded
    return run


def shared_run(run_obj: Any) -> Any:
    """One ``Run`` per bundle for the whole server: its model (``Run.model()``) is rebuilt once, never
    mutated, under the dashboard's rules for what a bundle may load (:func:`core.dashboard.build_run_model`)."""
    from core.experiment import runs_root

    return _shared_run(str(run_obj.path), str(runs_root()), D.bundle_stamp(run_obj.path))


def compute_projections(run_obj: Any, methods: list[str]) -> None:
    """Compute missing projections of a run with a progress bar; they are stored with the run."""
    from core.projection import ensure_projections, load_run_embeddings

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


# --------------------------------------------------------------------------- many classes

#: Tallest a figure is drawn before it gets a scrollable box of this height (pixels).
FIGURE_BOX_HEIGHT = 820


def class_filter(key: str, ranked: list[str], *, default_n: int = 30, ranking: str = "") -> list[str]:
    """Which classes a figure shows: all when there are few, else the first ``default_n`` of
    ``ranked`` (``ranking`` says by what), with a "show all" toggle and a class search.

    Returns the classes to show, in ``ranked`` order (searched classes first when picked).
    """
    if len(ranked) <= default_n:
        return list(ranked)
    c1, c2 = st.columns([1, 2.4])
    show_all = c1.toggle(f"Show all {len(ranked)} classes", key=f"{key}_all",
                         help="Every class; the figure grows and scrolls.")
    found = c2.multiselect("Find classes", ranked, key=f"{key}_find", disabled=show_all,
                           placeholder="type a class name to show only those classes")
    if show_all:
        return list(ranked)
    if found:
        return [c for c in ranked if c in set(found)]
    st.caption(f"Showing the {default_n} {ranking or 'first'} classes of {len(ranked)}: "
               "toggle **Show all** or find classes by name; hovering names every cell.")
    return list(ranked[:default_n])


def show_figure(fig: Any, key: str, **kwargs: Any) -> Any:
    """``st.plotly_chart`` that keeps large figures readable: a figure taller than
    :data:`FIGURE_BOX_HEIGHT` or with an explicit width (wider than the page, see
    ``core.figures.MAX_FIT_WIDTH``) goes in a box that scrolls, at its own size."""
    height = fig.layout.height or 450
    width = fig.layout.width
    if height <= FIGURE_BOX_HEIGHT and not width:
        return st.plotly_chart(fig, key=key, **kwargs)
    box = re.sub(r"[^A-Za-z0-9_-]", "-", key) + "_box"  # the container's CSS class is st-key-<its key>
    if width:  # Streamlit fits a chart to its column; this box lets it keep its width and scroll sideways
        st.html(f"<style>.st-key-{box} [data-testid='stElementContainer'] "
                f"{{ width: {int(width)}px !important; min-width: {int(width)}px; }}</style>")
    with st.container(height=min(FIGURE_BOX_HEIGHT, int(height) + 40), key=box):
        return st.plotly_chart(fig, key=key, **({"width": "content"} if width else {}), **kwargs)


def download_name(*parts: str) -> str:
    return "-".join(D.slug(p) for p in parts if p)


def dataframe_selection(event: Any) -> list[int]:
    """Row positions selected in a ``st.dataframe(on_select=...)`` result."""
    if event is None:
        return []
    selection = event.get("selection") if isinstance(event, dict) else getattr(event, "selection", None)
    if selection is None:
        return []
    rows = selection.get("rows") if isinstance(selection, dict) else getattr(selection, "rows", None)
    return list(rows or [])


def on_row_select(key: str, ids: list[str], action: Callable[[str], None] = set_sample) -> Callable[[], None]:
    """A ``st.dataframe`` on_select callback that applies ``action`` to the selected row's id."""

    def callback() -> None:
        rows = dataframe_selection(st.session_state.get(key))
        if rows and 0 <= rows[0] < len(ids):
            action(ids[rows[0]])

    return callback
