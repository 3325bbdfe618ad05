"""Runs as the explain functions see them: loaded once per process, a sample's record and model inputs.

A run folder is loaded once per process and reloaded when its ``config.json``
changes (:func:`resolve_run`); so is its experiment's dataset
(:func:`run_dataset`). :func:`run_inputs` prepares one sample's model inputs;
:func:`explain_threads` runs the ``explain`` job's torch threads.

The precompute explains each sample for many runs in turn (:func:`core.explain.explain_runs`), so a
sample's raw items are loaded once for all of them (the last :data:`ITEM_SAMPLES` samples are kept per
dataset) and a run's prediction rows are looked up in an id index built once per predictions table.
"""
from __future__ import annotations

import contextlib
import functools
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
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


#: samples whose raw items :func:`run_inputs` keeps per dataset (the precompute needs one at a time)
ITEM_SAMPLES = 4
#: predictions tables whose id index :func:`sample_record` keeps
_RECORD_INDEXES = 64
_records: OrderedDict[int, tuple[Any, Any]] = OrderedDict()
_items: OrderedDict[tuple[int, str, str], tuple[Any, list[Any]]] = OrderedDict()
_cache_lock = threading.Lock()  # the dashboard's sessions explain in threads of one process


class _RecordIndex:
    """label / pred / correct / split of a predictions table by sample id (the first row of an id): a hash
    index of the ids and the columns looked up by position, so a million-row table costs no per-row Python
    object (a dict of one record per row took 6.4 s to build at 960,000 rows, a shard task's whole setup)."""

    def __init__(self, preds: Any) -> None:
        ids = preds["id"].astype(str)
        first = ~ids.duplicated(keep="first").to_numpy()
        self.positions = np.flatnonzero(first)
        self.index = pd.Index(ids[first])
        self.columns = {c: preds[c].array for c in ("label", "pred", "correct")}
        self.split = preds["split"].astype(str).array if "split" in preds.columns else None

    def get(self, sample_id: str) -> dict[str, Any] | None:
        hit = self.index.get_indexer([sample_id])[0]
        if hit < 0:
            return None
        row = int(self.positions[hit])
        return {"label": str(self.columns["label"][row]), "pred": str(self.columns["pred"][row]),
                "correct": bool(self.columns["correct"][row]),
                "split": "test" if self.split is None else str(self.split[row])}


def _record_index(preds: Any) -> _RecordIndex:
    """The :class:`_RecordIndex` of a predictions table, built once per table object (the table is kept
    beside its index, so an id of a collected table is never mistaken for a new one)."""
    with _cache_lock:
        cached = _records.get(id(preds))
        if cached is not None and cached[0] is preds:
            _records.move_to_end(id(preds))
            return cached[1]
    index = _RecordIndex(preds)
    with _cache_lock:
        _records[id(preds)] = (preds, index)
        while len(_records) > _RECORD_INDEXES:
            _records.popitem(last=False)
    return index


def _sample_items(ds: Any, modality: str, sample_id: str) -> list[Any]:
    """``ds.items(modality, [sample_id])``, kept for the last :data:`ITEM_SAMPLES` samples of the dataset."""
    key = (id(ds), modality, sample_id)
    with _cache_lock:
        cached = _items.get(key)
        if cached is not None and cached[0] is ds:
            _items.move_to_end(key)
            return cached[1]
    items = ds.items(modality, [sample_id])
    with _cache_lock:
        _items[key] = (ds, items)
        while len(_items) > ITEM_SAMPLES * max(1, len(getattr(ds, "modalities", ()) or ())):
            _items.popitem(last=False)
    return items


def sample_record(run: Any, sample_id: str) -> dict[str, Any]:
    """label / pred / correct of a sample from the run's predictions (label from the dataset otherwise)."""
    preds = run.predictions
    record = _record_index(preds).get(str(sample_id))
    if record is not None:
        return dict(record)
    ids = preds["id"].astype(str)
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
    items = {m: _sample_items(ds, m, str(sample_id)) for m in model.modalities}
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
