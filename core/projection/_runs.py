"""Projecting runs: every (embedding, method) projection of a run, stored with it, resumable.

:func:`load_run_embeddings` reads a run's ``embeddings.safetensors`` (rows in
the order of ``predictions.parquet``); :func:`ensure_projections` computes and
stores what is missing, stale or damaged; :func:`project_runs` does that for
many runs and projects an embedding that several runs share exactly (the
per-modality embeddings of fusion runs over the same encoders) only once.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from core import io
from core.errors import BundleError, DataError, cli_command
from core.workers import in_processes
from core.projection._compute import Projection, compute_projection, data_fingerprint
from core.projection._methods import METHODS, check_method, method_label, method_order
from core.projection._store import (PROJECTIONS_DIR, check_name, find_stored, read_stored,
                                    save_projection)

EMBEDDINGS_FILE = "embeddings.safetensors"
PREDICTIONS_FILE = "predictions.parquet"


def ensure_projections(
    run_dir: str | Path,
    embeddings: Mapping[str, np.ndarray],
    ids: Iterable[Any],
    methods: Iterable[str] = ("pca", "tsne", "umap"),
    seed: int = 0,
    progress: bool | Callable[[int, int, str], None] = True,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[tuple[str, str], Projection]:
    """Compute and store every (embedding, method) projection that is not stored yet.

    Resumable: stored projections are loaded, not recomputed, unless they are
    corrupted or stale (computed from other ids or other embedding values,
    e.g. before a rebuild of the run). ``progress`` is
    True for a tqdm bar, False for none, or a callable ``(done, total, label)``
    (e.g. to drive a dashboard progress bar). ``params`` maps a method to its
    parameter overrides. Returns every requested projection.
    """
    ids_list = [str(i) for i in ids]
    methods = [check_method(m) for m in methods]
    params = dict(params or {})
    io.remove_stale_tmp(Path(run_dir) / PROJECTIONS_DIR)  # what a killed run was writing
    for name, arr in embeddings.items():
        check_name(name)
        rows = np.shape(arr)[0] if np.ndim(arr) else 0
        if rows != len(ids_list):
            raise DataError(
                f"embedding {name!r} has {rows} rows but there are {len(ids_list)} ids",
                fix="pass the ids in the order of the embedding rows",
            )
    jobs = [(name, m) for name in embeddings for m in methods]
    # cheap ones first, so an interrupted run leaves the most behind
    jobs.sort(key=lambda job: method_order(job[1]))
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="projections", unit="proj")
    out: dict[tuple[str, str], Projection] = {}
    try:
        for done, (name, method) in enumerate(jobs):
            label = f"{name} {method_label(method)}"
            if bar is not None:
                bar.set_postfix_str(label)
            elif callable(progress):
                progress(done, len(jobs), label)
            stored = _stored_valid(run_dir, name, method, params.get(method), seed, ids_list, embeddings[name])
            if stored is not None:
                out[(name, method)] = stored
            else:
                proj = compute_projection(embeddings[name], method, params=params.get(method), seed=seed)
                save_projection(run_dir, name, ids_list, proj)
                out[(name, method)] = proj
            if bar is not None:
                bar.update(1)
        if callable(progress):
            progress(len(jobs), len(jobs), "done")
    finally:
        if bar is not None:
            bar.close()
    return out


def _stored_valid(run_dir: str | Path, name: str, method: str, params: Mapping[str, Any] | None, seed: int,
                  ids_list: list[str], X: np.ndarray) -> Projection | None:
    """The stored projection of ``name`` by ``method`` with these settings, or None when there is none, it is
    damaged (unreadable, or a malformed sidecar) or stale (other samples or other embedding values: a rebuild)."""
    sidecar = find_stored(run_dir, name, method, params, int(seed), len(ids_list))
    if sidecar is None:
        return None
    try:
        stored_ids, stored = read_stored(sidecar)
    except (BundleError, KeyError, TypeError, ValueError):
        return None
    fingerprint = stored.meta.get("data_sha256")
    if list(stored_ids) != ids_list or (fingerprint is not None and fingerprint != data_fingerprint(X)):
        return None
    return stored


#: above this many rows openTSNE uses every core itself, so projections run one at a time
PARALLEL_MAX_ROWS = 2000


def projection_workers(n_rows: int, n_jobs: int, workers: int | None = None) -> int:
    """Processes computing ``n_jobs`` projections at once (:func:`core.workers.process_workers`): one above
    :data:`PARALLEL_MAX_ROWS` rows unless ``workers`` says otherwise (openTSNE then threads by itself)."""
    from core.workers import process_workers

    if workers is None and n_rows > PARALLEL_MAX_ROWS:
        return 1
    return process_workers(n_jobs, workers)


def _project_job(X: np.ndarray, method: str, params: Mapping[str, Any] | None, seed: int) -> Projection:
    return compute_projection(X, method, params=params, seed=seed)


def load_run_embeddings(run_dir: str | Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(ids, {name: (n, d) float32 array})`` from ``embeddings.safetensors`` of a run.

    Rows follow ``predictions.parquet``; a row-count mismatch is a ``BundleError``.
    """
    run_dir = Path(run_dir)
    tensors = io.read_tensors(run_dir / EMBEDDINGS_FILE, what="embeddings")
    ids = io.read_parquet(run_dir / PREDICTIONS_FILE, what="predictions", columns=["id"])["id"]
    ids_arr = ids.astype(str).to_numpy(dtype=object)
    out: dict[str, np.ndarray] = {}
    for name, tensor in tensors.items():
        arr = tensor.detach().float().cpu().numpy() if hasattr(tensor, "detach") else np.asarray(tensor, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[:, None]
        arr = arr.reshape(arr.shape[0], -1)
        if arr.shape[0] != len(ids_arr):
            raise BundleError(
                f"embeddings {name!r} in {run_dir / EMBEDDINGS_FILE} have {arr.shape[0]} rows "
                f"but predictions.parquet has {len(ids_arr)}",
                fix=f"rerun `{cli_command()} build` for this run",
            )
        out[name] = arr
    return ids_arr, out


def project_runs(
    run_dirs: Iterable[str | Path],
    methods: Iterable[str] = METHODS,
    seed: int = 0,
    progress: bool = True,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    workers: int | None = None,
) -> dict[str, int]:
    """Store every (embedding, method) projection of each run's test embeddings (resumable).

    Embeddings that several runs share exactly (same ids, same values: the
    per-modality embeddings of fusion runs over the same frozen or cached
    encoders) are projected once and the result is stored with every run.
    The projections left to compute run in ``workers`` processes
    (:func:`projection_workers`: every core for inputs of up to
    :data:`PARALLEL_MAX_ROWS` rows); each is stored with its runs as soon as it
    is done, so an interrupted pass keeps what it finished.
    Returns counts: ``computed``, ``reused`` (copied from an identical
    embedding) and ``kept`` (already stored).
    """
    methods = [check_method(m) for m in methods]
    params = dict(params or {})
    run_dirs = [Path(r) for r in run_dirs]
    seen: dict[tuple[str, str, str], Projection] = {}
    pending: dict[tuple[str, str, str], dict[str, Any]] = {}
    counts = {"computed": 0, "reused": 0, "kept": 0}
    for run_dir in run_dirs:  # what is stored, what an identical embedding gives, what is left to compute
        ids, embeddings = load_run_embeddings(run_dir)
        io.remove_stale_tmp(run_dir / PROJECTIONS_DIR)  # what a killed run was writing
        ids_list = [str(i) for i in ids]
        ids_hash = hashlib.sha256("\n".join(ids_list).encode()).hexdigest()
        for name, arr in embeddings.items():
            check_name(name)
            fingerprint = data_fingerprint(arr)
            for method in methods:
                key = (ids_hash, fingerprint, method)
                stored = _stored_valid(run_dir, name, method, params.get(method), seed, ids_list, arr)
                if stored is not None:
                    counts["kept"] += 1
                    seen.setdefault(key, stored)
                elif key in seen:
                    save_projection(run_dir, name, ids_list, seen[key])
                    counts["reused"] += 1
                else:
                    job = pending.setdefault(key, {"X": arr, "method": method, "targets": []})
                    job["targets"].append((run_dir, name, ids_list))
    for key in [k for k in pending if k in seen]:  # stored with a later run: copied, not computed again
        for run_dir, name, ids_list in pending.pop(key)["targets"]:
            save_projection(run_dir, name, ids_list, seen[key])
            counts["reused"] += 1
    jobs = sorted(pending.items(), key=lambda item: method_order(item[1]["method"]))  # cheap ones first
    bar = None
    if progress and jobs:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="projections", unit="proj")
    n_rows = max((len(job["X"]) for _, job in jobs), default=0)
    try:
        for key, proj in in_processes(
                _project_job, [(key, (job["X"], job["method"], params.get(job["method"]), int(seed)))
                               for key, job in jobs], projection_workers(n_rows, len(jobs), workers)):
            for k, (run_dir, name, ids_list) in enumerate(pending[key]["targets"]):
                save_projection(run_dir, name, ids_list, proj)
                counts["computed" if k == 0 else "reused"] += 1
            if bar is not None:
                bar.set_postfix_str(f"{pending[key]['targets'][0][0].name} {method_label(key[2])}")
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return counts
