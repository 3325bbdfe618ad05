"""core.results: the comparison table of an experiment (one row per usable run, damaged runs left out
with their problem), saved as CSV and formatted for the terminal."""
from __future__ import annotations

import shutil

import pandas as pd

from core.bundle import load_run
from core.results import COLUMNS, format_results, results_table, save_results


def test_one_sorted_row_per_run(tiny_built):
    _, root = tiny_built
    frame, problems = results_table(root / "tiny")
    assert problems == [] and list(frame.columns) == COLUMNS
    assert len(frame) == 3 + 2 * 4 and frame["run"].is_unique
    # unimodal runs first, then intermediate, then late; within a strategy more modalities first
    order = {"unimodal": 0, "intermediate": 2, "late": 3}
    ranks = frame["strategy"].map(order).tolist()
    assert ranks == sorted(ranks)
    inter = frame[frame["strategy"] == "intermediate"]
    assert inter["modalities"].str.count(r"\+").tolist() == sorted(inter["modalities"].str.count(r"\+"), reverse=True)
    row = frame.set_index("run").loc["multconcat-image+title+description"]
    assert row["fusion"] == "multconcat" and row["modalities"] == "image+title+description"
    encoders = load_run(root / "tiny" / "multconcat-image+title+description").config["encoders"]
    assert row["encoders"] == ", ".join(f"{m}={encoders[m]['name']}" for m in ("image", "title", "description"))
    assert row["encoders"].startswith("image=small-cnn, title=")
    assert 0 <= row["top1"] <= row["top3"] <= row["top5"] <= 1 and row["n_params"] > 0


def test_a_damaged_run_is_left_out_with_its_problem(tiny_built, tmp_path):
    _, root = tiny_built
    exp = tmp_path / "runs" / "tiny"
    for run in ("concat-image+title", "unimodal-image"):
        shutil.copytree(root / "tiny" / run, exp / run)
    (exp / "concat-image+title" / "metrics.json").write_text('{"top1": "high"}')
    frame, problems = save_results(exp)
    assert frame["run"].tolist() == ["unimodal-image"]
    assert len(problems) == 1 and problems[0].startswith("run concat-image+title (broken): ")
    assert "Fix:" in problems[0]
    saved = pd.read_csv(exp / "results.csv")
    assert saved["run"].tolist() == ["unimodal-image"] and list(saved.columns) == COLUMNS
    assert not list(exp.glob(".*.tmp"))  # written atomically


def test_format_results(tiny_built, tmp_path):
    _, root = tiny_built
    frame, _ = results_table(root / "tiny")
    text = format_results(frame)
    lines = text.splitlines()
    assert len(lines) == 1 + len(frame) and "encoders" not in lines[0] and "top1" in lines[0]
    n_params = int(frame.loc[0, "n_params"])
    assert f"{n_params:,}" in lines[1] and f"{frame.loc[0, 'top1']:.3f}" in lines[1]
    empty, problems = results_table(tmp_path / "nothing-here")
    assert empty.empty and problems == [] and format_results(empty) == "(no runs yet)"
