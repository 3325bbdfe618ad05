"""Shared fixtures: a tiny seeded image+text dataset and an experiment built from it."""
from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest
import torch

#: torch threads for the whole session (``FUSIONLENS_TEST_THREADS``, default 1). CI runs the
#: suite with 1 and the fast tests again with 2, so thread-dependent rounding (other BLAS
#: blockings, other reduction orders) shows up as a failure here rather than on a user's machine.
TEST_THREADS = int(os.environ.get("FUSIONLENS_TEST_THREADS", "1") or 1)
torch.set_num_threads(TEST_THREADS)
# every torch job of core (heads, encoders, MM-SHAP; see core/threads.py) runs with the same count
os.environ.setdefault("FUSIONLENS_THREADS", str(TEST_THREADS))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TINY_EXPERIMENT = """
name = "tiny"
seed = 0
[dataset]
source = "manifest"
manifest = "data/manifest.csv"
[modalities.image]
kind = "image"
encoder = "small-cnn"
encoder_kwargs = {{ image_size = 16, width = 4, out_dim = 16 }}
[modalities.title]
kind = "text"
encoder = "minilm"
encoder_kwargs = {{ max_length = 12 }}
[modalities.description]
kind = "text"
encoder = "minilm"
encoder_kwargs = {{ max_length = 12 }}
[fusion]
methods = {methods}
late = ["late-average", "late-weighted"]
subsets = [["image", "title", "description"], ["image", "title"]]
[train.unimodal]
epochs = 4
batch_size = 16
hidden = 32
[train.fusion]
epochs = 8
batch_size = 16
dim = 16
"""


def write_tiny_experiment(folder: Path, methods: str = '["multconcat", "concat"]', **manifest_kw) -> Path:
    from core.data.synthetic import make_synthetic_manifest

    make_synthetic_manifest(folder / "data", **manifest_kw)
    path = folder / "tiny.toml"
    path.write_text(TINY_EXPERIMENT.format(methods=methods))
    return path


@pytest.fixture(scope="session")
def tiny_built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(experiment file, runs root) of a tiny experiment built once per test session."""
    from core.experiment import load_experiment
    from core.train import train_experiment

    folder = tmp_path_factory.mktemp("tiny")
    exp_path = write_tiny_experiment(folder)
    root = folder / "runs"
    train_experiment(load_experiment(exp_path), root, progress=False)
    return exp_path, root


@pytest.fixture
def shap_uncompiled(monkeypatch: pytest.MonkeyPatch):
    """shap with its numba functions run as plain Python: the same code, without ~9 s of compilation."""
    shap = pytest.importorskip("shap")
    for name in ("shap.explainers._exact", "shap.utils._masked_model", "shap.maskers._tabular"):
        module = importlib.import_module(name)
        for attr, value in list(vars(module).items()):
            if type(value).__name__.endswith("Dispatcher") and hasattr(value, "py_func"):
                monkeypatch.setattr(module, attr, value.py_func)
    return shap
