"""The Trust panel on the Modality contributions page, under streamlit's AppTest: checks shown with
their status and n, the command when there are none, and a damaged trust.json as an error, not a crash."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core.trust import (  # noqa: E402
    CHECKS,
    TRUST_FILE,
    TrustSettings,
    check_run,
    load_trust,
    reliance_check,
    write_trust,
)
from ui.figures.trust import (  # noqa: E402
    make_controlled_figure,
    make_randomisation_figure,
    make_reliance_difference_figure,
    make_reliance_figure,
)
from ui.trust import STATUS_BADGES, trust_lines  # noqa: E402

APP = str(Path(__file__).resolve().parents[2] / "app.py")
CHECKED = "concat-image+title"
UNCHECKED = "multconcat-image+title"
DAMAGED = "concat-image+title+description"
SUFFICIENT = "multconcat-image+title+description"  # its trust.json holds a reliance result over sufficient sets
THREE = ["image", "title", "description"]
#: a hand-made design: per variant, the modality sets that alone suffice
DESIGN = {"v_image": ["image"], "v_title": ["title"], "v_text": ["title", "description"],
          "v_pair": ["image+description"], "v_none": []}


def sufficient_result(per_variant: int = 25):
    """A reliance check over sufficient sets of three modalities whose shares follow the design."""
    rng = np.random.default_rng(0)
    rows, design = [], []
    for variant, sets in DESIGN.items():
        for i in range(per_variant):
            w = np.array([3.0 if m in sets else 2.0 if any(m in e.split("+") for e in sets) else 1.0
                          for m in THREE])
            share = w * np.exp(rng.normal(0, 0.05, 3))
            share /= share.sum()
            rows.append({"sample_id": f"{variant}-{i}", "correct": True,
                         **{f"share_{m}": v for m, v in zip(THREE, share)},
                         **{f"shapley_{m}": v for m, v in zip(THREE, share)}})
            design.append({"id": f"{variant}-{i}", "variant": variant, "sufficient": json.dumps(sets)})
    return reliance_check(pd.DataFrame(rows), pd.DataFrame(design), THREE, seed=0)


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
    report = load_trust(exp / CHECKED)
    fingerprint = json.loads((exp / SUFFICIENT / "config.json").read_text()).get("fingerprint")
    report = {**report, "run": SUFFICIENT, "run_dir": str(exp / SUFFICIENT), "run_fingerprint": fingerprint,
              "checks": {**report["checks"], "reliance": sufficient_result().as_dict()}}
    write_trust(exp / SUFFICIENT, report)
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


def test_the_panel_shows_the_sufficient_sets_of_every_modality(monkeypatch, trust_root):
    at = open_contributions(monkeypatch, trust_root, SUFFICIENT)
    assert not at.error, texts(at.error)
    assert not at.warning or "earlier training" not in texts(at.warning)
    line = next(m.value for m in at.markdown if f"**{CHECKS['reliance']}**" in m.value)
    assert line.startswith(STATUS_BADGES["pass"]) and "alone suffices" in line
    assert [t.label for t in at.tabs] == ["Image", "Title", "Description"]
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert any("where it alone suffices minus where it is in no set" in t for t in titles), titles
    for m in ("Image", "Title", "Description"):
        assert any(f"mean {m} share per variant" in t for t in titles), titles


def test_reliance_figures_draw_each_modality_and_its_interval():
    result = sufficient_result().as_dict()
    reported = list(result["numbers"]["modalities"])
    assert reported == THREE
    fig = make_reliance_difference_figure(result, THREE)
    mm = fig.data[0]
    assert list(mm.x) == ["Image", "Title", "Description"] and fig.layout.xaxis.title.text
    for i, m in enumerate(THREE):
        cell = result["numbers"]["modalities"][m]["all/mmshap"]
        assert mm.y[i] == cell["difference"] > 0
        assert mm.y[i] - mm.error_y.arrayminus[i] == pytest.approx(cell["low"], abs=1e-12)
        assert mm.y[i] + mm.error_y.array[i] == pytest.approx(cell["high"], abs=1e-12)
    assert len(set(mm.marker.color)) == 3  # one colour per modality
    fig = make_reliance_figure(result, modality="title")
    groups = {g["group"]: g for g in result["numbers"]["modalities"]["title"]["all/mmshap"]["groups"]}
    assert list(fig.data[0].x)[:2] == ["v_text", "v_title"]  # title alone suffices: expected highest
    assert list(fig.data[0].x)[-1] in {"v_image", "v_pair", "v_none"} and groups["v_none"]["expected"] == 0.0
    assert "sufficient sets" in fig.data[0].hovertemplate
    assert not make_reliance_figure(result, modality="audio").data
    assert not make_reliance_difference_figure({}).data
