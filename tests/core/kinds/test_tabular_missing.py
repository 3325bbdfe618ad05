"""Missing values in tabular columns: refused by default, or the column's training mean with
``missing = "mean"`` (counted per column in the preparation report)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from core.data import load_manifest
from core.data.manifest import describe_preparation
from core.encoders import create_encoder
from core.errors import ConfigError, DataError
from core.experiment import load_experiment
from core.kinds import get_kind
from core.model import build_encoder
from core.train import resolve_spec
from tests._tolerance import f32_atol

IDS = [f"s{i:02d}" for i in range(12)]


def _manifest(folder, age: list[str], height: list[str] | None = None):
    frame = pd.DataFrame({"id": IDS, "label": ["a", "b"] * 6, "split": ["train"] * 8 + ["val"] * 2 + ["test"] * 2,
                          "age": age, "height": height or [f"{1.6 + 0.02 * i:.2f}" for i in range(12)]})
    path = folder / "manifest.csv"
    frame.to_csv(path, index=False)
    return path


AGES = ["30", "", "50", "nan", "20", "40", "", "60", "35", "45", "", "55"]  # 3 gaps in train, 1 in test


def test_empty_cells_are_refused_by_default_with_the_option_as_a_fix(tmp_path):
    path = _manifest(tmp_path, AGES)
    with pytest.raises(DataError, match=r"column 'age' is empty or NaN for sample\(s\) s01, s03, s06, s10.*"
                                        r"Fix: .*or set missing = \"mean\" in \[modalities.m\]"):
        load_manifest(path, {"m": "tabular"}, options={"m": {"columns": ["age", "height"]}})


def test_missing_mean_keeps_the_gaps_and_reports_them_per_column(tmp_path):
    path = _manifest(tmp_path, AGES)
    ds = load_manifest(path, {"m": "tabular"}, options={"m": {"columns": ["age", "height"], "missing": "mean"}})
    assert ds.report["missing_values"] == {"m": {"rule": "mean", "columns": {"age": 4, "height": 0}, "samples": 4,
                                                 "ids": ["s01", "s03", "s06", "s10"]}}
    assert np.isnan(ds.frame["age"]).sum() == 4 and ds.frame["age"].dtype == np.float64
    lines = describe_preparation(ds.report)
    assert any('m: 4 empty cell(s) in 4 sample(s) filled with the column\'s training mean, rule missing = "mean" '
               "(age: 4): s01, s03, s06, s10" == line for line in lines), lines
    # the encoder: statistics of the non-missing training values, a gap becomes 0 (the training mean)
    spec = resolve_spec({"name": "mlp", "kwargs": {"hidden": 4, "out_dim": 2}}, ds, "m")
    assert spec["kwargs"]["missing"] == "mean"
    enc = build_encoder(spec)
    train = ds.items("m", ds.ids("train"))
    enc.fit_preprocessing(train)
    known = [30.0, 50.0, 20.0, 40.0, 60.0]
    assert float(enc.mean[0]) == pytest.approx(np.mean(known), abs=f32_atol(60.0))
    assert float(enc.std[0]) == pytest.approx(np.std(known), abs=f32_atol(60.0))
    x = enc.prepare(ds.items("m", ["s10", "s11"]))["features"]
    assert x[0, 0] == 0 and x[1, 0] == pytest.approx((55.0 - np.mean(known)) / np.std(known), abs=f32_atol(5.0))
    assert torch.isfinite(x).all() and enc.spec()["kwargs"]["missing"] == "mean"


def test_other_bad_cells_are_still_refused_and_the_rule_is_checked(tmp_path):
    ages = list(AGES)
    ages[4], ages[5] = "2O", "inf"
    path = _manifest(tmp_path, ages)
    with pytest.raises(DataError, match=r"'age' is not a number for sample\(s\) s04 \('2O'\); column 'age' is "
                                        r"infinite for sample\(s\) s05"):
        load_manifest(path, {"m": "tabular"}, options={"m": {"columns": ["age", "height"], "missing": "mean"}})
    with pytest.raises(ConfigError, match=r"missing = 'zero' is not a rule"):
        load_manifest(path, {"m": "tabular"}, options={"m": {"columns": ["age"], "missing": "zero"}})
    with pytest.raises(ConfigError, match=r"missing = 'mean' applies to manifest columns only"):
        get_kind("tabular").check_cells(pd.DataFrame({"id": ["a"], "m": ["x.npy"]}), "m", {"missing": "mean"}, {})


def test_a_column_missing_in_every_training_item_becomes_zero():
    enc = create_encoder("mlp", in_features=2, hidden=4, out_dim=2, missing="mean")
    enc.fit_preprocessing([np.array([1.0, np.nan]), np.array([3.0, np.nan])])
    assert enc.mean.tolist() == [2.0, 0.0] and enc.std.tolist() == [1.0, 1.0]
    assert enc.prepare([np.array([np.nan, np.nan])])["features"].tolist() == [[0.0, 0.0]]
    refusing = create_encoder("mlp", in_features=2, hidden=4, out_dim=2)
    with pytest.raises(DataError, match='holds NaN or infinite values.*missing="mean"'):
        refusing.fit_preprocessing([np.array([1.0, np.nan])])
    with pytest.raises(ConfigError, match="missing = 'zero' is not a rule"):
        create_encoder("mlp", in_features=2, missing="zero")


def test_the_experiment_file_takes_the_rule(tmp_path):
    text = ('name = "t"\n[dataset]\nsource = "manifest"\nmanifest = "manifest.csv"\n[modalities.w]\n'
            'kind = "tabular"\nencoder = "mlp"\ncolumns = ["age"]\nmissing = "{rule}"\n[modalities.n]\n'
            'kind = "text"\nencoder = "minilm"\n')
    path = tmp_path / "t.toml"
    path.write_text(text.format(rule="mean"))
    assert load_experiment(path).modality_options["w"] == {"columns": ["age"], "missing": "mean"}
    path.write_text(text.format(rule="median"))
    with pytest.raises(ConfigError, match="missing"):
        load_experiment(path)
