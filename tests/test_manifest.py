"""Manifest validation: every bad input names the problem and the fix."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.data import load_manifest, stratified_group_split
from core.data.synthetic import make_synthetic_manifest
from core.errors import DataError

MODS = {"image": "image", "title": "text", "description": "text"}


@pytest.fixture()
def manifest(tmp_path) -> Path:
    return make_synthetic_manifest(tmp_path, n_classes=3, per_class=10)


def _rewrite(path: Path, fn) -> Path:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = fn(frame)
    frame.to_csv(path, index=False)
    return path


def test_valid_manifest_gets_a_stratified_split(manifest):
    ds = load_manifest(manifest, MODS, seed=0)
    assert set(ds.frame["split"]) == {"train", "val", "test"}
    assert ds.classes == ["circle", "square", "triangle"]
    for _, g in ds.frame.groupby("label"):
        assert set(g["split"]) == {"train", "val", "test"}
    img = ds.items("image", ds.ids("test")[:2])
    assert img[0].dtype == np.uint8 and img[0].shape[2] == 3


def test_split_is_seeded(manifest):
    a = load_manifest(manifest, MODS, seed=1).frame["split"].tolist()
    b = load_manifest(manifest, MODS, seed=1).frame["split"].tolist()
    c = load_manifest(manifest, MODS, seed=2).frame["split"].tolist()
    assert a == b and a != c


def test_groups_never_straddle_splits():
    labels = ["a"] * 30 + ["b"] * 30
    groups = [f"g{i // 3}" for i in range(60)]  # 3 variants per group, like skin tones
    split = stratified_group_split(labels, groups, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=0)
    frame = pd.DataFrame({"g": groups, "s": split})
    assert frame.groupby("g")["s"].nunique().max() == 1
    assert set(split) == {"train", "val", "test"}


def test_missing_column(manifest):
    _rewrite(manifest, lambda f: f.drop(columns=["title"]))
    with pytest.raises(DataError, match="lacks column.*title.*Fix"):
        load_manifest(manifest, MODS)


def test_unknown_modality_kind(manifest):
    with pytest.raises(DataError, match="unknown kind 'audio'"):
        load_manifest(manifest, {"image": "image", "title": "audio"})


def test_empty_text(manifest):
    _rewrite(manifest, lambda f: f.assign(title=["", *f["title"].iloc[1:]]))
    with pytest.raises(DataError, match="circle-000 have empty text"):
        load_manifest(manifest, MODS)


def test_missing_image_file(manifest):
    (manifest.parent / "images" / "square-003.png").unlink()
    with pytest.raises(DataError, match="square-003"):
        load_manifest(manifest, MODS)


def test_unreadable_image(manifest):
    (manifest.parent / "images" / "square-003.png").write_bytes(b"not a png")
    ds = load_manifest(manifest, MODS)
    with pytest.raises(DataError, match="square-003.png is unreadable"):
        ds.items("image", ["square-003"])


def test_label_in_test_never_seen_in_training(manifest):
    def f(frame):
        frame["split"] = "train"
        frame.loc[frame.index[-1], "split"] = "test"
        frame.loc[frame.index[-1], "label"] = "hexagon"
        return frame

    _rewrite(manifest, f)
    with pytest.raises(DataError, match="hexagon.*never in train"):
        load_manifest(manifest, MODS)


def test_duplicate_ids(manifest):
    _rewrite(manifest, lambda f: pd.concat([f, f.iloc[:1]]))
    with pytest.raises(DataError, match="repeats id"):
        load_manifest(manifest, MODS)


def test_unknown_split_value(manifest):
    _rewrite(manifest, lambda f: f.assign(split="training"))
    with pytest.raises(DataError, match="unknown split"):
        load_manifest(manifest, MODS)


def test_missing_manifest(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_manifest(tmp_path / "nope.csv", MODS)


def test_unknown_sample_id(manifest):
    ds = load_manifest(manifest, MODS)
    with pytest.raises(DataError, match="not in dataset"):
        ds.items("title", ["nope"])
