"""A run bundle's model, rebuilt for the dashboard under its rules for what a bundle may load.

A bundle is data, not a command the user ran: its local model folders must lie
inside :func:`model_roots` (the project and the runs root, plus
``$FUSIONLENS_ALLOW_MODEL_DIRS``) and hold safetensors weights, and Hugging
Face ids load from the local cache only (see :mod:`core.model_sources`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import BundleError, ConfigError
from core.experiment import PROJECT_ROOT
from core.model_sources import check_bundle_models, hub_cache_only

__all__ = ["model_roots", "build_run_model"]


def model_roots(root: str | Path) -> list[Path]:
    """Where a run bundle opened by the dashboard may name a local model folder: the project
    and the runs root (plus ``$FUSIONLENS_ALLOW_MODEL_DIRS``, added by the check). Not the data
    folder that ``dataset.json`` records: that file is no more trusted than ``config.json``."""
    return [PROJECT_ROOT.resolve(), Path(root).resolve()]


def build_run_model(run: Any, root: str | Path) -> Any:
    """Rebuild the model of a bundle under the dashboard's rules: its local model folders must be
    inside :func:`model_roots` and hold safetensors weights, and Hugging Face ids load from the
    local cache only. Any refusal or failure is a :class:`BundleError` naming the model."""
    try:
        check_bundle_models(run.config, model_roots(root), run=f"run {Path(run.path).name}")
    except ConfigError as exc:
        raise BundleError(exc.problem, fix=exc.fix) from exc
    with hub_cache_only():
        return run.model()
