"""The dashboard in a real browser: headless Chromium against `streamlit run app.py` on 127.0.0.1.

Opens every page, waits for the app to finish running, checks that no error is
shown, selects a row of the predictions table and checks that the detail view
follows, and saves screenshots under test-output/screenshots/.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from urllib.parse import quote
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PAGES = [("", "Overview"), ("compare", "Compare fusion methods"), ("contributions", "Modality contributions"),
         ("explorer", "Sample explorer"), ("embeddings", "Embeddings"), ("misclassifications", "Misclassifications")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer on {url} within {timeout:.0f} s")


def _settle(page, quiet: float = 1.5, timeout: float = 120.0) -> None:
    """Wait until the app's running indicator has been gone for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    calm_since = None
    while time.monotonic() < deadline:
        if page.locator('[data-testid="stStatusWidget"]').count():
            calm_since = None
        elif calm_since is None:
            calm_since = time.monotonic()
        elif time.monotonic() - calm_since >= quiet:
            return
        time.sleep(0.2)
    raise TimeoutError(f"the app was still running after {timeout:.0f} s")


def _no_error_shown(page) -> None:
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, exceptions.first.inner_text()
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.first.inner_text()


@pytest.fixture(scope="module")
def server(tiny_built, tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing: install it with `apt-get install -y chromium` "
                    "(scripts/test.sh does)")
    pytest.importorskip("playwright.sync_api")
    import importlib.util

    # the runs root of the AppTest tests: projections, explanations and broken runs included
    spec = importlib.util.spec_from_file_location("_fusionlens_test_app", Path(__file__).with_name("test_app.py"))
    app_tests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app_tests)
    RUN, BARE = app_tests.RUN, app_tests.BARE
    root = app_tests.make_app_root(tiny_built, tmp_path_factory.mktemp("browser"))
    port = _free_port()
    env = {**os.environ, "FUSIONLENS_RUNS": str(root["root"]), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    log = open(tmp_path_factory.mktemp("browser-log") / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield {"url": url, "run": RUN, "bare": BARE, **root}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


@pytest.fixture(scope="module")
def browser_page(server):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1600})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def _open(page, url: str) -> None:
    page.goto(url, timeout=60_000)
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=90_000)
    _settle(page)


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
        _open(page, f"{server['url']}/{path}?run={quote(server['run'], safe='')}")
        assert page.locator('[data-testid="stMain"] h1').first.inner_text().strip() == title
        _no_error_shown(page)
        if path in ("compare", "embeddings", "misclassifications", "contributions"):
            page.wait_for_selector(".js-plotly-plot", timeout=30_000)
        page.screenshot(path=str(SHOTS / f"{path or 'overview'}.png"), full_page=True)


def test_selecting_a_row_opens_the_sample_and_the_url_follows(server, browser_page):
    page = browser_page
    _open(page, f"{server['url']}/explorer?run={quote(server['run'], safe='')}")
    assert page.get_by_text("No sample selected").count() == 1
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    assert box is not None
    # the first data row's selection checkbox: left edge, one header row down
    page.mouse.click(box["x"] + 14, box["y"] + 35 + 17)
    _settle(page)
    heading = page.locator('[data-testid="stMain"] h3', has_text="Sample").first
    heading.wait_for(timeout=30_000)
    sample = re.search(r"Sample\s+(\S+)", heading.inner_text()).group(1)
    assert page.get_by_text("No sample selected").count() == 0
    assert f"sample={sample}" in page.url.replace("%2B", "+")
    page.wait_for_selector(".js-plotly-plot", timeout=30_000)  # top-5 (and contributions) figures
    _no_error_shown(page)
    page.screenshot(path=str(SHOTS / "explorer-selected.png"), full_page=True)

    # the link reopens the same view in a fresh session
    _open(page, page.url)
    assert page.locator('[data-testid="stMain"] h3', has_text=f"Sample {sample}").count() == 1
    _no_error_shown(page)


def test_clicking_a_confusion_cell_lists_its_samples(server, browser_page):
    page = browser_page
    _open(page, f"{server['url']}/misclassifications?run={quote(server['run'], safe='')}")
    classes = server["classes"]
    plot = page.locator(".js-plotly-plot").first
    plot.scroll_into_view_if_needed()
    area = plot.locator(".nsewdrag").first.bounding_box()  # the heatmap's plotting area
    assert area is not None
    n = len(classes)
    # the cell (true = classes[1], predicted = classes[1]): rows top to bottom, columns left to right
    x = area["x"] + 1.5 * area["width"] / n
    y = area["y"] + 1.5 * area["height"] / n
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    _settle(page)
    _no_error_shown(page)
    page.get_by_text(re.compile(rf"\d+ correct predictions: true {re.escape(classes[1])}")).first.wait_for(
        timeout=30_000)
    page.screenshot(path=str(SHOTS / "misclassifications-cell.png"), full_page=True)


def test_a_lasso_on_an_embedding_lists_samples_and_opens_one(server, browser_page):
    page = browser_page
    _open(page, f"{server['url']}/embeddings?run={quote(server['run'], safe='')}")
    plot = page.locator(".js-plotly-plot").first
    plot.scroll_into_view_if_needed()
    a = plot.locator(".nsewdrag").first.bounding_box()
    assert a is not None
    # a lasso (the scatter's default drag mode) around the whole plotting area
    corners = [(a["x"] + 4, a["y"] + 4), (a["x"] + a["width"] - 4, a["y"] + 4),
               (a["x"] + a["width"] - 4, a["y"] + a["height"] - 4), (a["x"] + 4, a["y"] + a["height"] - 4),
               (a["x"] + 4, a["y"] + 8)]
    page.mouse.move(*corners[0])
    page.mouse.down()
    for x, y in corners[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    _settle(page)
    page.get_by_text(re.compile(r"\d+ selected · \d+ misclassified")).first.wait_for(timeout=30_000)
    table = page.locator('[data-testid="stDataFrame"]').last
    table.scroll_into_view_if_needed()
    box = table.bounding_box()
    page.mouse.click(box["x"] + 14, box["y"] + 35 + 17)  # first selected sample
    _settle(page)
    button = page.get_by_role("button", name=re.compile("in the sample explorer"))
    button.wait_for(timeout=30_000)
    sample = re.search(r"Open (\S+) in the sample explorer", button.inner_text()).group(1)
    page.screenshot(path=str(SHOTS / "embeddings-lasso.png"), full_page=True)
    button.click()
    page.wait_for_selector('[data-testid="stMain"] h1:has-text("Sample explorer")', timeout=60_000)
    _settle(page)
    assert page.locator('[data-testid="stMain"] h3', has_text=f"Sample {sample}").count() == 1
    _no_error_shown(page)


def test_a_path_traversal_link_is_refused_in_the_browser(server, browser_page):
    page = browser_page
    _open(page, f"{server['url']}/explorer?run=..%2F..%2Fetc")
    refused = page.locator('[data-testid="stAlertContentError"]', has_text="Refused")
    assert refused.count() == 1
    assert page.locator('[data-testid="stException"]').count() == 0
