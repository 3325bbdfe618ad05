"""Shapley values of any boolean-mask game: the model-agnostic front door to the estimators.

A *game* is a function ``value_fn(mask) -> outputs``: ``mask`` is a boolean
matrix of shape ``(B, n_features)`` (True = feature present, False = masked)
and the function returns the ``B`` scalar outputs of the masked variants.
:func:`shapley_values` picks an estimator by name (``method=``: ``"exact"``,
``"permutation"``, ``"kernel"``, each in its own module of
``core/explain/_estimators/`` with its cost and accuracy, or ``"auto"``, see
``_estimators/choice.py``), optionally lifts the game to groups of features,
and runs it. :func:`group_shapley_values` gives exact values of feature groups
(modalities); :func:`modality_shares` the MM-SHAP shares.

Measured (random games: a small MLP on masked inputs, a tanh MLP on the
binary mask, sparse sums of products; n = 14 and 18, 48 runs each, equal
numbers of distinct evaluations): ``"kernel"``'s RMSE against exact values
is 0.59-0.72x that of ``"permutation"`` (the accuracy of about 2-3x as many
permutations) and its standard errors are calibrated (z-scores' std
1.05-1.14; the permutation ones are 1.2-1.6). On n = 24 unanimity games
(closed-form values) the ratio is 0.75 with interactions of up to 3
players and 0.86 with up to 4.

Standard errors (``stderr``): for ``"permutation"`` the standard deviation of
the per-permutation estimates (forward and backward walk averaged) divided by
``sqrt(n_permutations)`` (NaN with one permutation); for ``"kernel"`` the
sandwich (delta-method) estimate over the sampled pairs; ``None`` for exact.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from core.errors import ConfigError
from core.explain._estimators import (
    AUTO_EXACT_MAX_FEATURES,
    MAX_PERMUTATIONS,
    Estimator,
    ExactEstimator,
    KernelEstimator,
    PermutationEstimator,
    ShapleyValues,
    ValueFn,
    auto_method,
    check_int,
)

#: The methods :func:`shapley_values` takes (the engine adds ``"recombined"``, which needs the players per modality).
METHODS = ("auto", "exact", "permutation", "kernel")


def _group_value_fn(value_fn: ValueFn, groups: list[np.ndarray], n_features: int) -> ValueFn:
    """Lift a feature-level game to a game whose players are groups of features.

    Features in no group stay present in every coalition.
    """
    member = np.zeros((len(groups), n_features), dtype=bool)
    for g, idx in enumerate(groups):
        member[g, idx] = True
    outside = ~member.any(axis=0)

    def lifted(group_mask: np.ndarray) -> Any:
        feat = (group_mask.astype(np.uint8) @ member.astype(np.uint8)).astype(bool)
        feat |= outside
        return value_fn(feat)

    return lifted


def _check_groups(groups: Sequence[Any], n_features: int | None) -> tuple[list[np.ndarray], int]:
    arrs = [np.atleast_1d(np.asarray(g, dtype=np.int64)) for g in groups]
    if not arrs:
        raise ConfigError("groups is empty", fix="pass at least one list of feature indices")
    flat = np.concatenate(arrs) if arrs else np.zeros(0, dtype=np.int64)
    if n_features is None:
        n_features = int(flat.max()) + 1 if len(flat) else 0
    if len(flat) and (flat.min() < 0 or flat.max() >= n_features):
        raise ConfigError(
            f"group indices must lie in 0..{n_features - 1}",
            fix="pass feature indices of the game that value_fn plays",
        )
    if len(np.unique(flat)) != len(flat):
        raise ConfigError("a feature belongs to more than one group", fix="make the groups disjoint")
    return arrs, n_features


def shapley_values(
    value_fn: ValueFn,
    n_features: int,
    *,
    method: str = "auto",
    n_permutations: int = 10,
    seed: int = 0,
    batch_size: int = 256,
    groups: Sequence[Any] | None = None,
    permutations: Any = None,
    max_evals: int | None = None,
    exact_max_features: int = AUTO_EXACT_MAX_FEATURES,
) -> ShapleyValues:
    """Shapley values of the game ``value_fn`` over ``n_features`` players.

    Args:
        value_fn: ``mask (B, n_features) bool -> (B,)`` outputs; True = present.
        n_features: number of features of the game.
        method: ``"auto"``, ``"exact"``, ``"permutation"`` or ``"kernel"`` (see the
            estimators' modules for their cost and accuracy).
        n_permutations: permutations of the permutation estimator; with ``max_evals``
            unset it also sets the sampling budget ``n_permutations * (2n + 1)``.
        seed: seeds the sampling; the same seed gives identical results.
        batch_size: most mask rows per ``value_fn`` call.
        groups: optional disjoint index arrays; each group becomes one player
            (features in no group stay present) and the result is over groups.
        permutations: explicit orders ``(P, n)`` for ``method="permutation"``
            (overrides ``n_permutations`` and ``seed``).
        max_evals: sampling budget of ``"kernel"`` / ``"auto"``.
        exact_max_features: ``"auto"`` enumerates exactly up to this many players.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown Shapley method {method!r}", fix=f"use one of: {', '.join(METHODS)}")
    n_features = check_int("n_features", n_features, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    seed = check_int("seed", seed, 0)
    n_permutations = check_int("n_permutations", n_permutations, 1, MAX_PERMUTATIONS)

    settings: dict[str, Any] = {}
    if groups is not None:
        group_list, n_features_all = _check_groups(groups, n_features)
        value_fn = _group_value_fn(value_fn, group_list, n_features_all)
        n_features = len(group_list)
        settings["groups"] = [g.tolist() for g in group_list]
    n = n_features

    budget = n_permutations * (2 * n + 1) if max_evals is None else check_int("max_evals", max_evals, 3)
    chosen = auto_method(n, budget, exact_max_features) if method == "auto" else method
    estimator: Estimator
    if chosen == "exact":
        estimator = ExactEstimator(n_permutations=n_permutations, seed=seed)
    elif chosen == "permutation":
        estimator = PermutationEstimator(n_permutations=n_permutations, seed=seed, permutations=permutations)
    else:
        estimator = KernelEstimator(n_permutations=n_permutations, seed=seed, max_evals=budget)
    sv = estimator.estimate(value_fn, n, batch_size=batch_size)
    settings.update(sv.settings)
    return replace(sv, settings=settings).recorded_as(method)


def group_shapley_values(
    value_fn: ValueFn,
    groups: Sequence[Any],
    n_features: int | None = None,
    *,
    batch_size: int = 256,
) -> ShapleyValues:
    """Exact Shapley values with each group of features as one player (2^M evaluations).

    ``groups`` are disjoint index arrays into the features of ``value_fn``
    (for example one per modality); ``n_features`` defaults to the largest
    index + 1. Features in no group stay present in every coalition.
    """
    group_list, n_all = _check_groups(groups, n_features)
    return shapley_values(value_fn, n_all, method="exact", batch_size=batch_size, groups=group_list)


def modality_shares(values: Any, groups: Sequence[Any]) -> np.ndarray:
    """MM-SHAP shares: ``sum_{j in m} |phi_j| / sum_j |phi_j|`` per group ``m``.

    The denominator runs over all features; all-zero values give zero shares.
    """
    phi = np.abs(np.asarray(getattr(values, "values", values), dtype=np.float64))
    total = phi.sum()
    sums = np.array([phi[np.asarray(g, dtype=np.int64)].sum() for g in groups], dtype=np.float64)
    if total <= 0 or not np.isfinite(total):
        return np.zeros(len(sums))
    return sums / total
