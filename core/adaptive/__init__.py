"""Adaptive runs (AdaMML): training on cached segment embeddings, and the efficiency report.

The model is :class:`core.model.AdaptiveClassifier` with the head
:class:`core.fusion.AdaptiveHead` (registered as the fusion strategy
``adaptive``); ``core.train.train_adaptive`` builds a run from an experiment's
``[fusion.adaptive]`` table. This package holds what is adaptive-specific
around them (private modules; import from here):

=============  ==============================================================
``_fit``       segment embeddings (cached), the training loop, the stored
               decisions (``decisions.parquet``) and selection rates
``_report``    the reference's efficiency table, the accuracy-vs-GFLOPs
               Pareto front, selection rates per class, a run's decisions
=============  ==============================================================

Names load on first use (PEP 562): a dashboard page reading the report imports
no torch.
"""
from __future__ import annotations

from core.lazy import lazy_exports

#: private module -> the public names it provides
_EXPORTS: dict[str, tuple[str, ...]] = {
    "_fit": (
        "SEGMENT_BATCH", "adaptive_loss", "cached_segment_embeddings", "check_segmentable", "decisions_frame",
        "fit_adaptive", "segment_cache_path", "segment_embeddings", "selection_rates",
    ),
    "_report": (
        "DECISIONS_FILE", "DECISION_COLUMNS", "FUSION_STRATEGIES", "TARGET_DROP", "TARGET_SAVING",
        "class_selection_rates", "efficiency_table", "format_efficiency_table", "idle_samples", "is_adaptive",
        "load_decisions",
        "pareto_front", "reproduce_decisions", "sample_decisions",
    ),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
