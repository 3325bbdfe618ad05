"""FusionLens dashboard: the frame (navigation, shared sidebar, URL state).

Run with ``fusionlens dashboard`` from any folder, or ``streamlit run app.py``
(``bash scripts/run.sh`` does it for you). The runs directory is
``$FUSIONLENS_RUNS`` or ``./runs`` of the current folder; the app reads only
inside it. Pages live in ``views/`` and call the dashboard package ``ui``
(cached loaders, queries, figure builders, sample viewers), which reads what
``core`` produced. (Not ``pages/``: Streamlit treats a ``pages/`` folder as a
legacy multipage app on the first request after a start and in AppTest,
running a deep-linked page without this frame.)
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.experiment import runs_root
from ui import figures as F
from ui.context import CTX, LAST_CTX, PAGES, WRITTEN
from ui.presentation import adopt_present_url, presenter_bar, presenting
from ui.sidebar import sidebar
from ui.view_panel import open_requested_view

# A local favicon: a material-icon favicon is fetched from fonts.gstatic.com, which an offline
# machine cannot resolve (the browser then logs net::ERR_NAME_NOT_RESOLVED on every page).
FAVICON = Path(__file__).resolve().parent / "assets" / "favicon.svg"
st.set_page_config(page_title="FusionLens", page_icon=str(FAVICON), layout="wide")

pages = {spec.key: st.Page(spec.path, title=spec.title, icon=spec.icon, url_path=spec.key,
                           default=spec.key == "overview") for spec in PAGES}
current = st.navigation(list(pages.values()))
page_key = next((k for k, p in pages.items() if p.title == current.title), "overview")

# ?present=1 turns presentation mode on; a saved view asked for by a button or a ?view=<name> link is
# opened here, before any widget is drawn, so its filters can be set (ui.view_panel).
adopt_present_url()
view_refused = open_requested_view(runs_root())

# A link with ?page=... opens that page (the URL path does the same for links copied from the browser).
wanted = st.query_params.get("page")
if (wanted in pages and wanted != page_key
        and st.session_state.get(WRITTEN, {}).get("page") != wanted):
    st.session_state.setdefault(WRITTEN, {})["page"] = wanted
    st.switch_page(pages[wanted], query_params=st.query_params.to_dict())

ctx = sidebar(page_key)
for message in ctx.refused:
    st.error(f"**Refused:** {message}. Only experiments and runs inside the runs directory can be opened.",
             icon=":material/block:")
if view_refused:
    st.error(f"**Refused:** {view_refused}", icon=":material/block:")
if presenting():  # no sidebar and no page controls, larger text and figures, Previous / Next / Exit
    presenter_bar(ctx)
# The page names itself (ui.context.context(key)), which also writes the URL. The context lives only
# while this frame runs, so a page script started without it (see ui.context.context) is noticed.
st.session_state[CTX] = st.session_state[LAST_CTX] = ctx
try:
    with F.scaled_figures(F.PRESENT_SCALE if presenting() else 1.0):
        current.run()
finally:
    st.session_state.pop(CTX, None)
