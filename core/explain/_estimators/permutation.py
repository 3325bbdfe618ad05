"""The permutation estimator: the reference estimator of MM-SHAP.

With the semantics of ``shap.PermutationExplainer``: for each of
``n_permutations`` random orders, switch the features on one by one from
all-masked (forward walk) and then off one by one, in the same order, from
all-present (backward walk, the antithetic reverse order); every step's change
in output is that feature's marginal contribution, averaged over the
``2 * n_permutations`` walks. Cost: ``n_permutations * (2n + 1)`` evaluations
as shap counts them, of which ``2 + n_permutations * (2n - 2)`` are distinct
and actually evaluated. The orders come from ``np.random.RandomState(seed)``
shuffling one index array in place, exactly as shap draws them after
``np.random.seed(seed)``, so the same ``seed`` walks the same permutations as
``shap.PermutationExplainer(..., seed=seed)``; ``permutations=`` takes
explicit orders instead (the recombined estimator walks its own with :func:`walk_contributions`).

Standard errors: the standard deviation of the per-permutation estimates
(forward and backward walk averaged) divided by ``sqrt(n_permutations)`` (NaN
with one permutation). The permutations are independent, so this is the
honest standard error (a Student t with ``n_permutations - 1`` degrees of
freedom); the per-permutation estimates are the result's ``replicates``.
Explicit ``permutations=`` are taken as independent draws too: orders that
share parts (as recombined's do) need their own stderr (``recombined.py``).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from core.errors import ConfigError
from core.explain._estimators.base import ESTIMATORS, Estimator, Evaluator, ShapleyValues, ValueFn


def shap_permutations(n_features: int, n_permutations: int, seed: int) -> np.ndarray:
    """The orders ``shap.PermutationExplainer(..., seed=seed)`` walks, shape (P, n).

    shap seeds numpy's global generator and shuffles one index array in place
    before each permutation; a private ``RandomState(seed)`` gives the same
    sequence without touching global state.
    """
    rng = np.random.RandomState(seed)
    inds = np.arange(n_features)
    out = np.empty((n_permutations, n_features), dtype=np.int64)
    for p in range(n_permutations):
        rng.shuffle(inds)
        out[p] = inds
    return out


def _check_permutations(perms: Any, n: int) -> np.ndarray:
    arr = np.asarray(perms, dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != n or len(arr) == 0:
        raise ConfigError(
            f"permutations must have shape (P, {n}), got {arr.shape}",
            fix="pass one row per permutation of range(n_features)",
        )
    ref = np.arange(n)
    for row in arr:
        if not np.array_equal(np.sort(row), ref):
            raise ConfigError(
                "a row of permutations is not a permutation of range(n_features)",
                fix="pass rows such as np.random.permutation(n_features)",
            )
    return arr


def walk_contributions(ev: Evaluator, n: int, perms: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Walk every order of ``perms`` (P, n) forward and backward: ``(values, per_walk, base, full)``,
    ``per_walk[p]`` the marginal contributions of walk ``p`` (forward and backward averaged) and
    ``values`` their mean, added up in shap's order of floating-point additions."""
    n_perm = len(perms)
    phi = np.zeros(n)
    per_perm = np.zeros((n_perm, n))
    steps = np.arange(1, n)
    ends = np.stack([np.zeros(n, dtype=bool), np.ones(n, dtype=bool)])
    base = full = 0.0
    group = max(1, min(n_perm, 4_000_000 // max(1, (2 * n - 2) * n)))  # bound the mask memory
    for g0 in range(0, n_perm, group):
        block = perms[g0:g0 + group]
        ranks = np.empty_like(block)
        rows = np.arange(len(block))[:, None]
        ranks[rows, block] = np.arange(n)[None, :]
        # forward step k (k = 1..n-1): the first k features of the order are on
        fwd = ranks[:, None, :] < steps[None, :, None]
        # backward step k (k = 1..n-1): the first k features of the order are off again
        bwd = ranks[:, None, :] >= steps[None, :, None]
        masks = np.concatenate([fwd, bwd], axis=1).reshape(-1, n)
        if g0 == 0:  # the all-masked and all-present inputs ride along in the first batch
            out = ev(np.concatenate([ends, masks]))
            base, full = float(out[0]), float(out[1])
            out = out[2:]
        else:
            out = ev(masks)
        inner = out.reshape(len(block), 2, n - 1)
        for b, order in enumerate(block):
            f_out = np.concatenate([[base], inner[b, 0], [full]])   # n + 1 outputs, off -> on
            b_out = np.concatenate([[full], inner[b, 1], [base]])   # n + 1 outputs, on -> off
            fwd_delta = f_out[1:] - f_out[:-1]
            bwd_delta = b_out[:-1] - b_out[1:]
            # same order of floating-point additions as shap's PermutationExplainer
            phi[order] += fwd_delta
            phi[order] += bwd_delta
            per_perm[g0 + b, order] = (fwd_delta + bwd_delta) / 2.0
    return phi / (2 * n_perm), per_perm, base, full


def replicate_stderr(replicates: np.ndarray) -> np.ndarray:
    """Standard error of the mean of independent replicates (B, n): ``std (ddof 1) / sqrt(B)``;
    NaN with one replicate."""
    b = len(replicates)
    if b < 2:
        return np.full(replicates.shape[1], np.nan)
    return replicates.std(axis=0, ddof=1) / math.sqrt(b)


def reference_flops(sizes: Sequence[int], model_flops: float, n_permutations: int) -> float:
    """FLOPs of the reference estimator: ``P (2n + 1)`` passes of the whole model."""
    return n_permutations * (2 * int(sum(sizes)) + 1) * model_flops


@ESTIMATORS.register("permutation")
class PermutationEstimator(Estimator):
    """``n_permutations`` antithetic walks in shap's orders for ``seed``, or the explicit
    ``permutations`` (shape ``(P, n)``), which then replace both."""

    name = "permutation"

    def __init__(self, *, n_permutations: int = 10, seed: int = 0, permutations: Any = None) -> None:
        super().__init__(n_permutations=n_permutations, seed=seed)
        self.permutations = permutations

    def estimate(self, game: ValueFn, n_features: int, *, batch_size: int = 256) -> ShapleyValues:
        settings: dict[str, Any] = {}
        if self.permutations is not None:
            perms = _check_permutations(self.permutations, n_features)
            settings["explicit_permutations"] = True
        else:
            perms = shap_permutations(n_features, self.n_permutations, self.seed)
        ev = Evaluator(game, n_features, batch_size)
        values, per_walk, base, full = walk_contributions(ev, n_features, perms)
        settings["evals_as_shap_counts"] = len(perms) * (2 * n_features + 1)
        settings["stderr"] = f"between {len(perms)} independent walks"
        return self._result(values, base, full, replicate_stderr(per_walk), ev, settings, n_permutations=len(perms),
                            replicates=per_walk)

    def evaluations(self, n_features: int) -> int:
        walks = self.n_permutations if self.permutations is None else len(self.permutations)
        return 2 + int(walks) * max(0, 2 * int(n_features) - 2)
