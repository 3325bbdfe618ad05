"""ui.figures.slices: error rate per slice with its interval, against the overall error rate."""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.slices import find_slices, slice_features
from ui.figures import SLICE_COLORS, make_slice_figure


def slices(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.choice(["cat", "dog<b>"], n)                 # a class name that needs escaping in hovers
    variant = rng.choice(["day", "night"], n)
    wrong = rng.random(n) < np.where((label == "cat") & (variant == "night"), 0.5, 0.05)
    view = pd.DataFrame({"id": [f"s{i}" for i in range(n)], "label": label,
                         "pred": np.where(wrong, "other", label), "confidence": rng.random(n), "correct": ~wrong,
                         "dominant": None})
    view["variant"] = variant  # the manifest column, through a dataset-like object
    dataset = type("D", (), {"frame": view[["id", "variant"]], "modalities": {}, "options": {}})()
    return find_slices(slice_features(view.drop(columns="variant"), [], dataset), view["correct"])


def test_bars_intervals_and_the_overall_line():
    table = slices()
    fig = make_slice_figure(table)
    bars = [t for t in fig.data if t.type == "bar"]
    assert sum(len(t.x) for t in bars) == len(table)
    sig = next(t for t in bars if t.name == "Significant")
    assert sig.marker.color == SLICE_COLORS["significant"]
    assert sig.y[0].startswith("#1 ")                           # the best slice, named with its rank
    low = np.asarray(sig.error_x.arrayminus)
    high = np.asarray(sig.error_x.array)
    assert (low >= 0).all() and (high >= 0).all()               # Wilson interval around each rate
    assert fig.layout.xaxis.title.text.startswith("Error rate") and fig.layout.yaxis.title.text == "Slice"
    line = fig.layout.shapes[0]
    assert abs(line.x0 - table["overall_error_rate"].iloc[0]) < 1e-12
    assert all("<b>" not in str(c[0]) for t in bars for c in t.customdata)   # descriptions are escaped
    assert all("<b>" not in y for t in bars for y in t.y)


def test_an_empty_search_says_why():
    table = slices().iloc[:0]
    table.attrs["reason"] = "no error to explain: all 8 test predictions are right"
    fig = make_slice_figure(table)
    assert not fig.data and "no error to explain" in fig.layout.annotations[0].text
