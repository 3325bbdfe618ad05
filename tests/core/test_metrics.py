"""core.metrics: top-k accuracy, the predictions table and the metrics of a run, on hand-made cases
whose answers are known."""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.metrics import classification_metrics, predictions_frame, topk_accuracy

CLASSES = ["a", "b", "c", "d"]
# 4 samples, 4 classes: sample 0 right at top-1, sample 1 at top-2, sample 2 at top-3, sample 3 at top-4
PROBS = np.array([
    [0.7, 0.1, 0.1, 0.1],
    [0.5, 0.3, 0.1, 0.1],
    [0.5, 0.3, 0.15, 0.05],
    [0.4, 0.3, 0.2, 0.1],
])
Y = np.array([0, 1, 2, 3])


def test_topk_accuracy_known_answers():
    assert [topk_accuracy(Y, PROBS, k) for k in (1, 2, 3, 4)] == [0.25, 0.5, 0.75, 1.0]
    assert topk_accuracy(Y, PROBS, 10) == 1.0  # k beyond the classes: every class
    assert math.isnan(topk_accuracy(np.array([], dtype=int), np.zeros((0, 4)), 1))


def test_ties_go_to_the_first_class():
    probs = np.array([[0.4, 0.4, 0.2]])
    assert topk_accuracy(np.array([0]), probs, 1) == 1.0 and topk_accuracy(np.array([1]), probs, 1) == 0.0
    frame = predictions_frame(["s"], np.array([1]), probs, ["x", "y", "z"])
    assert frame.loc[0, "pred"] == "x" and frame.loc[0, "top2_label"] == "y"


def test_predictions_frame_columns_and_values():
    frame = predictions_frame(["s0", "s1", "s2", "s3"], Y, PROBS, CLASSES)
    assert list(frame["id"]) == ["s0", "s1", "s2", "s3"] and (frame["split"] == "test").all()
    assert list(frame["label"]) == CLASSES and list(frame["pred"]) == ["a", "a", "a", "a"]
    assert list(frame["correct"]) == [True, False, False, False]
    assert np.allclose(frame["confidence"], [0.7, 0.5, 0.5, 0.4])
    assert [c for c in frame.columns if c.startswith("top")] == [f"top{k}_{w}" for k in range(1, 5)
                                                                 for w in ("label", "prob")]
    assert list(frame.loc[2, ["top1_label", "top2_label", "top3_label"]]) == ["a", "b", "c"]
    assert frame["top1_prob"].equals(frame["confidence"])
    # at most 5 ranks stored, whatever the number of classes
    many = predictions_frame(["x"], np.array([0]), np.full((1, 9), 1 / 9), [str(i) for i in range(9)])
    assert "top5_label" in many.columns and "top6_label" not in many.columns


def test_classification_metrics_known_answers():
    m = classification_metrics(Y, PROBS, CLASSES)
    assert (m["top1"], m["top3"], m["top5"]) == (0.25, 0.75, 1.0)
    assert m["n_test"] == 4
    assert m["confusion"] == {"labels": CLASSES, "matrix": [[1, 0, 0, 0]] * 4}
    # every prediction is a: class a has precision 1/4, recall 1, F1 2 * 0.25 / 1.25 = 0.4; the others 0
    assert m["per_class"]["a"] == pytest.approx({"precision": 0.25, "recall": 1.0, "f1": 0.4, "support": 1})
    assert m["per_class"]["b"]["f1"] == 0.0 and m["per_class"]["b"]["support"] == 1
    assert m["macro_f1"] == pytest.approx(0.4 / 4)


def test_macro_f1_counts_only_the_classes_present():
    y = np.array([0, 0, 1, 1])  # classes c and d absent from this split
    probs = np.eye(4)[[0, 0, 1, 1]] * 0.9 + 0.025
    m = classification_metrics(y, probs, CLASSES)
    assert m["macro_f1"] == 1.0 and m["top1"] == 1.0
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


# --------------------------------------------------------------------------- paired differences and mean intervals


def test_paired_accuracy_difference_counts_only_the_discordant_samples():
    from core.metrics import paired_accuracy_difference

    # 200 samples: both right on 150, both wrong on 30, only a right on 15, only b right on 5
    a = np.array([1] * 150 + [0] * 30 + [1] * 15 + [0] * 5, dtype=bool)
    b = np.array([1] * 150 + [0] * 30 + [0] * 15 + [1] * 5, dtype=bool)
    out = paired_accuracy_difference(a, b, seed=0)
    assert (out["n"], out["a_only"], out["b_only"]) == (200, 15, 5)
    assert out["difference"] == pytest.approx(10 / 200, abs=1e-15)  # (15 - 5) / 200, exact counts
    assert out["low"] < out["difference"] < out["high"]
    # the bootstrap's spread is the discordant counts' own: sd of the mean difference
    sd = math.sqrt((20 / 200 - (10 / 200) ** 2) / 200)
    assert out["high"] - out["low"] == pytest.approx(2 * 1.96 * sd, rel=0.1)
    assert out["p_value"] == pytest.approx(0.0414, abs=1e-3)  # exact binomial: 15 of 20 discordant
    # the same verdicts: nothing to tell apart
    same = paired_accuracy_difference(a, a)
    assert (same["difference"], same["low"], same["high"], same["p_value"]) == (0.0, 0.0, 0.0, 1.0)
    # a and b swapped: the interval mirrors (same seed, counts drawn the other way round)
    flipped = paired_accuracy_difference(b, a, seed=0)
    assert flipped["difference"] == -out["difference"] and flipped["p_value"] == pytest.approx(out["p_value"])


def test_paired_accuracy_difference_edge_cases():
    from core.errors import DataError
    from core.metrics import paired_accuracy_difference

    empty = paired_accuracy_difference([], [])
    assert empty["n"] == 0 and math.isnan(empty["difference"]) and math.isnan(empty["low"])
    with pytest.raises(DataError, match="pair the two runs"):
        paired_accuracy_difference([True, False], [True])
    seeded = [paired_accuracy_difference([1, 0, 1, 1], [0, 0, 1, 0], seed=3)[k] for k in ("low", "high")]
    assert seeded == [paired_accuracy_difference([1, 0, 1, 1], [0, 0, 1, 0], seed=3)[k] for k in ("low", "high")]


def test_mean_interval_is_the_student_t_interval():
    from scipy import stats

    from core.metrics import mean_interval

    values = [0.2, 0.4, 0.5, 0.9, float("nan")]
    mean, low, high, n = mean_interval(values)
    ref_low, ref_high = stats.t.interval(0.95, 3, loc=0.5, scale=stats.sem([0.2, 0.4, 0.5, 0.9]))
    assert n == 4 and mean == pytest.approx(0.5, abs=1e-15)
    assert (low, high) == (pytest.approx(ref_low, abs=1e-12), pytest.approx(ref_high, abs=1e-12))
    one = mean_interval([0.3])
    assert one[0] == 0.3 and math.isnan(one[1]) and one[3] == 1
    assert mean_interval([])[3] == 0 and math.isnan(mean_interval([])[0])
