"""The frame's state shared by ``app.py`` and the pages: the pages, the URL keys, the context.

The sidebar (experiment, run, second run) and the selected sample live in
``st.session_state`` and are mirrored in the URL (``?page=&exp=&run=&run2=&sample=``),
so a link reopens the same view. ``app.py`` draws the sidebar (:mod:`ui.sidebar`)
and hands this script run's :class:`Context` to the page, which takes it with
:func:`context`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import streamlit as st

from core.catalog import RunEntry, check_run_dir, safe_join

__all__ = [
    "PageSpec",
    "PAGES",
    "PAGE_BY_KEY",
    "K_EXP",
    "K_RUN",
    "K_RUN2",
    "K_SAMPLE",
    "K_PRESENT",
    "URL_KEYS",
    "WRITTEN",
    "CTX",
    "LAST_CTX",
    "Context",
    "write_url",
    "set_sample",
    "context",
    "open_in_explorer",
    "K_SELECTION",
    "open_selection_in_explorer",
    "selection",
]


@dataclass(frozen=True)
class PageSpec:
    """One page: its URL key, title, script (run by ``st.navigation``) and icon."""

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
    PageSpec("robustness", "Robustness", "views/7_robustness.py", ":material/shield:"),
    PageSpec("efficiency", "Efficiency", "views/8_efficiency.py", ":material/speed:"),
    PageSpec("slices", "Slice finder", "views/9_slices.py", ":material/troubleshoot:"),
)
PAGE_BY_KEY = {p.key: p for p in PAGES}

K_EXP, K_RUN, K_RUN2, K_SAMPLE = "fl_exp", "fl_run", "fl_run2", "fl_sample"
URL_KEYS = {"exp": K_EXP, "run": K_RUN, "run2": K_RUN2, "sample": K_SAMPLE}
#: presentation mode (ui.presentation), mirrored in the URL as ``?present=1``
K_PRESENT = "fl_present"
WRITTEN = "_fl_url_written"
CTX, LAST_CTX = "fl_ctx", "fl_last_ctx"
#: the explorer's active selection of samples: ``{"name", "ids", "experiment"}`` (see open_selection_in_explorer)
K_SELECTION = "fl_selection"


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
        return safe_join(self.root, self.experiment) if self.experiment else None

    @property
    def run_dir(self) -> Path | None:
        return self.run_path(self.run)

    def run_path(self, run: str | None) -> Path | None:
        if not (self.experiment and run):
            return None
        return check_run_dir(self.root, self.experiment, run)

    @property
    def sample(self) -> str | None:
        value = st.session_state.get(K_SAMPLE)
        return str(value) if value else None


def write_url(ctx: Context) -> None:
    """Mirror the current view in the URL (only when it changed)."""
    desired = {"page": ctx.page, "exp": ctx.experiment, "run": ctx.run, "run2": ctx.run2, "sample": ctx.sample,
               "present": "1" if st.session_state.get(K_PRESENT) else None}
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
    _switch_to_explorer(sample=str(sample_id))


def _switch_to_explorer(**extra: str) -> None:
    """Open the sample explorer under the current experiment and runs (the link carries the view)."""
    ctx: Any = st.session_state.get(CTX) or st.session_state.get(LAST_CTX)
    view = {"exp": ctx.experiment, "run": ctx.run, "run2": ctx.run2} if ctx is not None else {}
    params = st.query_params.to_dict() | {k: str(v) for k, v in view.items() if v}
    params.update(page="explorer", **extra)
    st.switch_page(PAGE_BY_KEY["explorer"].path, query_params=params)


def open_selection_in_explorer(name: str, ids: Sequence[str]) -> None:
    """Keep ``ids`` as the explorer's selection (``st.session_state["fl_selection"]``, named ``name``)
    and switch to the sample explorer, which shows only those samples until the selection is cleared."""
    ctx: Any = st.session_state.get(CTX) or st.session_state.get(LAST_CTX)
    st.session_state[K_SELECTION] = {"name": str(name), "ids": [str(i) for i in dict.fromkeys(ids)],
                                     "experiment": getattr(ctx, "experiment", None)}
    _switch_to_explorer()


def selection() -> dict[str, Any] | None:
    """The explorer's active selection ``{"name", "ids", "experiment"}``, or None."""
    value = st.session_state.get(K_SELECTION)
    return value if isinstance(value, dict) and isinstance(value.get("ids"), list) else None
