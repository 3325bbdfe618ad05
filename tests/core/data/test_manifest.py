"""Manifest validation: every bad input names the problem and the fix."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.data import load_image, load_manifest, stratified_group_split
from core.data.manifest import describe_preparation
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


def test_rows_of_a_frame_read_in_many_arrow_chunks_are_the_same_rows(manifest):
    """rows() works on one-chunk copies of Arrow-backed columns (a chunked column costs time in proportion to its
    length per row taken): the same rows, values and dtypes as the frame's own."""
    import pyarrow as pa

    ds = load_manifest(manifest, MODS, seed=0)
    table = pa.Table.from_pandas(ds.frame, preserve_index=False)
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=7))     # 30 rows in 5 chunks
    ds.frame = chunked.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)
    assert ds.frame["id"].array.__arrow_array__().num_chunks > 1
    ids = [ds.frame["id"].iloc[i] for i in (29, 0, 13)]
    rows = ds.rows(ids)
    expected = ds.frame.set_index("id", drop=False).loc[ids]
    pd.testing.assert_frame_equal(rows, expected)
    assert rows["label"].array.__arrow_array__().num_chunks == 1
    assert ds.items("title", ids) == expected["title"].tolist()


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
    with pytest.raises(DataError, match="unknown kind 'smell'"):
        load_manifest(manifest, {"image": "image", "title": "smell"})


def test_empty_text(manifest):
    _rewrite(manifest, lambda f: f.assign(title=["", *f["title"].iloc[1:]]))
    with pytest.raises(DataError, match="circle-000 have empty text"):
        load_manifest(manifest, MODS)


def test_missing_image_file(manifest):
    (manifest.parent / "images" / "square-003.png").unlink()
    with pytest.raises(DataError, match="square-003"):
        load_manifest(manifest, MODS)


