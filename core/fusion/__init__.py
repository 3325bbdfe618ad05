"""Fusion methods, one registry: ``create_fusion(name, in_dims, dim)``; and classical heads.

The registries are in :mod:`core.fusion.registry`; the intermediate methods
(MultConcat, Concat, Addition, Max, Product, Average, Gated, LMF, Tensor) are in
``_methods`` behind the :class:`FusionMethod` contract (``_base``); the adaptive
strategy (AdaMML: a policy picks the modalities of each temporal segment) is
``_adaptive``'s :class:`AdaptiveHead`, registered as ``adaptive``. The
classical heads' scikit-learn estimators (``logreg``, ``svc-linear``,
``svc-rbf``) are in ``_classical_estimators`` behind the
:class:`ClassicalEstimator` contract; ``_classical`` holds
:class:`ClassicalClassifier`, a fitted pipeline as a torch module. Importing this package registers them all.
"""
from __future__ import annotations

from core.fusion._base import ClassicalEstimator, FusionMethod
from core.fusion.registry import CLASSICAL_ESTIMATORS, FUSIONS, create_fusion, list_classical, list_fusions

from core.fusion import _methods  # noqa: E402,F401,I001  (registers the methods)
from core.fusion._classical_estimators import (  # noqa: E402,I001  (registers the classical estimators)
    AGGREGATIONS,
    CLASSICAL_DEFAULTS,
    classical_name,
    is_classical,
    parse_classical,
)
from core.fusion._classical import MISSING_CLASS_LOGIT, ClassicalClassifier  # noqa: E402,I001
from core.fusion._adaptive import (  # noqa: E402,I001  (registers the adaptive strategy)
    AdaptiveHead,
    adaptive_cost,
    annealed_tau,
    check_cost_weights,
    gumbel_decisions,
    segment_bounds,
    segment_summary,
)

__all__ = [
    "AGGREGATIONS",
    "AdaptiveHead",
    "CLASSICAL_DEFAULTS",
    "CLASSICAL_ESTIMATORS",
    "ClassicalClassifier",
    "ClassicalEstimator",
    "FUSIONS",
    "FusionMethod",
    "MISSING_CLASS_LOGIT",
    "adaptive_cost",
    "annealed_tau",
    "check_cost_weights",
    "classical_name",
    "create_fusion",
    "gumbel_decisions",
    "is_classical",
    "list_classical",
    "list_fusions",
    "parse_classical",
    "segment_bounds",
    "segment_summary",
]
