"""Fusion methods, one registry: ``create_fusion(name, in_dims, dim)``.

The registry is :mod:`core.fusion.registry`; the intermediate methods
(MultConcat, Concat, Addition, Max, Product, Average, Gated, LMF, Tensor) are in
``_methods`` behind the :class:`FusionMethod` contract (``_base``). Importing
this package registers them all.
"""
from __future__ import annotations

from core.fusion._base import FusionMethod
from core.fusion.registry import FUSIONS, create_fusion, list_fusions

from core.fusion import _methods  # noqa: E402,F401,I001  (registers the methods)

__all__ = ["FUSIONS", "FusionMethod", "create_fusion", "list_fusions"]
