"""Explanations of multimodal predictions: MM-SHAP.

Shapley values of tokens, patches, tubes and columns (one masker per
modality kind, built by the kinds of :mod:`core.kinds`), estimated by one of the estimators of
:data:`ESTIMATORS` (exact, permutation, kernel, recombined; :func:`shapley_values`
for any boolean-mask game), summed in absolute value per modality into shares
(:func:`modality_shares`), with the modality game beside them (each modality
one player, its ``2^M`` values kept: exact modality shares, pairwise
interactions, the ``flat`` flag of a prediction that barely depends on its
inputs; :func:`coalition_values`, :func:`exact_shares`,
:func:`pairwise_interactions`, :func:`is_flat`). Every explanation is one :class:`Explanation`;
every setting is one :class:`ExplainSettings` (the ``fusionlens explain`` flags
are made from its fields, :func:`add_explain_arguments`). The engine
(:func:`explain_sample`, :func:`explain_inputs`) plays one sample of a run as a
factorised game (:class:`SampleGame`): each modality's masked variants are
encoded once and only the fusion head runs per coalition. :func:`explain_run`
precomputes a run's test split into ``<run>/explanations/`` (resumable,
shardable); :func:`load_explanations`, :func:`explanation_for`,
:func:`class_share_table` and :func:`class_interaction_table` read it back. Modality blame for errors
(:func:`blame_runs`, ``fusionlens blame``): for every test prediction each
modality's exact Shapley value of the logit margin of the rival vs the true
class, stored as ``<run>/blame.parquet`` (:func:`load_blame`) and summarised per
class (:func:`blame_table`, :func:`blame_sentences`); from the same coalition logits, the modality
game of every test prediction (exact modality shares and interactions of the predicted class's
probability, ``<run>/modality_game.parquet``, :func:`load_modality_game`).
See ``docs/EXPLAIN.md``.

The package by job (private modules; import from here, never from them):

=====================  ==========================================================
``_settings``          ExplainSettings, OutputSpec, PrecomputeOptions, CLI form
``_maskers``           the kinds' maskers by name (players of one modality)
``_players``           one masker per explained modality, through the kinds
``_game``              the factorised SampleGame and FLOP counting
``_estimators/``       one estimator per module behind :class:`Estimator`
``_shapley``           shapley_values / group values / shares of any game
``_interactions``      the modality game: exact shares, pairwise interactions, flat
``_engine``            explain one sample (inputs or a run's sample)
``_runs``              run loading and caching, a sample's record and inputs
``_result``            the Explanation object and its table form
``_store``             explanations/ on disk: write, read, status
``_selection``         which runs and samples a precompute explains
``_precompute``        a run's test split, or several runs' (sharded, resumable)
``_reuse``             embedding tables shared by the runs of one encoder
``_aggregate``         the per-class share and interaction tables
``_blame``             modality blame for errors: the margin game of every test prediction
``_blame_store``       ``blame.parquet`` / ``blame.json``: write, checked read, current or not
``_blame_table``       the blame of errors per class, and its sentences
``_progress``          progress bars and callbacks
=====================  ==========================================================

Names load on first use (PEP 562): ``from core.explain import ExplainSettings``
(the CLI building its parser) or reading stored explanations (a dashboard page)
imports neither torch nor the engine.
"""
from __future__ import annotations

from core.lazy import lazy_exports

