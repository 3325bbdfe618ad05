"""The time-series figures: segment bands over the channels, the track map, and how a resampled
segment maps back onto the series as loaded."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ui import figures as F
from ui.figures.series import pair_name, point_contributions, segment_span

CHANNELS = ["worker_x", "worker_y", "speed"]


def _series(t: int = 21) -> np.ndarray:
    return np.stack([np.linspace(0, 4, t), np.linspace(3, 1, t), np.ones(t)], axis=1)


def _players(length: int = 8) -> pd.DataFrame:
    """2 segments x 2 groups over a series resampled to ``length`` steps."""
    half = length // 2
    return pd.DataFrame({"segment": [0, 0, 1, 1], "group": [0, 1, 0, 1], "t0": [0, 0, half, half],
                         "t1": [half, half, length, length], "channels": ["worker_x, worker_y", "speed"] * 2,
                         "phi": [0.2, -0.1, -0.4, 0.0]})


def test_segments_map_back_onto_the_loaded_series():
    assert segment_span(0, 4, 8, 21) == (0.0, 3.5 * 20 / 7)  # neighbours meet halfway between steps
    assert segment_span(4, 8, 8, 21) == (3.5 * 20 / 7, 20.0)
    values = point_contributions(21, _players(), group=0)
    assert values.shape == (21,) and values[0] == 0.2 and values[-1] == -0.4
    assert set(values.tolist()) == {0.2, -0.4}
    assert point_contributions(21, _players(), group=1)[-1] == 0.0
    assert np.isnan(point_contributions(21, _players(), group=5)).all()  # no such group: nothing covers it


def test_series_figure_shades_each_player_by_sign_and_size():
    fig = F.make_series_figure(_series(), CHANNELS, contributions=_players(),
                               groups=[["worker_x", "worker_y"], ["speed"]], color="#009E73", title="t")
    lines = [t for t in fig.data if t.mode == "lines"]
    assert [t.name for t in lines] == CHANNELS and {t.line.color for t in lines} == {"#009E73"}
    assert len({t.line.dash for t in lines}) == 3  # one line style per channel
    bands = fig.layout.shapes
    assert len(bands) == 4  # panel by panel: group 0's segments, then group 1's
    assert [b.fillcolor for b in bands] == ["#B2182B", "#2166AC", "#2166AC", "#B2182B"]
    np.testing.assert_allclose([b.opacity for b in bands], [0.25, 0.5, 0.125, 0.0])  # |phi| / max |phi| / 2
    assert fig.layout.xaxis2.title.text == "Time step" and fig.layout.yaxis.title.text == "Value"
    plain = F.make_series_figure(_series(), CHANNELS, title="t")
    assert not plain.layout.shapes and len(plain.data) == 3


def test_track_map_is_metres_at_equal_aspect_coloured_by_segment():
    fig = F.make_track_figure(_series(), CHANNELS, ["worker_x", "worker_y"], contributions=_players(),
                              groups=[["worker_x", "worker_y"], ["speed"]], title="map")
    (trace,) = fig.data
    assert trace.name == "worker" and list(trace.x) == list(_series()[:, 0])
    assert set(np.asarray(trace.marker.color).tolist()) == {0.2, -0.4} and trace.marker.symbol[0] == "diamond"
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.xaxis.title.text == "x (m)"
    assert fig.layout.yaxis.title.text == "y (m)"
    assert F.make_track_figure(_series(), CHANNELS, ["north", "east"]).layout.annotations  # nothing to draw
    assert pair_name("worker_x", "worker_y") == "worker" and pair_name("lon", "lat") == "lon/lat"
