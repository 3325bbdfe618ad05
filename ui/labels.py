"""How names are shown on the pages: metrics, prediction columns, subsets and modalities."""
from __future__ import annotations

__all__ = ["METRIC_LABELS", "COLUMN_LABELS", "SUBSET_LABELS", "SUBSETS", "pretty", "pretty_modality"]

METRIC_LABELS: dict[str, str] = {
    "top1": "Top-1 accuracy",
    "top3": "Top-3 accuracy",
    "top5": "Top-5 accuracy",
    "macro_f1": "Macro-F1",
    "n_params": "Parameters",
    "inference_ms": "Inference (ms/sample)",
    "gflops": "GFLOPs / sample",
    "train_seconds": "Training time (s)",
}
# Prediction-table columns as people read them (hover labels, legend titles).
COLUMN_LABELS: dict[str, str] = {"label": "True class", "pred": "Predicted class", "dominant": "Dominant modality",
                                 "id": "Sample"}
#: The prediction subsets of the per-class share table (``core.explain.class_share_table``), in order.
SUBSETS: tuple[str, ...] = ("all", "correct", "incorrect")
SUBSET_LABELS: dict[str, str] = {"all": "All", "correct": "Correct", "incorrect": "Incorrect"}


def pretty(name: str) -> str:
    """Readable name of a column or modality: ``share_rgb`` -> ``RGB share``."""
    name = str(name)
    if name in METRIC_LABELS:
        return METRIC_LABELS[name]
    if name in COLUMN_LABELS:
        return COLUMN_LABELS[name]
    if name.startswith("share_"):
        return f"{pretty_modality(name[6:])} share"
    return name.replace("_", " ").capitalize()


def pretty_modality(name: str) -> str:
    """Readable name of a modality: ``rgb`` -> ``RGB``, ``description`` -> ``Description``."""
    upper = {"rgb": "RGB", "rgbd": "RGB-D"}
    return upper.get(str(name).lower(), str(name).replace("_", " ").capitalize())
