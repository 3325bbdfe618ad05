"""Presentation mode in a real browser (headless Chromium): the injected CSS hides the sidebar and the page's
filters, enlarges the root font, and the presenter bar stays reachable; a ``?view=`` link opens the view."""
from __future__ import annotations

import pytest

from tests._browser import SHOTS, chromium_page, no_error_shown, open_page, require_chromium, settle, \
    streamlit_server, title

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tiny_runs_copy, tmp_path_factory):
    require_chromium()
    from ui.context import PAGE_BY_KEY
    from ui.saved_views import SavedView, ViewStore

    root = tiny_runs_copy
    store = ViewStore(root, PAGE_BY_KEY)
    store.save(SavedView.create("wrong ones", "explorer", pages=PAGE_BY_KEY, exp="tiny",
                                filters={"ex_correct": "Incorrect"}))
    store.save(SavedView.create("errors", "misclassifications", pages=PAGE_BY_KEY, exp="tiny"))
    store.set_presentation(["wrong ones", "errors"])
    with streamlit_server(root, tmp_path_factory.mktemp("present-log")) as url:
        yield url


def visible(page, selector: str) -> bool:
    found = page.locator(selector)
    return found.count() > 0 and found.first.is_visible()


def test_presenting_hides_the_controls_and_steps_through_the_views(server):
    with chromium_page(width=1280, height=900) as page:
        open_page(page, f"{server}/?view=wrong%20ones&present=1")
        no_error_shown(page)
        assert title(page) == "Sample explorer"
        assert not visible(page, '[data-testid="stSidebar"]')
        assert not visible(page, ".st-key-fl_controls_explorer")
        assert visible(page, ".st-key-fl_presenter")
        assert "1 / 2" in page.locator(".st-key-fl_presenter").inner_text()
        # larger text: each text block once (a caption sits in a markdown block; zooms would multiply)
        zoom = ("Array.from(document.querySelectorAll('[data-testid=stMain] [data-testid=stCaptionContainer]'))"
                ".map(e => e.currentCSSZoom)")
        assert set(page.evaluate(zoom)) == {1.25}
        page.screenshot(path=str(SHOTS / "presentation-explorer.png"))

        page.locator(".st-key-fl_presenter").get_by_role("button", name="Next").click()
        settle(page)
        assert title(page) == "Misclassifications"
        assert "2 / 2" in page.locator(".st-key-fl_presenter").inner_text()
        assert not visible(page, ".st-key-fl_controls_misclassifications")
        page.screenshot(path=str(SHOTS / "presentation-misclassifications.png"))
        assert "present=1" in page.url

        page.get_by_role("button", name="Exit presentation").click()
        settle(page)
        assert visible(page, '[data-testid="stSidebar"]') and visible(page, ".st-key-fl_controls_misclassifications")
        assert not visible(page, ".st-key-fl_presenter") and "present=1" not in page.url
        assert set(page.evaluate(zoom)) == {1}
        no_error_shown(page)
