"""Presentation mode: one switch that shows the dashboard on a projector.

While presenting (``st.session_state["fl_present"]``, ``?present=1`` in the URL)
``app.py`` injects :data:`PRESENT_CSS` (no sidebar, no page controls: every
page's filters sit in a container keyed ``fl_controls_*``, which Streamlit
renders with the class ``st-key-fl_controls_*``; text blocks zoomed by
:data:`TEXT_ZOOM`), styles figures at :data:`ui.figures.PRESENT_SCALE` and
draws the presenter bar: Previous / Next through the presentation's saved
views ("3 / 7") and "Exit presentation", which stays on the page while the
sidebar is hidden.
"""
from __future__ import annotations

import streamlit as st

from ui.context import K_PRESENT, LAST_CTX, PAGE_BY_KEY, WRITTEN, Context
from ui.view_panel import K_VIEW_POS, presentation_views, request_view, view_store

__all__ = [
    "PRESENT_CSS",
    "TEXT_ZOOM",
    "PRESENTER_KEY",
    "presenting",
    "adopt_present_url",
    "presentation_toggle",
    "presenter_bar",
]

PRESENTER_KEY = "fl_presenter"
_TOGGLE = "_fl_present_toggle"
#: How much larger the page's text is while presenting (figures: ui.figures.PRESENT_SCALE).
TEXT_ZOOM = 1.25
# Text blocks are zoomed one by one rather than the root font enlarged: a larger root font also makes
# a dataframe's rows taller while the pages size tables in pixels, so a table would hide its last rows.
PRESENT_CSS = f"""<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
[data-testid="stSidebarCollapseButton"], [data-testid="stToolbar"], [class*="st-key-fl_controls"] {{
  display: none !important;
}}
[data-testid="stMain"] :is([data-testid="stHeading"], [data-testid="stMarkdown"], [data-testid="stMetric"],
  [data-testid="stAlert"], [data-testid="stButton"], [data-testid="stCode"]) {{
  zoom: {TEXT_ZOOM};
}}
.st-key-{PRESENTER_KEY} {{
  position: sticky; top: 0.5rem; z-index: 999990; background: var(--background-color, #fff);
  border-bottom: 1px solid rgba(49, 51, 63, 0.2); padding-bottom: 0.4rem;
}}
</style>"""


def presenting() -> bool:
    """Whether this session is in presentation mode."""
    return bool(st.session_state.get(K_PRESENT))


def _start(on: bool) -> None:
    """Turn presentation mode on (starting at the presentation's first view, if any) or off."""
    state = st.session_state
    state[K_PRESENT] = on
    state[_TOGGLE] = on
    ctx = state.get(LAST_CTX)
    if on and ctx is not None:
        order = presentation_views(view_store(ctx))
        if order:
            request_view(order[0])
    if not on:
        state[K_VIEW_POS] = None


def adopt_present_url() -> None:
    """``?present=1`` in a link turns presentation mode on (``?present=0`` off), once per link."""
    value = st.query_params.get("present")
    written = st.session_state.setdefault(WRITTEN, {})
    if value is None or written.get("present") == value:
        return
    written["present"] = value
    on = value.lower() in ("1", "true", "yes", "on")
    st.session_state[K_PRESENT] = on
    st.session_state[_TOGGLE] = on


def presentation_toggle() -> None:
    """The sidebar's switch (its state follows the session's mode, set by links and the Exit button)."""
    st.session_state[_TOGGLE] = presenting()
    st.toggle("Presentation mode", key=_TOGGLE, on_change=lambda: _start(bool(st.session_state[_TOGGLE])),
              help="Hides the sidebar and the pages' controls, enlarges text and figures, and steps through "
                   "the presentation's saved views (Saved views → Presentation), starting at the first. "
                   "Exit with the button at the top of the page. Link: add ?present=1 to the address.")


def presenter_bar(ctx: Context) -> None:
    """Previous / position / Next and Exit, at the top of the page while presenting."""
    order = presentation_views(view_store(ctx))
    pos = st.session_state.get(K_VIEW_POS)
    pos = pos if isinstance(pos, int) and 0 <= pos < len(order) else None
    with st.container(key=PRESENTER_KEY):
        c_prev, c_pos, c_next, c_exit = st.columns([1, 3, 1, 1.4], vertical_alignment="center")
        if order:
            c_prev.button("Previous", key="fl_present_prev", icon=":material/arrow_back:",
                          disabled=pos is None or pos == 0, width="stretch",
                          on_click=request_view, args=(order[(pos or 0) - 1],))
            shown = f"**{pos + 1} / {len(order)}** · {order[pos]}" if pos is not None else \
                f"**– / {len(order)}** · {PAGE_BY_KEY[ctx.page].title} (not in the presentation)"
            c_pos.markdown(shown)
            nxt = 0 if pos is None else min(pos + 1, len(order) - 1)
            c_next.button("Next", key="fl_present_next", icon=":material/arrow_forward:", width="stretch",
                          disabled=pos is not None and pos == len(order) - 1,
                          on_click=request_view, args=(order[nxt],))
        else:
            c_pos.caption("No presentation prepared: exit, save views and list them under Saved views → "
                          "Presentation.")
        c_exit.button("Exit presentation", key="fl_present_exit", icon=":material/close_fullscreen:",
                      width="stretch", on_click=_start, args=(False,))
    st.html(PRESENT_CSS)
