"""Saved views in the dashboard: the sidebar's "Saved views" panel and opening a view.

Every way of opening a view (the sidebar's list, a ``?view=<name>`` link, the
presenter's Previous / Next) goes through :func:`open_requested_view`, which
``app.py`` calls before anything is drawn: it sets the sidebar's pickers, the
sample and the page's filter widgets in the session state, then switches to the
view's page with the view's URL state. Buttons only request a view (in their
callback), because a widget's state cannot change once it is drawn in a run.
The files and their checks are in :mod:`ui.saved_views`.
"""
from __future__ import annotations

import streamlit as st

from core.errors import FusionLensError
from ui.context import K_EXP, K_PRESENT, K_RUN, K_RUN2, K_SAMPLE, PAGE_BY_KEY, WRITTEN, Context
from ui.saved_views import (
    SavedView,
    ViewExists,
    ViewsDamaged,
    ViewStore,
    capture_filters,
    check_view_name,
    is_filter_key,
    view_link,
)

__all__ = [
    "K_VIEW_NAME",
    "K_VIEW_POS",
    "K_ORDER",
    "view_store",
    "request_view",
    "open_requested_view",
    "presentation_views",
    "views_panel",
]

K_VIEW_NAME = "fl_view_name"          # the "Save current view as" text input
K_VIEW_POS = "fl_view_pos"            # the index in the presentation of the view opened last (None: none)
K_ORDER = "fl_presentation_order"     # the presentation editor (a multiselect)
_PENDING = "_fl_view_pending"         # a view asked for by a button, opened at the start of the next run
_CONFIRM = "_fl_view_confirm"         # the name of a view waiting for "Overwrite"
_NOTICE = "_fl_view_notice"           # (kind, text) said once in the panel after a callback
_ORDER_SYNCED = "_fl_order_synced"    # the presentation as last read from its file


def view_store(ctx_or_root: Context | object) -> ViewStore:
    """The saved views of the runs root of ``ctx_or_root`` (a :class:`Context` or a path)."""
    root = ctx_or_root.root if isinstance(ctx_or_root, Context) else ctx_or_root
    return ViewStore(root, PAGE_BY_KEY)


def request_view(name: str) -> None:
    """Open the view ``name`` at the start of the next run (a button's callback)."""
    st.session_state[_PENDING] = name


def presentation_views(store: ViewStore) -> list[str]:
    """The presentation's views that are saved, in order (``[]`` when a file is damaged)."""
    try:
        views = store.load()
        return [n for n in store.presentation() if n in views]
    except FusionLensError:
        return []


def _apply(view: SavedView, store: ViewStore) -> None:
    """Put ``view`` in the session state and switch to its page (does not return)."""
    state = st.session_state
    written = state.setdefault(WRITTEN, {})
    # the names come back through the URL like a pasted link, so a run that is gone is reported
    for url_key in ("exp", "run", "run2", "sample"):
        written.pop(url_key, None)
    for key, value in ((K_EXP, view.exp), (K_RUN, view.run), (K_RUN2, view.run2)):
        if value is not None or key == K_RUN2:
            state[key] = value
    if view.sample:
        state[K_SAMPLE] = view.sample
    else:
        state.pop(K_SAMPLE, None)
    # the page's filters as saved; the ones the view does not name go back to the page's defaults
    for key in [k for k in list(state.keys()) if is_filter_key(view.page, str(k))]:
        if key not in view.filters:
            del state[key]
    for key, value in view.widget_values().items():
        state[key] = value
    order = presentation_views(store)
    state[K_VIEW_POS] = order.index(view.name) if view.name in order else None
    written["page"] = view.page
    params = view.query_params()
    if state.get(K_PRESENT):
        params["present"] = "1"
    st.switch_page(PAGE_BY_KEY[view.page].path, query_params=params)


def open_requested_view(root: object) -> str | None:
    """Open the view a button asked for, or the one a ``?view=`` link names (once per link).

    Returns why a view was refused (a name that is not plain, not saved, or a damaged
    file), or None; on success it switches page and does not return.
    """
    state = st.session_state
    name = state.pop(_PENDING, None)
    if name is None:
        name = st.query_params.get("view")
        written = state.setdefault(WRITTEN, {})
        if name is None or written.get("view") == name:
            return None
        written["view"] = name
    store = view_store(root)
    try:
        view = store.get(name)
    except FusionLensError as exc:
        return f"{exc.problem}. Fix: {exc.fix}" if exc.fix else exc.problem
    _apply(view, store)
    return None


# --------------------------------------------------------------------------- the sidebar's panel


def _notice(kind: str, text: str) -> None:
    st.session_state[_NOTICE] = (kind, text)


def _save(store: ViewStore, page: str, exp: str | None, run: str | None, run2: str | None,
          overwrite: bool = False) -> None:
    """Callback of "Save" and "Overwrite": the current view under the typed name."""
    state = st.session_state
    raw = state.get(_CONFIRM) if overwrite else state.get(K_VIEW_NAME, "")
    state.pop(_CONFIRM, None)
    try:
        name = check_view_name(raw)
        view = SavedView.create(name, page, pages=store.pages, exp=exp, run=run, run2=run2,
                                sample=state.get(K_SAMPLE) or None, filters=capture_filters(page, state))
        store.save(view, overwrite=overwrite)
    except ViewExists:
        state[_CONFIRM] = name
        return
    except FusionLensError as exc:
        _notice("error", f"{exc.problem}." + (f" **Fix:** {exc.fix}" if exc.fix else ""))
        return
    kept = f" with {len(view.filters)} filter value(s)" if view.filters else ""
    _notice("success", f"Saved view **{name}** ({PAGE_BY_KEY[page].title}{kept}).")
    state[K_VIEW_NAME] = ""


