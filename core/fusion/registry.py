"""The fusion-method registry, :data:`FUSIONS` (the timm pattern).

``@FUSIONS.register("concat", strategy="intermediate")`` on a
:class:`~core.fusion.FusionMethod` registers it; :func:`create_fusion` builds
one by name and :func:`list_fusions` lists them (by strategy). The registry
lives in its own module, apart from the package ``__init__`` that imports the
methods, so registering never imports the package that is still being imported.
"""
from __future__ import annotations

from typing import Any

from core.fusion._base import FusionMethod
from core.registry import Registry

FUSIONS: Registry[FusionMethod] = Registry("fusion method")


def create_fusion(name: str, in_dims: list[int], dim: int = 128, **kwargs: Any) -> FusionMethod:
    """Build the registered fusion method ``name`` for inputs of ``in_dims``; unknown names list the known ones."""
    return FUSIONS.create(name, in_dims, dim=dim, **kwargs)


def list_fusions(strategy: str | None = None) -> list[str]:
    """The registered fusion methods, or those of one ``strategy`` (``intermediate``, ...)."""
    return FUSIONS.names(strategy=strategy) if strategy else FUSIONS.names()
