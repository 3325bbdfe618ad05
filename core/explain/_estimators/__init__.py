"""Shapley value estimators, one module each, behind one contract (:class:`Estimator`).

``exact`` (every coalition), ``permutation`` (the reference MM-SHAP walk, as
``shap.PermutationExplainer``), ``kernel`` (paired KernelSHAP with leverage
sampling) and ``recombined`` (walks recombined from cached per-modality
orders); ``choice`` holds the ``"auto"`` rules. Importing this package
registers every estimator in :data:`ESTIMATORS`.
"""
from __future__ import annotations

from core.explain._estimators.base import (
    ESTIMATORS,
    HEAD_ROW_OVERHEAD_FLOPS,
    MAX_PERMUTATIONS,
    Estimator,
    Evaluator,
    ShapleyValues,
    ValueFn,
    check_int,
    create_estimator,
    head_row_flops,
    list_estimators,
)
from core.explain._estimators.choice import (
    AUTO_EXACT_COST_RATIO,
    AUTO_EXACT_MAX_FEATURES,
    EstimatorChoice,
    auto_method,
    choose_estimator,
)
from core.explain._estimators.exact import EXACT_MAX_FEATURES, ExactEstimator, exact_flops
from core.explain._estimators.kernel import KernelEstimator, kernel_min_evals
from core.explain._estimators.permutation import PermutationEstimator, reference_flops, shap_permutations
from core.explain._estimators.recombined import (
    MAX_ORDERS,
    MAX_WALKS,
    MIN_ORDERS,
    MIN_WALKS,
    RECOMBINED_BUDGET_DIVISOR,
    WALK_WEIGHT,
    RecombinedEstimator,
    RecombinedPlan,
    plan_for_game,
    plan_recombined,
    recombined_permutations,
)

__all__ = [
    "AUTO_EXACT_COST_RATIO", "AUTO_EXACT_MAX_FEATURES", "ESTIMATORS", "EXACT_MAX_FEATURES", "HEAD_ROW_OVERHEAD_FLOPS",
    "MAX_ORDERS", "MAX_PERMUTATIONS", "MAX_WALKS", "MIN_ORDERS", "MIN_WALKS", "RECOMBINED_BUDGET_DIVISOR",
    "WALK_WEIGHT", "Estimator", "EstimatorChoice", "Evaluator", "ExactEstimator", "KernelEstimator",
    "PermutationEstimator", "RecombinedEstimator", "RecombinedPlan", "ShapleyValues", "ValueFn", "auto_method",
    "check_int", "choose_estimator", "create_estimator", "exact_flops", "head_row_flops", "kernel_min_evals",
    "list_estimators", "plan_for_game", "plan_recombined", "recombined_permutations", "reference_flops",
    "shap_permutations",
]
