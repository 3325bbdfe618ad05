"""The site's positioning tags: a per-clip location summary and 10 Hz trajectories, from one scene.

Every worker wears a tag; the grey posts wear none; the excavator carries its
own tag, and its machine control knows the cabin and bucket relative to it.
The site frame is the simulator's world frame: x along the track, y across it
(the track's centre line is y = 0), metres.

* :func:`render_location`: what a tag-based safety system reports for the last
  :data:`LOCATION_WINDOW_S` seconds of the clip (when the classes are decided):
  the nearest worker tag's distance to the bucket's ground point, to the cabin
  and to the machine's tag, how many worker tags are within the swing radius,
  and whether any is in the swing zone or in the travel path. Each worker
  tag's reading is its true position plus a per-clip offset (sd
  :data:`TAG_BIAS_M` per axis: multipath, the anchors' geometry) plus
  per-reading noise (sd :data:`TAG_NOISE_M`), averaged over the window's 4 Hz
  readings; the machine's points carry a small shared offset (sd 0.3 m). A
  distance with no worker tag in range reads :data:`TAG_RANGE_M`.
* :func:`render_trajectory`: (T, C) float32 at :data:`TRAJECTORY_RATE` over
  the clip, channels :data:`TRAJECTORY_CHANNELS`: the nearest and second
  nearest worker tags (by mean distance to the machine's tag; a tag does not
  know which worker defines the clip) and the machine's tag with its heading.
  Worker tags carry the same kind of per-clip offset as in the location
  summary (sd :data:`TAG_BIAS_M` per axis) and correlated noise (sd 0.3 m,
  AR(1) with rho 0.8); the machine's tag 0.3 m and 0.1 m. Lost fixes are NaN gaps of 1-6
  steps in one tag's channels (never a whole channel); a slot with no tag
  reads 0 with its ``*_tag`` channel 0.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from core.data.rgbd_sim._site import DURATION_S
from core.data.rgbd_sim._timeline import Timeline

#: Tag readings per second for the location summary.
LOCATION_RATE = 4
#: The location summary covers the clip's last seconds (the class holds from 65 % of the clip on).
LOCATION_WINDOW_S = 1.5
#: A worker tag's per-clip offset (sd per axis, m) and per-reading noise in the location summary.
TAG_BIAS_M = 1.0
TAG_NOISE_M = 0.5
#: Tags farther than this from the machine are out of range; a distance with no tag in range reads this.
TAG_RANGE_M = 30.0
#: Location summary columns (manifest columns of the ``site-sim`` source), all finite numbers.
LOCATION_COLUMNS = ("loc_tags", "loc_bucket_m", "loc_cabin_m", "loc_machine_m", "loc_swing_tags",
                    "loc_in_swing_zone", "loc_in_travel_path")
#: Trajectory samples per second (40 steps over a clip).
TRAJECTORY_RATE = 10
#: Trajectory channels, in order (site frame, metres; heading of the machine's undercarriage).
TRAJECTORY_CHANNELS = ("worker1_x", "worker1_y", "worker2_x", "worker2_y", "excavator_x", "excavator_y",
                       "heading_sin", "heading_cos", "worker1_tag", "worker2_tag")

_MACHINE_BIAS_M = 0.3
_SWING_MARGIN_M = 1.2      # the swing zone reaches this far past the bucket's farthest reach
_PATH_AHEAD_M = 6.0        # the travel path: this far ahead of the tracks ...
_PATH_HALF_W = 2.5         # ... and this wide either side of the machine's axis
_TRACK_HALF_LEN = 2.2


def _horizontal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.hypot(a[..., 0] - b[..., 0], a[..., 1] - b[..., 1])


def render_location(tl: Timeline, rng: np.random.Generator) -> dict[str, float]:
    """The location summary of the clip (:data:`LOCATION_COLUMNS`); ``tl`` samples it at LOCATION_RATE."""
    window = tl.times >= DURATION_S - LOCATION_WINDOW_S
    machine = rng.normal(0.0, _MACHINE_BIAS_M, 2)
    center = tl.center[window, :2].mean(axis=0) + machine
    bucket = tl.bucket[window, :2].mean(axis=0) + machine
    cabin = tl.cabin[window, :2].mean(axis=0) + machine
    yaw = float(tl.track_yaw[window].mean())
    swing_r = float(np.max(np.hypot(tl.bucket[:, 0] - tl.center[:, 0], tl.bucket[:, 1] - tl.center[:, 1]))
                    + _SWING_MARGIN_M)
    tags = []
    for w in tl.workers:
        bias = rng.normal(0.0, TAG_BIAS_M, 2)
        reads = w.pos[window, :2] + bias + rng.normal(0.0, TAG_NOISE_M, (int(window.sum()), 2))
        tags.append(reads.mean(axis=0))
    tags_a = np.array(tags).reshape(-1, 2)
    tags_a = tags_a[_horizontal(tags_a, center) <= TAG_RANGE_M]
    if len(tags_a) == 0:
        return {"loc_tags": 0.0, "loc_bucket_m": TAG_RANGE_M, "loc_cabin_m": TAG_RANGE_M,
                "loc_machine_m": TAG_RANGE_M, "loc_swing_tags": 0.0, "loc_in_swing_zone": 0.0,
                "loc_in_travel_path": 0.0}
    d_machine = _horizontal(tags_a, center)
    rel = tags_a - center
    along = rel[:, 0] * math.cos(yaw) + rel[:, 1] * math.sin(yaw)
    across = -rel[:, 0] * math.sin(yaw) + rel[:, 1] * math.cos(yaw)
    # the machine drives forward along its tracks' heading
    in_path = (along > _TRACK_HALF_LEN) & (along < _TRACK_HALF_LEN + _PATH_AHEAD_M) & (np.abs(across) < _PATH_HALF_W)
    n_swing = int((d_machine <= swing_r).sum())
    return {
        "loc_tags": float(len(tags_a)),
        "loc_bucket_m": round(float(_horizontal(tags_a, bucket).min()), 3),
        "loc_cabin_m": round(float(_horizontal(tags_a, cabin).min()), 3),
        "loc_machine_m": round(float(d_machine.min()), 3),
        "loc_swing_tags": float(n_swing),
        "loc_in_swing_zone": float(n_swing > 0),
        "loc_in_travel_path": float(in_path.any()),
    }


def _noise(rng: np.random.Generator, n: int, bias: float, sd: float) -> np.ndarray:
    """(n, 2): a per-clip offset plus AR(1) noise (rho 0.8) of standard deviation ``sd``."""
    rho = 0.8
    e = rng.normal(0.0, sd * math.sqrt(1 - rho ** 2), (n, 2))
    out = np.empty((n, 2))
    out[0] = rng.normal(0.0, sd, 2)
    for k in range(1, n):
        out[k] = rho * out[k - 1] + e[k]
    return out + rng.normal(0.0, bias, 2)


def _dropouts(rng: np.random.Generator, n: int) -> np.ndarray:
    """A mask (n,) of lost fixes: a few gaps of 1-6 steps, at most half the steps, never all of them."""
    lost = np.zeros(n, bool)
    for _ in range(int(rng.poisson(1.0))):
        length = int(rng.integers(1, 7))
        start = int(rng.integers(0, max(1, n - length + 1)))
        trial = lost.copy()
        trial[start:start + length] = True
        if trial.sum() <= n // 2:
            lost = trial
    return lost


def render_trajectory(tl: Timeline, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(noisy, clean)``: (T, C) float32 trajectories (:data:`TRAJECTORY_CHANNELS`), the first with tag
    noise and NaN gaps, the second the true positions; ``tl`` samples the clip at TRAJECTORY_RATE."""
    n = len(tl.times)
    clean = np.zeros((n, len(TRAJECTORY_CHANNELS)))
    noisy = np.zeros_like(clean)
    order = sorted(range(len(tl.workers)),
                   key=lambda i: float(_horizontal(tl.workers[i].pos, tl.center).mean()))
    for slot, i in enumerate(order[:2]):
        pos = tl.workers[i].pos[:, :2]
        cols = [2 * slot, 2 * slot + 1]
        clean[:, cols] = pos
        noisy[:, cols] = pos + _noise(rng, n, TAG_BIAS_M, 0.3)
        noisy[_dropouts(rng, n), 2 * slot:2 * slot + 2] = np.nan
        clean[:, 8 + slot] = noisy[:, 8 + slot] = 1.0
    clean[:, 4:6] = tl.center[:, :2]
    clean[:, 6], clean[:, 7] = np.sin(tl.track_yaw), np.cos(tl.track_yaw)
    noisy[:, 4:6] = tl.center[:, :2] + _noise(rng, n, _MACHINE_BIAS_M, 0.1)
    heading = tl.track_yaw + rng.normal(0.0, 0.05, n)
    noisy[:, 6], noisy[:, 7] = np.sin(heading), np.cos(heading)
    noisy[_dropouts(rng, n), 4:8] = np.nan
    return noisy.astype(np.float32), clean.astype(np.float32)


def location_meta(tl: Timeline) -> dict[str, Any]:
    """The true (noise-free) distances behind the location summary, for the record."""
    window = tl.times >= DURATION_S - LOCATION_WINDOW_S
    if not tl.workers:
        return {"true_bucket_m": None, "true_cabin_m": None}
    pos = np.array([w.pos[window, :2].mean(axis=0) for w in tl.workers])
    return {"true_bucket_m": round(float(_horizontal(pos, tl.bucket[window, :2].mean(axis=0)).min()), 3),
            "true_cabin_m": round(float(_horizontal(pos, tl.cabin[window, :2].mean(axis=0)).min()), 3)}
