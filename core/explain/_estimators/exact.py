"""The exact estimator: every one of the ``2^n`` coalitions, weighted by ``|S|! (n-|S|-1)! / n!``.

Zero sampling error; refused past :data:`EXACT_MAX_FEATURES` features (``2**20``
~ 1M evaluations). On a factorised game this is "exact by tables": every
modality's ``2^{n_m}`` sub-masks are encoded once and the head runs over the
product (:func:`exact_flops` counts its cost).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from core.errors import ConfigError
from core.explain._estimators.base import ESTIMATORS, Estimator, Evaluator, ShapleyValues, ValueFn, head_row_flops

#: Largest number of players that ``method="exact"`` enumerates (``2**20`` evaluations).
EXACT_MAX_FEATURES = 20


def _exact_coefficients(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights by coalition size s: ``w_in[s]`` when the player is in it, ``w_out[s]`` when not."""
    w_in = np.zeros(n + 1)
    w_out = np.zeros(n + 1)
    for s in range(n + 1):
        if s >= 1:  # coalition = S + {j}, |S| = s - 1
            w_in[s] = 1.0 / (n * math.comb(n - 1, s - 1))
        if s <= n - 1:  # coalition = S, j not in S, |S| = s
            w_out[s] = 1.0 / (n * math.comb(n - 1, s))
    return w_in, w_out


def _exact(ev: Evaluator, n: int) -> tuple[np.ndarray, float, float]:
    if n > EXACT_MAX_FEATURES:
        raise ConfigError(
            f"exact Shapley values for {n} features need 2^{n} = {2 ** n:,} evaluations, "
            f"more than the limit of 2^{EXACT_MAX_FEATURES} ({EXACT_MAX_FEATURES} features)",
            fix="use method='permutation' or method='kernel' (or 'auto', which picks one), "
                "or group features into fewer players",
        )
    w_in, w_out = _exact_coefficients(n)
    bit = np.arange(n)
    phi = np.zeros(n)
    base = full = 0.0
    chunk = max(ev.batch_size, 4096)
    for start in range(0, 2 ** n, chunk):
        idx = np.arange(start, min(start + chunk, 2 ** n), dtype=np.int64)
        masks = ((idx[:, None] >> bit) & 1).astype(bool)
        v = ev.raw(masks)
        size = masks.sum(axis=1)
        phi += masks.T.astype(np.float64) @ (v * w_in[size])
        phi -= (~masks).T.astype(np.float64) @ (v * w_out[size])
        if start == 0:
            base = float(v[0])
        if idx[-1] == 2 ** n - 1:
            full = float(v[-1])
    return phi, base, full


def exact_flops(sizes: Sequence[int], enc_flops: Sequence[float], head_flops: float) -> float:
    """FLOPs of exact enumeration by factorised tables (inf past EXACT_MAX_FEATURES)."""
    n = int(sum(sizes))
    if n > EXACT_MAX_FEATURES:
        return math.inf
    return float(sum(2 ** s * f for s, f in zip(sizes, enc_flops)) + 2 ** n * head_row_flops(head_flops))


@ESTIMATORS.register("exact")
class ExactEstimator(Estimator):
    """Enumerates all ``2^n`` coalitions (``n_permutations`` and ``seed`` are only recorded)."""

    name = "exact"

    def estimate(self, game: ValueFn, n_features: int, *, batch_size: int = 256) -> ShapleyValues:
        ev = Evaluator(game, n_features, batch_size)
        values, base, full = _exact(ev, n_features)
        return self._result(values, base, full, None, ev, {})

    def evaluations(self, n_features: int) -> int:
        return 2 ** int(n_features)
