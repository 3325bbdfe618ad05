"""Streamlit glue shared by ``app.py`` and the pages.

The sidebar (experiment, run, second run) and the selected sample live in
``st.session_state`` and are mirrored in the URL (``?page=&exp=&run=&run2=&sample=``),
so a link reopens the same view. Loaders are cached with ``st.cache_data``
(tables, arrays) and ``st.cache_resource`` (models), keyed by the run folder
plus the modification times of its files, so a rebuilt run is read again.
Everything that is not Streamlit lives in :mod:`core.dashboard`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import streamlit as st

from core import dashboard as D
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


def _adopt_url_values() -> list[str]:
    """Copy URL values that changed outside the app (a pasted link) into the session state."""
    refused = []
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
    return refused


def _pick(state_key: str, options: list[Any], default: Any, what: str, refused: list[str]) -> None:
    """Make the state of a selectbox valid before the widget is drawn."""
    value = st.session_state.get(state_key)
    if value is not None and value not in options:
        refused.append(f"{what} {value!r} is not in the runs directory; showing {default!r} instead")
        value = None
    if value is None:
        st.session_state[state_key] = default


def sidebar(page_key: str) -> Context:
    """Draw the shared pickers in the sidebar and return the context of this script run."""
    from core.experiment import runs_root

    root = runs_root()
    ctx = Context(root=root, page=page_key)
    ctx.refused = _adopt_url_values()
    ctx.experiments = D.list_experiments(root)
    with st.sidebar:
        st.markdown("### FusionLens")
        if not ctx.experiments:
            st.info("No experiments yet.")
            st.caption(f"Runs directory: `{root}`")
            return ctx
        _pick(K_EXP, ctx.experiments, ctx.experiments[0], "experiment", ctx.refused)
        ctx.experiment = st.selectbox("Experiment", ctx.experiments, key=K_EXP)
        ctx.runs = D.list_run_names(root, ctx.experiment)
        if ctx.runs:
            results, _ = results_table(ctx)
            default = D.best_run(results) or ctx.runs[0]
            _pick(K_RUN, ctx.runs, default, "run", ctx.refused)
            states = {r: D.run_state(D.safe_join(root, ctx.experiment, r)) for r in ctx.runs}
            ctx.run = st.selectbox(
                "Run", ctx.runs, key=K_RUN,
                format_func=lambda r: r if states.get(r) == "complete" else f"{r} (incomplete)",
                help="The model whose predictions, explanations and embeddings the pages show.",
            )
            others = [None, *[r for r in ctx.runs if r != ctx.run]]
            if st.session_state.get(K_RUN2) not in others:
                if st.session_state.get(K_RUN2) is not None and st.session_state.get(K_RUN2) != ctx.run:
                    ctx.refused.append(f"run {st.session_state.get(K_RUN2)!r} is not in the runs directory")
                st.session_state[K_RUN2] = None
            ctx.run2 = st.selectbox(
                "Compare with", others, key=K_RUN2, format_func=lambda r: "— none —" if r is None else r,
                help="A second run, shown side by side where a page compares two.",
            )
        else:
            st.info("This experiment has no runs yet.")
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
    """Select ``sample_id`` and switch to the sample explorer."""
    set_sample(sample_id)
    st.switch_page(PAGE_BY_KEY["explorer"].path, query_params=st.query_params.to_dict() | {"page": "explorer"})


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
        st.caption("A different runs directory: set `FUSIONLENS_RUNS=/path/to/runs` before starting the app.")
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
    """A run bundle, or None after an error message naming the problem and the fix."""
    try:
        run_dir = ctx.run_path(run)
        return _load_run_cached(str(run_dir), D.run_stamp(run_dir))
    except FusionLensError as exc:
        if not quiet:
            show_error(exc, f"Run `{run}` cannot be shown")
            st.caption("The other runs stay usable: pick one in the sidebar.")
        return None


@st.cache_data(show_spinner=False, max_entries=16)
def _results_cached(exp_dir: str, stamp: tuple) -> tuple[pd.DataFrame, list[str]]:
    from core.results import results_table as _table

    return _table(Path(exp_dir))


def results_table(ctx: Context) -> tuple[pd.DataFrame, list[str]]:
    """(results table, problems) of the selected experiment."""
    return _results_cached(str(ctx.exp_dir), D.experiment_stamp(ctx.root, ctx.experiment))


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


def explanation_summaries(ctx: Context, run: str | None = None) -> pd.DataFrame | None:
    """The stored per-sample explanation rows of a run (``sample_id``...), or None."""
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
    return D.share_frame(explanation_summaries(ctx, run_obj.name), run_obj.modalities)


@st.cache_data(show_spinner=False, max_entries=32)
def _view_cached(run_dir: str, stamp: tuple, exp_dir: str, ds_stamp: tuple,
                 modalities: tuple[str, ...]) -> pd.DataFrame:
    run = _load_run_cached(run_dir, stamp)
    share_rows = D.share_frame(_summaries_cached(run_dir, stamp) if explanation_store().available else None,
                               list(modalities))
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
    """predictions + shares + dominant modality + text columns of a run (cached)."""
    run_dir = run_obj.path
    exp_dir = ctx.exp_dir
    ds_stamp = (D.path_stamp(exp_dir / "dataset.json"), D.path_stamp(exp_dir / "dataset.parquet"))
    try:
        return _view_cached(str(run_dir), D.run_stamp(run_dir), str(exp_dir), ds_stamp, tuple(run_obj.modalities))
    except FusionLensError as exc:
        show_error(exc, "Stored explanations cannot be read")
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
    """A stored projection as plain data (ids, coords, trustworthiness...), or None."""
    return _projection_cached(str(run_dir), D.run_stamp(run_dir), embedding, method)


@st.cache_resource(show_spinner=False, max_entries=4)
def _shared_run(run_dir: str, stamp: tuple) -> Any:
    from core.bundle import load_run as _load

    return _load(Path(run_dir))


def shared_run(run_obj: Any) -> Any:
    """One ``Run`` per bundle for the whole server: its model (``Run.model()``) is rebuilt once, never mutated."""
    return _shared_run(str(run_obj.path), D.bundle_stamp(run_obj.path))


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
