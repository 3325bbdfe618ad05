"""Stored projections: ``<run_dir>/projections/<embedding>__<method>__<key>.parquet`` plus a JSON sidecar.

The parquet holds columns ``id``, ``x``, ``y``; the sidecar holds the method,
resolved parameters, seed, quality (trustworthiness with its interval and the
number of points it was measured on), how the coordinates were made (backend,
points fitted and transformed) and the sha256 of the input and of the
parquet. Version 1 sidecars (before estimates and fit records) still load. ``key`` hashes (embedding, method, resolved parameters, seed), so a
projection is found again from the same request and never recomputed.

Crash-safe: both files are written atomically, the sidecar last (its presence
means the projection is complete), and recomputing one deletes its old sidecar
first, so a kill leaves a projection absent, never half old, half new. A
damaged one is reported as damaged (with the command that recomputes it),
never as absent.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from core import io
from core.errors import BundleError, ConfigError, DataError, cli_command
from core.projection._compute import Projection
from core.projection._methods import check_method, method_label, resolve_params

PROJECTIONS_DIR = "projections"
SIDECAR_VERSION = 2
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def check_name(name: str, what: str = "embedding name") -> str:
    """``name`` if it is a safe file-name part, else a ConfigError."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise ConfigError(
            f"invalid {what} {name!r}",
            fix="use letters, digits, '_', '-' or '.' only (no path separators)",
        )
    return name


def projection_key(embedding: str, method: str, params: Mapping[str, Any], seed: int) -> str:
    """Stable 12-hex-digit key of (embedding, method, resolved params, seed)."""
    payload = json.dumps(
        {"embedding": embedding, "method": method, "params": dict(params), "seed": int(seed)},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]


def projection_path(run_dir: str | Path, embedding: str, method: str, key: str) -> Path:
    """``<run_dir>/projections/<embedding>__<method>__<key>.parquet``."""
    check_name(embedding)
    check_method(method)
    return Path(run_dir) / PROJECTIONS_DIR / f"{embedding}__{method}__{key}.parquet"


def save_projection(run_dir: str | Path, embedding_name: str, ids: Iterable[Any], projection: Projection) -> Path:
    """Write the coordinates (parquet) and then the sidecar (JSON), both atomically.

    The sidecar is written last, so its presence means the projection is complete;
    it records the parquet's sha256, so a reader never pairs it with other
    coordinates. Overwriting (a stale projection recomputed) deletes the old sidecar
    first: a kill mid-way leaves the projection absent, never half old, half new.
    """
    ids_arr = np.asarray([str(i) for i in ids], dtype=object)
    if len(ids_arr) != projection.n:
        raise DataError(
            f"{len(ids_arr)} ids for a projection of {projection.n} samples",
            fix="pass the ids in the order of the embedding rows",
        )
    key = projection_key(embedding_name, projection.method, projection.params, projection.seed)
    path = projection_path(run_dir, embedding_name, projection.method, key)
    frame = pd.DataFrame(
        {"id": ids_arr, "x": projection.coords[:, 0].astype(np.float32), "y": projection.coords[:, 1].astype(np.float32)}
    )
    path.with_suffix(".json").unlink(missing_ok=True)
    io.write_parquet(path, frame)
    io.write_json(
        path.with_suffix(".json"),
        {
            "format_version": SIDECAR_VERSION,
            "embedding": embedding_name,
            "method": projection.method,
            "params": projection.params,
            "seed": projection.seed,
            "n": projection.n,
            "key": key,
            "trustworthiness": projection.trustworthiness,
            "trustworthiness_k": projection.trustworthiness_k,
            "trustworthiness_low": projection.trustworthiness_interval[0],
            "trustworthiness_high": projection.trustworthiness_interval[1],
            "trustworthiness_n": projection.trustworthiness_n,
            "backend": projection.fit.get("backend"),
            "fit_n": projection.fit.get("fit_n"),
            "transformed": projection.fit.get("transformed"),
            "seconds": projection.seconds,
            "data_sha256": projection.meta.get("data_sha256"),
            "parquet_sha256": io.file_sha256(path),
        },
    )
    return path


