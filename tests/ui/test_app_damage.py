"""The dashboard with damaged runs (AppTest): a damaged run is listed as broken and shows its problem and
fix, every other run stays usable, damage is never shown as "nothing yet", and no page shows a traceback."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGES = ("overview", "compare", "contributions", "explorer", "embeddings", "misclassifications", "robustness",
         "efficiency", "slices")
GOOD = "multconcat-image+title"            # untouched
BAD_METRICS = "bad-metrics-run"            # metrics.json lacks top1
BAD_PROJECTION = "concat-image+title"      # a corrupted PCA parquet
BAD_EXPLANATIONS = "late-average-image+title"  # a corrupted explanations part
LINKED = "linked-out"                      # a symlink to a run outside the runs root


@pytest.fixture(scope="module")
def damaged_root(tiny_built, tmp_path_factory) -> dict:
    from core.explain import explain_run
    from core.projection import project_runs

    _, built = tiny_built
    folder = tmp_path_factory.mktemp("damaged")
    root = folder / "runs"
    shutil.copytree(built, root)
    exp = root / "tiny"
    shutil.copytree(exp / GOOD, exp / BAD_METRICS)
    metrics = json.loads((exp / BAD_METRICS / "metrics.json").read_text())
    del metrics["top1"]
    (exp / BAD_METRICS / "metrics.json").write_text(json.dumps(metrics))
    project_runs([exp / BAD_PROJECTION], methods=["pca"], progress=False)
    parquet = next((exp / BAD_PROJECTION / "projections").glob("fused__pca__*.parquet"))
    parquet.write_bytes(b"not a parquet file")
    explain_run(exp / BAD_EXPLANATIONS, n=2, progress=False)
    part = next((exp / BAD_EXPLANATIONS / "explanations").glob("samples-*.parquet"))
    sample = pd.read_parquet(part)["sample_id"].iloc[0]
    part.write_bytes(b"PAR1 cut short")
    shutil.copytree(exp / GOOD, folder / "outside" / "run")
    (exp / LINKED).symlink_to(folder / "outside" / "run", target_is_directory=True)
    return {"root": root, "parquet": parquet, "part": part, "sample": sample}


def open_app(monkeypatch, root: Path, page: str, **query: str) -> AppTest:
    monkeypatch.setenv("FUSIONLENS_RUNS", str(root))
    at = AppTest.from_file(APP, default_timeout=90)
    for key, value in {"page": page, **query}.items():
        at.query_params[key] = value
    at.run()
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


@pytest.mark.parametrize("page", PAGES)
def test_a_run_with_bad_metrics_shows_its_problem_and_the_others_stay_usable(monkeypatch, damaged_root, page):
    at = open_app(monkeypatch, damaged_root["root"], page, run=BAD_METRICS)
    assert not at.exception, texts(at.exception)
    picker = at.selectbox(key="fl_run")
    assert picker.format_func(BAD_METRICS) == f"{BAD_METRICS} (broken)"
    assert LINKED not in picker.options and LINKED not in at.session_state["fl_last_ctx"].runs
    if page not in ("overview", "compare", "robustness"):  # pages of the whole experiment
        errors = texts(at.error)
        assert f"Run `{BAD_METRICS}` cannot be shown" in errors and "metrics.json lacks 'top1'" in errors
        assert "**Fix:**" in errors
    picker.select(GOOD).run()
    assert not at.exception and not at.error, texts(at.exception) + texts(at.error)
    assert at.session_state["fl_last_ctx"].run == GOOD


def test_the_results_table_leaves_out_damaged_and_refused_runs(monkeypatch, damaged_root):
    at = open_app(monkeypatch, damaged_root["root"], "compare", run=GOOD)
    assert not at.exception, texts(at.exception)
    table = at.dataframe[0].value
    assert GOOD in set(table["run"]) and BAD_METRICS not in set(table["run"]) and LINKED not in set(table["run"])
    problems = texts(at.markdown)
    assert f"run {BAD_METRICS} (broken): metrics.json lacks 'top1'" in problems
    assert f"run {LINKED} (refused)" in problems
    assert LINKED in texts(at.sidebar.caption)


def test_a_corrupted_projection_is_reported_on_the_embeddings_page(monkeypatch, damaged_root):
    at = open_app(monkeypatch, damaged_root["root"], "embeddings", run=BAD_PROJECTION)
    assert not at.exception, texts(at.exception)
    at.radio(key="emb_method").set_value("pca").run()
    assert not at.exception, texts(at.exception)
    errors = texts(at.error)
    assert damaged_root["parquet"].name in errors and "project" in errors and "**Fix:**" in errors
    assert "No PCA projection yet of fused" not in texts(at.info)
    assert len(at.get("plotly_chart")) == 2  # image and title are intact and still drawn


@pytest.mark.parametrize("page", ["overview", "contributions", "misclassifications", "explorer", "slices"])
def test_corrupted_explanations_are_reported_as_damage(monkeypatch, damaged_root, page):
    at = open_app(monkeypatch, damaged_root["root"], page, run=BAD_EXPLANATIONS, sample=damaged_root["sample"])
    assert not at.exception, texts(at.exception)
    errors = texts(at.error)
    assert "Stored explanation" in errors and damaged_root["part"].name in errors and "**Fix:** delete" in errors
    assert "No explanations yet" not in texts(at.info)
    assert "No MM-SHAP explanation for this sample yet" not in texts(at.info)


def test_a_damaged_dataset_description_is_an_error_not_a_traceback(monkeypatch, damaged_root, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(damaged_root["root"] / "tiny" / GOOD, root / "tiny" / GOOD)
    shutil.copy(damaged_root["root"] / "tiny" / "dataset.parquet", root / "tiny" / "dataset.parquet")
    (root / "tiny" / "dataset.json").write_text(json.dumps({"name": "tiny", "modalities": 5}))
    for page in ("overview", "explorer", "slices"):
        at = open_app(monkeypatch, root, page, run=GOOD)
        assert not at.exception, texts(at.exception)
        if page == "overview":
            errors = texts(at.error)
            assert "dataset.json 'modalities' is 5" in errors and "prepare" in errors
