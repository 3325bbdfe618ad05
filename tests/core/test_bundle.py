"""Run bundles: round trip, and clear errors for missing, corrupted or old bundles."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.bundle import FORMAT_VERSION, load_run
from core.errors import BundleError


@pytest.fixture()
def run_copy(tiny_built, tmp_path) -> Path:
    _, root = tiny_built
    dst = tmp_path / "tiny" / "concat-image+title"
    shutil.copytree(root / "tiny" / "concat-image+title", dst)
    shutil.copy(root / "tiny" / "dataset.json", tmp_path / "tiny")
    shutil.copy(root / "tiny" / "dataset.parquet", tmp_path / "tiny")
    return dst


def test_round_trip_rebuilds_model(run_copy):
    run = load_run(run_copy)
    model = run.model()
    assert model.modalities == ["image", "title"]
    assert run.config["format_version"] == FORMAT_VERSION


def test_missing_file(run_copy):
    (run_copy / "predictions.parquet").unlink()
    with pytest.raises(BundleError, match="incomplete: missing predictions.parquet.*Fix:"):
        load_run(run_copy)


def test_corrupted_weights(run_copy):
    (run_copy / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    run = load_run(run_copy)
    with pytest.raises(BundleError, match="corrupted"):
        run.model()


def test_weights_of_wrong_shape(run_copy):
    from core.io import read_tensors, write_tensors

    state = read_tensors(run_copy / "model.safetensors")
    key = next(k for k in state if k.startswith("head."))
    state[key] = state[key][..., :1]
    write_tensors(run_copy / "model.safetensors", state)
    with pytest.raises(BundleError, match="cannot be rebuilt"):
        load_run(run_copy).model()


def test_corrupted_config(run_copy):
    (run_copy / "config.json").write_text("{not json")
    with pytest.raises(BundleError, match="corrupted"):
        load_run(run_copy)


def test_older_format_version(run_copy):
    cfg = json.loads((run_copy / "config.json").read_text())
    cfg["format_version"] = 0
    (run_copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="format version 0.*--force"):
        load_run(run_copy)


def test_no_pickle_anywhere(run_copy):
    names = {p.suffix for p in run_copy.rglob("*") if p.is_file()}
    assert names <= {".json", ".parquet", ".safetensors"}


def test_interrupted_save_leaves_previous_bundle(run_copy, monkeypatch):
    import core.bundle as bundle

    run = load_run(run_copy)
    before = (run_copy / "metrics.json").read_text()

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(bundle, "write_json", boom)
    with pytest.raises(RuntimeError):
        bundle.save_run(run_copy, run.config, {}, run.predictions, {"x": [[1.0]]}, run.metrics)
    assert (run_copy / "metrics.json").read_text() == before
    load_run(run_copy)
