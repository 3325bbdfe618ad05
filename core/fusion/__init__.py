"""Fusion methods, one registry: ``create_fusion(name, in_dims, dim)``."""
from __future__ import annotations

from typing import Any

from core.fusion._base import FusionMethod
from core.registry import Registry

FUSIONS: Registry[FusionMethod] = Registry("fusion method")


def create_fusion(name: str, in_dims: list[int], dim: int = 128, **kwargs: Any) -> FusionMethod:
    return FUSIONS.create(name, in_dims, dim=dim, **kwargs)


def list_fusions(strategy: str | None = None) -> list[str]:
    return FUSIONS.names(strategy=strategy) if strategy else FUSIONS.names()


from core.fusion import _methods  # noqa: E402,F401  (registers the methods)

__all__ = ["FUSIONS", "FusionMethod", "create_fusion", "list_fusions"]
