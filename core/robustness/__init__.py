"""Robustness of every run (``fusionlens robustness``, ``docs/ROBUSTNESS.md``).

Per run, stored as ``<run>/robustness.json`` (:func:`robustness_runs`, read back by
:func:`load_robustness`): the accuracy with each modality missing (filled by the run's own
rule, :func:`missing_rule`), with modalities missing at random (seeded tables, the same for
every run), and under a noise sweep of each modality (one or more noises per modality kind,
:data:`NOISES`, levels 0 to 1) with MultiBench's relative and effective robustness
(:func:`relative_robustness`, :func:`effective_robustness`); for one run, the modality shares
of a few samples' explanations as a modality is degraded.

The package by job (private modules; import from here, never from them):

==============  ==========================================================
``_noise``      the noises of each kind on raw items, the level checks
``_summary``    MultiBench's summaries, the missing-at-random table
``_settings``   RobustnessSettings and the CLI flags made from it
``_report``     ``robustness.json``: write and checked read
``_bank``       one experiment's test subsample and embeddings per condition, shared
``_scorer``     one run under a condition; each strategy's missing-modality rule
``_compute``    each run's table, the baselines, the time budget
``_shares``     explanations of perturbed inputs (share vs noise)
==============  ==========================================================

Names load on first use (PEP 562): reading ``robustness.json`` (the dashboard) imports
neither torch nor the models.
"""
from __future__ import annotations

from core.lazy import lazy_exports

#: private module -> the public names it provides
_EXPORTS: dict[str, tuple[str, ...]] = {
    "_noise": ("AUDIO_SNR_DB", "NOISES", "Noise", "check_level", "fit_noise", "get_noise", "noise_levels",
               "noises_for", "perturb_items", "register_noise", "sample_rng"),
    "_summary": ("effective_robustness", "missing_table", "relative_robustness"),
    "_settings": ("DEFAULT_MISSING_RATES", "DEFAULT_SHARE_LEVELS", "RobustnessSettings", "add_robustness_arguments",
                  "robustness_settings_from_args", "settings_argv"),
    "_report": ("ROBUSTNESS_FILE", "SCHEMA_VERSION", "load_robustness", "robustness_command", "robustness_path",
                "robustness_problems", "write_robustness"),
    "_bank": ("EmbeddingBank", "encoder_source", "subsample"),
    "_scorer": ("FACTORISED", "RULES", "Scorer", "missing_rule"),
    "_compute": ("RunTimes", "compute_table", "format_robustness", "is_current", "robustness_run", "robustness_runs"),
    "_shares": ("share_curves",),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
