"""Compute one projection: checks the input, runs a registered method, measures its quality.

:func:`compute_projection` turns an (n, d) array into a :class:`Projection`
(coordinates plus the resolved parameters, seed, trustworthiness and time
taken); :func:`data_fingerprint` identifies the input a projection was made
from, so a stored one can be recognised as stale.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from core.errors import DataError
from core.projection._methods import PROJECTORS, check_method, method_label, resolve_params
from core.projection._quality import estimate_trustworthiness, trustworthiness_neighbors

# Small inputs gain nothing from OpenMP/BLAS threads (see compute_projection).
_SINGLE_THREAD_MAX_N = 2000


@dataclass(frozen=True, eq=False)
class Projection:
    """A 2-D projection of n samples.

    ``coords`` is (n, 2) float32; ``params`` are the resolved parameters (defaults
    filled in), so ``method``, ``params`` and ``seed`` reproduce ``coords``.
    ``trustworthiness`` (in [0, 1], 1 = no false neighbours in 2-D) is measured
    with ``trustworthiness_k`` neighbours against the input space: exactly up
    to 2,000 samples, above that estimated on ``trustworthiness_n`` query
    points with the 95 % interval ``trustworthiness_interval`` (equal ends when
    exact; ``trustworthiness_n`` 0 for projections stored before estimates).
    ``fit`` says how the coordinates were made: ``backend`` (library and
    version), ``fit_n`` (points fitted) and ``transformed`` (points placed by
    ``transform``). ``meta`` holds ``data_sha256`` (fingerprint of the input,
    to spot stale stored projections) and, once loaded, ``path``.
    """

    coords: np.ndarray
    method: str
    params: dict[str, Any]
    seed: int
    trustworthiness: float
    seconds: float
    trustworthiness_k: int = 0
    trustworthiness_interval: tuple[float, float] = (float("nan"), float("nan"))
    trustworthiness_n: int = 0
    fit: dict[str, Any] = field(default_factory=dict, compare=False)
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def n(self) -> int:
        return int(self.coords.shape[0])

    @property
    def label(self) -> str:
        """Human name of the method, e.g. ``t-SNE``."""
        return method_label(self.method)


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


def compute_projection(
    X: np.ndarray, method: str, *, params: Mapping[str, Any] | None = None, seed: int = 0
) -> Projection:
    """Project ``X`` (n, d) to 2-D with ``method`` (``"pca"``, ``"tsne"``, ``"umap"``: :data:`PROJECTORS`).

    Above 20,000 samples t-SNE and UMAP fit a seeded sample and transform the
    rest; above 2,000 samples trustworthiness is estimated (see :class:`Projection`).

    Deterministic for a given ``seed``. Raises ``DataError`` for fewer than 3
    samples, NaN/inf values or a non-2-D input, ``ConfigError`` for an unknown
    method or parameter.
    """
    check_method(method)
    arr = _check_array(X)
    resolved = resolve_params(method, params, arr.shape[0])
    seed = int(seed)
    from threadpoolctl import threadpool_limits  # with scikit-learn: only when something is computed

    # Small inputs gain nothing from OpenMP/BLAS threads, and spinning threads on
    # busy shared cores slowed a 120-sample t-SNE from 0.2 s to 20 s.
    limit = 1 if arr.shape[0] <= _SINGLE_THREAD_MAX_N else None
    with threadpool_limits(limits=limit):
        start = time.perf_counter()
        raw, fit = PROJECTORS.create(method).project(arr, resolved, seed)
        coords = np.asarray(raw, dtype=np.float32)
        seconds = time.perf_counter() - start
    if coords.shape != (arr.shape[0], 2) or not np.isfinite(coords).all():
        raise DataError(
            f"{method_label(method)} produced invalid coordinates (shape {coords.shape})",
            fix="check the embeddings for duplicated or constant rows, or try another method",
        )
    k = trustworthiness_neighbors(arr.shape[0])
    metric = resolved.get("metric", "euclidean")
    trust = estimate_trustworthiness(arr, coords.astype(np.float64), k, metric, seed=seed)
    return Projection(
        coords=coords,
        method=method,
        params=resolved,
        seed=seed,
        trustworthiness=float(trust.value),
        seconds=float(seconds),
        trustworthiness_k=k,
        trustworthiness_interval=(float(trust.low), float(trust.high)),
        trustworthiness_n=int(trust.n_points),
        fit=dict(fit),
        meta={"data_sha256": data_fingerprint(arr)},
    )


def data_fingerprint(X: np.ndarray) -> str:
    """sha256 of the (n, d) input as float32 (what a stored projection was computed from)."""
    arr = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
    h = hashlib.sha256(str(arr.shape).encode())
    h.update(arr.tobytes())
    return h.hexdigest()
