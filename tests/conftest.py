"""Shared fixtures: a tiny seeded image+text dataset and an experiment built from it."""
from __future__ import annotations

import importlib
import os
import shutil
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
# The tiny builds train their heads and projections here: worker processes would cost more start-up than
# they save (tests/core/test_workers.py runs them explicitly).
os.environ.setdefault("FUSIONLENS_WORKERS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

@pytest.fixture(scope="session")
def tiny_built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(experiment file, runs root) of a tiny experiment built once per test session."""
    from core.experiment import load_experiment
    from core.train import train_experiment
    from tests._experiments import write_tiny_experiment

    folder = tmp_path_factory.mktemp("tiny")
    exp_path = write_tiny_experiment(folder)
    root = folder / "runs"
    train_experiment(load_experiment(exp_path), root, progress=False)
    return exp_path, root


@pytest.fixture(scope="module")
def tiny_runs_copy(tiny_built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs root holding a copy of the tiny experiment, one per test module: free to write into
    (blame, saved views) without touching the session's build."""
    _, built = tiny_built
    root = tmp_path_factory.mktemp("tiny-copy") / "runs"
    shutil.copytree(built, root)
    return root


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
