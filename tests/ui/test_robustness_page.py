"""The Robustness page under streamlit's AppTest: the table, curves and shares with robustness files,
the command without them, and a damaged robustness.json as an error while the rest renders."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core.catalog import list_runs  # noqa: E402
from core.robustness import ROBUSTNESS_FILE, RobustnessSettings, robustness_runs  # noqa: E402
from ui.context import PAGE_BY_KEY  # noqa: E402
from ui.figures.robustness import make_noise_curve_figure, make_share_noise_figure  # noqa: E402
from ui.figures.style import modality_colors  # noqa: E402
from ui.robustness import best_rows, pick_runs, robustness_table  # noqa: E402

APP = str(Path(__file__).resolve().parents[2] / "app.py")
SHARED = "concat-image+title"
DAMAGED = "concat-image+title+description"


@pytest.fixture(scope="module")
def roots(tiny_built, tmp_path_factory) -> tuple[Path, Path]:
    """(runs root with robustness tables, one damaged; runs root without any)."""
    _, built = tiny_built
    base = tmp_path_factory.mktemp("robustness_page")
    with_tables, without = base / "with" / "runs", base / "without" / "runs"
    shutil.copytree(built, with_tables)
    shutil.copytree(built, without)
    exp = with_tables / "tiny"
    robustness_runs(list_runs(exp), RobustnessSettings(levels=3, share_samples=2, share_levels=(0.0, 1.0)),
                    share_run=SHARED)
    (exp / DAMAGED / ROBUSTNESS_FILE).write_text('{"schema_version": 1, "noise": ')
    return with_tables, without


def open_page(monkeypatch, root: Path, run: str) -> AppTest:
    monkeypatch.setenv("FUSIONLENS_RUNS", str(root))
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["page"] = "robustness"
    at.query_params["run"] = run
    at.run()
    assert not at.exception, "\n".join(str(e.value) for e in at.exception)
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_the_page_is_registered():
    assert PAGE_BY_KEY["robustness"].path == "views/7_robustness.py"


def test_the_page_shows_table_curves_and_shares(monkeypatch, roots):
    at = open_page(monkeypatch, roots[0], SHARED)
    frame = at.dataframe[0].value
    assert "run" in frame.columns and "Clean" in frame.columns and "Without Image" in frame.columns
    assert any(c.endswith("relative") for c in frame.columns) and any(c.endswith("effective") for c in frame.columns)
    assert SHARED in set(frame["run"]) and DAMAGED not in set(frame["run"])
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # accuracy vs noise, shares vs noise
    errors = texts(at.error)  # the damaged file is named, with the fix; the rest of the page renders
    assert str(roots[0] / "tiny" / DAMAGED / ROBUSTNESS_FILE) in errors and "Fix:" in errors
    assert "robustness" in errors


def test_without_tables_the_page_gives_the_command(monkeypatch, roots):
    at = open_page(monkeypatch, roots[1], SHARED)
    assert not at.error, texts(at.error)
    assert "No robustness tables yet" in texts(at.info)
    assert "robustness tiny" in texts(at.code)


def _report(run: str, clean: float, curve: list[float], *, baseline: str | None = None, shares: dict | None = None):
    levels = list(np.linspace(0, 1, len(curve)))
    return {"run": run, "n": 10, "rule": "train-mean", "clean": clean, "missing": {"image": 0.3, "title": 0.5},
            "random_missing": [{"rate": 0.7, "accuracy": 0.4, "n_missing": 7}],
            "noise": {"image": {"pixel-noise": {"levels": levels, "accuracy": curve, "relative": 0.5,
                                                "effective": 0.1, "baseline": baseline}}},
            **({"shares": shares} if shares else {})}


def test_table_and_figures_from_plain_reports():
    reports = {"a": _report("a", 0.9, [0.9, 0.5, 0.1], baseline="late"), "late": _report("late", 0.7, [0.7, 0.6, 0.5]),
               "m-mdrop-x": _report("m-mdrop-x", 0.8, [0.8, 0.7, 0.6])}
    reports["late"]["missing"]["image"] = 0.6
    table = robustness_table(reports)
    assert list(table["run"]) == ["a", "m-mdrop-x", "late"]  # by clean accuracy
    best = best_rows(table)
    assert best["Clean"] == [0] and best["Without Image"] == [2] and len(best["Without Title"]) == 3  # ties kept
    assert pick_runs(reports, "a") == ["a", "late", "m-mdrop-x"]
    fig = make_noise_curve_figure(reports, ["a", "late"])
    assert [list(t.y) for t in fig.data] == [[0.9, 0.5, 0.1], [0.7, 0.6, 0.5]]
    color = modality_colors(["image"])["image"]
    assert all(t.line.color == color for t in fig.data) and fig.data[0].line.dash != fig.data[1].line.dash
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text and "n = 10" in fig.layout.title.text
    shares = {"pixel-noise": {"levels": [0.0, 1.0], "n": [3, 2], "shares": {"image": [0.6, 0.2], "title": [0.4, 0.8]}}}
    fig = make_share_noise_figure(shares, "image", ["image", "title"])
    assert [list(t.y) for t in fig.data] == [[0.6, 0.2], [0.4, 0.8]] and "n = 2, 3" in fig.layout.title.text
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    for empty in (make_noise_curve_figure({}, ["a"]), make_share_noise_figure(None, "image", ["image"])):
        assert not empty.data and empty.layout.annotations
