"""The kernel estimator: paired KernelSHAP with leverage-score sampling.

Covert & Lee 2021; Musco & Witter 2025, "Provably accurate Shapley value
estimation via leverage score sampling": the Shapley values are the solution of
a weighted least-squares problem over coalitions, constrained so that they sum
to ``full - base``. All ``2n`` coalitions of size 1 and ``n - 1`` are evaluated
exactly; the rest of the budget draws coalition sizes uniformly from
``2 .. n-2`` (the leverage scores of the problem are equal per size), a uniform
coalition of that size and its complement (paired sampling), each
importance-weighted by its Shapley-kernel weight. Same budget as the reference
by default (``max_evals = n_permutations * (2n + 1)``); needs at least
``4n + 2`` evaluations (:func:`kernel_min_evals`). Games with interactions of
at most two players (additive ones included) are recovered exactly, as by the
permutation walk.

Null-player screen: a regression spreads noise over every player, also over
one the model ignores. So players whose first and last marginal contributions
(from the size-1 and size-(n-1) coalitions) are both zero, taken together, are
switched on and off in :data:`NULL_CHECKS` random contexts (``2 * NULL_CHECKS``
evaluations); if the output never moves (within :data:`NULL_TOL` times the
output scale, which absorbs float32 rounding) they get exactly 0 and the
regression runs over the others. A modality the model ignores therefore gets a
share of 0, as with ``"permutation"`` and ``"exact"``.

Standard errors: the sandwich (delta-method) estimate over the sampled pairs.
"""
from __future__ import annotations

import math

import numpy as np

from core.errors import ConfigError
from core.explain._estimators.base import ESTIMATORS, Estimator, Evaluator, ShapleyValues, ValueFn

#: ``"kernel"``: random contexts in which a candidate null set must change nothing.
NULL_CHECKS = 8
#: ``"kernel"``: outputs closer than this times the output scale count as equal.
NULL_TOL = 1e-6


def kernel_min_evals(n_features: int) -> int:
    """Smallest budget ``method="kernel"`` accepts: ``4n + 2`` evaluations."""
    return 4 * n_features + 2


def _constrained_wls(
    z: np.ndarray, w: np.ndarray, y: np.ndarray, total: float
) -> tuple[np.ndarray, np.ndarray]:
    """argmin sum w (y - z phi)^2 subject to sum(phi) = total; returns (phi, projection M)."""
    n = z.shape[1]
    a = z.T @ (w[:, None] * z)
    b = z.T @ (w * y)
    a_inv = np.linalg.pinv(a, hermitian=True)
    one = np.ones(n)
    a_inv_one = a_inv @ one
    denom = float(one @ a_inv_one)
    m = a_inv - np.outer(a_inv_one, a_inv_one) / denom
    phi = m @ b + a_inv_one * (total / denom)
    return phi, m


def _random_coalitions(rng: np.random.Generator, sizes: np.ndarray, n: int) -> np.ndarray:
    """One uniform coalition of each requested size, shape (len(sizes), n)."""
    order = np.argsort(rng.random((len(sizes), n)), axis=1)
    ranks = np.empty_like(order)
    ranks[np.arange(len(sizes))[:, None], order] = np.arange(n)[None, :]
    return ranks < sizes[:, None]


def _screen_null_players(
    ev: Evaluator, rng: np.random.Generator, first: np.ndarray, last: np.ndarray, scale: float
) -> np.ndarray:
    """Players that are null as far as cheap checks can tell: zero first and last marginal
    contribution, and the whole candidate set changes nothing in NULL_CHECKS random contexts."""
    n = len(first)
    tol = NULL_TOL * scale
    cand = (np.abs(first) <= tol) & (np.abs(last) <= tol)
    if not cand.any():
        return cand
    sizes = rng.integers(0, n + 1, size=NULL_CHECKS)
    ctx = _random_coalitions(rng, sizes, n)
    with_c = ctx | cand
    without_c = ctx & ~cand
    out = ev(np.concatenate([with_c, without_c]))
    if np.all(np.abs(out[:NULL_CHECKS] - out[NULL_CHECKS:]) <= tol):
        return cand
    return np.zeros(n, dtype=bool)


