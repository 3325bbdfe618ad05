"""MultiBench's two robustness summaries of an accuracy-vs-noise curve, and the missing-at-random table.

Following MultiBench's ``eval_scripts/robustness.py`` (Liang et al., 2021), before its
normalisation across methods, which depends on the set of methods compared:

* **relative robustness**: the area under the accuracy-vs-noise curve (trapezoids over the
  levels; with MultiBench's 11 levels 0, 0.1, ..., 1 exactly its sum of
  ``(a_i + a_{i+1}) * 0.1 / 2``);
* **effective robustness**: how much the run's curve stays above a late-fusion baseline's curve
  shifted to the run's clean accuracy: ``sum_i (f_i - (lf_i + f_0 - lf_0))`` over the levels, as
  MultiBench sums it (so it compares runs of one build, which share the levels).
"""
from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np

from core.errors import ConfigError
from core.robustness._noise import check_level


def _curve(values: Sequence[float], what: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1 or len(a) < 2 or not np.isfinite(a).all():
        raise ConfigError(f"{what} must be 2 or more finite accuracies, got {list(values)!r}",
                          fix="pass the accuracy at each noise level, level 0 first")
    return a


def relative_robustness(accuracy: Sequence[float], levels: Sequence[float] | None = None) -> float:
    """The area under the accuracy-vs-noise curve (levels default: evenly spaced from 0 to 1)."""
    acc = _curve(accuracy, "accuracy")
    x = np.linspace(0.0, 1.0, len(acc)) if levels is None else np.asarray([check_level(v) for v in levels])
    if len(x) != len(acc) or (np.diff(x) <= 0).any():
        raise ConfigError(f"{len(acc)} accuracies need as many increasing levels, got {list(x)}",
                          fix="pass one level per accuracy, in increasing order")
    return float(np.sum((acc[1:] + acc[:-1]) * np.diff(x) / 2))


def effective_robustness(accuracy: Sequence[float], baseline: Sequence[float]) -> float:
    """``sum_i (f_i - (lf_i + f_0 - lf_0))``: the run's curve against the late-fusion baseline ``lf``
    shifted to the run's clean accuracy ``f_0`` (0 for the baseline itself)."""
    f, lf = _curve(accuracy, "accuracy"), _curve(baseline, "baseline accuracy")
    if len(f) != len(lf):
        raise ConfigError(f"the curve has {len(f)} levels and its baseline {len(lf)}",
                          fix="compare curves over the same noise levels")
    return float(np.sum((f - lf) - (f[0] - lf[0])))


def missing_table(ids: Sequence[str], modalities: Sequence[str], rate: float, seed: int = 0) -> np.ndarray:
    """Which modalities each sample keeps (``(len(ids), len(modalities))`` bool) when they go missing
    at random at ``rate``: each sample, with probability ``rate``, loses a uniformly drawn number (1 to
    M - 1) of uniformly drawn modalities, so at least one stays. Seeded per sample id, so every run
    (over these modalities in this order) sees the same pattern, whatever the subsample."""
    rate = check_level(rate)
    m = len(modalities)
    present = np.ones((len(ids), m), dtype=bool)
    if m < 2:
        return present
    key = zlib.crc32(f"missing\0{rate:.6f}\0{'+'.join(modalities)}".encode())
    for row, sid in enumerate(ids):
        rng = np.random.default_rng([int(seed) % (2**32), key, zlib.crc32(str(sid).encode())])
        if rng.random() < rate:
            lost = rng.choice(m, size=int(rng.integers(1, m)), replace=False)
            present[row, lost] = False
    return present
