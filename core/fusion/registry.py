"""The fusion registries, :data:`FUSIONS` and :data:`CLASSICAL_ESTIMATORS` (the timm pattern).

``@FUSIONS.register("concat", strategy="intermediate")`` on a
:class:`~core.fusion.FusionMethod` registers it; :func:`create_fusion` builds
one by name and :func:`list_fusions` lists them (by strategy).
:data:`CLASSICAL_ESTIMATORS` holds the scikit-learn estimators of the classical
heads (``logreg``, ``svc-linear``, ``svc-rbf``, in ``_classical_estimators``), each with
the aggregations it supports; :func:`list_classical` lists the head names. The
registries live in a module of their own, apart from the package ``__init__``
that imports the methods, so registering never imports the package that is
still being imported.
"""
from __future__ import annotations

from typing import Any

from core.fusion._base import ClassicalEstimator, FusionMethod
from core.registry import Registry

FUSIONS: Registry[FusionMethod] = Registry("fusion method")
#: ``@CLASSICAL_ESTIMATORS.register("logreg", label=..., aggregations=(...))`` on a ClassicalEstimator
CLASSICAL_ESTIMATORS: Registry[ClassicalEstimator] = Registry("classical estimator")


def create_fusion(name: str, in_dims: list[int], dim: int = 128, **kwargs: Any) -> FusionMethod:
    """Build the registered fusion method ``name`` for inputs of ``in_dims``; unknown names list the known ones."""
    return FUSIONS.create(name, in_dims, dim=dim, **kwargs)


def list_fusions(strategy: str | None = None) -> list[str]:
    """The registered fusion methods, or those of one ``strategy`` (``intermediate``, ...)."""
    return FUSIONS.names(strategy=strategy) if strategy else FUSIONS.names()


def list_classical() -> list[str]:
    """Every classical head name, ``<estimator>-<aggregation>`` (``logreg-early``, ``svc-rbf-late``, ...)."""
    return [f"{e}-{a}" for e in CLASSICAL_ESTIMATORS.names() for a in CLASSICAL_ESTIMATORS.meta(e)["aggregations"]]
