"""Run bundles: one directory per trained model.

``save_run`` writes the whole bundle into ``<run>.partial/`` and renames it to
``<run>/`` when complete, so a crash never leaves a run that looks finished.
``load_run`` checks the format version and every file, and ``Run.model()``
rebuilds the model from ``config.json`` (JSON) and ``model.safetensors``
(safetensors): nothing is unpickled and no code from the bundle is executed.
"""
from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.errors import BundleError
from core.io import read_json, read_parquet, read_tensors, write_json, write_parquet, write_tensors

if TYPE_CHECKING:  # torch loads only when a model is rebuilt (keeps dashboard start-up fast)
    import torch

FORMAT_VERSION = 1
REQUIRED_FILES = ("config.json", "model.safetensors", "predictions.parquet", "metrics.json", "embeddings.safetensors")


def save_run(run_dir: Path, config: dict[str, Any], weights: dict[str, torch.Tensor], predictions: pd.DataFrame,
             embeddings: dict[str, torch.Tensor | np.ndarray], metrics: dict[str, Any]) -> Path:
    """Write a complete bundle atomically (staged in a sibling folder, then renamed)."""
    run_dir = Path(run_dir)
    staging = run_dir.with_name(run_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    config = {"format_version": FORMAT_VERSION, **config}
    write_tensors(staging / "model.safetensors", weights, metadata={"format_version": str(FORMAT_VERSION)})
    write_parquet(staging / "predictions.parquet", predictions)
    write_tensors(staging / "embeddings.safetensors", embeddings)
    write_json(staging / "metrics.json", metrics)
    write_json(staging / "config.json", config)  # last: its presence marks a complete bundle
    if run_dir.exists():
        old = run_dir.with_name(run_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        run_dir.rename(old)
        staging.rename(run_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(run_dir)
    return run_dir


def is_complete(run_dir: Path) -> bool:
    return all((Path(run_dir) / f).is_file() for f in REQUIRED_FILES)


@dataclass
class Run:
    """A loaded run bundle. Tables load eagerly; the model is rebuilt on demand."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    predictions: pd.DataFrame

    @property
    def name(self) -> str:
        return self.config["run"]

    @property
    def experiment(self) -> str:
        return self.config["experiment"]

    @property
    def modalities(self) -> list[str]:
        return list(self.config["modalities"])

    @property
    def classes(self) -> list[str]:
        return list(self.config["classes"])

    def embeddings(self) -> dict[str, np.ndarray]:
        tensors = read_tensors(self.path / "embeddings.safetensors", what="embeddings")
        return {k: v.numpy() for k, v in tensors.items()}

    @functools.cached_property
    def _model(self) -> Any:
        from core.model import EarlyFusionClassifier, MultimodalClassifier, build_encoder, build_head

        cfg = self.config
        try:
            head = build_head(cfg["head"])
            if cfg["strategy"] == "early":
                joint = build_encoder(cfg["early"]["joint"])
                model = EarlyFusionClassifier(cfg["modalities"], joint, head, cfg["classes"], cfg["early"]["channels"])
            else:
                encoders = {m: build_encoder(cfg["encoders"][m]) for m in cfg["modalities"]}
                model = MultimodalClassifier(cfg["modalities"], encoders, head, cfg["classes"])
            state = read_tensors(self.path / "model.safetensors", what="model weights")
            model.load_owned_state_dict(state)
        except BundleError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"run {self.path} cannot be rebuilt ({type(exc).__name__}: {exc})",
                              fix="the bundle is corrupted or from another version; rerun `python -m core build` "
                                  "with --force for this experiment") from exc
        model.eval()
        return model

    def model(self) -> Any:
        """The rebuilt ``MultimodalClassifier`` in eval mode (built once per Run)."""
        return self._model


def load_run(run_dir: str | Path) -> Run:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BundleError(f"run directory {run_dir} does not exist", fix="list runs with `python -m core list`")
    missing = [f for f in REQUIRED_FILES if not (run_dir / f).is_file()]
    if missing:
        raise BundleError(f"run {run_dir} is incomplete: missing {', '.join(missing)}",
                          fix="rerun `python -m core build <experiment>` (finished runs are kept, this one is redone)")
    config = read_json(run_dir / "config.json", what="run config")
    version = config.get("format_version") if isinstance(config, dict) else None
    if version != FORMAT_VERSION:
        raise BundleError(f"run {run_dir} has format version {version!r}; this FusionLens reads version {FORMAT_VERSION}",
                          fix="rebuild it with `python -m core build <experiment> --force`")
    for key in ("experiment", "run", "modalities", "classes", "encoders", "head", "strategy"):
        if key not in config:
            raise BundleError(f"run config {run_dir / 'config.json'} lacks {key!r}",
                              fix="the bundle is corrupted; rebuild it with `python -m core build <experiment> --force`")
    metrics = read_json(run_dir / "metrics.json", what="run metrics")
    predictions = read_parquet(run_dir / "predictions.parquet", what="predictions")
    return Run(path=run_dir, config=config, metrics=metrics, predictions=predictions)


def list_runs(experiment_dir: str | Path) -> list[Path]:
    """Complete run directories of an experiment, sorted by name."""
    d = Path(experiment_dir)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
                  and not p.name.endswith((".partial", ".old")) and (p / "config.json").is_file())
