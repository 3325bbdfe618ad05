"""How faithful a 2-D projection is: trustworthiness (1 = no false neighbours in 2-D).

The neighbourhood size follows the sample count (:func:`trustworthiness_neighbors`);
up to 2,000 samples sklearn computes it, above that a chunked version of the
same quantity keeps memory at O(chunk * n) instead of sklearn's (n, n)
distance and argsort matrices (about 2.4 GB at n = 10,000).

The exact value is quadratic in n (404 CPU seconds at 100,000 points), so
above :data:`TRUST_SAMPLE` points :func:`estimate_trustworthiness` estimates
it. Trustworthiness is a mean over points of a per-point penalty (how far
down the input-space ranking each of the point's k nearest 2-D neighbours
sits), so it is estimated without bias by that mean over a seeded sample of
query points, each ranked against *all* n points in both spaces: O(m n d)
instead of O(n^2 d). The sample is split into ``repeats`` disjoint seeded
groups; the value is the mean of the group estimates and its 95 % interval a
t-interval over them. (Trustworthiness computed *within* a subsample, among
its own points only, is cheaper but measures coarser neighbourhoods, since k
neighbours among m points span a larger region than among n, so it is not an
estimate of the value on all points.)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# scikit-learn is imported inside the functions: listing or loading stored projections never needs it.
# Above this many samples trustworthiness is computed in row chunks.
_SKLEARN_TRUST_MAX_N = 2000
_CHUNK = 256
#: Above this many points trustworthiness is estimated on this many query points (exact at or below it).
TRUST_SAMPLE = 2000
#: Disjoint seeded groups the query sample is split into (the t-interval is over their estimates).
TRUST_REPEATS = 5
# Two-sided 95 % Student t quantiles by degrees of freedom (scipy-free, for the few repeats used).
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


@dataclass(frozen=True)
class TrustEstimate:
    """Trustworthiness ``value`` with its 95 % interval ``[low, high]``, from ``n_points`` query points.

    ``exact`` is True when every point was used (the interval then has zero width).
    """

    value: float
    low: float
    high: float
    n_points: int
    repeats: int
    exact: bool

    @property
    def half_width(self) -> float:
        return 0.5 * (self.high - self.low)


def trustworthiness_neighbors(n_samples: int) -> int:
    """Neighbourhood size for trustworthiness: ``min(10, n // 4)``, at least 1."""
    return max(1, min(10, int(n_samples) // 4))


def trustworthiness(X: np.ndarray, Y: np.ndarray, k: int, metric: str = "euclidean",
                    chunk: int | None = None) -> float:
    """Trustworthiness of the 2-D ``Y`` against the input ``X`` with ``k`` neighbours.

    ``chunk=None`` lets the sample count choose (sklearn up to 2,000 samples,
    row chunks of 256 above); an int always takes the chunked computation with
    that many rows per chunk (same value as sklearn's, in O(chunk * n) memory).
    """
    if chunk is None:
        if X.shape[0] <= _SKLEARN_TRUST_MAX_N:
            from sklearn.manifold import trustworthiness as sklearn_trustworthiness

            return float(sklearn_trustworthiness(X, Y, n_neighbors=k, metric=metric))
        chunk = _CHUNK
    return _trustworthiness_chunked(X, Y, k, metric, chunk)


def _trustworthiness_chunked(X: np.ndarray, Y: np.ndarray, k: int, metric: str, chunk: int) -> float:
    """For each sample, the rank (in input space) of each of its k nearest neighbours in 2-D
    is the count of points closer to it in input space, plus one."""
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


def _penalty_rows(X: np.ndarray, Y: np.ndarray, rows: np.ndarray, k: int, metric: str, chunk: int) -> np.ndarray:
    """Per query row, the summed rank excess of its k nearest 2-D neighbours, ranked among all n points."""
    from sklearn.metrics import pairwise_distances
    from sklearn.neighbors import NearestNeighbors

    nn_emb = NearestNeighbors(n_neighbors=k + 1).fit(Y).kneighbors(Y[rows], return_distance=False)
    out = np.empty(len(rows), dtype=np.float64)
    for start in range(0, len(rows), chunk):
        block = rows[start:start + chunk]
        dist = pairwise_distances(X[block], X, metric=metric)
        local = np.arange(len(block))
        dist[local, block] = np.inf
        for r, i in enumerate(block):
            # the query itself may tie with a duplicate in 2-D: drop it, keep k others
            nbrs = [j for j in nn_emb[start + r] if j != i][:k]
            d_nn = np.sort(dist[r, nbrs])
            # rank of a neighbour = points strictly closer in input space, plus one
            closer = np.searchsorted(np.sort(dist[r]), d_nn, side="left") if len(X) <= 50_000 else \
                np.bincount(np.searchsorted(d_nn, dist[r], side="right"), minlength=k + 1).cumsum()[:k]
            excess = closer + 1 - k
            out[start + r] = float(excess[excess > 0].sum())
    return out


def estimate_trustworthiness(X: np.ndarray, Y: np.ndarray, k: int, metric: str = "euclidean", *,
                             sample: int = TRUST_SAMPLE, repeats: int = TRUST_REPEATS, seed: int = 0,
                             chunk: int = 16) -> TrustEstimate:
    """Trustworthiness of ``Y`` against ``X``: exact up to ``sample`` points, estimated above (module docstring).

    Deterministic for a given ``seed``. The estimate uses ``sample`` query
    points in ``repeats`` disjoint groups and costs O(sample * n * d).
    """
    n = X.shape[0]
    if n <= sample:
        value = trustworthiness(X, Y, k, metric)
        return TrustEstimate(value, value, value, n, 1, True)
    repeats = max(2, min(int(repeats), max(_T975), sample))
    rows = np.random.default_rng(seed).choice(n, size=sample, replace=False)
    penalty = _penalty_rows(X, Y, rows, k, metric, chunk)
    norm = 2.0 / (k * (2.0 * n - 3.0 * k - 1.0))  # per point: the exact formula's 2 / (n k (2n - 3k - 1)) times n
    groups = np.array([1.0 - norm * part.mean() for part in np.array_split(penalty, repeats)])
    value = float(groups.mean())
    half = float(_T975[repeats - 1] * groups.std(ddof=1) / np.sqrt(repeats))
    return TrustEstimate(value, value - half, value + half, int(sample), repeats, False)
