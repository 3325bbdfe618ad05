"""The recombined estimator: permutation walks recombined from a few cached orders per modality.

Each modality ``m`` gets ``P_m`` random orders of its features (their prefixes
and suffixes are all its encoder ever sees) or, when that would visit as many
sub-masks as it has, is tabulated whole and walked in fresh orders. Each walk
picks one order per modality and a uniformly random interleaving of the
modalities, so it is a uniformly random permutation: the estimate is unbiased,
antithetic (forward and backward walk) and exactly efficient, while the
encoders of a factorised game cost what ``P_m`` walks cost and every further
walk only one head pass per step. The budget is the reference's counted FLOPs
(``n_permutations (2n + 1)`` whole-model passes) divided by
:data:`RECOMBINED_BUDGET_DIVISOR`, split between orders and walks in inverse
proportion to the square root of their costs, so cheap encoders get more
orders (:func:`plan_recombined`). Measured on the emoji MultConcat run against
exact values: about half the reference's share error on games of up to 20
players, about equal on 31-33 players, at 30-70x less time
(``benchmarks/bench_mmshap.py``).

The game must tell its modality structure: ``sizes`` (players per modality,
in order) and ``players`` (the modality names); a factorised game also its
counted FLOPs (``encoder_flops()``, ``head_flops_per_row``, ``model_flops()``),
as :class:`core.explain.SampleGame` does. Unfactorised, each modality gets
``n_permutations`` orders and there are ``n_walks`` (default
``10 n_permutations``) walks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from core.explain._estimators.base import ESTIMATORS, Estimator, ShapleyValues, head_row_flops
from core.explain._estimators.permutation import PermutationEstimator, reference_flops

#: "recombined" spends the reference's FLOPs divided by this (batched encoders then make the
#: wall-clock ratio larger still; see docs/EXPLAIN.md for the measurement).
RECOMBINED_BUDGET_DIVISOR = 12
#: Weight of the walks against the orders in the error model, and bounds on walks and orders per modality.
WALK_WEIGHT = 2.0
MIN_WALKS, MAX_WALKS = 50, 1000
MIN_ORDERS, MAX_ORDERS = 2, 100


def recombined_permutations(
    sizes: Sequence[int], n_orders: int | Sequence[int], n_walks: int, seed: int, tabulated: Sequence[bool]
) -> np.ndarray:
    """Walk orders (n_walks, n) recombined from per-modality orders (see ``"recombined"``).

    Modality ``m`` owns features ``offset_m .. offset_m + sizes[m] - 1``. A
    tabulated modality gets a fresh random order per walk; the others cycle
    through ``n_orders`` (one count, or one per modality) fixed random orders,
    each used equally often, in a shuffled sequence. Each walk interleaves the
    modalities uniformly at random, so every walk is a uniform permutation.
    """
    rng = np.random.default_rng([seed, 0x5EED])
    sizes = [int(s) for s in sizes]
    orders = [int(n_orders)] * len(sizes) if np.isscalar(n_orders) else [int(o) for o in n_orders]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    n = int(offsets[-1])
    labels = np.repeat(np.arange(len(sizes)), sizes)
    base = [None if tab else np.stack([rng.permutation(s) for _ in range(k)])
            for s, k, tab in zip(sizes, orders, tabulated)]
    picks = []
    for k, tab in zip(orders, tabulated):
        if tab:
            picks.append(None)
            continue
        picks.append(np.concatenate([rng.permutation(k) for _ in range(-(-n_walks // k))])[:n_walks])
    out = np.empty((n_walks, n), dtype=np.int64)
    for w in range(n_walks):
        slots = rng.permutation(labels)
        for m, s in enumerate(sizes):
            if s == 0:
                continue
            order = rng.permutation(s) if tabulated[m] else base[m][picks[m][w]]
            out[w, slots == m] = offsets[m] + order
    return out


@dataclass(frozen=True)
class RecombinedPlan:
    """How ``"recombined"`` spends its budget: orders per modality, tabulated ones, walks."""

    orders: tuple[int, ...]
    tabulated: tuple[bool, ...]
    n_walks: int
    budget_flops: float
    cost_flops: float


def _chain_rows(n_m: int) -> int:
    """Sub-masks one antithetic order adds beyond the empty and full ones."""
    return max(0, 2 * n_m - 2)


def _order_rows(n_m: int, orders: int, tabulated: bool) -> int:
    return 2 ** n_m if tabulated else min(2 ** n_m, orders * _chain_rows(n_m) + 2)


def plan_recombined(
    sizes: Sequence[int], enc_flops: Sequence[float], head_flops: float, model_flops: float, n_permutations: int,
    n_walks: int | None = None,
) -> RecombinedPlan:
    """Spend 1/RECOMBINED_BUDGET_DIVISOR of the reference's FLOPs (``n_permutations`` walks of the
    whole model) on ``"recombined"``.

    With the error modelled as ``sum_m 1/P_m + WALK_WEIGHT^2/Q`` (``P_m`` orders of modality
    ``m``, ``Q`` walks) and the cost as ``sum_m P_m u_m + Q w`` (``u_m``: FLOPs of one order's
    sub-masks, ``w``: FLOPs of one walk's head passes), the best split is ``P_m`` proportional
    to ``1/sqrt(u_m)`` and ``Q`` to ``WALK_WEIGHT/sqrt(w)``: cheap encoders get more orders.
    Counts are clamped to their bounds; a modality whose orders would visit as many
    sub-masks as it has is tabulated whole instead. Everything is counted, nothing timed,
    so the plan is deterministic.
    """
    sizes = [int(s) for s in sizes]
    n = sum(sizes)
    h = head_row_flops(head_flops)
    budget = reference_flops(sizes, model_flops, n_permutations) / RECOMBINED_BUDGET_DIVISOR
    walk_cost = max(1, 2 * n - 2) * h
    tab = [2 ** s <= 2 for s in sizes]  # 0 or 1 feature: nothing to choose
    orders = [1] * len(sizes)
    walks = n_walks
    fixed_walks = n_walks is not None
    fixed_orders: set[int] = set()
    for _ in range(2 * len(sizes) + 2):
        free = [m for m in range(len(sizes)) if not tab[m] and m not in fixed_orders]
        spent = sum(2 ** sizes[m] * enc_flops[m] for m in range(len(sizes)) if tab[m])
        spent += sum(orders[m] * _chain_rows(sizes[m]) * enc_flops[m] for m in fixed_orders if not tab[m])
        if fixed_walks:
            spent += walks * walk_cost
        weights = {m: math.sqrt(_chain_rows(sizes[m]) * enc_flops[m]) for m in free}
        norm = sum(weights.values()) + (0.0 if fixed_walks else WALK_WEIGHT * math.sqrt(walk_cost))
        lam = max(0.0, budget - spent) / norm if norm > 0 else 0.0
        changed = False
        if not fixed_walks:
            q = lam * WALK_WEIGHT / math.sqrt(walk_cost)
            walks = int(min(MAX_WALKS, max(MIN_WALKS, round(q))))
            if walks != round(q):
                fixed_walks, changed = True, True
        for m in free:
            p = lam / weights[m] if weights[m] > 0 else float(MAX_ORDERS)
            orders[m] = int(min(MAX_ORDERS, max(MIN_ORDERS, round(p))))
            if 2 ** sizes[m] <= orders[m] * _chain_rows(sizes[m]) + 2:
                tab[m], changed = True, True
            elif orders[m] != round(p):
                fixed_orders.add(m)
                changed = True
        if not changed:
            break
    assert walks is not None
    cost = sum(_order_rows(s, o, t) * f for s, o, t, f in zip(sizes, orders, tab, enc_flops)) + \
        (2 + walks * max(0, 2 * n - 2)) * h
    return RecombinedPlan(tuple(orders), tuple(tab), int(walks), float(budget), float(cost))


def plan_for_game(game: Any, n_permutations: int, n_walks: int | None = None) -> RecombinedPlan:
    """The plan for one game: :func:`plan_recombined` over a factorised game's counted FLOPs;
    unfactorised, ``n_permutations`` orders per modality and ``n_walks`` (default
    ``10 n_permutations``, at most :data:`MAX_WALKS`) walks."""
    if not getattr(game, "factorised", False):
        walks = n_walks or min(MAX_WALKS, 10 * n_permutations)
        return RecombinedPlan(tuple(n_permutations for _ in game.players), tuple(2 ** s <= 2 for s in game.sizes),
                              walks, math.nan, math.nan)
    enc_flops = game.encoder_flops()
    flops = [enc_flops[m] for m in game.players]
    return plan_recombined(game.sizes, flops, game.head_flops_per_row, game.model_flops(), n_permutations, n_walks)


@ESTIMATORS.register("recombined")
class RecombinedEstimator(Estimator):
    """Walks recombined from per-modality orders, spending ``plan`` (default: :func:`plan_for_game`)."""

    name = "recombined"

    def __init__(self, *, n_permutations: int = 10, seed: int = 0, n_walks: int | None = None,
                 plan: RecombinedPlan | None = None) -> None:
        super().__init__(n_permutations=n_permutations, seed=seed)
        self.n_walks = n_walks
        self.plan = plan

    def evaluations(self, n_features: int) -> int:
        walks = self.plan.n_walks if self.plan is not None else \
            (self.n_walks or min(MAX_WALKS, 10 * self.n_permutations))
        return 2 + int(walks) * max(0, 2 * int(n_features) - 2)

    def estimate(self, game: Any, n_features: int, *, batch_size: int = 256) -> ShapleyValues:
        plan = self.plan if self.plan is not None else plan_for_game(game, self.n_permutations, self.n_walks)
        perms = recombined_permutations(game.sizes, plan.orders, plan.n_walks, self.seed, plan.tabulated)
        sv = PermutationEstimator(seed=self.seed, permutations=perms).estimate(game, n_features, batch_size=batch_size)
        players = list(game.players)
        settings = dict(sv.settings, method=self.name, n_permutations=self.n_permutations, n_walks=plan.n_walks,
                        orders={m: int(o) for m, o in zip(players, plan.orders)},
                        tabulated={m: bool(t) for m, t in zip(players, plan.tabulated)},
                        stderr="walks treated as independent (a lower bound)")
        settings.pop("explicit_permutations", None)
        return replace(sv, method=self.name, settings=settings)
