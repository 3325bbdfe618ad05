"""Helpers of the browser tests: a Streamlit server on 127.0.0.1, headless Chromium, and the
clicks the dashboard's pages are driven with (a confusion-matrix cell, a lasso on a scatter,
a row of a dataframe, a sidebar picker).

Used by ``tests/ui/test_browser.py``, ``tests/ui/test_presentation_browser.py`` and
``tests/end_to_end/test_own_data.py``.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
#: a dataframe's header row and data rows are 35 px high; a row's selection box sits at its left edge
ROW_PX = 35


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    """Wait until the Streamlit server at ``url`` answers its health check."""
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


def require_chromium() -> None:
    """Skip the test unless headless Chromium and playwright are there."""
    import pytest

    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing: install it with `apt-get install -y chromium` "
                    "(scripts/test.sh does)")
    pytest.importorskip("playwright.sync_api")


@contextlib.contextmanager
def streamlit_server(runs_root: Path, log_dir: Path) -> Iterator[str]:
    """The dashboard (``streamlit run app.py`` on a free port of 127.0.0.1) over ``runs_root``; its URL
    once it answers. Its output goes to ``log_dir/streamlit.log``; it is stopped when the block ends."""
    port = free_port()
    env = {**os.environ, "FUSIONLENS_RUNS": str(runs_root), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with open(log_dir / "streamlit.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
             "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, proc)
            yield url
        finally:
            stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """Terminate a server started by a test (and only that process)."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


@contextlib.contextmanager
def chromium_page(width: int = 1440, height: int = 1600) -> Iterator:
    """A page of a headless Chromium (the system's /usr/bin/chromium)."""
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def settle(page, quiet: float = 1.5, timeout: float = 120.0) -> None:
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


def no_error_shown(page) -> None:
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, exceptions.first.inner_text()
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.first.inner_text()


def open_page(page, url: str) -> None:
    page.goto(url, timeout=60_000)
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=90_000)
    settle(page)


def title(page) -> str:
    return page.locator('[data-testid="stMain"] h1').first.inner_text().strip()


def click_heatmap_cell(page, row: int, col: int, n_rows: int, n_cols: int | None = None, plot: int = 0) -> None:
    """Click cell (``row`` from the top, ``col`` from the left) of the ``plot``-th Plotly heatmap."""
    n_cols = n_cols or n_rows
    fig = page.locator(".js-plotly-plot").nth(plot)
    fig.scroll_into_view_if_needed()
    area = fig.locator(".nsewdrag").first.bounding_box()  # the plotting area
    assert area is not None
    x = area["x"] + (col + 0.5) * area["width"] / n_cols
    y = area["y"] + (row + 0.5) * area["height"] / n_rows
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    settle(page)


def lasso_whole_plot(page, plot: int = 0) -> None:
    """A lasso (the scatter's default drag mode) around the whole plotting area of a Plotly figure."""
    fig = page.locator(".js-plotly-plot").nth(plot)
    fig.scroll_into_view_if_needed()
    a = fig.locator(".nsewdrag").first.bounding_box()
    assert a is not None
    corners = [(a["x"] + 4, a["y"] + 4), (a["x"] + a["width"] - 4, a["y"] + 4),
               (a["x"] + a["width"] - 4, a["y"] + a["height"] - 4), (a["x"] + 4, a["y"] + a["height"] - 4),
               (a["x"] + 4, a["y"] + 8)]
    page.mouse.move(*corners[0])
    page.mouse.down()
    for x, y in corners[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    settle(page)


def select_row(page, table, row: int = 0) -> None:
    """Tick the selection box of data row ``row`` of a Streamlit dataframe (a locator)."""
    table.scroll_into_view_if_needed()
    box = table.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 14, box["y"] + ROW_PX + ROW_PX * row + 17)
    settle(page)


def _sidebar_combobox(page, label: str):
    # a selectbox is a combobox input named by its label whose value is the choice shown
    return page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name=label, exact=True)


def sidebar_choice(page, label: str) -> str:
    """The value a sidebar selectbox (by its label) shows."""
    return _sidebar_combobox(page, label).input_value().strip()


def pick_in_sidebar(page, label: str, option: str) -> None:
    """Choose ``option`` in the sidebar selectbox labelled ``label``, like a user."""
    _sidebar_combobox(page, label).click()
    page.get_by_role("option", name=option, exact=True).first.click()
    settle(page)