def _delete(store: ViewStore, name: str) -> None:
    try:
        store.delete(name)
    except FusionLensError as exc:
        _notice("error", f"{exc.problem}." + (f" **Fix:** {exc.fix}" if exc.fix else ""))
    else:
        _notice("success", f"Deleted view **{name}**.")


def _move_aside(store: ViewStore, path) -> None:
    try:
        target = store.move_aside(path)
    except (FusionLensError, OSError) as exc:
        _notice("error", f"Could not move {path} aside: {exc}")
    else:
        _notice("warning", f"The damaged file was moved to `{target}`; the saved views start empty. "
                           "Restore views from it by hand if you need them.")


def _set_order(store: ViewStore) -> None:
    names = list(st.session_state.get(K_ORDER) or [])
    try:
        store.set_presentation(names)
    except FusionLensError as exc:
        _notice("error", f"{exc.problem}." + (f" **Fix:** {exc.fix}" if exc.fix else ""))
    else:
        st.session_state[_ORDER_SYNCED] = names


def _base_url(page_key: str) -> str | None:
    """The app's address without the page path, for links (None under AppTest)."""
    try:
        url = st.context.url
    except Exception:  # noqa: BLE001 - an older Streamlit or no browser: relative links
        return None
    if not url:
        return None
    url = url.split("?")[0].rstrip("/")
    suffix = "/" + page_key
    return (url[: -len(suffix)] if url.endswith(suffix) else url) + "/"


def _describe(view: SavedView) -> str:
    page = PAGE_BY_KEY[view.page].title if view.page in PAGE_BY_KEY else view.page
    parts = [page, *(f"`{v}`" for v in (view.exp, view.run) if v)]
    if view.run2:
        parts.append(f"vs `{view.run2}`")
    if view.sample:
        parts.append(f"sample `{view.sample}`")
    if view.filters:
        parts.append(f"{len(view.filters)} filter value(s)")
    return " · ".join(parts)


def views_panel(ctx: Context) -> None:
    """The sidebar's "Saved views" expander: save, open, delete, share; the presentation's order."""
    store = view_store(ctx)
    state = st.session_state
    with st.expander("Saved views", icon=":material/bookmarks:", expanded=bool(state.get(_CONFIRM))):
        notice = state.pop(_NOTICE, None)
        if notice:
            getattr(st, notice[0])(notice[1])
        try:
            views = store.load()
            damaged = None
        except ViewsDamaged as exc:
            views, damaged = {}, exc
        if damaged is not None:
            st.error(f"**Saved views cannot be read.** {damaged.problem}.\n\n**Fix:** {damaged.fix}",
                     icon=":material/error:")
            if damaged.path in (store.path, store.presentation_path):
                st.button("Move the damaged file aside", key="fl_view_move_aside", on_click=_move_aside,
                          args=(store, damaged.path), icon=":material/drive_file_move:")
            return

        st.text_input("Save current view as", key=K_VIEW_NAME, placeholder="e.g. wrong cats",
                      help="The page, experiment, runs, sample and this page's filters, saved in the runs "
                           f"directory ({store.path}).")
        st.button("Save view", key="fl_view_save", icon=":material/bookmark_add:", on_click=_save,
                  args=(store, ctx.page, ctx.experiment, ctx.run, ctx.run2))
        if state.get(_CONFIRM):
            st.warning(f"A view called **{state[_CONFIRM]}** exists. Replace it with the current view?")
            c1, c2 = st.columns(2)
            c1.button("Overwrite", key="fl_view_overwrite", type="primary", on_click=_save,
                      args=(store, ctx.page, ctx.experiment, ctx.run, ctx.run2, True))
            c2.button("Cancel", key="fl_view_cancel", on_click=lambda: state.pop(_CONFIRM, None))

        if not views:
            st.caption("No saved views yet.")
            return
        base = _base_url(ctx.page)
        for name, view in views.items():
            c1, c2 = st.columns([5, 1], vertical_alignment="center")
            c1.button(name, key=f"fl_view_open_{name}", on_click=request_view, args=(name,), width="stretch",
                      help=f"Open: {_describe(view)}")
            c2.button("", key=f"fl_view_delete_{name}", icon=":material/delete:", on_click=_delete,
                      args=(store, name), help=f"Delete the view {name}")
            st.caption(f"{_describe(view)} · [link]({view_link(name, base)})")

        st.markdown("**Presentation**")
        try:
            order = store.presentation()
        except ViewsDamaged as exc:
            st.error(f"{exc.problem}.\n\n**Fix:** {exc.fix}", icon=":material/error:")
            st.button("Move the damaged file aside", key="fl_order_move_aside", on_click=_move_aside,
                      args=(store, store.presentation_path), icon=":material/drive_file_move:")
            return
        missing = [n for n in order if n not in views]
        order = [n for n in order if n in views]
        if state.get(_ORDER_SYNCED) != order or K_ORDER not in state:
            state[K_ORDER] = order  # the file changed (another session, a deletion): show it
            state[_ORDER_SYNCED] = order
        st.multiselect("Views, in order", list(views), key=K_ORDER, on_change=_set_order, args=(store,),
                       placeholder="pick saved views in the order to show them",
                       help="Presentation mode steps through these views with Previous / Next. Remove and "
                            "add a view again to move it to the end.")
        if missing:
            st.caption("Not saved any more (skipped): " + ", ".join(f"`{n}`" for n in missing))