def sidecars(run_dir: str | Path, embedding: str | None = None, method: str | None = None) -> list[Path]:
    """The sidecars stored for the run (optionally of one embedding and method), sorted."""
    folder = Path(run_dir) / PROJECTIONS_DIR
    if not folder.is_dir():
        return []
    pattern = f"{embedding or '*'}__{method or '*'}__*.json"
    return sorted(p for p in folder.glob(pattern) if not p.name.startswith("."))


def read_stored(sidecar: Path, meta: dict[str, Any] | None = None) -> tuple[np.ndarray, Projection]:
    """``(ids, Projection)`` of a sidecar and its parquet; BundleError when they disagree or are damaged."""
    meta = meta if meta is not None else io.read_json(sidecar, what="projection sidecar")
    parquet = sidecar.with_suffix(".parquet")
    frame = io.read_parquet(parquet, what="projection")
    expected = meta.get("parquet_sha256") if isinstance(meta, dict) else None
    if expected is not None and io.file_sha256(parquet) != expected:
        # the pair disagrees: a concurrent rewrite replaced the parquet after its sidecar was read
        raise BundleError(
            f"projection {parquet} does not match its sidecar {sidecar.name} (another write replaced it, "
            "or it was damaged)",
            fix=f"rerun `{cli_command()} project` for this run, which recomputes it",
        )
    missing = {"id", "x", "y"} - set(frame.columns)
    if missing:
        raise BundleError(
            f"projection {sidecar.with_suffix('.parquet')} lacks column(s) {sorted(missing)}",
            fix="delete it and recompute the projection",
        )
    coords = frame[["x", "y"]].to_numpy(dtype=np.float32)
    fit = {key: meta[key] for key in ("backend", "fit_n", "transformed") if meta.get(key) is not None}
    proj = Projection(
        coords=coords,
        method=meta["method"],
        params=dict(meta["params"]),
        seed=int(meta["seed"]),
        trustworthiness=float(meta.get("trustworthiness", float("nan"))),
        seconds=float(meta.get("seconds", float("nan"))),
        trustworthiness_k=int(meta.get("trustworthiness_k", 0)),
        trustworthiness_interval=(float(meta.get("trustworthiness_low", float("nan"))),
                                  float(meta.get("trustworthiness_high", float("nan")))),
        trustworthiness_n=int(meta.get("trustworthiness_n", 0)),
        fit=fit,
        meta={
            "embedding": meta.get("embedding"),
            "path": str(sidecar.with_suffix(".parquet")),
            "data_sha256": meta.get("data_sha256"),
        },
    )
    return frame["id"].astype(str).to_numpy(dtype=object), proj


def find_stored(run_dir: str | Path, embedding: str, method: str, params: Mapping[str, Any] | None, seed: int,
                n: int | None) -> Path | None:
    """Sidecar of the stored projection matching the request, if any."""
    sizes: list[int] = []
    unreadable: list[tuple[Path, str]] = []
    if n is None:
        for sidecar in sidecars(run_dir, embedding, method):
            try:
                sizes.append(int(io.read_json(sidecar, what="projection sidecar")["n"]))
            except (BundleError, KeyError, TypeError, ValueError) as exc:
                unreadable.append((sidecar, str(exc)))
    else:
        sizes = [int(n)]
    for size in dict.fromkeys(sizes):
        try:
            resolved = resolve_params(method, params, size)
        except ConfigError:
            continue
        key = projection_key(embedding, method, resolved, seed)
        sidecar = projection_path(run_dir, embedding, method, key).with_suffix(".json")
        if sidecar.is_file():  # the sidecar is written last: without its parquet the projection is damaged
            return sidecar
    if unreadable:  # a damaged sidecar may be the requested projection: report it, never "absent"
        sidecar, why = unreadable[0]
        raise damage_error(run_dir, embedding, method, sidecar, f"its sidecar {sidecar.name} is unreadable ({why})")
    return None


