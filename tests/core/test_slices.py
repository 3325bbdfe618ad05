"""core.slices: slice features of a run's predictions, SliceLine's slices and their tests, on seeded
synthetic predictions whose answer is planted."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from core.errors import ConfigError, DataError
from core.slices import (
    CONFIDENCE,
    DOMINANT,
    NOT_EXPLAINED,
    OTHER,
    PREDICTED_CLASS,
    SHARE_LEVELS,
    SLICE_COLUMNS,
    TRUE_CLASS,
    benjamini_hochberg,
    count_candidates,
    default_min_size,
    find_slices,
    share_feature,
    slice_features,
    slice_ids,
)

from tests._tolerance import EPS64

MODALITIES = ["image", "text"]


def predictions(n: int = 1200, seed: int = 0, planted: bool = True) -> tuple[pd.DataFrame, SimpleNamespace]:
    """A predictions view and its dataset: 4 classes, 3 variants; with ``planted`` the slice
    variant = night AND class = b is wrong 60 % of the time, everything else 5 %; without, 8 % everywhere."""
    rng = np.random.default_rng(seed)
    label = rng.choice(list("abcd"), n)
    variant = rng.choice(["day", "night", "dusk"], n)
    in_slice = (label == "b") & (variant == "night")
    rate = np.where(in_slice, 0.6, 0.05) if planted else np.full(n, 0.08)
    wrong = rng.random(n) < rate
    others = {c: [o for o in "abcd" if o != c] for c in "abcd"}
    pred = np.array([others[t][int(rng.integers(3))] if w else t for t, w in zip(label, wrong)])
    share_image = rng.random(n)
    view = pd.DataFrame({
        "id": [f"s{i:04d}" for i in range(n)], "label": label, "pred": pred, "confidence": rng.random(n),
        "correct": ~wrong, "dominant": np.where(share_image > 0.5, "image", "text"),
        "share_image": share_image, "share_text": 1 - share_image,
    })
    frame = pd.DataFrame({
        "id": view["id"], "label": label, "split": "test", "group": view["id"],
        "image": [f"images/{i}.png" for i in view["id"]],          # a modality's file column
        "text": [f"free text number {i}" for i in range(n)],         # a modality's text column
        "variant": variant,
        "note": [f"unique note {i}" for i in range(n)],              # id-like: skipped
        "site": "north",                                             # one value: skipped
        "camera": rng.choice([f"cam{i}" for i in range(12)], n),     # many levels: rare ones -> other
        "depth_m": rng.normal(10, 2, n).round(3).astype(str),        # numbers, read from a CSV as text
        "workers": rng.integers(0, 3, n).astype(str),                # few numbers: levels
    })
    dataset = SimpleNamespace(frame=frame, modalities={"image": "image", "text": "text"}, options={})
    return view, dataset


@pytest.fixture(scope="module")
def planted():
    view, dataset = predictions()
    features = slice_features(view, MODALITIES, dataset)
    return view, features


def test_features_are_readable_levels_and_leave_out_what_is_no_group(planted):
    view, features = planted
    assert list(features.index) == list(view["id"])
    assert {TRUE_CLASS, PREDICTED_CLASS, DOMINANT, CONFIDENCE, share_feature("image"), "variant", "camera",
            "depth_m", "workers"} <= set(features.columns)
    assert not {"id", "label", "split", "group", "image", "text", "note", "site"} & set(features.columns)
    skipped = features.attrs["skipped"]
    assert "id-like" in skipped["note"] and "one value" in skipped["site"]
    assert set(features[share_feature("image")]) == set(SHARE_LEVELS)
    assert set(features[CONFIDENCE]) == {"below 0.5", "0.5 to 0.8", "0.8 and above"}
    assert features["camera"].nunique() == 8 and OTHER in set(features["camera"])  # 7 most frequent + other
    assert features["depth_m"].nunique() == 4                                       # quantile bins
    assert set(features["workers"]) == {"0", "1", "2"}
    low = view["share_image"] < 1 / 3
    assert (features.loc[low.to_numpy(), share_feature("image")] == SHARE_LEVELS[0]).all()


def test_a_planted_high_error_slice_is_ranked_first_and_significant(planted):
    view, features = planted
    table = find_slices(features, view["correct"], max_conditions=2)
    assert list(table.columns) == list(SLICE_COLUMNS)
    best = table.iloc[0]
    assert {tuple(c) for c in best["conditions"]} == {(TRUE_CLASS, "b"), ("variant", "night")}
    assert best["description"] in ("true class = b AND variant = night", "variant = night AND true class = b")
    assert best["significant"] and best["q_value"] < 1e-6
    assert 0.45 < best["error_rate"] < 0.75 and best["ci_low"] < best["error_rate"] < best["ci_high"]
    ids = slice_ids(features, best["conditions"])
    rows = view[view["id"].isin(ids)]
    assert len(ids) == best["size"] and (rows["label"] == "b").all()
    assert best["errors"] == int((~rows["correct"]).sum())
    overall = float((~view["correct"]).mean())
    assert abs(best["overall_error_rate"] - overall) <= 4 * EPS64
    assert abs(best["lift"] - best["error_rate"] / overall) <= 4 * EPS64 * best["lift"]
    expected_p = stats.binomtest(int(best["errors"]), int(best["size"]), overall, alternative="greater").pvalue
    assert abs(best["p_value"] - expected_p) <= 4 * EPS64 * expected_p
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    assert table["score"].is_monotonic_decreasing
    json.dumps(table["conditions"].tolist())  # JSON-able
    # no slice names both classes: a confusion-matrix cell is wrong by definition
    assert all({c for c, _ in conds} != {TRUE_CLASS, PREDICTED_CLASS} for conds in table["conditions"])
    members = [frozenset(slice_ids(features, conds)) for conds in table["conditions"]]
    assert len(set(members)) == len(members)  # one row per set of samples
    assert table.attrs["reason"] is None and table.attrs["family"] >= len(table)


def test_predictions_whose_errors_fall_at_random_have_no_significant_slice():
    view, dataset = predictions(planted=False, seed=1)
    features = slice_features(view, MODALITIES, dataset)
    table = find_slices(features, view["correct"], max_conditions=2)
    assert len(table) > 0           # SliceLine still ranks the luckiest groups ...
    assert not table["significant"].any(), table[["description", "p_value", "q_value"]]  # ... none is significant


def test_benjamini_hochberg_within_a_family():
    p = np.array([0.01, 0.04, 0.03])
    # the family of the three: the textbook step-up values
    assert np.allclose(benjamini_hochberg(p, 3), [0.03, 0.04, 0.04], rtol=4 * EPS64)
    assert np.allclose(benjamini_hochberg(p, 3), stats.false_discovery_control(p), rtol=4 * EPS64)
    # a larger family: the others count as p = 1, never lowering a q-value
    assert np.allclose(benjamini_hochberg(p, 30), [0.3, 0.4, 0.4], rtol=4 * EPS64)
    assert (benjamini_hochberg(p, 10_000) <= 1).all()
    assert count_candidates([3, 4], 1) == 7 and count_candidates([3, 4], 2) == 19
    assert count_candidates([2, 2, 2], 3) == 6 + 12 + 8


def test_min_size_default_and_limit(planted):
    view, features = planted
    assert default_min_size(100) == 5 and default_min_size(1200) == 12
    table = find_slices(features, view["correct"], min_size=200, max_conditions=1)
    assert len(table) and (table["size"] >= 200).all()
    assert all(len(c) == 1 for c in table["conditions"])
    only = find_slices(features, view["correct"], columns=["variant", DOMINANT])
    assert set(only.attrs["columns"]) == {"variant", DOMINANT}
    assert all(c in ("variant", DOMINANT) for conds in only["conditions"] for c, _ in conds)


def test_nothing_to_explain_is_an_empty_result_with_a_reason(planted):
    view, features = planted
    all_right = find_slices(features, np.ones(len(view), dtype=bool))
    assert all_right.empty and "no error to explain" in all_right.attrs["reason"]
    all_wrong = find_slices(features, np.zeros(len(view), dtype=bool))
    assert all_wrong.empty and "every one of the" in all_wrong.attrs["reason"]
    none = find_slices(features.iloc[:0], np.array([], dtype=bool))
    assert none.empty and "no test predictions" in none.attrs["reason"]
    too_big = find_slices(features, view["correct"], min_size=len(view) + 1)
    assert too_big.empty and "larger than" in too_big.attrs["reason"]
    assert list(all_right.columns) == list(SLICE_COLUMNS)


def test_a_column_with_one_value_is_skipped_not_searched(planted):
    view, features = planted
    flat = features.assign(site="north")
    table = find_slices(flat, view["correct"], columns=["site"])
    assert table.empty and "one value" in table.attrs["reason"] and "one value" in table.attrs["skipped"]["site"]
    table = find_slices(flat, view["correct"], columns=["site", "variant", TRUE_CLASS])
    assert "site" not in table.attrs["columns"] and len(table)


def test_unexplained_runs_have_no_dominant_or_share_columns():
    view, dataset = predictions(n=200)
    view = view.assign(dominant=None, share_image=np.nan, share_text=np.nan)
    features = slice_features(view, MODALITIES, dataset)
    assert DOMINANT not in features.columns and share_feature("image") not in features.columns
    assert "needs explanations" in features.attrs["skipped"][DOMINANT]
    partly = predictions(n=200)[0]
    partly.loc[:99, ["dominant", "share_image", "share_text"]] = [None, np.nan, np.nan]
    features = slice_features(partly, MODALITIES)   # no dataset: the predictions' own columns only
    assert (features[DOMINANT].iloc[:100] == NOT_EXPLAINED).all()
    assert (features[share_feature("image")].iloc[:100] == NOT_EXPLAINED).all()
    assert "variant" not in features.columns
    # "not explained" says which samples the build explained, not where the model errs: never a slice
    partly.loc[:99, "correct"] = np.arange(100) % 2 == 0   # half of the unexplained samples wrong
    table = find_slices(features, partly["correct"], max_conditions=2)
    assert table.attrs["not_explained_dropped"] > 0
    assert all(v != NOT_EXPLAINED for conds in table["conditions"] for _, v in conds)


def test_bad_input_names_the_problem_and_the_fix(planted):
    view, features = planted
    with pytest.raises(ConfigError, match="no slice feature named 'colour'") as err:
        find_slices(features, view["correct"], columns=["colour"])
    assert "variant" in err.value.fix
    for kw in ({"max_conditions": 0}, {"alpha": 1.5}, {"min_size": 0}, {"error_weight": 0}, {"top": 0}):
        with pytest.raises(ConfigError):
            find_slices(features, view["correct"], **kw)
    with pytest.raises(DataError, match="correctness values for"):
        find_slices(features, view["correct"].iloc[:10])
    with pytest.raises(DataError, match="true/false"):
        find_slices(features, np.full(len(view), 0.5))
    with pytest.raises(DataError, match="lacks column"):
        slice_features(view.drop(columns=["pred"]), MODALITIES)
    with pytest.raises(ConfigError, match="unknown column"):
        slice_ids(features, [["colour", "red"]])


def test_correctness_is_aligned_by_id(planted):
    view, features = planted
    by_id = view.set_index("id")["correct"].iloc[::-1]   # another order, the same ids
    a = find_slices(features, by_id, max_conditions=1)
    b = find_slices(features, view["correct"].to_numpy(), max_conditions=1)
    pd.testing.assert_frame_equal(a, b)  # exact: the same inputs through the same steps


def test_a_simulated_clip_datasets_variant_is_a_slice_column(tmp_path):
    """The RGB-D simulator keeps each clip's variant in clips_meta.parquet, not in the manifest: the
    dataset's per-sample metadata brings it (and the other descriptive columns) to the slice finder."""
    from core.data import load_experiment_dataset, load_manifest
    from core.data.manifest import SAMPLE_METADATA
    from core.data.rgbd_sim import generate_dataset
    from core.data.store import save_dataset

    manifest = generate_dataset(tmp_path / "sim", n_clips=12, seed=1, workers=1, progress=False, frames=4, size=32)
    frame = pd.read_csv(manifest).assign(camera=lambda f: np.where(np.arange(len(f)) % 2, "north", "south"))
    frame.to_csv(manifest, index=False)   # a user's own manifest column keeps working beside the metadata
    save_dataset(tmp_path / "exp", load_manifest(manifest, {"rgb": "video", "depth": "video"}), manifest=manifest,
                 source="rgbd-sim")
    dataset, _ = load_experiment_dataset(tmp_path / "exp")   # as the dashboard reads it back
    meta = pd.read_parquet(tmp_path / "sim" / SAMPLE_METADATA).set_index("id")
    rng = np.random.default_rng(0)
    ids = dataset.frame["id"]
    view = pd.DataFrame({"id": ids, "label": dataset.frame["label"], "pred": dataset.frame["label"],
                         "confidence": rng.random(len(ids)), "correct": rng.random(len(ids)) < 0.7})
    features = slice_features(view, ["rgb", "depth"], dataset)
    assert {"variant", "reliance", "arm_mode", "camera"} <= set(features.columns)
    # readable levels, joined on id: each clip's own variant
    assert features["variant"].to_dict() == {i: str(meta.loc[i, "variant"]) for i in ids}
    skipped = features.attrs["skipped"]
    assert "clip_seed" in skipped and "clip_seed" not in features.columns    # a seed is no group
    assert not {"rgb", "depth", "group", "label"} & set(features.columns)     # paths and the sample's identity
    table = find_slices(features, view["correct"], columns=["variant"], min_size=1, max_conditions=1)
    assert all(c == "variant" for conds in table["conditions"] for c, _ in conds)

    # a damaged metadata file: the manifest's columns still slice, the page says why the rest is missing
    (tmp_path / "sim" / SAMPLE_METADATA).write_bytes(b"not parquet")
    dataset, _ = load_experiment_dataset(tmp_path / "exp")
    features = slice_features(view, ["rgb", "depth"], dataset)
    assert "camera" in features.columns and "variant" not in features.columns
    assert "unreadable" in features.attrs["skipped"]["per-sample metadata"]


def test_ids_seeds_and_paths_in_metadata_are_skipped():
    view, dataset = predictions(n=300)
    n = len(view)
    frame = dataset.frame.assign(frame_no=np.random.default_rng(1).permutation(n).astype(str),  # whole, unique
                                 sample_uid=[f"u{i % 50}" for i in range(n)],                  # named as an id
                                 thumb=[f"thumbs/{i % 20}.png" for i in range(n)])             # file paths
    features = slice_features(view, MODALITIES, SimpleNamespace(frame=frame, modalities=dataset.modalities, options={}))
    skipped = features.attrs["skipped"]
    assert "index or seed" in skipped["frame_no"] and "identifier" in skipped["sample_uid"]
    assert skipped["thumb"] == "file paths"
    assert "depth_m" in features.columns   # measured numbers, nearly unique too, stay as quantile bins
