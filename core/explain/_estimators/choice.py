"""Which estimator explains a game: the ``"auto"`` rules and the budget of ``"recombined"``.

Two rules, both deterministic:

* model-agnostic (:func:`auto_method`, used by :func:`core.explain.shapley_values`):
  ``"exact"`` up to ``exact_max_features`` players or when ``2**n`` is no more
  than the sampling budget, else ``"kernel"`` (``"permutation"`` when the budget
  is below the ``4n + 2`` that ``"kernel"`` needs). The exact threshold: a
  batched model's cost grows linearly in evaluations (a small CNN on CPU: about
  0.2 ms per masked image, exact at n = 10 costs 1024 evaluations, 227 ms,
  against 210 and 30 ms for sampling); 2^10 is 4.9x the reference budget at
  n = 10, under the ~6x that batching alone gained over the reference's
  one-at-a-time walk, so exact up to 10 players is no slower than the
  reference and has no sampling error;
* the engine's (:func:`choose_estimator`), on factorised and unfactorised games
  alike: ``"recombined"`` with the budget of the explained modalities' kinds
  (:func:`recombined_budget`), or ``"exact"`` where it evaluates no more
  coalitions and no more per-modality sub-masks than that plan
  (:func:`exact_is_cheaper`). Both depend on the game's shape (players per
  modality, kinds) only, never on counted or timed costs, so every run of an
  experiment (an early-fusion run too) is explained with the same estimator and
  settings and its shares are comparable. FLOPs are still counted on factorised
  games and recorded (``cost_flops``), for the record only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from core.explain._estimators.base import Estimator, head_row_flops
from core.explain._estimators.exact import EXACT_MAX_FEATURES, ExactEstimator, exact_flops
from core.explain._estimators.kernel import KernelEstimator, kernel_min_evals
from core.explain._estimators.permutation import PermutationEstimator, reference_flops
from core.explain._estimators.recombined import MAX_WALKS, RecombinedEstimator, RecombinedPlan, plan_recombined

#: ``shapley_values(method="auto")`` enumerates exactly up to this many players by default.
AUTO_EXACT_MAX_FEATURES = 10
#: ``"recombined"``'s budget by default: (independent blocks = orders per modality, walks per block).
RECOMBINED_BUDGET = (8, 8)
#: ... and where a game explains a modality of one of these kinds (the largest block count wins).
#: Video: the encoders are costly and strongly nonlinear in the masked tubes, and a video experiment
#: has an early-fusion run, which cannot be factorised and pays ``2n - 2`` whole-model passes for
#: every walk: one walk per block keeps its cost that of the factorised runs (docs/EXPLAIN.md).
RECOMBINED_BUDGET_BY_KIND: dict[str, tuple[int, int]] = {"video": (48, 1)}


def auto_method(n_features: int, budget: int, exact_max_features: int = AUTO_EXACT_MAX_FEATURES) -> str:
    """The model-agnostic ``"auto"`` choice for ``n_features`` players and ``budget`` evaluations."""
    if n_features <= exact_max_features or 2 ** n_features <= budget:
        return "exact"
    if budget >= kernel_min_evals(n_features):
        return "kernel"
    return "permutation"


def recombined_budget(kinds: Iterable[str]) -> tuple[int, int]:
    """``(n_blocks, walks_per_block)`` of ``"recombined"`` for a game explaining modalities of
    ``kinds``: :data:`RECOMBINED_BUDGET_BY_KIND`'s entry with the most blocks, else
    :data:`RECOMBINED_BUDGET`."""
    found = [RECOMBINED_BUDGET_BY_KIND[k] for k in kinds if k in RECOMBINED_BUDGET_BY_KIND]
    return max(found) if found else RECOMBINED_BUDGET


def exact_is_cheaper(sizes: Sequence[int], plan: RecombinedPlan) -> bool:
    """Whether exact enumeration evaluates no more coalitions and no more sub-masks per
    modality, in all, than ``plan`` (and is allowed at all: at most EXACT_MAX_FEATURES players)."""
    n = int(sum(sizes))
    if n > EXACT_MAX_FEATURES:
        return False
    return 2 ** n <= plan.head_rows and sum(2 ** int(s) for s in sizes) <= sum(plan.encoder_rows)


@dataclass(frozen=True)
class EstimatorChoice:
    """The estimator for one game, the method name its result records, the plan of
    ``"recombined"`` (also when another method was asked for) and the counted costs."""

    estimator: Estimator
    #: recorded as ``settings["method"]``: the method asked for ("auto" too; the result's
    #: ``method`` names the estimator)
    record_as: str
    plan: RecombinedPlan
    #: FLOPs of "exact", "recombined" and the reference on a factorised game, else None (a record only)
    costs: dict[str, float] | None


def choose_estimator(game: Any, method: str, *, n_permutations: int, seed: int, kinds: Sequence[str] = (),
                     n_blocks: int | None = None, n_walks: int | None = None) -> EstimatorChoice:
    """Resolve ``method`` (``"auto"`` or an estimator name) for a game whose output is set.

    ``"recombined"`` (and ``"auto"``) plan ``n_blocks`` blocks (default: by ``kinds``,
    :func:`recombined_budget`) and ``n_walks`` walks in all (default: the kinds' walks per
    block; rounded up to whole blocks). ``"auto"`` is ``"exact"`` where
    :func:`exact_is_cheaper`, else ``"recombined"``. On a factorised game the encoder and head
    FLOPs are counted (one head pass of the full coalition) and recorded.
    """
    sizes = [int(s) for s in game.sizes]
    default_blocks, default_walks = recombined_budget(kinds)
    blocks = default_blocks if n_blocks is None else int(n_blocks)
    per_block = default_walks if n_walks is None else max(1, min(-(-int(n_walks) // blocks), MAX_WALKS // blocks))
    plan = plan_recombined(sizes, blocks, per_block)
    costs = None
    if getattr(game, "factorised", False):
        enc_flops = game.encoder_flops()
        game(np.ones((1, game.n_features), dtype=bool))  # counts the head FLOPs
        flops = [enc_flops[m] for m in game.players]
        h = head_row_flops(game.head_flops_per_row)
        costs = {"exact": exact_flops(sizes, flops, game.head_flops_per_row),
                 "recombined": float(sum(r * f for r, f in zip(plan.encoder_rows, flops)) + plan.head_rows * h),
                 "reference": reference_flops(sizes, game.model_flops(), n_permutations)}
    chosen = method
    if chosen == "auto":
        chosen = "exact" if exact_is_cheaper(sizes, plan) else "recombined"
    common = dict(n_permutations=n_permutations, seed=seed)
    estimator: Estimator
    if chosen == "exact":
        estimator = ExactEstimator(**common)
    elif chosen == "permutation":
        estimator = PermutationEstimator(**common)
    elif chosen == "kernel":
        estimator = KernelEstimator(**common)
    else:
        estimator = RecombinedEstimator(**common, plan=plan)
    return EstimatorChoice(estimator, method, plan, costs)


def describe_estimate(method: str, settings: Mapping[str, Any] | None = None) -> str:
    """One line on how a stored result was estimated, for a table caption: the estimator, its
    budget and where its standard errors come from (``method`` and ``settings`` as stored with
    every explanation row; an older row without them gets what is known)."""
    s = dict(settings or {})
    if method == "exact":
        return "exact (every coalition; no sampling error)"
    if method == "recombined" and s.get("n_blocks"):
        walks = int(s.get("walks_per_block") or 1)
        return (f"recombined, {int(s['n_blocks'])} independent blocks x {walks} walk{'s' if walks > 1 else ''} "
                "(stderr between blocks)")
    if method == "permutation" and s.get("n_permutations"):
        return f"permutation, {int(s['n_permutations'])} independent walks (stderr between walks)"
    if method == "kernel" and s.get("max_evals"):
        return f"kernel SHAP, {int(s['max_evals'])} evaluations (sandwich stderr)"
    return f"{method} (stderr: {s.get('stderr', 'as stored')})"