def damage_error(run_dir: str | Path, embedding: str, method: str, sidecar: Path, what: str) -> BundleError:
    """The error of a damaged stored projection: which files, and the command that recomputes it."""
    run_dir = Path(run_dir)
    files = " and ".join(str(p) for p in (sidecar.with_suffix(".parquet"), sidecar) if p.exists()) or str(sidecar)
    command = f"{cli_command()} project {run_dir} --methods {method}"
    return BundleError(f"the stored {method_label(method)} projection of {embedding!r} in run "
                       f"{run_dir.name} is damaged: {what}",
                       fix=f"rerun `{command}` (it recomputes damaged projections in place), or delete {files}")


def load_projection(
    run_dir: str | Path,
    embedding: str,
    method: str,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, Projection] | None:
    """The stored projection for this request as ``(ids, Projection)``, or None if absent.

    ``params`` are the requested overrides (None = defaults), resolved as
    :func:`compute_projection` would for the stored sample count. Raises
    ``BundleError`` when the stored files are corrupted.
    """
    check_name(embedding)
    check_method(method)
    sidecar = find_stored(run_dir, embedding, method, params, int(seed), None)
    if sidecar is None:
        return None
    try:
        return read_stored(sidecar)
    except BundleError as exc:
        raise damage_error(run_dir, embedding, method, sidecar, exc.problem) from exc
    except (KeyError, TypeError, ValueError) as exc:  # a sidecar that lacks a key or has a wrong type
        raise damage_error(run_dir, embedding, method, sidecar,
                           f"its sidecar {sidecar.name} is malformed ({type(exc).__name__}: {exc})") from exc


_LIST_COLUMNS = ["embedding", "method", "params", "seed", "n", "trustworthiness", "seconds", "key", "path", "error"]


def _parquet_problem(path: Path) -> str | None:
    """Why a stored projection's parquet cannot be read (footer and columns only), or None."""
    if not path.is_file():
        return f"{path.name} is missing"
    try:
        import pyarrow.parquet as pq

        names = set(pq.read_schema(path).names)
    except Exception as exc:  # pyarrow raises several types for damaged files
        return f"{path.name} is unreadable ({type(exc).__name__}: {exc})"
    missing = {"id", "x", "y"} - names
    return f"{path.name} lacks column(s) {sorted(missing)}" if missing else None


def list_projections(run_dir: str | Path) -> pd.DataFrame:
    """One row per stored projection of the run.

    Columns: embedding, method, params (dict), seed, n, trustworthiness, seconds,
    key, path (the parquet), error (None, or why the entry is unusable).
    """
    rows = []
    for sidecar in sidecars(run_dir):
        parquet = sidecar.with_suffix(".parquet")
        try:
            meta = io.read_json(sidecar, what="projection sidecar")
            row = {
                "embedding": meta["embedding"],
                "method": meta["method"],
                "params": dict(meta["params"]),
                "seed": int(meta["seed"]),
                "n": int(meta.get("n", -1)),
                "trustworthiness": float(meta.get("trustworthiness", float("nan"))),
                "seconds": float(meta.get("seconds", float("nan"))),
                "key": meta.get("key", ""),
                "path": str(parquet),
                "error": _parquet_problem(parquet),
            }
        except (BundleError, KeyError, TypeError, ValueError) as exc:
            emb, _, rest = sidecar.stem.partition("__")
            row = {
                "embedding": emb, "method": rest.partition("__")[0], "params": {}, "seed": -1, "n": -1,
                "trustworthiness": float("nan"), "seconds": float("nan"), "key": "", "path": str(parquet),
                "error": str(exc),
            }
        rows.append(row)
    return pd.DataFrame(rows, columns=_LIST_COLUMNS)


