"""Trust checks: whether a run's explanations deserve belief (``fusionlens check``, ``docs/TRUST.md``).

Five checks per run, each stored as pass / warn / fail (or skip, when it does
not apply) with its numbers, the samples it rests on and one sentence of
reason, in ``<run>/trust.json`` (:func:`check_run`, read back by
:func:`load_trust`):

1. model randomisation (:func:`randomisation_check`): re-initialise the fusion
   head, then every weight; the |phi| maps must change;
2. designed reliance vs measured shares (:func:`reliance_check`): where the
   dataset says which modality a sample needs (the RGB-D simulator, or a
   ``reliance`` manifest column) or which modality sets alone suffice (the
   five-modality site simulator, or a ``sufficient`` column), the shares must
   follow it;
3. controlled variant (:func:`controlled_check`, ``--controlled``): retrain
   with one modality shuffled across samples; its share must drop toward 0;
4. estimator error (:func:`estimator_check`): shares and standard errors
   against a 10x-budget estimate;
5. shares summary (:func:`shares_summary`): mean shares in both meanings, and
   the predictions that barely depend on their inputs.

The package by job (private modules; import from here, never from them):

==================  ========================================================
``_thresholds``     every pass / warn / fail threshold, named
``_report``         ``trust.json``: results, statuses, write and checked read
``_stats``          Spearman with ties, seeded bootstrap intervals
``_stored``         a run's stored explanations, one settings hash
``_randomisation``  re-initialisation and the cascading randomisation check
``_shares``         the two share meanings, explained rows joined with a ground truth
``_reliance``       the designed reliance and the reliance check
``_sufficient``     the reliance check over sufficient modality sets (five modalities)
``_controlled``     the shuffled sibling experiment and the controlled check
``_estimator``      the high-budget reference and the estimator check
``_summary``        the shares summary
``_check``          all checks of a run (``fusionlens check``)
==================  ========================================================

Names load on first use (PEP 562): reading ``trust.json`` (the dashboard)
imports neither torch nor the explain engine.
"""
from __future__ import annotations

from core.lazy import lazy_exports

#: private module -> the public names it provides
_EXPORTS: dict[str, tuple[str, ...]] = {
    "_thresholds": (
        "CONTROLLED_PASS_FRACTION", "DEFAULT_ESTIMATOR_SAMPLES", "DEFAULT_SAMPLES", "DEFAULT_SECONDS",
        "ESTIMATOR_BUDGET_FACTOR",
        "ESTIMATOR_COVERAGE_FAIL", "ESTIMATOR_COVERAGE_PASS", "ESTIMATOR_SHARE_ERROR_FAIL",
        "ESTIMATOR_SHARE_ERROR_PASS", "LOW_DEPENDENCE_WARN_FRACTION", "RANDOMISATION_FAIL",
        "RANDOMISATION_PASS", "RELIANCE_BOOTSTRAP", "RELIANCE_MIN_PER_GROUP", "RELIANCE_MIN_PER_VARIANT",
        "RELIANCE_RANK_PASS", "thresholds",
    ),
    "_report": (
        "CHECKS", "SCHEMA_VERSION", "STATUSES", "TRUST_FILE", "CheckResult", "check_command", "load_trust",
        "trust_path", "trust_problems", "write_trust",
    ),
    "_stats": ("bootstrap_difference", "spearman"),
    "_stored": ("StoredExplanations", "stored_explanations"),
    "_randomisation": ("RANDOMISATION_MIN_SAMPLES", "STAGES", "randomisation_check", "reinitialise"),
    "_shares": ("SHARE_KINDS", "share_values"),
    "_reliance": ("SIMULATOR_SOURCES", "expected_orders", "reliance_check", "reliance_table", "uses_sufficient"),
    "_sufficient": ("SUFFICIENCY_SCORES", "SUFFICIENT_COLUMN", "parse_sufficient", "sufficiency_score",
                    "sufficient_check"),
    "_controlled": ("CONTROLLED_TAG", "controlled_check", "controlled_name", "prepare_controlled",
                    "shuffle_modality"),
    "_estimator": ("estimator_check", "reference_settings"),
    "_summary": ("shares_summary",),
    "_check": ("TrustSettings", "check_run", "check_runs", "format_trust"),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