def test_unreadable_image_is_refused_at_prepare(manifest):
    (manifest.parent / "images" / "square-003.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"1 of 30 image file\(s\) cannot be used: square-003 \(images/square-003.png: "
                                        r"not an image format Pillow reads\).*Fix: .*PNG, JPEG, GIF, BMP, TIFF, WebP"):
        load_manifest(manifest, MODS)
    ds = load_manifest(manifest, MODS, check_files=False)  # the loader still names the file
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


# --------------------------------------------------------------------------- images at prepare

SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">
<rect width="{w}" height="{h}" fill="white"/><rect x="0" y="0" width="{half}" height="{h}" fill="#d02020"/></svg>"""


def _svg_manifest(manifest: Path, ids: list[str], w: int = 40, h: int = 20) -> None:
    for sid in ids:
        (manifest.parent / "images" / f"{sid}.svg").write_text(SVG.format(w=w, h=h, half=w // 2))

    def f(frame):
        frame.loc[frame["id"].isin(ids), "image"] = [f"images/{i}.svg" for i in frame.loc[frame["id"].isin(ids), "id"]]
        return frame

    _rewrite(manifest, f)


def test_damaged_and_foreign_files_are_reported_together(manifest):
    images = manifest.parent / "images"
    for i in range(10):
        (images / f"circle-{i:03d}.png").write_bytes(b"GIF89a but not really")
    for sid in ("square-001", "square-005"):
        data = (images / f"{sid}.png").read_bytes()
        (images / f"{sid}.png").write_bytes(data[: len(data) // 2])  # truncated PNG: header fine, data cut
    with pytest.raises(DataError) as info:
        load_manifest(manifest, MODS)
    text = str(info.value)
    assert "12 of 30 image file(s) cannot be used" in text and "; and 2 more. Fix:" in text
    assert "circle-000 (images/circle-000.png: not an image format Pillow reads)" in text
    assert "circle-009" in text and "square-001" not in text  # the first ten named, the count of the rest
    assert "Fix: convert or replace those files (readable here: PNG, JPEG, GIF, BMP, TIFF, WebP" in text
    (images / "circle-000.png").unlink()
    for i in range(1, 10):
        (images / f"circle-{i:03d}.png").unlink()
    _rewrite(manifest, lambda f: f[~f["label"].eq("circle")])
    with pytest.raises(DataError, match=r"2 of 20 image file\(s\) cannot be used: square-001 \(images/square-001.png: "
                                        r"damaged \(.+\)\); square-005"):
        load_manifest(manifest, MODS)


def test_svg_images_are_rasterised_at_the_encoder_size(manifest):
    pytest.importorskip("resvg_py")
    _svg_manifest(manifest, ["square-000", "square-001"])
    ds = load_manifest(manifest, MODS)
    ds.raster_sizes = {"image": 32}
    img = ds.items("image", ["square-000"])[0]
    assert img.dtype == np.uint8 and img.shape == (16, 32, 3)  # longer side at 32, aspect kept
    assert (img[:, :14] == [208, 32, 32]).all() and (img[:, 18:] == 255).all()
    tall = load_image(manifest.parent / "images" / "square-001.svg", 24)
    assert tall.shape == (12, 24, 3)
    from core.kinds.image_files import DEFAULT_SVG_SIZE

    assert load_image(manifest.parent / "images" / "square-001.svg").shape[1] == DEFAULT_SVG_SIZE


def test_broken_svg_is_named_at_prepare(manifest):
    pytest.importorskip("resvg_py")
    (manifest.parent / "images" / "square-002.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'><rect")

    def f(frame):
        frame.loc[frame["id"] == "square-002", "image"] = "images/square-002.svg"
        return frame

    _rewrite(manifest, f)
    with pytest.raises(DataError, match=r"square-002 \(images/square-002.svg: .+\)"):
        load_manifest(manifest, MODS)


def test_svg_without_the_optional_rasteriser_says_how_to_install_or_convert(manifest, monkeypatch):
    import core.kinds.image_files as M

    _svg_manifest(manifest, ["square-000"])
    monkeypatch.setattr(M, "svg_support", lambda: False)
    monkeypatch.setitem(__import__("sys").modules, "resvg_py", None)  # import resvg_py now fails
    with pytest.raises(DataError, match=r"square-000 \(images/square-000.svg: SVG, and resvg-py is not installed\)"
                                        r".*Fix: install the optional SVG support with `pip install -r "
                                        r"requirements-extra.txt`.*rsvg-convert"):
        load_manifest(manifest, MODS)
    with pytest.raises(DataError, match="resvg-py that rasterises it is not installed.*rsvg-convert"):
        load_image(manifest.parent / "images" / "square-000.svg")


# --------------------------------------------------------------------------- empty text rules

def _blank_titles(manifest: Path, ids: list[str]) -> Path:
    return _rewrite(manifest, lambda f: f.assign(title=["" if i in ids else t for i, t in zip(f["id"], f["title"])]))


def test_empty_text_refused_by_default_names_the_rule(manifest):
    _blank_titles(manifest, ["circle-001", "square-002"])
    with pytest.raises(DataError, match=r"circle-001, square-002 have empty text \(2 of 30\).*Fix: .*"
                                        r'\[modalities.title\].*empty = "drop".*empty = "keep"'):
        load_manifest(manifest, MODS)


def test_empty_text_drop_removes_and_reports(manifest):
    _blank_titles(manifest, ["circle-001", "square-002", "square-003"])
    ds = load_manifest(manifest, MODS, empty={"title": "drop"})
    assert len(ds.frame) == 27 and not ds.frame["id"].isin(["circle-001", "square-002"]).any()
    assert ds.report["empty_text"]["title"] == {"rule": "drop", "samples": 3,
                                                "ids": ["circle-001", "square-002", "square-003"]}
    assert ds.report["samples_in_manifest"] == 30 and ds.report["samples"] == 27
    lines = describe_preparation(ds.report)
    assert any("title: 3 sample(s) with empty text dropped" in line for line in lines)


def test_empty_text_keep_gives_the_encoder_an_empty_string(manifest, tmp_path):
    _blank_titles(manifest, ["circle-001"])
    ds = load_manifest(manifest, MODS, empty={"title": "keep"})
    assert len(ds.frame) == 30 and ds.items("title", ["circle-001"]) == [""]
    assert ds.report["empty_text"]["title"]["samples"] == 1
    # a Parquet manifest stores a missing cell as null: still an empty string, never "nan"
    frame = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    frame["title"] = frame["title"].replace("", None)
    frame.to_parquet(manifest.with_suffix(".parquet"))
    ds = load_manifest(manifest.with_suffix(".parquet"), MODS, empty={"title": "keep"})
    assert ds.items("title", ["circle-001"]) == [""]


# --------------------------------------------------------------------------- classes and splits

def test_min_per_class_counts_samples_and_reports_the_dropped(tmp_path):
    path = make_synthetic_manifest(tmp_path, n_classes=3, per_class=12)
    # circle: 12 samples in 4 groups (kept: samples count, not groups); triangle: 5 samples (dropped)
    _rewrite(path, lambda f: f.assign(group=[f"{i[:-1]}" if i.startswith("circle") else i for i in f["id"]])
             .drop(index=f.index[(f["label"] == "triangle")][5:]))
    ds = load_manifest(path, MODS, min_per_class=10)
    assert ds.classes == ["circle", "square"]
    assert ds.report["min_per_class"] == {"threshold": 10, "unit": "samples",
                                          "dropped": [{"label": "triangle", "samples": 5, "groups": 5}]}
    assert any("min_per_class = 10 samples: dropped 1 class(es) with fewer samples: triangle (5)" in line
               for line in describe_preparation(ds.report))


def test_single_class_is_refused(manifest):
    _rewrite(manifest, lambda f: f[f["label"] == "circle"])
    with pytest.raises(DataError, match=r"training needs at least 2 classes; found 1 \('circle', 10 samples\)"):
        load_manifest(manifest, MODS)


def test_single_class_left_by_min_per_class_names_it(manifest):
    _rewrite(manifest, lambda f: f.drop(index=f.index[f["label"] != "circle"][4:]))
    with pytest.raises(DataError, match=r"found 1 \('circle', 10 samples\), after min_per_class = 5 dropped 1 smaller"
                                        r".*Fix: .*lower min_per_class in \[dataset\]"):
        load_manifest(manifest, MODS, min_per_class=5)


def test_dataset_too_small_to_split(tmp_path):
    path = make_synthetic_manifest(tmp_path, n_classes=2, per_class=2)
    with pytest.raises(DataError, match=r"too small to split: val and test would get no samples \(train 4, val 0, "
                                        r"test 0\).*the largest has 2.*Fix: add samples"):
        load_manifest(path, MODS)


def test_split_column_without_val_is_refused(manifest):
    _rewrite(manifest, lambda f: f.assign(split=["test" if i % 5 == 0 else "train" for i in range(len(f))]))
    with pytest.raises(DataError, match=r"split column puts no sample in val \(train 24, val 0, test 6\)"):
        load_manifest(manifest, MODS)


def test_every_class_keeps_a_train_group_whatever_the_fractions():
    labels = ["a"] * 3 + ["b"] * 4 + ["c"] * 9
    split = stratified_group_split(labels, [f"g{i}" for i in range(16)], {"train": 0.1, "val": 0.45, "test": 0.45}, 0)
    frame = pd.DataFrame({"label": labels, "split": split})
    for _, g in frame.groupby("label"):
        assert set(g["split"]) == {"train", "val", "test"}


def test_classes_with_few_groups_are_train_only_and_reported(tmp_path):
    path = make_synthetic_manifest(tmp_path, n_classes=3, per_class=9)
    _rewrite(path, lambda f: f.assign(group=[i[:-2] if i.startswith("triangle") else i for i in f["id"]]))
    ds = load_manifest(path, MODS)
    tri = ds.frame[ds.frame["label"] == "triangle"]
    assert set(tri["split"]) == {"train"}
    assert ds.report["train_only_classes"] == [{"label": "triangle", "samples": 9, "groups": 1}]
    assert any("1 class(es) are in train only" in line for line in describe_preparation(ds.report))