def _kernel(
    ev: Evaluator, n: int, budget: int, seed: int
) -> tuple[np.ndarray, np.ndarray, float, float, int, int]:
    if budget < kernel_min_evals(n):
        raise ConfigError(
            f"method='kernel' needs at least 4n + 2 = {kernel_min_evals(n)} evaluations for "
            f"{n} features, the budget is {budget}",
            fix="raise n_permutations or max_evals, or use method='permutation'",
        )
    rng = np.random.default_rng(seed)
    eye = np.eye(n, dtype=bool)
    ends = np.stack([np.zeros(n, dtype=bool), np.ones(n, dtype=bool)])
    enum_masks = np.concatenate([eye, ~eye]) if n > 1 else np.zeros((0, n), dtype=bool)
    out = ev(np.concatenate([ends, enum_masks]))
    base, full, enum_out = float(out[0]), float(out[1]), out[2:]
    total = full - base
    if n == 1:
        return np.array([total]), np.zeros(1), base, full, 0, 0
    # Shapley kernel mass per coalition size s: (n-1) / (s (n-s)), split evenly over C(n, s) coalitions
    sizes_all = np.arange(n + 1)
    with np.errstate(divide="ignore"):
        mass = np.where((sizes_all > 0) & (sizes_all < n), (n - 1) / (sizes_all * (n - sizes_all)), 0.0)

    enum_w = mass[enum_masks.sum(axis=1)] / np.array([math.comb(n, int(k)) for k in enum_masks.sum(axis=1)])
    enum_y = enum_out - base

    # null-player screen, when the budget leaves room for it and for the sampling
    null = np.zeros(n, dtype=bool)
    if budget - 2 - 2 * n - 2 * NULL_CHECKS >= 2 * n:
        scale = max(abs(base), abs(full), float(np.abs(enum_out).max()), 1e-300)
        null = _screen_null_players(ev, rng, enum_y[:n], total - enum_y[n:], scale)
    live = np.flatnonzero(~null)
    phi = np.zeros(n)
    stderr = np.zeros(n)
    used = ev.n_evals
    if len(live) == 0:
        return phi, stderr, base, full, 0, int(null.sum())

    middle = np.arange(2, n - 1)  # sizes 2 .. n-2
    if len(middle) == 0:  # n <= 3: sizes 1 and n-1 are every coalition, the regression is exact
        phi[live], _ = _constrained_wls(enum_masks[:, live].astype(float), enum_w, enum_y, total)
        return phi, stderr, base, full, 0, int(null.sum())

    n_coalitions = sum(math.comb(n, int(k)) for k in middle)
    target = min(budget - used, n_coalitions)
    draws: list[np.ndarray] = []
    seen: set[bytes] = set()
    # draw pairs until the distinct coalitions fill the budget (duplicates cost nothing)
    max_draws = 20 * target + 100
    n_draws = 0
    while len(seen) < target - 1 and n_draws < max_draws:
        batch = max(1, min((target - len(seen)) // 2, max_draws - n_draws))
        for m in _random_coalitions(rng, rng.choice(middle, size=batch), n):
            if len(seen) >= target - 1:
                break
            draws.append(m)
            n_draws += 1
            seen.add(np.packbits(m).tobytes())
            seen.add(np.packbits(~m).tobytes())
    pairs = np.array(draws)
    samp_y = ev(np.concatenate([pairs, ~pairs])) - base
    y_a, y_b = samp_y[: len(pairs)], samp_y[len(pairs):]
    # importance weight of one draw: kernel mass of its size / probability of the size;
    # the same for a coalition and its complement
    w_draw = mass[pairs.sum(axis=1)] * len(middle)
    w_pair = w_draw / (2 * len(pairs))

    za = pairs[:, live].astype(np.float64)
    zb = (~pairs)[:, live].astype(np.float64)
    z = np.concatenate([enum_masks[:, live].astype(np.float64), za, zb])
    w = np.concatenate([enum_w, w_pair, w_pair])
    y = np.concatenate([enum_y, y_a, y_b])
    phi_live, m = _constrained_wls(z, w, y, total)
    phi[live] = phi_live

    # sandwich standard errors over the iid pair draws (enumerated strata add no variance)
    k = len(pairs)
    if k > 1:
        resid_a = y_a - za @ phi_live
        resid_b = y_b - zb @ phi_live
        infl = (w_draw / 2.0)[:, None] * (za * resid_a[:, None] + zb * resid_b[:, None])
        cov_h = np.atleast_2d(np.cov(infl, rowvar=False, ddof=1))
        var = np.einsum("ij,jk,ik->i", m, cov_h, m) / k
        stderr[live] = np.sqrt(np.clip(var, 0.0, None))
    else:
        stderr[live] = np.nan
    return phi, stderr, base, full, n_draws, int(null.sum())


@ESTIMATORS.register("kernel")
class KernelEstimator(Estimator):
    """Paired KernelSHAP over ``max_evals`` evaluations (default ``n_permutations (2n + 1)``)."""

    name = "kernel"

    def __init__(self, *, n_permutations: int = 10, seed: int = 0, max_evals: int | None = None) -> None:
        super().__init__(n_permutations=n_permutations, seed=seed)
        self.max_evals = max_evals

    def evaluations(self, n_features: int) -> int:
        return super().evaluations(n_features) if self.max_evals is None else int(self.max_evals)

    def estimate(self, game: ValueFn, n_features: int, *, batch_size: int = 256) -> ShapleyValues:
        budget = self.evaluations(n_features)
        ev = Evaluator(game, n_features, batch_size)
        values, stderr, base, full, n_draws, n_null = _kernel(ev, n_features, budget, self.seed)
        settings = dict(max_evals=budget, n_pair_draws=n_draws, n_null_screened=n_null,
                        size_sampling="leverage (uniform over sizes)",
                        stderr=f"sandwich over {n_draws} independent pair draws")
        return self._result(values, base, full, stderr, ev, settings)
