"""The statistics of the trust checks: rank correlation with ties, seeded bootstrap intervals."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.stats import rankdata


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN when fewer than 3 pairs or when
    either side has no variation (all values tied)."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"spearman of {x.shape} and {y.shape} values")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3:
        return math.nan
    rx, ry = rankdata(x), rankdata(y)
    rx -= rx.mean()
    ry -= ry.mean()
    denom = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / denom) if denom > 0 else math.nan


def bootstrap_difference(a: Sequence[float], b: Sequence[float], *, seed: int, n_boot: int,
                         level: float = 0.95) -> tuple[float, float, float]:
    """``mean(a) - mean(b)`` and its percentile bootstrap interval (each group resampled on its
    own, ``n_boot`` times, seeded); NaN when either group is empty."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if len(x) == 0 or len(y) == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng([int(seed), 0xB007])
    diffs = x[rng.integers(0, len(x), (n_boot, len(x)))].mean(1) - y[rng.integers(0, len(y), (n_boot, len(y)))].mean(1)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return float(x.mean() - y.mean()), float(low), float(high)


def summary(values: Sequence[float]) -> dict[str, float]:
    """median, min, max and mean of the finite values (NaN when there are none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return {"median": math.nan, "min": math.nan, "max": math.nan, "mean": math.nan}
    return {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max()), "mean": float(v.mean())}
