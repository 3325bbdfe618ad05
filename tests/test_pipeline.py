"""The whole pipeline on a tiny seeded dataset: build, results, reload, resume, determinism."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.bundle import load_run
from core.catalog import list_runs
from core.cli import main
from core.experiment import load_experiment
from core.results import save_results
from core.train import planned_runs, reproduce_predictions, train_experiment
from tests._tolerance import f32_atol, longest_reduction


def test_every_planned_run_is_built(tiny_built):
    exp_path, root = tiny_built
    exp = load_experiment(exp_path)
    built = {p.name for p in list_runs(root / exp.name)}
    assert {name for name, *_ in planned_runs(exp)} == built
    # unimodal for each modality, 2 intermediate + 2 late per subset
    assert len(built) == 3 + 2 * 4


def test_bundle_contents(tiny_built):
    _, root = tiny_built
    run = load_run(root / "tiny" / "multconcat-image+title+description")
    assert run.config["strategy"] == "intermediate" and run.config["fusion"] == "multconcat"
    preds = run.predictions
    assert {"id", "label", "pred", "correct", "confidence", "top1_label", "top4_label", "top4_prob"} <= set(preds.columns)
    # 4 float32 probabilities (one softmax, each rounded once) add up to 1
    assert np.allclose(preds[[f"top{k}_prob" for k in range(1, 5)]].sum(axis=1), 1.0, rtol=0, atol=f32_atol(1.0, 4))
    assert (preds["top1_label"] == preds["pred"]).all()
    m = run.metrics
    for key in ("top1", "top3", "top5", "macro_f1", "per_class", "confusion", "n_params", "train_seconds",
                "inference_ms_per_sample"):
        assert key in m
    assert m["top1"] <= m["top3"] <= m["top5"] == 1.0  # 4 classes: top-5 covers all (a ratio of equal counts)
    assert np.asarray(m["confusion"]["matrix"]).sum() == len(preds)
    emb = run.embeddings()
    assert set(emb) == {"image", "title", "description", "fused"}
    assert all(v.shape[0] == len(preds) for v in emb.values())
    assert emb["title"].shape[1] == 384 and emb["image"].shape[1] == 16


def test_fusion_beats_chance_and_text_is_informative(tiny_built):
    _, root = tiny_built
    frame, problems = save_results(root / "tiny")
    assert not problems
    assert (root / "tiny" / "results.csv").is_file()
    best = frame.set_index("run")["top1"]
    assert best.max() > 0.5  # 4 classes: chance is 0.25
    assert list(frame.columns[:5]) == ["run", "encoders", "fusion", "strategy", "modalities"]


@pytest.mark.parametrize("run", ["unimodal-image", "unimodal-title", "multconcat-image+title+description",
                                 "late-weighted-image+title"])
def test_reload_reproduces_predictions(tiny_built, run):
    _, root = tiny_built
    report = reproduce_predictions(root / "tiny" / run)
    assert report["same_topk_labels"]
    # probabilities (scale 1) of the network rebuilt and rerun, maybe in other batches and threads
    assert report["max_abs_prob_diff"] <= f32_atol(1.0, longest_reduction(load_run(root / "tiny" / run).model()))


def test_rerun_skips_finished_runs(tiny_built):
    exp_path, root = tiny_built
    exp = load_experiment(exp_path)
    stamps = {p.name: (p / "config.json").stat().st_mtime_ns for p in list_runs(root / exp.name)}
    train_experiment(exp, root, progress=False)
    assert stamps == {p.name: (p / "config.json").stat().st_mtime_ns for p in list_runs(root / exp.name)}


def test_same_file_and_seed_give_same_metrics(tiny_built, tmp_path):
    exp_path, root = tiny_built
    exp = load_experiment(exp_path)
    train_experiment(exp, tmp_path, progress=False, only=["multconcat-image+title"])
    a = load_run(root / "tiny" / "multconcat-image+title").metrics
    b = load_run(tmp_path / "tiny" / "multconcat-image+title").metrics
    for key in ("top1", "top3", "macro_f1"):
        assert a[key] == b[key]
    assert a["confusion"] == b["confusion"]


def test_cli_results_and_list(tiny_built, capsys):
    exp_path, root = tiny_built
    assert main(["--runs-dir", str(root), "results", str(exp_path)]) == 0
    out = capsys.readouterr().out
    assert "multconcat-image+title+description" in out and "results.csv" in out
    assert main(["--runs-dir", str(root), "list"]) == 0
    assert "unimodal-image" in capsys.readouterr().out


def test_cli_reports_bad_experiment_cleanly(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[dataset]\nsource="manifest"\nmanifest="m.csv"\n'
                   '[modalities.image]\nkind="image"\nencoder="small-cnn"\n'
                   '[modalities.title]\nkind="text"\nencoder="minilm"\n[fusion]\nmethods=["multconact"]\n')
    assert main(["--runs-dir", str(tmp_path), "train", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "multconact" in err and "multconcat" in err and "Fix:" in err
