"""Shapley value estimators, one module each, behind one contract (:class:`Estimator`).

``exact`` (every coalition), ``permutation`` (the reference MM-SHAP walk, as
``shap.PermutationExplainer``), ``kernel`` (paired KernelSHAP with leverage
sampling) and ``recombined`` (walks in independent blocks, each recombining
one order per modality); ``choice`` holds the ``"auto"`` rules and the
engine's budget, ``uncertainty`` the standard error of the shares. Importing
this package registers every estimator in :data:`ESTIMATORS`.
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
    AUTO_EXACT_MAX_FEATURES,
    RECOMBINED_BUDGET,
    RECOMBINED_BUDGET_BY_KIND,
    EstimatorChoice,
    auto_method,
    choose_estimator,
    describe_estimate,
    exact_is_cheaper,
    recombined_budget,
)
from core.explain._estimators.exact import EXACT_MAX_FEATURES, ExactEstimator, exact_flops
from core.explain._estimators.kernel import KernelEstimator, kernel_min_evals
from core.explain._estimators.permutation import (
    PermutationEstimator,
    reference_flops,
    replicate_stderr,
    shap_permutations,
    walk_contributions,
)
from core.explain._estimators.recombined import (
    MAX_BLOCKS,
    MAX_WALKS,
    RecombinedEstimator,
    RecombinedPlan,
    plan_recombined,
    recombined_permutations,
)
from core.explain._estimators.uncertainty import share_stderr

__all__ = [
    "AUTO_EXACT_MAX_FEATURES", "ESTIMATORS", "EXACT_MAX_FEATURES", "HEAD_ROW_OVERHEAD_FLOPS", "MAX_BLOCKS",
    "MAX_PERMUTATIONS", "MAX_WALKS", "RECOMBINED_BUDGET", "RECOMBINED_BUDGET_BY_KIND", "Estimator",
    "EstimatorChoice", "Evaluator", "ExactEstimator", "KernelEstimator", "PermutationEstimator",
    "RecombinedEstimator", "RecombinedPlan", "ShapleyValues", "ValueFn", "auto_method", "check_int",
    "choose_estimator", "create_estimator", "describe_estimate", "exact_flops", "exact_is_cheaper",
    "head_row_flops", "kernel_min_evals", "list_estimators", "plan_recombined", "recombined_budget",
    "recombined_permutations", "reference_flops", "replicate_stderr", "shap_permutations", "share_stderr",
    "walk_contributions",
]
