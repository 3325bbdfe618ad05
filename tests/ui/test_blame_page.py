"""Modality blame on the dashboard: the figures and the table from a blame table, the Misclassifications
page without blame (the command and "Compute now"), with it (sentences, figure, table), and with a
damaged blame.parquet (an error naming the file); the Sample explorer's per-sample figure."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core.explain import ALL_CLASSES, BLAME_FILE, blame_run, blame_table  # noqa: E402
from ui.blame import blame_display_table  # noqa: E402
from ui.figures.blame import blame_classes, make_blame_class_figure, make_sample_blame_figure  # noqa: E402
from ui.figures.style import modality_colors  # noqa: E402

APP = str(Path(__file__).resolve().parents[2] / "app.py")
RUN = "late-average-image+title"  # 4 errors of 8 test predictions
MODS = ["image", "title"]


def _frame(rows: list[tuple[str, str, bool, float, float]]) -> pd.DataFrame:
    """A blame table from (label, pred, correct, blame_image, blame_title) rows."""
    out = []
    for i, (label, pred, correct, img, txt) in enumerate(rows):
        culprit = None if correct or max(img, txt) <= 0 else ("image" if img >= txt else "title")
        out.append({"id": f"s{i}", "label": label, "pred": pred, "correct": correct, "against": pred,
                    "margin_full": img + txt, "margin_empty": 0.0, "blame_image": img, "blame_title": txt,
                    "culprit": culprit})
    return pd.DataFrame(out)


SYNTHETIC = _frame([("cat", "dog", False, 1.0, -0.5), ("cat", "dog", False, 0.2, 0.4), ("cat", "cat", True, -1.0, -0.2),
                    ("dog", "cat", False, -0.3, 0.8), ("dog", "dog", True, -0.5, -0.5), ("fox", "fox", True, -1, 0)])


def test_class_figure_one_colour_per_modality_and_counts_on_the_bars():
    table = blame_table(SYNTHETIC, ["cat", "dog", "fox"], modalities=MODS)
    assert blame_classes(table) == ["cat", "dog"]  # classes with errors, most first; fox has none
    fig = make_blame_class_figure(table, MODS)
    assert [t.name for t in fig.data] == ["Image", "Title"]
    colors = modality_colors(MODS)
    assert [t.marker.color for t in fig.data] == [colors["image"], colors["title"]]
    # overall first, then the classes by errors; image misled 2 of 3 errors overall, 2 of 2 for cat
    assert list(fig.data[0].x) == [f"{ALL_CLASSES} (n = 3)", "cat (n = 2)", "dog (n = 1)"]
    assert list(fig.data[0].text) == ["2/3", "2/2", "0/1"] and list(fig.data[1].text) == ["2/3", "1/2", "1/1"]
    np.testing.assert_allclose(fig.data[0].y, [2 / 3, 1.0, 0.0])
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    empty = make_blame_class_figure(blame_table(SYNTHETIC[SYNTHETIC["correct"]], modalities=MODS), MODS)
    assert "No errors" in empty.layout.annotations[0].text


def test_sample_figure_and_display_table():
    fig = make_sample_blame_figure(SYNTHETIC.iloc[0], MODS)
    assert list(fig.data[0].x) == [1.0, -0.5] and "predicted <b>dog</b> vs the true <b>cat</b>" in fig.layout.title.text
    assert list(fig.data[0].marker.color) == [modality_colors(MODS)[m] for m in MODS]
    right = make_sample_blame_figure(SYNTHETIC.iloc[2], MODS)
    assert "runner-up" in right.layout.title.text
    table = blame_table(SYNTHETIC, ["cat", "dog", "fox"], modalities=MODS)
    shown = blame_display_table(table, MODS, ["dog"])
    assert shown["True class"].tolist() == ["dog", ALL_CLASSES]
    assert shown.loc[1, "Image: misled"] == "2 of 3 (67%)" and shown.loc[1, "Title: culprit"] == "2 of 3 (67%)"
    assert shown.loc[0, "Image: mean push, errors"] == "-0.30"  # one error: no interval


# --------------------------------------------------------------------------- the pages


def _open(monkeypatch, root: Path, page: str, **query: str) -> AppTest:
    monkeypatch.setenv("FUSIONLENS_RUNS", str(root))
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["page"] = page
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, "\n".join(str(e.value) for e in at.exception)
    return at


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def _chart_titles(at: AppTest) -> list[str]:
    return [str(json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "")) for c in at.get("plotly_chart")]


def test_misclassifications_page_without_then_with_blame(monkeypatch, tiny_runs_copy):
    run_dir = tiny_runs_copy / "tiny" / RUN
    at = _open(monkeypatch, tiny_runs_copy, "misclassifications", run=RUN)
    assert "No blame computed yet" in _texts(at.info)
    assert f"blame tiny --run {RUN}" in _texts(at.code)
    assert not (run_dir / BLAME_FILE).exists()
    at.button(key="mis_blame_now").click().run()  # computes and stores it, then shows it
    assert not at.exception, _texts(at.exception)
    assert (run_dir / BLAME_FILE).is_file()
    text = _texts(at.markdown)
    wrong = int((~pd.read_parquet(run_dir / "predictions.parquet")["correct"]).sum())
    assert "misled the model in" in text and f"of {wrong} errors" in text
    assert "No blame computed yet" not in _texts(at.info)
    assert "True class" in at.dataframe[-1].value.columns
    assert any(t.startswith("Which modality misled the model") for t in _chart_titles(at))


def test_explorer_shows_a_wrong_predictions_blame(monkeypatch, tiny_runs_copy):
    run_dir = tiny_runs_copy / "tiny" / RUN
    blame_run(run_dir)
    wrong = pd.read_parquet(run_dir / BLAME_FILE).query("not correct")["id"].iloc[0]
    at = _open(monkeypatch, tiny_runs_copy, "explorer", run=RUN, sample=str(wrong))
    assert not at.error, _texts(at.error)
    assert "Each modality's exact Shapley value of the logit margin" in _texts(at.caption)
    assert any(t.startswith("Push toward the predicted") for t in _chart_titles(at))


def test_a_damaged_blame_file_is_an_error_naming_it(monkeypatch, tiny_runs_copy, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(tiny_runs_copy, root)
    blame_run(root / "tiny" / RUN)
    (root / "tiny" / RUN / BLAME_FILE).write_bytes(b"not a parquet file")
    at = _open(monkeypatch, root, "misclassifications", run=RUN)
    errors = _texts(at.error)
    assert str(root / "tiny" / RUN / BLAME_FILE) in errors and "Fix:" in errors and "blame" in errors
    assert len(at.get("plotly_chart")) >= 3  # the rest of the page renders
    assert not any(t.startswith("Which modality misled") for t in _chart_titles(at))
