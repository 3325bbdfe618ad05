"""The dashboard in a real browser: headless Chromium against `streamlit run app.py` on 127.0.0.1.

Opens every page, waits for the app to finish running, checks that no error is
shown, selects a row of the predictions table and checks that the detail view
follows, and saves screenshots under test-output/screenshots/.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from urllib.parse import quote
from pathlib import Path

import pytest

from tests._browser import (
    SHOTS,
    chromium_page,
    click_heatmap_cell,
    lasso_whole_plot,
    no_error_shown,
    open_page,
    require_chromium,
    select_row,
    settle,
    streamlit_server,
)

pytestmark = pytest.mark.e2e

PAGES = [("", "Overview"), ("compare", "Compare fusion methods"), ("contributions", "Modality contributions"),
         ("explorer", "Sample explorer"), ("embeddings", "Embeddings"), ("misclassifications", "Misclassifications"),
         ("robustness", "Robustness"), ("efficiency", "Efficiency"), ("slices", "Slice finder")]


@pytest.fixture(scope="module")
def server(tiny_built, tmp_path_factory):
    require_chromium()
    import importlib.util

    # the runs root of the AppTest tests: projections, explanations and broken runs included
    spec = importlib.util.spec_from_file_location("_fusionlens_test_app", Path(__file__).with_name("test_app.py"))
    app_tests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app_tests)
    RUN, BARE = app_tests.RUN, app_tests.BARE
    root = app_tests.make_app_root(tiny_built, tmp_path_factory.mktemp("browser"))
    # a second experiment (sorted after the first), for the "the view keeps its experiment" checks
    app_tests.copy_experiment(root["root"], "tiny", "tiny-b")
    with streamlit_server(root["root"], tmp_path_factory.mktemp("browser-log")) as url:
        yield {"url": url, "run": RUN, "bare": BARE, **root}


@pytest.fixture(scope="module")
def browser_page(server):
    with chromium_page() as page:
        yield page


def test_server_listens_on_loopback_only(server):
    port = int(server["url"].rsplit(":", 1)[1])
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout if shutil.which("ss") else ""
    listeners = [line.split()[3] for line in out.splitlines() if line.split() and line.split()[3].endswith(f":{port}")]
    if not listeners:
        pytest.skip("`ss` is not available to list listening sockets")
    assert all(addr.startswith("127.0.0.1") for addr in listeners), listeners


def test_every_page_renders_without_error(server, browser_page):
    page = browser_page
    for path, title in PAGES:
        open_page(page, f"{server['url']}/{path}?run={quote(server['run'], safe='')}")
        assert page.locator('[data-testid="stMain"] h1').first.inner_text().strip() == title
        no_error_shown(page)
        if path in ("compare", "embeddings", "misclassifications", "contributions"):
            page.wait_for_selector(".js-plotly-plot", timeout=30_000)
        page.screenshot(path=str(SHOTS / f"{path or 'overview'}.png"), full_page=True)


def test_selecting_a_row_opens_the_sample_and_the_url_follows(server, browser_page):
    page = browser_page
    open_page(page, f"{server['url']}/explorer?run={quote(server['run'], safe='')}")
    assert page.get_by_text("No sample selected").count() == 1
    select_row(page, page.locator('[data-testid="stDataFrame"]').first)
    heading = page.locator('[data-testid="stMain"] h3', has_text="Sample").first
    heading.wait_for(timeout=30_000)
    sample = re.search(r"Sample\s+(\S+)", heading.inner_text()).group(1)
    assert page.get_by_text("No sample selected").count() == 0
    assert f"sample={sample}" in page.url.replace("%2B", "+")
    page.wait_for_selector(".js-plotly-plot", timeout=30_000)  # top-5 (and contributions) figures
    no_error_shown(page)
    page.screenshot(path=str(SHOTS / "explorer-selected.png"), full_page=True)

    # the link reopens the same view in a fresh session
    open_page(page, page.url)
    assert page.locator('[data-testid="stMain"] h3', has_text=f"Sample {sample}").count() == 1
    no_error_shown(page)


def test_clicking_a_confusion_cell_lists_its_samples(server, browser_page):
    page = browser_page
    open_page(page, f"{server['url']}/misclassifications?run={quote(server['run'], safe='')}")
    classes = server["classes"]
    # the cell (true = classes[1], predicted = classes[1]): rows top to bottom, columns left to right
    click_heatmap_cell(page, 1, 1, len(classes))
    no_error_shown(page)
    page.get_by_text(re.compile(rf"\d+ correct predictions: true {re.escape(classes[1])}")).first.wait_for(
        timeout=30_000)
    page.screenshot(path=str(SHOTS / "misclassifications-cell.png"), full_page=True)


def test_a_lasso_on_an_embedding_lists_samples_and_opens_one(server, browser_page):
    page = browser_page
    open_page(page, f"{server['url']}/embeddings?run={quote(server['run'], safe='')}")
    lasso_whole_plot(page)
    page.get_by_text(re.compile(r"\d+ selected · \d+ misclassified")).first.wait_for(timeout=30_000)
    select_row(page, page.locator('[data-testid="stDataFrame"]').last)  # first selected sample
    button = page.get_by_role("button", name=re.compile("in the sample explorer"))
    button.wait_for(timeout=30_000)
    sample = re.search(r"Open (\S+) in the sample explorer", button.inner_text()).group(1)
    page.screenshot(path=str(SHOTS / "embeddings-lasso.png"), full_page=True)
    button.click()
    page.wait_for_selector('[data-testid="stMain"] h1:has-text("Sample explorer")', timeout=60_000)
    settle(page)
    assert page.locator('[data-testid="stMain"] h3', has_text=f"Sample {sample}").count() == 1
    no_error_shown(page)


def test_a_path_traversal_link_is_refused_in_the_browser(server, browser_page):
    page = browser_page
    open_page(page, f"{server['url']}/explorer?run=..%2F..%2Fetc")
    refused = page.locator('[data-testid="stAlertContentError"]', has_text="Refused")
    assert refused.count() == 1
    assert page.locator('[data-testid="stException"]').count() == 0


def _sidebar_box(page, label: str):
    return page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(
        has=page.get_by_text(label, exact=True)).first


def _pick(page, label: str, option: str) -> None:
    """Choose ``option`` in the sidebar selectbox labelled ``label``, as a user does."""
    _sidebar_box(page, label).click()
    page.get_by_role("option", name=option, exact=True).click()
    settle(page)


def _choice(page, label: str) -> str:
    """The value the sidebar selectbox labelled ``label`` shows (Streamlit 1.67: a combobox input)."""
    return _sidebar_box(page, label).locator("input").first.input_value()


def test_open_in_explorer_keeps_the_sidebars_experiment_and_run(server, browser_page):
    import pandas as pd

    from core.ranking import best_full_run
    from core.results import results_table
    from ui.queries import explained_runs

    page = browser_page
    root = server["root"]
    results, _ = results_table(root / "tiny-b")
    best = best_full_run(results, explained=explained_runs(root, "tiny-b", results["run"]))  # the default run
    run = server["bare"] if server["bare"] != best else server["run"]  # not the run the sidebar defaults to
    open_page(page, server["url"])
    _pick(page, "Experiment", "tiny-b")
    _pick(page, "Run", run)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Misclassifications").click()
    page.wait_for_selector('[data-testid="stMain"] h1:has-text("Misclassifications")', timeout=60_000)
    settle(page)
    assert "exp=tiny-b" in page.url and f"run={quote(run, safe='')}" in page.url
    # a diagonal cell that holds samples
    preds = pd.read_parquet(root / "tiny-b" / run / "predictions.parquet")
    classes = server["classes"]
    i = next(k for k, c in enumerate(classes) if ((preds["label"] == c) & preds["correct"]).any())
    click_heatmap_cell(page, i, i, len(classes))
    page.get_by_text(re.compile(rf"\d+ correct predictions: true {re.escape(classes[i])}")).first.wait_for(
        timeout=30_000)
    select_row(page, page.locator('[data-testid="stDataFrame"]').first)  # the cell's first sample
    button = page.get_by_role("button", name=re.compile("Open in the sample explorer"))
    button.wait_for(timeout=30_000)
    sample = re.search(r"Selected\s+(\S+)", page.get_by_text(re.compile(r"^Selected")).first.inner_text()).group(1)
    button.click()
    page.wait_for_selector('[data-testid="stMain"] h1:has-text("Sample explorer")', timeout=60_000)
    settle(page)
    assert page.locator('[data-testid="stMain"] h3', has_text=f"Sample {sample}").count() == 1
    assert f"Experiment tiny-b · run {run}" in page.locator('[data-testid="stMain"]').inner_text()
    assert _choice(page, "Experiment") == "tiny-b" and _choice(page, "Run") == run
    url = page.url.replace("%2B", "+")
    assert "exp=tiny-b" in url and f"run={run}" in url and f"sample={sample}" in url
    no_error_shown(page)
    page.screenshot(path=str(SHOTS / "open-in-explorer-kept-run.png"), full_page=True)


def test_no_request_leaves_the_machine(server, browser_page):
    """A walk through every page (a sample open, figures drawn) asks nothing of any other host:
    an offline machine must see no failed look-up (the favicon once came from fonts.gstatic.com)."""
    from urllib.parse import urlparse

    page = browser_page.context.browser.new_page(viewport={"width": 1440, "height": 1600})
    page.set_default_timeout(60_000)
    outside, failed = [], []

    def record(request) -> None:
        url = request.url
        if not url.startswith(("data:", "blob:", "about:")) and urlparse(url).hostname != "127.0.0.1":
            outside.append(url)

    page.on("request", record)
    page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
    page.on("console", lambda m: failed.append(m.text) if "ERR_NAME_NOT_RESOLVED" in m.text else None)
    try:
        run = quote(server["run"], safe="")
        for path, title in PAGES:
            query = f"?run={run}" + (f"&sample={quote(server['sample'], safe='')}" if path == "explorer" else "")
            open_page(page, f"{server['url']}/{path}{query}")
            assert page.locator('[data-testid="stMain"] h1').first.inner_text().strip() == title
            if path in ("compare", "embeddings", "misclassifications", "contributions", "explorer"):
                page.wait_for_selector(".js-plotly-plot", timeout=30_000)
        open_page(page, f"{server['url']}/?exp=tiny-b")
    finally:
        page.close()
    assert outside == [], outside
    assert not [f for f in failed if "127.0.0.1" not in f], failed
