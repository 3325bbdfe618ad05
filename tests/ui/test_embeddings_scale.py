"""Embeddings at scale: the density figure, its payload, and selection by the drawn region."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.io as pio

from ui import figures as F
from ui import queries as Q


def _coords(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    xy = rng.normal(size=(n, 2)).astype(np.float32)
    return pd.DataFrame({"id": [f"s{i}" for i in range(n)], "x": xy[:, 0], "y": xy[:, 1],
                         "label": rng.choice(["a", "b", "c"], size=n)})


def test_density_figure_bins_every_point_and_stays_small():
    coords = _coords(50_000)
    fig = F.make_density_figure(coords, "fused · PCA", axis_label="PCA", bins=100, overlay=500,
                                highlight_id="s7")
    heat = fig.data[0]
    assert heat.type == "heatmap"
    assert int(np.asarray(heat.customdata).sum()) == 50_000          # every point is in a bin
    kinds = [t.type for t in fig.data]
    assert kinds == ["heatmap", "scattergl", "scattergl"]            # sample on top, then the ringed sample
    assert len(fig.data[1].x) == 500 and set(fig.data[1].customdata) <= set(coords["id"])
    assert fig.layout.xaxis.title.text == "PCA 1" and fig.layout.yaxis.title.text == "PCA 2"
    # the payload does not grow with the points (the scatter's does)
    dense = len(pio.to_json(fig, validate=False))
    scatter = len(pio.to_json(F.make_embedding_figure(coords, "label", ["label"], "t"), validate=False))
    assert dense < scatter / 5
    assert len(pio.to_json(F.make_density_figure(_coords(200_000), bins=100, overlay=500), validate=False)) \
        < 2 * dense


def test_large_scatter_hover_names_only_the_sample_and_its_colour():
    coords = _coords(120_000)
    fig = F.make_embedding_figure(coords, "label", ["label", "pred"], "t")
    assert all("<br>" in t and t.count("<br>") == 1 for t in fig.data[0].text[:10])


def test_ids_in_selection_takes_every_point_inside_the_region():
    coords = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [0.5, 1.5], [5.0, 5.0]])
    ids = ["a", "b", "c", "d", "e"]
    box = {"selection": {"points": [], "box": [{"xref": "x", "yref": "y", "x": [0.9, 2.1], "y": [2.1, 0.9]}],
                         "lasso": []}}
    assert Q.ids_in_selection(box, ids, coords) == ["b", "c"]
    # a triangle around (0,0) (3,0) (0,3): a, b and d are inside, c and e are not
    lasso = {"selection": {"points": [{"customdata": "e"}], "box": [],
                           "lasso": [{"x": [-0.1, 3.0, -0.1], "y": [-0.1, -0.1, 3.0]}]}}
    assert Q.ids_in_selection(lasso, ids, coords) == ["a", "b", "d", "e"]   # region, then the clicked point
    assert Q.ids_in_selection(None, ids, coords) == []
    assert Q.ids_in_selection({"selection": {"points": [], "box": [], "lasso": []}}, ids, coords) == []
