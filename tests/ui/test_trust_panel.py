"""The Trust panel on the Modality contributions page, under streamlit's AppTest: checks shown with
their status and n, the command when there are none, and a damaged trust.json as an error, not a crash."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core.trust import CHECKS, TRUST_FILE, TrustSettings, check_run, load_trust  # noqa: E402
from ui.figures.trust import make_controlled_figure, make_randomisation_figure, make_reliance_figure  # noqa: E402
from ui.trust import STATUS_BADGES, trust_lines  # noqa: E402

APP = str(Path(__file__).resolve().parents[2] / "app.py")
CHECKED = "concat-image+title"
UNCHECKED = "multconcat-image+title"
DAMAGED = "concat-image+title+description"


@pytest.fixture(scope="module")
def trust_root(tiny_built, tmp_path_factory) -> Path:
    from core.explain import explain_run

    _, built = tiny_built
    root = tmp_path_factory.mktemp("trust") / "runs"
    shutil.copytree(built, root)
    exp = root / "tiny"
    explain_run(exp / CHECKED, n=3, progress=False)
    check_run(exp / CHECKED, TrustSettings(samples=2, estimator_samples=1))
    (exp / DAMAGED / TRUST_FILE).write_text('{"schema_version": 1, "checks": ')
    return root


def open_contributions(monkeypatch, root: Path, run: str) -> AppTest:
    monkeypatch.setenv("FUSIONLENS_RUNS", str(root))
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["page"] = "contributions"
    at.query_params["run"] = run
    at.run()
    assert not at.exception, "\n".join(str(e.value) for e in at.exception)
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_the_panel_shows_each_check_with_status_and_n(monkeypatch, trust_root):
    at = open_contributions(monkeypatch, trust_root, CHECKED)
    assert not at.error, texts(at.error)
    shown = texts(at.markdown)
    assert "Trust checks" in shown
    report = load_trust(trust_root / "tiny" / CHECKED)
    for name, title in CHECKS.items():  # a badge, the title and n, in the order of CHECKS
        check = report["checks"][name]
        line = next(m.value for m in at.markdown if f"**{title}**" in m.value)
        assert line.startswith(STATUS_BADGES[check["status"]])
        assert check["n"] is None or f"(n = {check['n']})" in line
    assert shown.index(CHECKS["randomisation"]) < shown.index(CHECKS["summary"])
    assert report["checks"]["randomisation"]["n"] == 2
    assert "check" in texts(at.caption)


def test_without_trust_json_the_panel_gives_the_command(monkeypatch, trust_root):
    at = open_contributions(monkeypatch, trust_root, UNCHECKED)
    assert not at.error, texts(at.error)
    assert "No trust checks yet" in texts(at.info)
    assert f"check {trust_root / 'tiny' / UNCHECKED}" in texts(at.code).replace("'", "")


def test_a_damaged_trust_json_is_an_error_naming_the_file_and_the_fix(monkeypatch, trust_root):
    at = open_contributions(monkeypatch, trust_root, DAMAGED)
    errors = texts(at.error)
    assert str(trust_root / "tiny" / DAMAGED / TRUST_FILE) in errors
    assert "Fix:" in errors and " check " in errors
    assert at.get("plotly_chart") or texts(at.info)  # the rest of the page still renders


def test_lines_keep_markdown_out_of_reasons_but_not_out_of_commands():
    report = {"checks": {"summary": {"status": "warn", "reason": "a_b *c* [d] $5 `x_y --z`", "n": 3}}}
    assert trust_lines(report) == [r":orange-badge[warn] **Shares summary** (n = 3): a\_b \*c\* \[d\] \$5 `x_y --z`"]


def test_figures_draw_the_numbers_and_say_what_is_missing():
    rand = {"n": 2, "numbers": {"stages": {"head": {"per_sample": {"s0": 0.1, "s1": 0.3}},
                                           "head+encoders": {"per_sample": {"s0": -0.2, "s1": 0.0}}}}}
    fig = make_randomisation_figure(rand, {"RANDOMISATION_PASS": 0.5, "RANDOMISATION_FAIL": 0.8})
    assert [list(t.y) for t in fig.data] == [[0.1, 0.3], [-0.2, 0.0]] and "n = 2" in fig.layout.title.text
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    groups = [{"group": "post_under_bucket", "reliance": "rgb", "n": 21, "mean": 0.2, "expected": 0.0},
              {"group": "behind_bucket", "reliance": "depth", "n": 22, "mean": 0.6, "expected": 2.0}]
    reliance = {"numbers": {"modalities": {"depth": {"all/mmshap": {"groups": groups}, "all/exact": {"groups": groups}}},
                            "grouped_by": "variant"}}
    fig = make_reliance_figure(reliance)
    assert list(fig.data[0].x) == ["behind_bucket", "post_under_bucket"]  # the expected order, high to low
    assert list(fig.data[0].y) == [0.6, 0.2] and fig.data[0].marker.color == fig.data[1].marker.color
    controlled = {"n": 4, "numbers": {"pass_below": 0.25, "modalities": {
        "depth": {"original_share": {"mean": 0.5}, "shuffled_share": {"mean": 0.1}}}}}
    fig = make_controlled_figure(controlled, ["rgb", "depth"])
    assert [list(t.y) for t in fig.data] == [[0.5], [0.1]]
    for empty in (make_randomisation_figure(None), make_reliance_figure({}), make_controlled_figure(None)):
        assert not empty.data and empty.layout.annotations
