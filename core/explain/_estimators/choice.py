"""Which estimator explains a game: the ``"auto"`` rules and the cost of each choice.

Two rules, both deterministic:

* model-agnostic (:func:`auto_method`, used by :func:`core.explain.shapley_values`
  and by the engine on an unfactorised game): ``"exact"`` up to
  ``exact_max_features`` players or when ``2**n`` is no more than the sampling
  budget, else ``"kernel"`` (``"permutation"`` when the budget is below the
  ``4n + 2`` that ``"kernel"`` needs). The exact threshold: a batched model's
  cost grows linearly in evaluations (a small CNN on CPU: about 0.2 ms per
  masked image, exact at n = 10 costs 1024 evaluations, 227 ms, against 210 and
  30 ms for sampling); 2^10 is 4.9x the reference budget at n = 10, under the
  ~6x that batching alone gained over the reference's one-at-a-time walk, so
  exact up to 10 players is no slower than the reference and has no sampling
  error;
* factorised (:func:`choose_estimator`): ``"exact"`` when its counted cost is at
  most :data:`AUTO_EXACT_COST_RATIO` times ``"recombined"``'s, else
  ``"recombined"``. Costs are floating-point operations counted once per
  architecture and input shape (one encoder row per modality, one head row
  plus the head-row overhead), never timed, so the choice is the same on any
  machine.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.explain._estimators.base import Estimator
from core.explain._estimators.exact import ExactEstimator, exact_flops
from core.explain._estimators.kernel import KernelEstimator, kernel_min_evals
from core.explain._estimators.permutation import PermutationEstimator, reference_flops
from core.explain._estimators.recombined import RecombinedEstimator, plan_for_game

#: ``method="auto"`` enumerates exactly up to this many players by default.
AUTO_EXACT_MAX_FEATURES = 10
#: "auto" on a factorised game picks "exact" when its counted cost is at most this times "recombined"'s.
AUTO_EXACT_COST_RATIO = 1.0


def auto_method(n_features: int, budget: int, exact_max_features: int = AUTO_EXACT_MAX_FEATURES) -> str:
    """The model-agnostic ``"auto"`` choice for ``n_features`` players and ``budget`` evaluations."""
    if n_features <= exact_max_features or 2 ** n_features <= budget:
        return "exact"
    if budget >= kernel_min_evals(n_features):
        return "kernel"
    return "permutation"


@dataclass(frozen=True)
class EstimatorChoice:
    """The estimator for one game, the method name its result records, and the counted costs."""

    estimator: Estimator
    #: recorded as ``settings["method"]``: the method asked for, except that "auto" choosing
    #: exact on a factorised game records "exact" (as stored since engine version 1)
    record_as: str
    #: FLOPs of "exact", "recombined" and the reference on a factorised game, else None
    costs: dict[str, float] | None


def choose_estimator(game: Any, method: str, *, n_permutations: int, seed: int,
                     n_walks: int | None = None) -> EstimatorChoice:
    """Resolve ``method`` (``"auto"`` or an estimator name) for a game whose output is set.

    On a factorised game this counts the encoder and head FLOPs (one head pass
    of the full coalition) and plans ``"recombined"``, whatever the method, so
    every result records the same costs.
    """
    chosen, costs, plan = method, None, None
    if game.factorised:
        enc_flops = game.encoder_flops()
        game(np.ones((1, game.n_features), dtype=bool))  # counts the head FLOPs
        plan = plan_for_game(game, n_permutations, n_walks)
        flops = [enc_flops[m] for m in game.players]
        costs = {"exact": exact_flops(game.sizes, flops, game.head_flops_per_row), "recombined": plan.cost_flops,
                 "reference": reference_flops(game.sizes, game.model_flops(), n_permutations)}
        if chosen == "auto":
            chosen = "exact" if costs["exact"] <= AUTO_EXACT_COST_RATIO * costs["recombined"] else "recombined"
    elif chosen == "auto":
        chosen = auto_method(game.n_features, n_permutations * (2 * game.n_features + 1))
    common = dict(n_permutations=n_permutations, seed=seed)
    estimator: Estimator
    if chosen == "exact":
        estimator = ExactEstimator(**common)
    elif chosen == "permutation":
        estimator = PermutationEstimator(**common)
    elif chosen == "kernel":
        estimator = KernelEstimator(**common)
    else:
        estimator = RecombinedEstimator(**common, n_walks=n_walks, plan=plan)
    record = "exact" if game.factorised and method == "auto" and chosen == "exact" else method
    return EstimatorChoice(estimator, record, costs)
