"""2-D projections (PCA, t-SNE, UMAP) of a run's embeddings, stored with the run.

``compute_projection`` turns an (n, d) array into a :class:`Projection` (coordinates
plus the resolved parameters, seed, trustworthiness and time taken). Projections
live under ``<run_dir>/projections/`` as ``<embedding>__<method>__<key>.parquet``
(columns ``id``, ``x``, ``y``) with a JSON sidecar; ``key`` hashes the resolved
parameters and the seed, so a projection is found again from the same request
and never recomputed (``ensure_projections`` is resumable).

umap (and its numba compile) and scikit-learn are imported only when a
projection is actually computed, so listing or loading projections is cheap.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from core import io
from core.errors import BundleError, ConfigError, DataError, cli_command

__all__ = [
    "METHODS",
    "Projection",
    "compute_projection",
    "resolve_params",
    "projection_key",
    "projection_path",
    "save_projection",
    "load_projection",
    "list_projections",
    "ensure_projections",
    "load_run_embeddings",
    "trustworthiness_neighbors",
    "data_fingerprint",
    "project_runs",
]

METHODS: tuple[str, ...] = ("pca", "tsne", "umap")
METHOD_LABELS: dict[str, str] = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
PROJECTIONS_DIR = "projections"
EMBEDDINGS_FILE = "embeddings.safetensors"
PREDICTIONS_FILE = "predictions.parquet"
SIDECAR_VERSION = 1

# Parameters each method accepts (anything else is a ConfigError naming these).
_KNOWN_PARAMS: dict[str, tuple[str, ...]] = {
    "pca": ("standardize",),
    "tsne": ("perplexity", "init", "metric", "learning_rate", "max_iter", "early_exaggeration"),
    "umap": ("n_neighbors", "min_dist", "metric", "init", "spread", "n_epochs"),
}
# Above this many samples trustworthiness is computed in row chunks instead of
# sklearn's (n, n) distance + argsort matrices (about 2.4 GB at n = 10,000).
_SKLEARN_TRUST_MAX_N = 2000
_SINGLE_THREAD_MAX_N = 2000
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True, eq=False)
class Projection:
    """A 2-D projection of n samples.

    ``coords`` is (n, 2) float32; ``params`` are the resolved parameters (defaults
    filled in), so ``method``, ``params`` and ``seed`` reproduce ``coords``.
    ``trustworthiness`` (in [0, 1], 1 = no false neighbours in 2-D) is measured
    with ``trustworthiness_k`` neighbours against the input space. ``meta``
    holds ``data_sha256`` (fingerprint of the input, to spot stale stored
    projections) and, once loaded, ``path``.
    """

    coords: np.ndarray
    method: str
    params: dict[str, Any]
    seed: int
    trustworthiness: float
    seconds: float
    trustworthiness_k: int = 0
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def n(self) -> int:
        return int(self.coords.shape[0])

    @property
    def label(self) -> str:
        """Human name of the method, e.g. ``t-SNE``."""
        return METHOD_LABELS.get(self.method, self.method)


# --------------------------------------------------------------------------- compute


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ConfigError(
            f"unknown projection method {method!r}", fix=f"use one of: {', '.join(METHODS)}"
        )
    return method


def _check_array(X: Any) -> np.ndarray:
    try:
        arr = np.asarray(X)
    except Exception as exc:  # e.g. ragged lists
        raise DataError(f"embeddings cannot be read as an array ({exc})", fix="pass an (n, d) numeric array") from exc
    if arr.ndim != 2:
        raise DataError(
            f"embeddings must be a 2-D (n_samples, n_features) array, got shape {arr.shape}",
            fix="reshape to (n, d); one row per sample",
        )
    if arr.dtype.kind not in "biuf":
        raise DataError(f"embeddings must be numeric, got dtype {arr.dtype}", fix="pass a float array")
    n, d = arr.shape
    if n < 3:
        raise DataError(
            f"a projection needs at least 3 samples, got {n}", fix="project a larger split or run"
        )
    if d < 1:
        raise DataError("embeddings have no features (d = 0)", fix="check the embeddings file of the run")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise DataError(
            f"embeddings contain NaN or infinite values in {bad} of {n} rows",
            fix="rerun the step that wrote the embeddings, or drop those samples",
        )
    return arr


def resolve_params(method: str, params: Mapping[str, Any] | None, n_samples: int) -> dict[str, Any]:
    """The parameters actually used for ``n_samples`` samples: defaults, overrides, clamps.

    Defaults: PCA standardises features first; t-SNE uses perplexity
    ``min(30, (n - 1) / 3)`` with PCA initialisation; UMAP uses 15 neighbours
    (at most n - 1) and ``min_dist=0.1``. Values are plain JSON types, so the
    result hashes to a stable :func:`projection_key`.
    """
    _check_method(method)
    given = dict(params or {})
    unknown = sorted(set(given) - set(_KNOWN_PARAMS[method]))
    if unknown:
        raise ConfigError(
            f"unknown {METHOD_LABELS[method]} parameter(s) {', '.join(map(repr, unknown))}",
            fix=f"use only: {', '.join(_KNOWN_PARAMS[method])}",
        )
    n = int(n_samples)
    if method == "pca":
        out: dict[str, Any] = {"standardize": bool(given.get("standardize", True))}
    elif method == "tsne":
        perplexity = float(given.get("perplexity", min(30.0, (n - 1) / 3.0)))
        if not 0 < perplexity < n:
            raise ConfigError(
                f"t-SNE perplexity must be in (0, n_samples={n}), got {perplexity}",
                fix=f"use a perplexity below {n}, e.g. {min(30.0, (n - 1) / 3.0):.3g}",
            )
        out = {
            "perplexity": perplexity,
            "init": str(given.get("init", "pca")),
            "metric": str(given.get("metric", "euclidean")),
            "learning_rate": given.get("learning_rate", "auto"),
            "max_iter": int(given.get("max_iter", 1000)),
            "early_exaggeration": float(given.get("early_exaggeration", 12.0)),
        }
        if out["init"] not in ("pca", "random"):
            raise ConfigError(f"t-SNE init must be 'pca' or 'random', got {out['init']!r}", fix="use init='pca'")
        if out["learning_rate"] != "auto":
            out["learning_rate"] = float(out["learning_rate"])
    else:
        n_neighbors = int(given.get("n_neighbors", 15))
        if n_neighbors < 2:
            raise ConfigError(f"UMAP n_neighbors must be >= 2, got {n_neighbors}", fix="use n_neighbors=15")
        out = {
            "n_neighbors": max(2, min(n_neighbors, n - 1)),
            "min_dist": float(given.get("min_dist", 0.1)),
            "metric": str(given.get("metric", "euclidean")),
            # spectral init needs a connected-enough graph; tiny sets use random init
            "init": str(given.get("init", "spectral" if n >= 10 else "random")),
            "spread": float(given.get("spread", 1.0)),
        }
        if "n_epochs" in given and given["n_epochs"] is not None:
            out["n_epochs"] = int(given["n_epochs"])
        if not 0.0 <= out["min_dist"] <= out["spread"]:
            raise ConfigError(
                f"UMAP min_dist must be in [0, spread={out['spread']}], got {out['min_dist']}",
                fix="use min_dist=0.1",
            )
    return out


def trustworthiness_neighbors(n_samples: int) -> int:
    """Neighbourhood size for trustworthiness: ``min(10, n // 4)``, at least 1."""
    return max(1, min(10, int(n_samples) // 4))


def _trustworthiness_chunked(X: np.ndarray, Y: np.ndarray, k: int, metric: str = "euclidean", chunk: int = 256) -> float:
    """Same quantity as ``sklearn.manifold.trustworthiness`` in O(chunk * n) memory.

    For each sample, the rank (in input space) of each of its k nearest
    neighbours in 2-D is the count of points closer to it in input space, plus one.
    """
    from sklearn.metrics import pairwise_distances
    from sklearn.neighbors import NearestNeighbors

    n = X.shape[0]
    nn_emb = NearestNeighbors(n_neighbors=k).fit(Y).kneighbors(return_distance=False)
    penalty = 0.0
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        dist = pairwise_distances(X[start:stop], X, metric=metric)
        rows = np.arange(stop - start)
        dist[rows, rows + start] = np.inf
        d_nn = dist[rows[:, None], nn_emb[start:stop]]
        dist.sort(axis=1)
        ranks = np.stack([np.searchsorted(dist[r], d_nn[r], side="left") for r in rows]) + 1
        excess = ranks - k
        penalty += float(excess[excess > 0].sum())
    return 1.0 - penalty * (2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)))


def _trustworthiness(X: np.ndarray, Y: np.ndarray, k: int, metric: str) -> float:
    if X.shape[0] <= _SKLEARN_TRUST_MAX_N:
        from sklearn.manifold import trustworthiness

        return float(trustworthiness(X, Y, n_neighbors=k, metric=metric))
    return _trustworthiness_chunked(X, Y, k, metric)


def _run_pca(X: np.ndarray, params: dict[str, Any], seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    Z = StandardScaler().fit_transform(X) if params["standardize"] else X - X.mean(axis=0)
    n_comp = min(2, Z.shape[1], Z.shape[0])
    coords = PCA(n_components=n_comp, svd_solver="full", random_state=seed).fit_transform(Z)
    if n_comp < 2:  # a 1-D input still gets a (n, 2) result
        coords = np.hstack([coords, np.zeros((coords.shape[0], 2 - n_comp))])
    return coords


def _run_tsne(X: np.ndarray, params: dict[str, Any], seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    init = params["init"]
    if init == "pca" and X.shape[1] < 2:
        init = "random"  # sklearn's PCA init needs >= 2 features
    tsne = TSNE(
        n_components=2,
        perplexity=params["perplexity"],
        init=init,
        metric=params["metric"],
        learning_rate=params["learning_rate"],
        max_iter=params["max_iter"],
        early_exaggeration=params["early_exaggeration"],
        random_state=seed,
    )
    return tsne.fit_transform(X)


def _run_umap(X: np.ndarray, params: dict[str, Any], seed: int) -> np.ndarray:
    with warnings.catch_warnings():
        # "n_jobs value 1 overridden to 1 by setting random_state": determinism is the point
        warnings.filterwarnings("ignore", message=".*random_state.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*n_jobs.*", category=UserWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=ImportWarning)  # "Tensorflow not installed"
        import umap

        kwargs = {k: v for k, v in params.items() if k != "n_epochs"}
        if "n_epochs" in params:
            kwargs["n_epochs"] = params["n_epochs"]
        reducer = umap.UMAP(n_components=2, random_state=seed, **kwargs)
        return reducer.fit_transform(X.astype(np.float32))


_RUNNERS: dict[str, Callable[[np.ndarray, dict[str, Any], int], np.ndarray]] = {
    "pca": _run_pca,
    "tsne": _run_tsne,
    "umap": _run_umap,
}


def compute_projection(
    X: np.ndarray, method: str, *, params: Mapping[str, Any] | None = None, seed: int = 0
) -> Projection:
    """Project ``X`` (n, d) to 2-D with ``method`` (``"pca"``, ``"tsne"`` or ``"umap"``).

    Deterministic for a given ``seed``. Raises ``DataError`` for fewer than 3
    samples, NaN/inf values or a non-2-D input, ``ConfigError`` for an unknown
    method or parameter.
    """
    _check_method(method)
    arr = _check_array(X)
    resolved = resolve_params(method, params, arr.shape[0])
    seed = int(seed)
    from threadpoolctl import threadpool_limits

    # Small inputs gain nothing from OpenMP/BLAS threads, and spinning threads on
    # busy shared cores slowed a 120-sample t-SNE from 0.2 s to 20 s.
    limit = 1 if arr.shape[0] <= _SINGLE_THREAD_MAX_N else None
    with threadpool_limits(limits=limit):
        start = time.perf_counter()
        coords = np.asarray(_RUNNERS[method](arr, resolved, seed), dtype=np.float32)
        seconds = time.perf_counter() - start
    if coords.shape != (arr.shape[0], 2) or not np.isfinite(coords).all():
        raise DataError(
            f"{METHOD_LABELS[method]} produced invalid coordinates (shape {coords.shape})",
            fix="check the embeddings for duplicated or constant rows, or try another method",
        )
    k = trustworthiness_neighbors(arr.shape[0])
    metric = resolved.get("metric", "euclidean")
    trust = _trustworthiness(arr, coords.astype(np.float64), k, metric)
    return Projection(
        coords=coords,
        method=method,
        params=resolved,
        seed=seed,
        trustworthiness=float(trust),
        seconds=float(seconds),
        trustworthiness_k=k,
        meta={"data_sha256": data_fingerprint(arr)},
    )


def data_fingerprint(X: np.ndarray) -> str:
    """sha256 of the (n, d) input as float32 (what a stored projection was computed from)."""
    arr = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
    h = hashlib.sha256(str(arr.shape).encode())
    h.update(arr.tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- storage


def _check_name(name: str, what: str = "embedding name") -> str:
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
    _check_name(embedding)
    _check_method(method)
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
            "seconds": projection.seconds,
            "data_sha256": projection.meta.get("data_sha256"),
            "parquet_sha256": io.file_sha256(path),
        },
    )
    return path


def _sidecars(run_dir: str | Path, embedding: str | None = None, method: str | None = None) -> list[Path]:
    folder = Path(run_dir) / PROJECTIONS_DIR
    if not folder.is_dir():
        return []
    pattern = f"{embedding or '*'}__{method or '*'}__*.json"
    return sorted(p for p in folder.glob(pattern) if not p.name.startswith("."))


def _read_projection(sidecar: Path, meta: dict[str, Any] | None = None) -> tuple[np.ndarray, Projection]:
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
    proj = Projection(
        coords=coords,
        method=meta["method"],
        params=dict(meta["params"]),
        seed=int(meta["seed"]),
        trustworthiness=float(meta.get("trustworthiness", float("nan"))),
        seconds=float(meta.get("seconds", float("nan"))),
        trustworthiness_k=int(meta.get("trustworthiness_k", 0)),
        meta={
            "embedding": meta.get("embedding"),
            "path": str(sidecar.with_suffix(".parquet")),
            "data_sha256": meta.get("data_sha256"),
        },
    )
    return frame["id"].astype(str).to_numpy(dtype=object), proj


def _find(run_dir: str | Path, embedding: str, method: str, params: Mapping[str, Any] | None, seed: int, n: int | None) -> Path | None:
    """Sidecar of the stored projection matching the request, if any."""
    sizes: list[int] = []
    unreadable: list[tuple[Path, str]] = []
    if n is None:
        for sidecar in _sidecars(run_dir, embedding, method):
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
        raise _damage(run_dir, embedding, method, sidecar, f"its sidecar {sidecar.name} is unreadable ({why})")
    return None


def _damage(run_dir: str | Path, embedding: str, method: str, sidecar: Path, what: str) -> BundleError:
    """The error of a damaged stored projection: which files, and the command that recomputes it."""
    run_dir = Path(run_dir)
    files = " and ".join(str(p) for p in (sidecar.with_suffix(".parquet"), sidecar) if p.exists()) or str(sidecar)
    command = f"{cli_command()} project {run_dir} --methods {method}"
    return BundleError(f"the stored {METHOD_LABELS.get(method, method)} projection of {embedding!r} in run "
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
    _check_name(embedding)
    _check_method(method)
    sidecar = _find(run_dir, embedding, method, params, int(seed), None)
    if sidecar is None:
        return None
    try:
        return _read_projection(sidecar)
    except BundleError as exc:
        raise _damage(run_dir, embedding, method, sidecar, exc.problem) from exc
    except (KeyError, TypeError, ValueError) as exc:  # a sidecar that lacks a key or has a wrong type
        raise _damage(run_dir, embedding, method, sidecar,
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
    for sidecar in _sidecars(run_dir):
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
    methods = [_check_method(m) for m in methods]
    params = dict(params or {})
    io.remove_stale_tmp(Path(run_dir) / PROJECTIONS_DIR)  # what a killed run was writing
    for name, arr in embeddings.items():
        _check_name(name)
        rows = np.shape(arr)[0] if np.ndim(arr) else 0
        if rows != len(ids_list):
            raise DataError(
                f"embedding {name!r} has {rows} rows but there are {len(ids_list)} ids",
                fix="pass the ids in the order of the embedding rows",
            )
    jobs = [(name, m) for name in embeddings for m in methods]
    # cheap ones first, so an interrupted run leaves the most behind
    jobs.sort(key=lambda job: METHODS.index(job[1]))
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="projections", unit="proj")
    out: dict[tuple[str, str], Projection] = {}
    try:
        for done, (name, method) in enumerate(jobs):
            label = f"{name} {METHOD_LABELS[method]}"
            if bar is not None:
                bar.set_postfix_str(label)
            elif callable(progress):
                progress(done, len(jobs), label)
            sidecar = _find(run_dir, name, method, params.get(method), int(seed), len(ids_list))
            stored = None
            if sidecar is not None:
                try:
                    stored_ids, stored = _read_projection(sidecar)
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
    methods = [_check_method(m) for m in methods]
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
