"""The Slice finder page, and selections (a slice, a confusion cell, a lasso) opened in the sample
explorer, under streamlit's AppTest against the tiny built experiment (tests/ui/test_app.py's runs root)."""
from __future__ import annotations

import json

import pandas as pd
import pytest

pytest.importorskip("streamlit")

from core.errors import cli_command  # noqa: E402
from tests.ui.test_app import BARE, RUN, assert_ok, make_app_root, open_app, texts  # noqa: E402

LATE = "late-average-image+title"  # the tiny run with errors (4 of its 8 test samples); explained here


@pytest.fixture(scope="module")
def app_root(tiny_built, tmp_path_factory) -> dict:
    from core.explain import explain_run

    found = make_app_root(tiny_built, tmp_path_factory.mktemp("slices"))
    explain_run(found["root"] / "tiny" / LATE, n=8, progress=False)
    return found


def predictions(app_root: dict, run: str) -> pd.DataFrame:
    return pd.read_parquet(app_root["root"] / "tiny" / run / "predictions.parquet")


def selection_notice(at) -> str:
    return "\n".join(i.value for i in at.info if "Selection:" in i.value)


def test_slice_page_lists_slices_and_opens_one_in_the_explorer(monkeypatch, app_root):
    preds = predictions(app_root, LATE)
    wrong = preds[~preds["correct"]]
    assert len(wrong) and len(wrong) < len(preds), "the tiny late-fusion run should have some errors"
    at = open_app(monkeypatch, app_root["root"], "slices", run=LATE)
    at.number_input(key="sl_min_size").set_value(2).run()
    assert_ok(at, "slices")
    assert not at.error, texts(at.error)
    assert any(m.label == "Errors" and m.value.startswith(f"{len(wrong)} (") for m in at.metric)
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert any(t.startswith("Error rate per slice") for t in titles)
    # 8 test samples: SliceLine ranks groups, but nothing this small is significant, and the page says so
    assert "No significant slice" in texts(at.info)
    assert "Benjamini-Hochberg" in texts(at.caption) and "SliceLine" in texts(at.caption)
    table = at.dataframe[0].value
    assert len(table) >= 1 and {"description", "size", "errors", "error_rate", "q_value"} <= set(table.columns)
    worst = wrong["label"].value_counts().index[0]
    pick = next(int(r) for r, d in zip(table["rank"], table["description"]) if d == f"true class = {worst}")
    at.selectbox(key="sl_pick").select(pick).run()
    assert not at.exception
    n_class = int((preds["label"] == worst).sum())
    n_wrong = int(((preds["label"] == worst) & ~preds["correct"]).sum())
    assert f"**{n_class} samples**, {n_wrong} wrong" in texts(at.markdown)
    samples = at.dataframe[1].value
    assert set(samples["id"]) == set(preds.loc[preds["label"] == worst, "id"])
    assert [b.proto.label for b in at.get("download_button")] == ["Download CSV"]
    at.button(key="sl_open").click().run()      # ui.context.open_selection_in_explorer -> the explorer
    assert_ok(at, "explorer")
    assert not at.error, texts(at.error)
    assert f"Selection: slice #{pick}: true class = {worst}** ({n_class} samples)" in selection_notice(at)
    assert f"{n_class} of {len(preds)} test samples" in texts(at.markdown)
    assert set(at.dataframe[0].value["id"]) == set(preds.loc[preds["label"] == worst, "id"])
    assert at.session_state["fl_last_ctx"].run == LATE


def test_slice_page_says_what_a_run_without_errors_or_explanations_lacks(monkeypatch, app_root):
    at = open_app(monkeypatch, app_root["root"], "slices", run=BARE)
    assert_ok(at, "slices")
    assert not at.error, texts(at.error)
    info = texts(at.info)
    assert "No explanations yet" in info and f"{cli_command()} explain" in texts(at.code)
    assert "dominant modality**, needs explanations" in texts(at.caption)
    if predictions(app_root, BARE)["correct"].all():
        assert "no error to explain" in info


def test_slice_page_without_runs(monkeypatch, tmp_path):
    at = open_app(monkeypatch, tmp_path / "no-runs", "slices")
    assert_ok(at, "slices")
    assert "No runs yet" in texts(at.info)


def test_explorer_filters_to_a_selection_until_it_is_cleared(monkeypatch, app_root):
    preds = predictions(app_root, RUN)
    chosen = preds["id"].astype(str).tolist()[:3]
    at = open_app(monkeypatch, app_root["root"], None, run=RUN)
    at.session_state["fl_selection"] = {"name": "three samples", "ids": chosen, "experiment": "tiny"}
    at.switch_page("views/4_explorer.py").run()
    assert_ok(at, "explorer")
    assert "Selection: three samples** (3 samples)" in selection_notice(at)
    assert f"3 of {len(preds)} test samples" in texts(at.markdown)
    # combined with the other filters
    first_class = str(preds.loc[preds["id"] == chosen[0], "label"].item())
    at.multiselect(key="ex_true").select(first_class).run()
    expected = int((preds["id"].isin(chosen) & (preds["label"] == first_class)).sum())
    assert f"{expected} of {len(preds)} test samples" in texts(at.markdown)
    assert at.get("download_button")
    at.multiselect(key="ex_true").unselect(first_class).run()
    at.button(key="ex_clear_selection").click().run()
    assert not at.exception
    assert not selection_notice(at) and "fl_selection" not in at.session_state
    assert f"{len(preds)} of {len(preds)} test samples" in texts(at.markdown)


def test_a_confusion_cell_and_a_lasso_open_in_the_explorer(monkeypatch, app_root):
    preds = predictions(app_root, LATE)
    true, pred = preds.loc[~preds["correct"], ["label", "pred"]].iloc[0]
    cell = preds[(preds["label"] == true) & (preds["pred"] == pred)]
    at = open_app(monkeypatch, app_root["root"], "misclassifications", run=LATE)
    at.selectbox(key="mis_true").select(true).run()
    at.selectbox(key="mis_pred").select(pred).run()
    assert at.get("download_button")
    at.button(key="mis_open_cell").click().run()
    assert_ok(at, "explorer")
    assert f"Selection: true {true}, predicted {pred}** ({len(cell)} samples)" in selection_notice(at)
    assert f"{len(cell)} of {len(preds)} test samples" in texts(at.markdown)

    # the Embeddings page keeps a lasso's ids in the session (a plotly selection cannot be drawn here)
    ids = predictions(app_root, RUN)["id"].astype(str).tolist()[:2]
    at = open_app(monkeypatch, app_root["root"], None, run=RUN)
    at.session_state[f"emb_selection::{RUN}::pca"] = ids
    at.switch_page("views/5_embeddings.py").run()
    at.radio(key="emb_method").set_value("pca").run()
    assert "**2 selected**" in texts(at.markdown)
    at.button(key="emb_open_selection").click().run()
    assert_ok(at, "explorer")
    assert "Selection: PCA selection on Embeddings** (2 samples)" in selection_notice(at)
