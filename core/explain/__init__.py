"""Explanations of multimodal predictions: MM-SHAP.

Shapley values of tokens, patches, tubes and feature entries (one masker per
modality kind, :data:`MASKERS`), estimated by :func:`shapley_values` from a
boolean-mask game, summed in absolute value per modality into shares
(:func:`modality_shares`), with exact modality-level values from
:func:`group_shapley_values`. Every explanation is one :class:`Explanation`.
The engine (:func:`explain_sample`, :func:`explain_inputs`) plays one sample of
a run as a factorised game: each modality's masked variants are encoded once
and only the fusion head runs per coalition. :func:`explain_run` precomputes a
run's test split into ``<run>/explanations/`` (resumable, shardable);
:func:`load_explanations`, :func:`explanation_for` and
:func:`class_share_table` read it back. See ``docs/EXPLAIN.md``.
Import from here, never from the private modules.
"""
from __future__ import annotations

from core.explain._aggregate import ALL_CLASSES, class_share_table, format_class_share_table
from core.explain._engine import (
    ENGINE_METHODS,
    ENGINE_VERSION,
    ExplainSettings,
    OutputSpec,
    SampleGame,
    exact_flops,
    plan_recombined,
    reference_flops,
    explain_inputs,
    explain_sample,
    is_factorisable,
    recombined_permutations,
)
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
from core.explain._precompute import explain_run, parse_shard, select_build_runs, select_samples
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
from core.explain._store import (
    EXPLANATIONS_DIR,
    explanation_for,
    explanation_status,
    load_explanations,
    main_settings_hash,
    preferred_rows,
)


def load_explanation_summaries(run_dir):  # noqa: ANN001, ANN201 - the dashboard adapter's name
    """One row per explained sample (one settings hash, see :func:`preferred_rows`), or None."""
    samples, _ = load_explanations(run_dir)
    return None if samples.empty else preferred_rows(samples)


def load_explanation(run_dir, sample_id):  # noqa: ANN001, ANN201 - the dashboard adapter's name
    """Alias of :func:`explanation_for`."""
    return explanation_for(run_dir, sample_id)


__all__ = [
    "ALL_CLASSES",
    "AUTO_EXACT_MAX_FEATURES",
    "ENGINE_METHODS",
    "ENGINE_VERSION",
    "EXPLANATIONS_DIR",
    "ExplainSettings",
    "OutputSpec",
    "SampleGame",
    "class_share_table",
    "exact_flops",
    "plan_recombined",
    "reference_flops",
    "explain_inputs",
    "explain_run",
    "explain_sample",
    "explanation_for",
    "explanation_status",
    "format_class_share_table",
    "is_factorisable",
    "load_explanation",
    "load_explanation_summaries",
    "load_explanations",
    "parse_shard",
    "main_settings_hash",
    "preferred_rows",
    "recombined_permutations",
    "select_build_runs",
    "select_samples",
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
