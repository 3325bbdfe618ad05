"""The shared sidebar drawn by ``app.py``: experiment, run and a second run to compare.

Values from the URL are checked as plain names (anything else is refused and
reported); a stale value (a run of the experiment shown before a switch) falls
back silently to the experiment's best run.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from core import catalog
from core.catalog import PathRefused, check_name
from core.experiment import runs_root
from ui.context import K_EXP, K_RUN, K_RUN2, URL_KEYS, WRITTEN, Context
from ui.loaders import best_run, results_table, run_entries
from ui.presentation import presentation_toggle
from ui.view_panel import views_panel

__all__ = ["sidebar"]


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
                check_name(value, {"exp": "experiment", "run2": "run"}.get(url_key, url_key))
            except PathRefused as exc:
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
        presentation_toggle()
        views_panel(ctx)
        st.caption(f"Runs directory: `{root}`")
    return ctx
