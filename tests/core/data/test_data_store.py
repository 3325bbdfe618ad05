"""core.data: the dataset store (written by prepare, read back without torch, damage reported with the
fix) and the data-source registry that prepare and the experiment schema take their sources from."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.data import (
    DATA_SOURCES,
    dataset_problems,
    has_dataset,
    load_experiment_dataset,
    prepare_dataset,
    read_dataset_info,
)
from core.data.synthetic import make_synthetic_manifest
from core.errors import BundleError, ConfigError
from core.experiment import PROJECT_ROOT, load_experiment, parse_experiment
from core.experiment_schema import DATASET_SOURCES


def test_reading_the_dataset_never_imports_torch(tiny_built):
    """The dashboard's pages read dataset.json and the dataset at start-up: torch must stay out."""
    _, root = tiny_built
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import core.data.store as store\n"
        f"exp_dir = Path({str(root / 'tiny')!r})\n"
        "ds, info = store.load_experiment_dataset(exp_dir)\n"
        "assert store.read_dataset_info(exp_dir)['classes'] == ds.classes\n"
        "ds.items('title', ds.ids('test')[:2]); ds.items('image', ds.ids('test')[:2])\n"
        "import core.data\n"
        "assert 'torch' not in sys.modules, 'reading the dataset imported torch'\n"
        "print(len(ds.frame))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 0


def test_round_trip_and_fingerprint(tiny_built):
    from core.data.store import dataset_fingerprint

    exp_path, root = tiny_built
    ds, info = load_experiment_dataset(root / "tiny")
    assert has_dataset(root / "tiny")
    assert info["name"] == ds.name == "tiny" and info["source"] == "manifest"
    assert ds.modalities == {"image": "image", "title": "text", "description": "text"}
    assert info["experiment_file"] == str(exp_path.resolve())
    assert dataset_fingerprint(ds) == info["fingerprint"]  # the table reads back exactly
    assert set(ds.frame["split"]) == {"train", "val", "test"} and ds.frame["id"].is_unique
    assert read_dataset_info(root / "tiny") == info


def test_fingerprint_follows_the_files_not_only_the_table(tiny_built, tmp_path):
    """Files rewritten under the same names (clips re-rendered by another simulator version) change the
    fingerprint, so their runs are redone; the same files moved with their folder do not."""
    from core.data.store import dataset_fingerprint

    _, root = tiny_built
    ds, info = load_experiment_dataset(root / "tiny")
    moved = tmp_path / "data"
    shutil.copytree(ds.root, moved)                # copy2: the same bytes and modification times
    ds_moved = dataclasses.replace(ds, root=moved)
    assert dataset_fingerprint(ds_moved) == info["fingerprint"]
    image = moved / str(ds.frame["image"].iloc[0])
    original = os.stat(ds.root / str(ds.frame["image"].iloc[0]))
    data = image.read_bytes()
    image.write_bytes(data + b"\0")               # re-exported in place: same name, other content
    assert dataset_fingerprint(ds_moved) != info["fingerprint"]
    image.write_bytes(data)
    os.utime(image, ns=(original.st_atime_ns, original.st_mtime_ns))
    assert dataset_fingerprint(ds_moved) == info["fingerprint"]
    image.unlink()                                 # a file gone since prepare reads as changed data
    assert dataset_fingerprint(ds_moved) != info["fingerprint"]


def test_damage_is_reported_with_the_prepare_command(tiny_built, tmp_path):
    _, root = tiny_built
    exp_dir = tmp_path / "tiny"
    shutil.copytree(root / "tiny", exp_dir, ignore=shutil.ignore_patterns("*-*", "_cache"))
    assert has_dataset(exp_dir)
    info = json.loads((exp_dir / "dataset.json").read_text())
    (exp_dir / "dataset.json").write_text(json.dumps({**info, "classes": []}))
    for read in (read_dataset_info, load_experiment_dataset):
        with pytest.raises(BundleError) as err:
            read(exp_dir)
        assert "'classes' is [], not a non-empty list of names" in err.value.problem
        assert "prepare" in err.value.fix
    (exp_dir / "dataset.json").write_text(json.dumps(info))
    (exp_dir / "dataset.parquet").write_bytes(b"not parquet")
    with pytest.raises(BundleError, match="dataset table .* is unreadable"):
        load_experiment_dataset(exp_dir)
    (exp_dir / "dataset.parquet").unlink()
    assert not has_dataset(exp_dir)
    with pytest.raises(BundleError, match="is missing"):
        load_experiment_dataset(exp_dir)
    assert dataset_problems([1, 2]) == ["dataset.json holds a list, not an object"]


def test_the_schema_offers_the_registered_sources(tmp_path):
    assert DATASET_SOURCES == tuple(DATA_SOURCES.names()) == ("manifest", "emoji", "rgbd-sim", "site-sim")
    raw = {"name": "x", "dataset": {"source": "emjoi"},
           "modalities": {"a": {"kind": "text", "encoder": "minilm"}, "b": {"kind": "text", "encoder": "minilm"}}}
    with pytest.raises(ConfigError) as info:
        parse_experiment(raw)
    assert "did you mean 'emoji'?" in str(info.value) and 'use one of "manifest", "emoji", "rgbd-sim"' in str(info.value)


def test_prepare_asks_the_registered_source(tmp_path, capsys):
    """A source is one registered function: prepare finds it by the name in [dataset] source."""
    from tests._experiments import write_tiny_experiment

    exp_path = write_tiny_experiment(tmp_path / "files")
    calls = []

    @DATA_SOURCES.register("toy-shapes", doc="drawn shapes, for this test")
    def toy_source(dataset: dict, *, seed: int, progress: bool = True) -> Path:
        calls.append((dataset["source"], seed))
        return make_synthetic_manifest(tmp_path / "toy", n_classes=3, per_class=8, seed=seed)

    try:
        exp = load_experiment(exp_path)
        exp = dataclasses.replace(exp, seed=3, dataset={"source": "toy-shapes"})
        ds = prepare_dataset(exp, tmp_path / "runs", progress=False)
    finally:
        DATA_SOURCES.unregister("toy-shapes")
    assert calls == [("toy-shapes", 3)]
    assert len(ds.classes) == 3 and len(ds.frame) == 24
    _, info = load_experiment_dataset(tmp_path / "runs" / "tiny")
    assert info["source"] == "toy-shapes" and info["manifest"] == str((tmp_path / "toy" / "manifest.csv").resolve())
    assert "toy-shapes" not in DATA_SOURCES
