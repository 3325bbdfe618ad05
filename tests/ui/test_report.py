"""ui.report and ``fusionlens report`` on the tiny built experiment: every section, one inlined
plotly.js and no URL outside it, hostile class names and texts escaped, the sample cards with their
pictures and overlays, an atomic write, the progress callback and the CLI's errors."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

HOSTILE_CLASS = "</script><script>alert('class')</script><b onmouseover=x>"
HOSTILE_TEXT = "<img src=x onerror=alert('text')>"
SECTIONS_KEYS = ("story", "results", "shares", "exact_shares", "confusion", "slices", "blame", "samples")


def best_full(root: Path, experiment: str = "tiny") -> str:
    from core.ranking import best_full_run
    from core.results import results_table
    from ui.queries import explained_runs

    results, _ = results_table(root / experiment)
    return best_full_run(results, explained=explained_runs(root, experiment, results["run"]))


@pytest.fixture(scope="module")
def explained_root(tiny_built, tmp_path_factory) -> Path:
    """A copy of the tiny experiment whose best run over every modality has 4 explained samples and
    its modality blame."""
    from core.explain import blame_run, explain_run

    _, built = tiny_built
    root = tmp_path_factory.mktemp("report") / "runs"
    shutil.copytree(built, root)
    explain_run(root / "tiny" / best_full(root), n=4, seed=0, progress=False)
    blame_run(root / "tiny" / best_full(root))
    return root


def section_of(document: str, key: str) -> str:
    start = document.index(f'<section id="{key}">')
    return document[start:document.index("</section>", start)]


@pytest.fixture(scope="module")
def report(explained_root) -> dict:
    from ui.report import write_report

    calls: list[tuple[int, int, str]] = []
    out = explained_root.parent / "out"
    path = write_report(explained_root, "tiny", output=out / "tiny.html", progress=lambda *a: calls.append(a))
    return {"path": path, "html": path.read_text(encoding="utf-8"), "calls": calls, "run": best_full(explained_root)}


def without_plotly_js(document: str) -> str:
    """The document less its one inlined plotly.js bundle (its own comments and strings hold URLs)."""
    from plotly.offline import get_plotlyjs

    bundle = get_plotlyjs()
    assert document.count(bundle) == 1  # inlined once
    return document.replace(bundle, "")


def test_the_report_has_every_section_and_its_figures(report):
    document = report["html"]
    assert document.startswith("<!DOCTYPE html>")
    for key in SECTIONS_KEYS:
        assert f'<section id="{key}">' in document
    assert f"FusionLens report: tiny" in document and f"<dd>{report['run']}: " in document
    # results bar, share bars per class, correct vs incorrect, exact share bars of every prediction, confusion
    # matrix, blame per class; no slice of 8 test samples scores (the slices section says so, the planted test
    # below draws one)
    assert "No slice to show:" in section_of(document, "slices")
    assert document.count('<div class="fl-figure">') == 6
    assert "Which modality matters most" not in document  # explained: the story names the modality
    assert re.search(r"(Image|Title|Description) drives <strong>\d+ %</strong>", document)
    # the sample cards: the most confident errors first, pictures as PNG, the explained ones with overlays
    assert document.count('class="card"') >= 3
    assert 'src="data:image/png;base64,' in document and "patch contributions" in document
    assert "fusionlens-tokens" in document  # tokens coloured by contribution
    for label in ("Created", "FusionLens", "Data", "Runs directory"):
        assert f"<dt>{label}</dt>" in document
    assert "@media print" in document and "break-before: page" in document and "size: A4" in document


def test_the_report_needs_no_network(report):
    rest = without_plotly_js(report["html"])
    assert re.findall(r"https?://", rest) == []
    assert re.search(r"<script[^>]+src\s*=", rest, re.I) is None
    assert re.search(r"<link\b", rest, re.I) is None and "@import" not in rest and "url(" not in rest
    assert "mathjax" not in rest.lower()
    # every script is the bundle, the print helper or a figure's call of the inlined plotly.js
    n_figures = rest.count('<div class="fl-figure">')
    assert len(re.findall(r"<script\b", rest)) == 2 + n_figures


def test_the_report_is_written_atomically_with_progress(report):
    path = report["path"]
    assert [p.name for p in path.parent.iterdir()] == ["tiny.html"]  # no temporary file left behind
    calls = report["calls"]
    assert calls[-1][0] == calls[-1][1] and calls[-1][2] == "drawn"
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)  # done only grows
    assert {"results and story", "run", "dataset", "explanations"} <= {c[2] for c in calls}


def test_a_report_of_another_run_and_the_default_place(explained_root):
    from ui.report import default_output, write_report

    run = "unimodal-image"
    path = write_report(explained_root, "tiny", run)
    assert path == default_output(explained_root, "tiny", run) == explained_root / "tiny" / "reports" / f"{run}.html"
    document = path.read_text(encoding="utf-8")
    assert f"<dd>{run}: " in document
    assert "Not explained yet" in document and f"explain " in document  # how to fill the shares section
    assert document.count('<div class="fl-figure">') == 2  # results and confusion: no shares without explanations
    blame = section_of(document, "blame")  # never computed for this run: the command that computes it
    assert "No blame computed yet" in blame and f"blame tiny --run {run}" in blame
    from core.catalog import scan_runs

    assert "reports" not in {e.name for e in scan_runs(explained_root / "tiny")}  # not taken for a run


def _rename_class(exp_dir: Path, old: str, new: str) -> None:
    """Rename a class in every file of an experiment that names it (dataset and runs)."""
    def swap(value):
        if isinstance(value, dict):
            return {swap(k): swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return new if value == old else value

    for path in exp_dir.rglob("*.json"):
        path.write_text(json.dumps(swap(json.loads(path.read_text()))))
    for path in exp_dir.rglob("*.parquet"):
        frame = pd.read_parquet(path)
        for col in frame.columns:
            if frame[col].dtype == object:
                frame[col] = frame[col].map(lambda v: new if v == old else v)
        frame.to_parquet(path, index=False)


@pytest.fixture(scope="module")
def hostile_report(explained_root) -> Path:
    """The report of a copy of the experiment whose first class and every title carry markup."""
    from ui.report import write_report

    root = explained_root.parent / "hostile" / "runs"
    shutil.copytree(explained_root, root)
    exp = root / "tiny"
    shutil.rmtree(exp / "reports", ignore_errors=True)
    cfg = json.loads((exp / "unimodal-image" / "config.json").read_text())
    _rename_class(exp, cfg["classes"][0], HOSTILE_CLASS)
    frame = pd.read_parquet(exp / "dataset.parquet")
    frame["title"] = HOSTILE_TEXT + " " + frame["title"].astype(str)
    frame.to_parquet(exp / "dataset.parquet", index=False)
    return write_report(root, "tiny", "unimodal-title")  # not explained: its cards show the raw titles


def test_hostile_class_names_and_texts_are_escaped(hostile_report):
    rest = without_plotly_js(hostile_report.read_text(encoding="utf-8"))
    assert "alert(" in rest  # the hostile strings are in the report ...
    for raw in ("<script>alert", "<b onmouseover", "<img src=x"):
        assert raw not in rest  # ... never as markup
    assert "&lt;img src=x onerror=alert(&#x27;text&#x27;)&gt;" in rest  # the text, escaped, on a card
    assert "&lt;/script&gt;&lt;script&gt;alert(&#x27;class&#x27;)" in rest  # the class, in tables and cards
    assert len(re.findall(r"<script\b", rest)) == 2 + rest.count('<div class="fl-figure">')


def test_the_cli_writes_a_report_and_names_what_is_wrong(explained_root, tmp_path, capsys):
    from core.cli import main

    out = tmp_path / "cli.html"
    assert main(["report", "tiny", "--runs-dir", str(explained_root), "--output", str(out), "--quiet"]) == 0
    assert out.is_file() and "report written to" in capsys.readouterr().out
    folder = tmp_path / "folder"
    folder.mkdir()
    assert main(["report", "tiny", "--run", "unimodal-title", "--runs-dir", str(explained_root), "--output",
                 str(folder), "--quiet"]) == 0
    assert (folder / "tiny-unimodal-title.html").is_file()
    assert main(["report", "tiny", "--run", "nope", "--runs-dir", str(explained_root), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no run 'nope' in experiment 'tiny'" in err and "Fix: use one of:" in err
    empty = tmp_path / "empty"
    (empty / "tiny").mkdir(parents=True)
    assert main(["report", "tiny", "--runs-dir", str(empty), "--quiet"]) == 2
    assert "has no usable run" in capsys.readouterr().err


# --------------------------------------------------------------------------- in a browser, offline


@pytest.mark.e2e
def test_the_report_file_renders_offline_in_chromium(report, hostile_report):
    """The report FILE opened from disk in headless Chromium with networking off: every figure is drawn,
    every picture decodes, no request leaves the machine, printing fits the figures to A4, and the
    hostile report runs no script of its data (no dialog)."""
    from tests._browser import CHROMIUM, CHROMIUM_ARGS, SHOTS

    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing: install it with `apt-get install -y chromium`")
    sync_api = pytest.importorskip("playwright.sync_api")
    from ui.report._page import PRINT_WIDTH

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        try:
            context = browser.new_context(offline=True, viewport={"width": 1280, "height": 1000})
            remote: list[str] = []
            context.route(re.compile(r"^https?://"), lambda route: (remote.append(route.request.url), route.abort()))
            page = context.new_page()
            requests: list[str] = []
            problems: list[str] = []
            dialogs: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

            n = report["html"].count('<div class="fl-figure">')
            page.goto(report["path"].as_uri())
            drawn = "Array.from(document.querySelectorAll('.fl-figure')).filter(" \
                    "f => f.querySelector('.js-plotly-plot .main-svg')).length"
            page.wait_for_function(f"{drawn} === {n}", timeout=60_000)
            assert page.evaluate(drawn) == n == 6
            assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
            assert page.evaluate("document.images.length") >= 3
            page.screenshot(path=str(SHOTS / "report.png"), full_page=True)
            # printing: every figure redrawn at most the paper's width, then back; the button is hidden
            widths = "Array.from(document.querySelectorAll('.fl-figure .js-plotly-plot')).map(p => p._fullLayout.width)"
            screen = page.evaluate(widths)
            page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
            assert max(page.evaluate(widths)) <= PRINT_WIDTH < max(screen)
            page.emulate_media(media="print")
            assert page.locator("button.print").is_hidden()
            assert page.pdf(format="A4")[:4] == b"%PDF"
            page.evaluate("window.dispatchEvent(new Event('afterprint'))")
            page.emulate_media(media="screen")
            assert page.evaluate(widths) == screen

            page.goto(hostile_report.as_uri())
            n_hostile = hostile_report.read_text(encoding="utf-8").count('<div class="fl-figure">')
            page.wait_for_function(f"{drawn} === {n_hostile}")
            page.wait_for_timeout(500)
            assert dialogs == []  # no script from the data ran
            assert page.get_by_text(HOSTILE_TEXT).count() >= 1  # shown as text
        finally:
            browser.close()
    assert remote == []
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    assert problems == []


def test_a_section_registers_in_report_order():
    from ui.report import SECTIONS, get_section, report_section

    saved = list(SECTIONS)
    try:
        assert [s.key for s in SECTIONS][:len(SECTIONS_KEYS)] == list(SECTIONS_KEYS)  # others follow mine

        @report_section("extra", "An extra section", after="story")
        def extra(data):
            return "<p>extra</p>"

        assert [s.key for s in SECTIONS][:3] == ["story", "extra", "results"]
        report_section("extra", "Renamed")(extra)  # the same key again: replaced in place
        assert get_section("extra").title == "Renamed" and len(SECTIONS) == len(saved) + 1
        with pytest.raises(KeyError, match="no report section 'nope' to follow"):
            report_section("other", "Other", after="nope")(extra)
    finally:
        SECTIONS[:] = saved


# --------------------------------------------------------------------------- slices and blame


def _planted_view(modalities: list[str], label: str, *, rate_in: float, rate_out: float, n: int = 240,
                  seed: int = 0):
    """A predictions view of ``n`` samples over 3 classes (the first named ``label``) whose errors fall
    at ``rate_in`` in the slice "true class = label AND dominant = the first modality" and ``rate_out``
    elsewhere."""
    import numpy as np

    rng = np.random.default_rng(seed)
    classes = [label, "cat", "dog"]
    true = rng.choice(classes, n)
    dominant = rng.choice(modalities, n)
    inside = (true == label) & (dominant == modalities[0])
    wrong = rng.random(n) < np.where(inside, rate_in, rate_out)
    pred = np.where(wrong, np.where(true == "cat", "dog", "cat"), true)
    shares = rng.dirichlet(np.ones(len(modalities)), n)
    return pd.DataFrame({"id": [f"s{i}" for i in range(n)], "label": true, "pred": pred,
                         "confidence": rng.uniform(0.3, 1.0, n), "correct": ~wrong, "dominant": dominant,
                         **{f"share_{m}": shares[:, k] for k, m in enumerate(modalities)}})


@pytest.fixture(scope="module")
def report_data(explained_root):
    from ui.report import collect

    return collect(explained_root, "tiny")


def test_the_slices_section_lists_a_planted_slice_first_with_its_interval_and_escapes_it(report_data):
    from dataclasses import replace

    from ui.report import get_section

    view = _planted_view(report_data.modalities, HOSTILE_CLASS, rate_in=0.8, rate_out=0.1)
    body = get_section("slices").render(replace(report_data, view=view, dataset=None))
    assert body.count('<div class="fl-figure">') == 1  # the slice figure
    rows = re.findall(r"<tr><td>(\d+)</td><td>(.*?)</td><td>(\d+)</td><td>(\d+)</td><td>([^<]*)</td>", body)
    assert rows and rows[0][0] == "1"
    first = rows[0][1]  # the planted slice, its hostile class name escaped
    assert "&lt;/script&gt;&lt;script&gt;alert(&#x27;class&#x27;)" in first and "image" in first
    assert re.fullmatch(r"\d+\.\d% \[\d+\.\d%, \d+\.\d%\]", rows[0][4])  # error rate [Wilson 95 % interval]
    assert "<script>alert" not in body and "<b onmouseover" not in body
    assert "confirm a slice on new data" in body and "Benjamini-Hochberg" in body
    assert "<td>yes</td>" in body  # the planted slice is significant
    assert "No significant slice" not in body


def test_the_slices_section_says_when_there_is_nothing_to_find(report_data):
    from dataclasses import replace

    from ui.report import get_section

    render = get_section("slices").render
    mods = report_data.modalities
    right = _planted_view(mods, "bird", rate_in=0.0, rate_out=0.0)
    assert "No slice to show: no error to explain: all 240 test predictions are right." in render(
        replace(report_data, view=right, dataset=None))
    noise = render(replace(report_data, view=_planted_view(mods, "bird", rate_in=0.2, rate_out=0.2, seed=3),
                           dataset=None))
    assert "No significant slice." in noise and "<td>yes</td>" not in noise
    assert "This run has no test predictions" in render(replace(report_data, view=right.head(0)))


def test_the_blame_section_shows_the_sentences_figure_and_table(report):
    blame = section_of(report["html"], "blame")
    assert re.search(r"<li>(Image|Title|Description) misled the model in \d+ of \d+ errors", blame)
    assert blame.count('<div class="fl-figure">') == 1
    assert "<th>Image: misled</th>" in blame and "(all classes)" in blame
    assert "<b>Misled</b>" in blame and "value &gt; 0" in blame  # the page's caption, escaped
    assert "earlier training" not in blame  # computed for this training


def test_the_exact_shares_section_covers_every_test_prediction(report, explained_root, tmp_path):
    import pandas as pd

    from ui.report import collect, get_section

    exact = section_of(report["html"], "exact_shares")
    n_test = len(pd.read_parquet(explained_root / "tiny" / report["run"] / "predictions.parquet"))
    assert f"Every one of the {n_test:,} test predictions" in exact and "no estimate" in exact
    assert exact.count('<div class="fl-figure">') == 1 and "(all classes)" in exact
    assert "Modality interactions" in exact
    root = tmp_path / "runs"
    shutil.copytree(explained_root, root)
    (root / "tiny" / report["run"] / "modality_game.parquet").unlink()
    missing = get_section("exact_shares").render(collect(root, "tiny"))
    assert "is not computed yet" in missing and "blame tiny" in missing


def test_the_blame_section_names_a_damaged_or_stale_blame(explained_root, tmp_path):
    from ui.report import get_section

    from ui.report import collect

    root = tmp_path / "runs"
    shutil.copytree(explained_root, root)
    run_dir = root / "tiny" / best_full(root)
    config = json.loads((run_dir / "config.json").read_text())
    config["fingerprint"] = "retrained"
    (run_dir / "config.json").write_text(json.dumps(config))
    stale = get_section("blame").render(collect(root, "tiny"))
    assert "computed for an earlier training" in stale and "--force" in stale
    (run_dir / "blame.parquet").write_bytes(b"not parquet")
    damaged = get_section("blame").render(collect(root, "tiny"))
    assert "cannot be read" in damaged and "blame.parquet" in damaged and "Fix:" in damaged
