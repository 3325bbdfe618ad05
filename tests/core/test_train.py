"""core.train: the plan of runs and their names, what counts as up to date, the embedding cache, and
refusals before any training. (Training itself is covered end to end by test_pipeline.py.)"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from core.bundle import load_run
from core.data import load_experiment_dataset
from core.errors import BundleError, ConfigError
from core.experiment import EncoderSet, load_experiment, parse_experiment
from core.train import (
    affine_map,
    apply_affine_map,
    clip_channels,
    fold_assignment,
    early_run_name,
    fusion_run_name,
    is_up_to_date,
    load_cached_embeddings,
    planned_runs,
    train_experiment,
    unimodal_run_name,
)


def test_run_names_with_and_without_a_tag():
    plain, tagged = EncoderSet("", {}), EncoderSet("c3d", {})
    assert unimodal_run_name(plain, "image") == "unimodal-image"
    assert unimodal_run_name(tagged, "rgb") == "c3d-unimodal-rgb"
    assert fusion_run_name(plain, "multconcat", ["image", "title"]) == "multconcat-image+title"
    assert fusion_run_name(tagged, "late-average", ["rgb", "depth"]) == "c3d-late-average-rgb+depth"
    assert early_run_name(tagged, ["rgb", "depth"]) == "c3d-early-rgb+depth"


def test_plan_of_the_tiny_experiment(tiny_built):
    exp_path, _ = tiny_built
    plan = planned_runs(load_experiment(exp_path))
    names = [p[0] for p in plan]
    assert names[:3] == ["unimodal-image", "unimodal-title", "unimodal-description"]  # stage 1 first
    assert names[3:] == [f"{f}-{s}" for s in ("image+title+description", "image+title")
                         for f in ("multconcat", "concat", "late-average", "late-weighted")]
    assert [p[2] for p in plan[:3]] == ["unimodal"] * 3 and plan[3][3] == ["image", "title", "description"]
    assert len(set(names)) == len(names)


def test_plan_with_an_encoder_grid_and_early_fusion():
    raw = {"name": "clips", "dataset": {"source": "manifest", "manifest": "clips.csv"},
           "grid_default": ["c3d"],
           "modalities": {"rgb": {"kind": "video", "encoder": "c3d"}, "depth": {"kind": "video", "encoder": "c3d"}},
           "encoder_grid": {"c3d": {"video": "c3d"}, "slow": {"video": "slowfast"}},
           "fusion": {"methods": ["concat"], "late": ["late-average"], "early": True}}
    exp = parse_experiment(raw)
    default = [p[0] for p in planned_runs(exp)]
    assert default == ["c3d-unimodal-rgb", "c3d-unimodal-depth", "c3d-early-rgb+depth", "c3d-concat-rgb+depth",
                       "c3d-late-average-rgb+depth"]
    full = [p[0] for p in planned_runs(exp, full=True)]
    assert full[:5] == default and full[5:] == [n.replace("c3d-", "slow-", 1) for n in default]
    assert {p[1].specs["rgb"]["name"] for p in planned_runs(exp, full=True) if p[1].tag == "slow"} == {"slowfast"}


def test_is_up_to_date_needs_a_readable_bundle_with_the_same_fingerprint(tiny_built, tmp_path):
    _, root = tiny_built
    run_dir = tmp_path / "tiny" / "concat-image+title"
    shutil.copytree(root / "tiny" / "concat-image+title", run_dir)
    fingerprint = load_run(run_dir).config["fingerprint"]
    assert is_up_to_date(run_dir, fingerprint)
    assert not is_up_to_date(run_dir, "0" * 16)  # other settings or data: redone
    (run_dir / "config.json").write_text("{broken")
    assert not is_up_to_date(run_dir, fingerprint)  # unreadable: redone, not an error
    (run_dir / "config.json").unlink()
    assert not is_up_to_date(run_dir, fingerprint)
    assert not is_up_to_date(tmp_path / "never-built", fingerprint)


def test_embedding_cache_covers_every_sample(tiny_built):
    _, root = tiny_built
    ds, _ = load_experiment_dataset(root / "tiny")
    ids, emb = load_cached_embeddings(root / "tiny", "unimodal-image")
    assert sorted(ids) == sorted(ds.ids()) and tuple(emb.shape) == (len(ids), 16)
    assert np.isfinite(emb.numpy()).all()


def test_unknown_run_is_refused_before_training(tiny_built):
    exp_path, root = tiny_built
    stamps = {p.name: p.stat().st_mtime_ns for p in (root / "tiny").iterdir()}
    with pytest.raises(ConfigError) as info:
        train_experiment(load_experiment(exp_path), root, progress=False, only=["concat-image+titel"])
    assert "unknown run(s) ['concat-image+titel']" in info.value.problem
    assert "concat-image+title" in info.value.fix and "unimodal-image" in info.value.fix
    assert stamps == {p.name: p.stat().st_mtime_ns for p in (root / "tiny").iterdir()}


def test_clip_channels():
    assert clip_channels(np.zeros((4, 8, 8))) == 1  # a bare depth clip
    assert clip_channels(np.zeros((4, 8, 8, 3))) == 3
    assert clip_channels(np.zeros((4, 8, 8, 1))) == 1


def test_affine_map_recovers_a_known_map_and_carries_to_new_points():
    import torch

    gen = torch.Generator().manual_seed(0)
    src = torch.randn(200, 6, generator=gen)
    w_true, b_true = torch.randn(6, 4, generator=gen), torch.randn(4, generator=gen)
    w, b = affine_map(src, src @ w_true + b_true, ridge=1e-9)
    new = torch.randn(20, 6, generator=gen)
    assert torch.allclose(apply_affine_map(new, w, b), new @ w_true + b_true, atol=1e-4)


def test_folds_keep_groups_together_and_cover_every_class(tiny_built):
    _, root = tiny_built
    ds, _ = load_experiment_dataset(root / "tiny")
    ids = ds.ids("train")
    fold = fold_assignment(ds, ids, 3, seed=0)
    rows = ds.rows(ids)
    assert set(fold) == {0, 1, 2}
    assert (rows.assign(fold=fold).groupby("group")["fold"].nunique() == 1).all()  # a group never straddles folds
    assert (fold_assignment(ds, ids, 3, seed=0) == fold).all()  # seeded
    with pytest.raises(ConfigError, match="oof_folds"):
        fold_assignment(ds, ids[:2], 3, seed=0)


def test_stage_two_trains_on_out_of_fold_embeddings(tiny_built):
    """The image encoder trains end to end: its cached train embeddings come from fold encoders (mapped into the
    final encoder's space), its val/test ones from the final encoder; a frozen text encoder needs no folds."""
    import torch

    _, root = tiny_built
    image, title = load_run(root / "tiny" / "unimodal-image"), load_run(root / "tiny" / "unimodal-title")
    record = image.config["out_of_fold"]
    assert record["folds"] == 3 and 0.0 <= record["top1"] <= 1.0 and len(record["alignment_r2_val"]) == 3
    assert title.config["out_of_fold"] is None
    ds, _ = load_experiment_dataset(root / "tiny")
    ids, emb = load_cached_embeddings(root / "tiny", "unimodal-image")
    pos = {i: k for k, i in enumerate(ids)}
    encoder = image.model().encoders["image"].eval()
    with torch.no_grad():
        for split, same in (("train", False), ("test", True)):
            split_ids = ds.ids(split)
            fresh = encoder(encoder.prepare(ds.items("image", split_ids)))
            cached = emb[[pos[i] for i in split_ids]]
            assert torch.allclose(cached, fresh, atol=1e-4) is same


def test_oof_folds_of_one_is_refused():
    raw = {"name": "x", "dataset": {"source": "manifest", "manifest": "m.csv"},
           "modalities": {"image": {"kind": "image", "encoder": "small-cnn"}},
           "train": {"unimodal": {"oof_folds": 1}}}
    with pytest.raises(ConfigError, match="oof_folds = 1"):
        parse_experiment(raw)


def test_one_segment_tables_take_the_out_of_fold_training_embeddings() -> None:
    """An adaptive run with one segment trains on the unimodal run's stage-2 embeddings for the training rows;
    validation and test rows and every summary column stay as the segment encoding gave them."""
    from core.train import _out_of_fold_segments

    table_ids = ["a", "b", "c", "d"]
    table = torch.arange(4 * 5, dtype=torch.float32).view(4, 5)  # [embedding (3), summary (2)]
    stage2_ids = ["d", "c", "b", "a"]
    stage2 = -torch.arange(4 * 3, dtype=torch.float32).view(4, 3) - 1
    out = _out_of_fold_segments(table, stage2_ids, stage2, table_ids, ["b", "d"], "rgb", "exp")
    assert torch.equal(out[1, :3], stage2[2]) and torch.equal(out[3, :3], stage2[0])  # copied values
    assert torch.equal(out[[0, 2]], table[[0, 2]]) and torch.equal(out[:, 3:], table[:, 3:])
    assert torch.equal(table, torch.arange(4 * 5, dtype=torch.float32).view(4, 5))  # the input is not modified
    with pytest.raises(BundleError, match="lacks sample"):
        _out_of_fold_segments(table, ["a"], stage2[:1], table_ids, ["b"], "rgb", "exp")