#: private module -> the public names it provides
_EXPORTS: dict[str, tuple[str, ...]] = {
    "_settings": (
        "ADAPTIVE_EXPLAINED", "DEFAULT_AUDIO_BANDS", "DEFAULT_AUDIO_SEGMENTS", "DEFAULT_IMAGE_GRID", "DEFAULT_SERIES_SEGMENTS",
        "DEFAULT_VIDEO_GRID", "DEFAULT_VIDEO_SEGMENTS", "ENGINE_MAX_PERMUTATIONS",
        "ENGINE_METHODS", "ENGINE_VERSION",
        "OUTPUT_KINDS", "ExplainSettings", "OutputSpec", "PrecomputeOptions", "add_explain_arguments", "cli_fields",
        "parse_shard", "precompute_command", "settings_argv", "settings_from_args",
    ),
    "_estimators": (
        "AUTO_EXACT_MAX_FEATURES", "ESTIMATORS", "EXACT_MAX_FEATURES", "MAX_BLOCKS", "MAX_PERMUTATIONS", "MAX_WALKS",
        "RECOMBINED_BUDGET",
        "RECOMBINED_BUDGET_BY_KIND", "Estimator", "EstimatorChoice", "ExactEstimator", "KernelEstimator",
        "PermutationEstimator", "RecombinedEstimator", "RecombinedPlan", "ShapleyValues", "choose_estimator",
        "create_estimator", "describe_estimate", "exact_flops", "exact_is_cheaper", "kernel_min_evals", "list_estimators",
        "plan_recombined", "recombined_budget", "recombined_permutations", "reference_flops", "shap_permutations",
        "share_stderr",
    ),
    "_shapley": ("group_shapley_values", "modality_shares", "shapley_values"),
    "_interactions": (
        "FLAT_LOGIT_THRESHOLD", "FLAT_PROB_THRESHOLD", "add_modality_game_columns", "coalition_shapley",
        "coalition_values", "exact_share_column", "exact_shares", "flat_mask", "flat_threshold", "interaction_column",
        "interaction_columns", "interaction_pairs", "interaction_values", "is_flat", "pairwise_interactions",
    ),
    "_maskers": (
        "ColumnMasker", "ImagePatchMasker", "Masker", "MaskerContext", "TextTokenMasker", "VideoTubeMasker",
        "create_masker", "list_maskers", "patch_grid_for_tokens",
    ),
    "_players": ("build_maskers", "fill_values", "modality_kind"),
    "_game": ("SampleGame", "encoder_batch_size", "is_factorisable", "output_function"),
    "_runs": ("resolve_run", "run_dataset", "run_inputs", "sample_record"),
    "_engine": ("explain_inputs", "explain_sample"),
    "_result": ("Explanation", "feature_label", "features_table"),
    "_store": (
        "EXPLANATIONS_DIR", "explanation_for", "explanation_status", "load_explanation",
        "load_explanation_summaries", "load_explanations", "main_settings_hash", "preferred_rows",
    ),
    "_selection": ("fused_run_dirs", "select_build_runs", "select_samples"),
    "_precompute": ("GROUPS_PER_WORKER", "PARALLEL_MIN_SAMPLES", "PASS_WEIGHT_BYTES", "explain_order", "explain_run",
                    "explain_runs", "explain_workers", "run_passes"),
    "_reuse": ("SharedTables", "TableKey", "encoder_identity", "input_digest", "masker_key", "table_key"),
    "_blame_store": (
        "BLAME_FILE", "BLAME_META_FILE", "BLAME_VERSION", "MODALITY_GAME_FILE", "blame_column", "blame_columns",
        "blame_command", "blame_is_current", "blame_path", "current_modality_game", "game_share_rows", "load_blame",
        "load_blame_meta", "load_modality_game",
        "modality_game_columns", "modality_game_path",
    ),
    "_blame_table": ("BLAME_CONFIDENCE", "blame_modalities", "blame_sentences", "blame_table", "format_blame_table"),
    "_blame": ("WHOLE_MODALITY", "blame_frame", "blame_inputs", "blame_run", "blame_runs", "blame_sample",
               "interaction_matrix", "mask_modality", "masked_inputs", "modality_game_frame", "modality_game_table",
               "shapley_matrix"),
    "_aggregate": (
        "ALL_CLASSES", "INTERACTION_CONFIDENCE", "class_interaction_table", "class_share_table",
        "format_class_interaction_table", "format_class_share_table", "interval_text", "share_text",
    ),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
