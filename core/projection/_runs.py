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
from core.projection._compute import Projection, compute_projection, data_fingerprint
from core.projection._methods import METHODS, check_method, method_label, method_order, resolve_params
from core.projection._store import (PROJECTIONS_DIR, check_name, find_stored, list_projections, read_stored,
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
            sidecar = find_stored(run_dir, name, method, params.get(method), int(seed), len(ids_list))
            stored = None
            if sidecar is not None:
                try:
                    stored_ids, stored = read_stored(sidecar)
                except (BundleError, KeyError, TypeError, ValueError):
                    stored = None  # damaged (unreadable, or a malformed sidecar): recompute over it
                else:
                    # stale after a rebuild (other samples or other embeddings): recompute
                    fingerprint = stored.meta.get("data_sha256")
                    if list(stored_ids) != ids_list or (
                        fingerprint is not None and fingerprint != data_fingerprint(embeddings[name])
                    ):
                        stored = None
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
) -> dict[str, int]:
    """Store every (embedding, method) projection of each run's test embeddings (resumable).

    Embeddings that several runs share exactly (same ids, same values: the
    per-modality embeddings of fusion runs over the same frozen or cached
    encoders) are projected once and the result is stored with every run.
    Returns counts: ``computed``, ``reused`` (copied from an identical
    embedding) and ``kept`` (already stored).
    """
    methods = [check_method(m) for m in methods]
    params = dict(params or {})
    run_dirs = [Path(r) for r in run_dirs]
    seen: dict[tuple[str, str, str], Projection] = {}
    counts = {"computed": 0, "reused": 0, "kept": 0}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(run_dirs), desc="projections", unit="run")
    try:
        for run_dir in run_dirs:
            if bar is not None:
                bar.set_postfix_str(run_dir.name)
            ids, embeddings = load_run_embeddings(run_dir)
            ids_list = [str(i) for i in ids]
            ids_hash = hashlib.sha256("\n".join(ids_list).encode()).hexdigest()
            fingerprints = {name: data_fingerprint(arr) for name, arr in embeddings.items()}
            before = {(r.embedding, r.method) for r in list_projections(run_dir).itertuples() if r.error is None}
            for name in embeddings:
                for method in methods:
                    cached = seen.get((ids_hash, fingerprints[name], method))
                    if (name, method) not in before and cached is not None and cached.params == resolve_params(
                        method, params.get(method), len(ids_list)
                    ) and cached.seed == int(seed):
                        save_projection(run_dir, name, ids_list, cached)
                        counts["reused"] += 1
            stored_before = {(r.embedding, r.method) for r in list_projections(run_dir).itertuples() if r.error is None}
            result = ensure_projections(run_dir, embeddings, ids_list, methods, seed=seed, progress=False, params=params)
            for (name, method), proj in result.items():
                seen[(ids_hash, fingerprints[name], method)] = proj
                if (name, method) in before:
                    counts["kept"] += 1
                elif (name, method) not in stored_before:
                    counts["computed"] += 1
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return counts
