"""Explanations of multimodal predictions: MM-SHAP.

Shapley values of tokens, patches, tubes and feature entries (one masker per
modality kind, :data:`MASKERS`), estimated by :func:`shapley_values` from a
boolean-mask game, summed in absolute value per modality into shares
(:func:`modality_shares`), with exact modality-level values from
:func:`group_shapley_values`. Every explanation is one :class:`Explanation`.
Import from here, never from the private modules.
"""
from __future__ import annotations

from core.explain._maskers import (
    MASKERS,
    FeatureMasker,
    ImagePatchMasker,
    Masker,
    TextTokenMasker,
    VideoTubeMasker,
    create_masker,
    list_maskers,
    patch_grid_for_tokens,
)
from core.explain._result import OUTPUT_KINDS, Explanation, feature_label
from core.explain._shapley import (
    AUTO_EXACT_MAX_FEATURES,
    EXACT_MAX_FEATURES,
    MAX_PERMUTATIONS,
    ShapleyValues,
    group_shapley_values,
    kernel_min_evals,
    modality_shares,
    shap_permutations,
    shapley_values,
)

__all__ = [
    "AUTO_EXACT_MAX_FEATURES",
    "EXACT_MAX_FEATURES",
    "MASKERS",
    "MAX_PERMUTATIONS",
    "OUTPUT_KINDS",
    "Explanation",
    "FeatureMasker",
    "ImagePatchMasker",
    "Masker",
    "ShapleyValues",
    "TextTokenMasker",
    "VideoTubeMasker",
    "create_masker",
    "feature_label",
    "group_shapley_values",
    "kernel_min_evals",
    "list_maskers",
    "modality_shares",
    "patch_grid_for_tokens",
    "shap_permutations",
    "shapley_values",
]
