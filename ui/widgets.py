"""Streamlit components shared by the pages: messages, headers, class filters, figure boxes,
row selection. They draw; they compute nothing of their own."""
from __future__ import annotations

import re
from typing import Any, Callable

import streamlit as st

from core.errors import FusionLensError
from ui.commands import build_commands
from ui.context import Context, open_selection_in_explorer, set_sample
from ui.exports import selection_csv, selection_frame

__all__ = [
    "FIGURE_BOX_HEIGHT",
    "describe_error",
    "show_error",
    "show_commands",
    "empty_no_runs",
    "page_header",
    "class_filter",
    "show_figure",
    "slug",
    "download_name",
    "dataframe_selection",
    "on_row_select",
    "download_selection",
    "selection_actions",
]

#: Tallest a figure is drawn before it gets a scrollable box of this height (pixels).
FIGURE_BOX_HEIGHT = 820


# --------------------------------------------------------------------------- messages


def describe_error(exc: BaseException) -> tuple[str, str | None]:
    """(problem, fix) of an error, for a message on the page."""
    if isinstance(exc, FusionLensError):
        return exc.problem, exc.fix
    return f"{type(exc).__name__}: {exc}", None


def show_error(exc: BaseException, what: str) -> None:
    """An error box: what could not be shown, the problem and the fix."""
    problem, fix = describe_error(exc)
    st.error(f"**{what}.** {problem}" + (f"\n\n**Fix:** {fix}" if fix else ""), icon=":material/error:")


def show_commands(*commands: str, intro: str | None = None) -> None:
    """Shell commands in a copyable block, after an optional line of introduction."""
    if intro:
        st.markdown(intro)
    st.code("\n".join(commands), language="bash")


def unreadable_runs(problems: list[str]) -> None:
    """A folded list of the runs that could not be read (each problem with its fix); nothing when none."""
    if problems:
        with st.expander(f"{len(problems)} run(s) could not be read and are left out", icon=":material/warning:"):
            for p in problems:
                st.markdown(f"- {p}")


def empty_no_runs(ctx: Context) -> None:
    """The page when there is nothing to show yet: what to run."""
    cmds = build_commands(ctx.experiment, root=ctx.root)
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
    """The page title and a caption naming the experiment and the run."""
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


# --------------------------------------------------------------------------- many classes


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
    ``ui.figures.MAX_FIT_WIDTH``) goes in a box that scrolls, at its own size."""
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


# --------------------------------------------------------------------------- tables


_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


def slug(text: str) -> str:
    """A file-name-safe version of ``text`` (for download names)."""
    return _SLUG.sub("-", str(text)).strip("-") or "table"


def download_name(*parts: str) -> str:
    """A download's file name (without extension) from its parts, e.g. ``emoji-results``."""
    return "-".join(slug(p) for p in parts if p)


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


def download_selection(frame: Any, name: str, key: str, *, manifest: Any = None, label: str = "Download CSV") -> Any:
    """A download button for a selection of samples as CSV: ``frame``'s rows (id, label, pred,
    confidence, correct, dominant, share_<m>..., with ``manifest``'s columns joined on id), text
    cells that look like formulas quoted (:mod:`ui.exports`); the file is named after ``name``.
    The CSV is made when the button is clicked (not on every rerun), and a click does not rerun."""
    return st.download_button(
        label, data=lambda: selection_csv(selection_frame(frame, manifest)),
        file_name=f"{download_name(name)[:120]}.csv", mime="text/csv", key=key, on_click="ignore",
        icon=":material/download:", disabled=len(frame) == 0,
        help=f"{len(frame):,} sample(s) with their predictions, shares and manifest columns, as CSV")


def selection_actions(frame: Any, name: str, file_name: str, *, open_key: str, download_key: str,
                      manifest: Any = None, what: str = "these samples") -> None:
    """Two buttons side by side for a selection of samples (``frame``'s rows, with an ``id``): open them
    in the sample explorer as the selection ``name`` (:func:`ui.context.open_selection_in_explorer`; the
    explorer's filters still apply) and download them as CSV (:func:`download_selection`, named after
    ``file_name``), with ``manifest``'s columns (``ui.loaders.sample_columns``: the manifest and the data's
    metadata, e.g. a simulated clip's variant; None: the predictions' columns only)."""
    b_open, b_csv = st.columns([1, 1])
    if b_open.button("Open these in the explorer", key=open_key, icon=":material/filter_alt:",
                     help=f"The sample explorer with only {what} (its filters still apply)"):
        open_selection_in_explorer(name, frame["id"].astype(str).tolist())
    with b_csv:
        download_selection(frame, file_name, download_key, manifest=manifest)
