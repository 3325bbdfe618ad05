"""Classification metrics and the predictions table of a run; the uncertainty of a difference
in accuracy between two runs on the same test samples, and of a mean."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from core.errors import DataError


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
    # sklearn only where metrics are computed: the explanation tables import this module for mean_interval
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

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


#: resamples of :func:`paired_accuracy_difference`'s bootstrap
PAIRED_BOOTSTRAP = 10_000


def paired_accuracy_difference(correct_a: Sequence[bool], correct_b: Sequence[bool], *, level: float = 0.95,
                               n_boot: int = PAIRED_BOOTSTRAP, seed: int = 0) -> dict[str, Any]:
    """Accuracy of run ``a`` minus run ``b`` on the same test samples (``correct_*[i]``: sample ``i``
    right), with its paired percentile bootstrap interval and the exact McNemar p-value.

    Paired: a resample draws samples, each with both runs' verdicts, so the interval reflects
    that the runs share their test split (much narrower than comparing two independent
    accuracies). Only the discordant samples (one run right, the other wrong) move the
    difference, so each resample is drawn as multinomial counts of the three kinds of sample:
    the same distribution as resampling rows, at any test size. Returns ``difference``, ``low``,
    ``high`` (fractions, NaN without samples), ``n``, ``a_only`` and ``b_only`` (the discordant
    counts), ``p_value`` (McNemar, exact binomial on the discordant samples), ``level``,
    ``n_boot`` and ``method``.
    """
    a = np.asarray(correct_a, dtype=bool).reshape(-1)
    b = np.asarray(correct_b, dtype=bool).reshape(-1)
    if a.shape != b.shape:
        raise DataError(f"{len(a)} verdicts of one run for {len(b)} of the other",
                        fix="pair the two runs' predictions by sample id first")
    n = int(len(a))
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    out: dict[str, Any] = {"n": n, "a_only": a_only, "b_only": b_only, "level": float(level), "n_boot": int(n_boot),
                           "method": "paired bootstrap", "difference": math.nan, "low": math.nan,
                           "high": math.nan, "p_value": math.nan}
    if n == 0:
        return out
    rng = np.random.default_rng([int(seed), 0xACC])
    counts = rng.multinomial(n, [a_only / n, b_only / n, 1.0 - (a_only + b_only) / n], size=int(n_boot))
    diffs = (counts[:, 0] - counts[:, 1]) / n
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
    discordant = a_only + b_only
    if discordant:
        from scipy.stats import binomtest  # scipy only where a test is computed

        p_value = float(binomtest(a_only, discordant, 0.5).pvalue)
    else:
        p_value = 1.0
    out.update(difference=(a_only - b_only) / n, low=float(low), high=float(high), p_value=p_value)
    return out


def mean_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float, int]:
    """``(mean, low, high, n)`` of the finite ``values``: the Student-t interval of the mean (NaN
    bounds with fewer than 2 values, NaN mean with none)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    n = int(len(v))
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(v.mean())
    if n < 2:
        return mean, math.nan, math.nan, n
    from scipy.stats import t  # scipy only where an interval is computed

    half = float(t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half, n
