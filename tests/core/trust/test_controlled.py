"""The controlled-variant test: one modality shuffled across samples, retrained, its share drops."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from core.trust import CONTROLLED_TAG, controlled_check, controlled_name, shuffle_modality


def test_shuffle_is_a_seeded_derangement_within_each_split():
    frame = pd.DataFrame({"id": [f"s{i}" for i in range(20)], "label": list("abcd") * 5,
                          "split": ["train"] * 12 + ["val"] * 4 + ["test"] * 3 + ["lonely"],
                          "image": [f"img{i}.png" for i in range(20)], "title": [f"t{i}" for i in range(20)]})
    out = shuffle_modality(frame, ["image"], seed=3)
    pd.testing.assert_frame_equal(out[["id", "label", "split", "title"]], frame[["id", "label", "split", "title"]])
    for split, part in out.groupby("split"):
        original = frame[frame["split"] == split]
        assert sorted(part["image"]) == sorted(original["image"])  # the split's own content, moved around
        if len(part) > 1:
            assert (part["image"].to_numpy() != original["image"].to_numpy()).all()  # nobody keeps their own
    source = out.set_index("id")["shuffled_from"]
    assert all(out.set_index("id").loc[i, "image"] == frame.set_index("id").loc[source[i], "image"] for i in out["id"])
    assert out.loc[out["split"] == "lonely", "image"].item() == "img19.png"  # a split of one cannot move
    pd.testing.assert_frame_equal(out, shuffle_modality(frame, ["image"], seed=3))
    assert not out["image"].equals(shuffle_modality(frame, ["image"], seed=4)["image"])


def test_controlled_name_is_a_sibling_experiment_name():
    assert controlled_name("rgbd", "depth") == f"rgbd{CONTROLLED_TAG}depth" == "rgbd--controlled-depth"
    with pytest.raises(Exception, match="refused"):
        controlled_name("rgbd", "../x")


@pytest.mark.slow
def test_shuffling_a_modality_drops_its_share_on_the_tiny_experiment(tiny_built, tmp_path):
    _, built = tiny_built
    root = tmp_path / "runs"
    shutil.copytree(built, root)
    run_dir = root / "tiny" / "concat-image+title+description"
    before = sorted(p.name for p in (root / "tiny").iterdir())
    result = controlled_check(run_dir, modalities=["description"], samples=8, seed=0)
    measured = result.numbers["modalities"]["description"]
    assert measured["experiment"] == "tiny--controlled-description"
    # the shuffled description carries no label information: its share falls
    assert measured["shuffled_share"]["mean"] < measured["original_share"]["mean"] - 0.05, result.reason
    assert result.n == 8 and result.status in ("pass", "warn", "fail")
    # written next to the original experiment, never inside it
    assert sorted(p.name for p in (root / "tiny").iterdir()) == before
    sibling = root / "tiny--controlled-description"
    info = json.loads((sibling / "controlled.json").read_text())
    assert info["shuffled_modality"] == "description" and info["source_experiment"] == "tiny"
    shuffled = pd.read_parquet(sibling / "dataset.parquet").set_index("id")
    original = pd.read_parquet(root / "tiny" / "dataset.parquet").set_index("id")
    assert (shuffled["label"] == original.loc[shuffled.index, "label"]).all()
    assert (shuffled["title"] == original.loc[shuffled.index, "title"]).all()
    assert (shuffled["description"] != original.loc[shuffled.index, "description"]).any()
    assert (sibling / "concat-image+title+description" / "explanations").is_dir()
    assert np.isfinite(measured["top1"])
