"""The sampling error of what is computed from estimated Shapley values: a modality's MM-SHAP share.

A share ``s_m = sum_{j in m} |phi_j| / sum_j |phi_j|`` is a nonlinear function of
every value, so its standard error is not one of the values' standard errors:

* from the estimator's independent units (``ShapleyValues.replicates``: the
  walks of ``"permutation"``, the blocks of ``"recombined"``), by the
  delete-one jackknife over them: each unit left out in turn, the shares of
  the mean of the others, ``var = (B - 1) / B * sum_b (s_(-b) - mean)^2``.
  It carries the correlations between features (one walk moves many values at
  once) and the kinks of ``|.|``, and needs nothing but the units;
* from the values' standard errors alone (``"kernel"``), by the delta method
  with the values taken as independent (their correlations are unknown there;
  an approximation, documented as such);
* zero for exact values; NaN where neither is known (one unit).

A standard error describes the spread of the estimate, not its bias: the
noise of the values adds ``|.|`` mass, so a noisy estimate's shares lean
towards 1/M. A budget that makes the standard error small makes that bias
smaller still (it shrinks like the variance; docs/EXPLAIN.md, "Measured").
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def _membership(groups: Sequence[Any], n: int) -> np.ndarray:
    member = np.zeros((len(groups), n), dtype=np.float64)
    for g, idx in enumerate(groups):
        member[g, np.asarray(idx, dtype=np.int64)] = 1.0
    return member


def _shares(values: np.ndarray, member: np.ndarray) -> np.ndarray:
    """MM-SHAP shares of each row of ``values`` (B, n) -> (B, M); an all-zero row gets zeros."""
    a = np.abs(values)
    total = a.sum(axis=1, keepdims=True)
    sums = a @ member.T
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, sums / np.where(total > 0, total, 1.0), 0.0)


def share_stderr(shapley: Any, groups: Sequence[Any]) -> np.ndarray:
    """Standard error of each group's MM-SHAP share of one :class:`~core.explain.ShapleyValues`.

    ``groups`` are disjoint feature indices (one per modality, as for
    :func:`core.explain.modality_shares`). Jackknife over ``shapley.replicates``
    where there are at least two, else the delta method on ``shapley.stderr``;
    zeros for exact values (``stderr`` None and no replicates); NaN where the
    error is unknown.
    """
    values = np.asarray(shapley.values, dtype=np.float64).reshape(-1)
    n = len(values)
    member = _membership(groups, n)
    replicates = getattr(shapley, "replicates", None)
    if replicates is not None and len(replicates) >= 2:
        reps = np.asarray(replicates, dtype=np.float64).reshape(-1, n)
        b = len(reps)
        loo = (reps.sum(axis=0, keepdims=True) - reps) / (b - 1)
        s = _shares(loo, member)
        return np.sqrt((b - 1) / b * ((s - s.mean(axis=0)) ** 2).sum(axis=0))
    stderr = getattr(shapley, "stderr", None)
    if stderr is None:
        return np.zeros(len(member)) if getattr(shapley, "method", None) == "exact" else np.full(len(member), np.nan)
    se = np.asarray(stderr, dtype=np.float64).reshape(-1)
    a = np.abs(values)
    total = a.sum()
    if total <= 0:
        return np.where(np.all(se == 0), 0.0, np.nan) * np.ones(len(member))
    sums = member @ a
    # d s_m / d phi_j = sign(phi_j) (1[j in m] total - A_m) / total^2, features taken as independent
    grad = np.sign(values)[None, :] * (member * total - sums[:, None]) / total ** 2
    return np.sqrt((grad ** 2 * se[None, :] ** 2).sum(axis=1))
