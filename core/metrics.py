"""Classification metrics and the predictions table of a run."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support


def topk_accuracy(y_true: np.ndarray, probs: np.ndarray, k: int) -> float:
    k = min(k, probs.shape[1])
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float((top == y_true[:, None]).any(1).mean()) if len(y_true) else float("nan")


def predictions_frame(ids: Sequence[str], y_true: np.ndarray, probs: np.ndarray, classes: list[str],
                      split: str = "test") -> pd.DataFrame:
    """One row per sample: true label, prediction, confidence and the top-5 labels and probabilities."""
    order = np.argsort(-probs, axis=1, kind="stable")
    pred = order[:, 0]
    cls = np.asarray(classes, dtype=object)
    frame = pd.DataFrame({
        "id": list(ids), "split": split, "label": cls[y_true], "label_idx": y_true.astype(np.int64),
        "pred": cls[pred], "pred_idx": pred.astype(np.int64), "correct": pred == y_true,
        "confidence": probs[np.arange(len(pred)), pred].astype(np.float64),
    })
    for k in range(min(5, probs.shape[1])):
        frame[f"top{k + 1}_label"] = cls[order[:, k]]
        frame[f"top{k + 1}_prob"] = probs[np.arange(len(pred)), order[:, k]].astype(np.float64)
    return frame


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, classes: list[str]) -> dict[str, Any]:
    pred = probs.argmax(1)
    labels = np.arange(len(classes))
    p, r, f, s = precision_recall_fscore_support(y_true, pred, labels=labels, zero_division=0)
    present = np.unique(y_true)
    return {
        "top1": topk_accuracy(y_true, probs, 1),
        "top3": topk_accuracy(y_true, probs, 3),
        "top5": topk_accuracy(y_true, probs, 5),
        # macro-F1 over the classes present in this split, so absent classes do not count as 0
        "macro_f1": float(f1_score(y_true, pred, labels=present, average="macro", zero_division=0)),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
                      for i, c in enumerate(classes)},
        "confusion": {"labels": list(classes), "matrix": confusion_matrix(y_true, pred, labels=labels).tolist()},
        "n_test": int(len(y_true)),
    }
