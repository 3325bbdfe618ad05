"""How faithful a 2-D projection is: trustworthiness (1 = no false neighbours in 2-D).

The neighbourhood size follows the sample count (:func:`trustworthiness_neighbors`);
up to 2,000 samples sklearn computes it, above that a chunked version of the
same quantity keeps memory at O(chunk * n) instead of sklearn's (n, n)
distance and argsort matrices (about 2.4 GB at n = 10,000).
"""
from __future__ import annotations

import numpy as np

# scikit-learn is imported inside the functions: listing or loading stored projections never needs it.
# Above this many samples trustworthiness is computed in row chunks.
_SKLEARN_TRUST_MAX_N = 2000
_CHUNK = 256


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
