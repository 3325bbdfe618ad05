"""Runs as the explain functions see them: loaded once per process, a sample's record and model inputs.

A run folder is loaded once per process and reloaded when its ``config.json``
changes (:func:`resolve_run`); so is its experiment's dataset
(:func:`run_dataset`). :func:`run_inputs` prepares one sample's model inputs;
:func:`explain_threads` runs the ``explain`` job's torch threads.
"""
from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Any

import torch

from core.bundle import Run, experiment_arg, load_run
from core.data import load_experiment_dataset
from core.errors import ConfigError, DataError, cli_command
from core.explain._settings import ExplainSettings
from core.threads import torch_threads


def explain_threads(threads: int | None = None) -> contextlib.AbstractContextManager[int]:
    """Run with the ``explain`` job's torch threads (or ``threads``), restored afterwards.

    The job defaults to one thread (``FUSIONLENS_THREADS=explain=N`` or
    ``FUSIONLENS_EXPLAIN_THREADS`` change it). Explaining is many small batches: on the shared
    2-core build machine one thread took 0.11 s per emoji sample and two threads 1.39 s (OpenMP
    threads spinning against other processes). Use ``--shard i/n`` processes to use more cores.
    """
    return torch_threads("explain", threads)


@functools.lru_cache(maxsize=8)
def _cached_run(path: str, stamp: int) -> Any:
    return load_run(path)


@functools.lru_cache(maxsize=4)
def _cached_dataset(exp_dir: str, stamp: int) -> Any:
    return load_experiment_dataset(Path(exp_dir))[0]


def _stamp(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def resolve_run(run: Any) -> Any:
    """A :class:`core.bundle.Run` from a Run or a run folder (loaded runs are cached per process)."""
    if isinstance(run, Run):
        return run
    path = Path(run).resolve()
    return _cached_run(str(path), _stamp(path / "config.json"))


def run_dataset(run: Any) -> Any:
    """The dataset the run's experiment was built from (cached per process)."""
    exp_dir = Path(run.path).resolve().parent
    return _cached_dataset(str(exp_dir), _stamp(exp_dir / "dataset.parquet"))


def sample_record(run: Any, sample_id: str) -> dict[str, Any]:
    """label / pred / correct of a sample from the run's predictions (label from the dataset otherwise)."""
    preds = run.predictions
    ids = preds["id"].astype(str)
    hit = preds[ids == str(sample_id)]
    if len(hit):
        row = hit.iloc[0]
        return {"label": str(row["label"]), "pred": str(row["pred"]), "correct": bool(row["correct"]),
                "split": str(row.get("split", "test"))}
    ds = run_dataset(run)
    frame = ds.frame
    known = frame["id"].astype(str) == str(sample_id)
    if not known.any():
        preview = ", ".join(ids.head(5).tolist())
        raise DataError(f"sample {sample_id!r} is not in run {run.name!r} nor in its dataset",
                        fix=f"pick an id from the run's predictions.parquet (for example {preview})")
    row = frame[known].iloc[0]
    return {"label": str(row["label"]), "pred": None, "correct": None, "split": str(row.get("split", ""))}


def run_inputs(run: Any, sample_id: str) -> dict[str, dict[str, torch.Tensor]]:
    """Model inputs (batch 1) of one sample of the run's dataset."""
    ds = run_dataset(run)
    model = run.model()
    missing = [m for m in model.modalities if m not in ds.modalities]
    if missing:
        rebuild = f"{cli_command()} build {experiment_arg(Path(run.path).parent)} --force"
        raise DataError(f"the dataset of run {run.name!r} lacks modality {', '.join(missing)}",
                        fix=f"rebuild the experiment (`{rebuild}`)")
    items = {m: ds.items(m, [str(sample_id)]) for m in model.modalities}
    with torch.inference_mode():
        return model.prepare(items)


def check_run_modalities(run: Any, settings: ExplainSettings) -> None:
    """Fail, naming the run's modalities, when ``settings`` explain one the run lacks."""
    if settings.modalities is None:
        return
    unknown = [m for m in settings.modalities if m not in run.modalities]
    if unknown:
        raise ConfigError(f"run {run.name!r} has no modality {', '.join(map(repr, unknown))}",
                          fix=f"explain some of its modalities: {', '.join(run.modalities)}")
