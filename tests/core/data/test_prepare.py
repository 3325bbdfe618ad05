"""``prepare`` on a user's data: what it refuses (through the CLI, no traceback), what it reports, and
that the rules it applies (empty text kept, SVG images) hold through training and explanation."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.experiment import PROJECT_ROOT, load_experiment
from tests._tolerance import f64_atol
from tests._experiments import write_tiny_experiment


def _edit_manifest(folder: Path, fn) -> None:
    path = folder / "data" / "manifest.csv"
    fn(pd.read_csv(path, dtype=str, keep_default_na=False)).to_csv(path, index=False)


def _set_rule(exp_path: Path, modality: str, rule: str) -> None:
    text = exp_path.read_text()
    head = f'[modalities.{modality}]\nkind = "text"\n'
    assert head in text
    exp_path.write_text(text.replace(head, f'{head}empty = "{rule}"\n'))


def test_prepare_reports_what_it_changed(tmp_path, capsys):
    from core.data import load_experiment_dataset, prepare_dataset

    exp_path = write_tiny_experiment(tmp_path, n_classes=4, per_class=12)
    _set_rule(exp_path, "description", "drop")
    text = exp_path.read_text()
    exp_path.write_text(text.replace('manifest = "data/manifest.csv"', 'manifest = "data/manifest.csv"\nmin_per_class = 11'))
    # 3 empty descriptions, all in class "cross": it falls to 9 samples and is dropped by min_per_class
    _edit_manifest(tmp_path, lambda f: f.assign(description=["" if i in ("cross-000", "cross-001", "cross-002") else d
                                                             for i, d in zip(f["id"], f["description"])]))
    ds = prepare_dataset(load_experiment(exp_path), tmp_path / "runs", progress=False)
    err = capsys.readouterr().err
    assert 'prepare tiny: description: 3 sample(s) with empty text dropped (removed from the dataset), rule empty = ' \
           '"drop": cross-000, cross-001, cross-002' in err
    assert "prepare tiny: min_per_class = 11 samples: dropped 1 class(es) with fewer samples: cross (9)" in err
    assert ds.classes == ["circle", "square", "triangle"]
    info = json.loads((tmp_path / "runs" / "tiny" / "dataset.json").read_text())
    assert info["preparation"]["empty_text"]["description"]["samples"] == 3
    assert info["preparation"]["min_per_class"]["dropped"] == [{"label": "cross", "samples": 9, "groups": 9}]
    assert info["raster_sizes"] == {"image": 16}
    assert info["experiment_file"] == str(exp_path.resolve())  # named by the dashboard's build command
    reloaded, _ = load_experiment_dataset(tmp_path / "runs" / "tiny")
    assert reloaded.report == ds.report and reloaded.raster_sizes == {"image": 16}


def test_svg_manifest_prepares_and_loads_at_the_encoder_size(tmp_path):
    pytest.importorskip("resvg_py")
    from core.data import load_experiment_dataset, prepare_dataset

    exp_path = write_tiny_experiment(tmp_path, n_classes=3, per_class=10)
    images = tmp_path / "data" / "images"
    for png in images.glob("*.png"):  # the same drawings as vector files: a coloured disc per class
        colour = "#%02x%02x%02x" % tuple(np.asarray(__import__("PIL.Image").Image.open(png))[12, 12])
        png.with_suffix(".svg").write_text(
            f'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><rect width="100" height="100" '
            f'fill="white"/><circle cx="50" cy="50" r="40" fill="{colour}"/></svg>')
        png.unlink()
    _edit_manifest(tmp_path, lambda f: f.assign(image=f["image"].str.replace(".png", ".svg")))
    prepare_dataset(load_experiment(exp_path), tmp_path / "runs", progress=False)
    ds, _ = load_experiment_dataset(tmp_path / "runs" / "tiny")
    img = ds.items("image", ds.ids("test")[:1])[0]
    assert img.shape == (16, 16, 3) and img.dtype == np.uint8  # rasterised at the encoder's image_size
    assert (img[0, 0] == 255).all() and not (img[8, 8] == 255).all()


@pytest.mark.slow
def test_empty_text_kept_trains_and_explains_with_no_text_players(tmp_path):
    """Rule "keep": the encoder sees "" (special tokens only); MM-SHAP gives that modality no players,
    a zero share, and the explanation still adds up."""
    from core.data import prepare_dataset
    from core.explain import explain_sample
    from core.train import train_experiment

    exp_path = write_tiny_experiment(tmp_path, methods=["concat"])
    _set_rule(exp_path, "description", "keep")
    text = exp_path.read_text().replace('late = ["late-average", "late-weighted"]', 'late = ["late-average"]')
    exp_path.write_text(text.replace('subsets = [["image", "title", "description"], ["image", "title"]]',
                                     'subsets = [["image", "title", "description"]]'))
    _edit_manifest(tmp_path, lambda f: f.assign(description=np.where(np.arange(len(f)) % 4 == 0, "", f["description"])))
    exp = load_experiment(exp_path)
    root = tmp_path / "runs"
    ds = prepare_dataset(exp, root, progress=False)
    assert ds.report["empty_text"]["description"]["samples"] == 12
    train_experiment(exp, root, progress=False)
    blank = [i for i in ds.ids("test") if ds.items("description", [i]) == [""]]
    assert blank, "the seeded split puts an empty description in test"
    for run in ("concat-image+title+description", "late-average-image+title+description"):
        e = explain_sample(root / "tiny" / run, blank[0], store=False)
        assert e.shares["description"] == 0.0 and not (e.feature_modality == "description").any()
        # additivity inside one game: float64 sums over one table of (float32-derived) outputs
        scale = max(1.0, abs(e.full_value), abs(e.base_value), float(np.abs(e.values).sum()))
        assert abs(e.values.sum() - (e.full_value - e.base_value)) <= f64_atol(scale, e.settings["n_evals"])
        assert e.shares["image"] + e.shares["title"] == pytest.approx(1.0, abs=f64_atol(1.0, 2))


# --------------------------------------------------------------------------- through the CLI

def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.mark.parametrize("case, message", [
    ("single-class", "training needs at least 2 classes; found 1 ('circle', 12 samples)"),
    ("too-small", "the dataset is too small to split: val and test would get no samples"),
])
def test_cli_refuses_data_that_cannot_train(tmp_path, case, message):
    exp_path = write_tiny_experiment(tmp_path, n_classes=2 if case == "too-small" else 4,
                                     per_class=2 if case == "too-small" else 12)
    if case == "single-class":
        _edit_manifest(tmp_path, lambda f: f[f["label"] == "circle"])
    out = _cli("--runs-dir", str(tmp_path / "runs"), "prepare", str(exp_path), cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Fix: " in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "runs" / "tiny" / "dataset.json").exists()


def test_overview_shows_what_preparation_changed(tmp_path, monkeypatch):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from core.data import prepare_dataset

    exp_path = write_tiny_experiment(tmp_path, n_classes=3, per_class=10)
    _set_rule(exp_path, "title", "drop")
    _edit_manifest(tmp_path, lambda f: f.assign(title=np.where(f["id"] == "circle-003", "", f["title"])))
    prepare_dataset(load_experiment(exp_path), tmp_path / "runs", progress=False)
    monkeypatch.setenv("FUSIONLENS_RUNS", str(tmp_path / "runs"))
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=90)
    at.query_params["page"] = "overview"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    labels = [e.label for e in at.expander]
    assert "What preparation changed (1)" in labels
    assert any('title: 1 sample(s) with empty text dropped (removed from the dataset), rule empty = "drop": '
               "circle-003" in m.value for m in at.markdown)
