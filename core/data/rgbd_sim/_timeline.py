"""The scene's actors at any time: the excavator's pose and key points, the workers' positions and speeds.

The RGB-D camera sees the scene at its frame times only; the microphone and
the positioning tags sample it at their own rates (100 Hz control points for
the audio envelopes, 10 Hz for trajectories, 4 Hz for tag readings). Every
actor's motion is an analytic program drawn once by ``_motion``
(:func:`~core.data.rgbd_sim._motion.excavator_pose`,
:func:`~core.data.rgbd_sim._motion.worker_track`), so :func:`sample_timeline`
evaluates the very motion the frames show, at any time, without interpolating
between frames. Only the beacon's flashing is defined per frame, and no other
modality uses it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.data.rgbd_sim._actors import excavator_points
from core.data.rgbd_sim._motion import excavator_pose, worker_track
from core.data.rgbd_sim._scene import Scene


@dataclass
class WorkerTimeline:
    """One worker at the timeline's times: feet ``pos`` (N, 3), walking ``speed`` (N,) m/s, whether he is
    the clip's ``key`` worker, and ``walking`` (he walks at some time of the clip)."""

    pos: np.ndarray
    speed: np.ndarray
    key: bool
    walking: bool


@dataclass
class Timeline:
    """The actors at ``times`` (N,): the excavator's ``center``, ``cabin``, ``bucket``, ``engine`` (N, 3),
    its ``track_yaw``/``house_yaw``, the arm's ``alpha``/``beta`` (boom and stick pitch, rad) and tip
    ``reach``/``tip_z`` (m), its program (``mode``, ``operating``, ``driving``, ``drive_speed`` m/s), the
    workers (the key worker first when there is one) and the posts' positions (they never move)."""

    times: np.ndarray
    center: np.ndarray
    track_yaw: np.ndarray
    house_yaw: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    reach: np.ndarray
    tip_z: np.ndarray
    cabin: np.ndarray
    bucket: np.ndarray
    engine: np.ndarray
    mode: str
    operating: bool
    driving: bool
    drive_speed: float
    workers: list[WorkerTimeline] = field(default_factory=list)
    posts: list[np.ndarray] = field(default_factory=list)


def sample_timeline(scene: Scene, times: np.ndarray) -> Timeline:
    """The actors of ``scene`` at ``times`` (seconds, any rate within the clip)."""
    times = np.asarray(times, np.float64)
    ex: dict[str, Any] = scene.excavator
    poses = [excavator_pose(ex["program"], float(t)) for t in times]
    col = {k: np.array([p[k] for p in poses], np.float64) for k in
           ("x", "y", "track_yaw", "house_yaw", "alpha", "beta", "curl", "reach", "tip_z")}
    center = np.stack([col["x"], col["y"], np.zeros(len(times))], axis=1)
    pts = excavator_points(center, col["house_yaw"], col["alpha"], col["beta"], col["curl"])
    workers = []
    if scene.key_worker is not None:
        pos, speed = worker_track(scene.key_worker, times)
        workers.append(WorkerTimeline(pos, speed, True, bool(scene.key_worker["walking"])))
    for w in scene.others:
        pos, speed = worker_track(w, times)
        workers.append(WorkerTimeline(pos, speed, False, bool(w["walking"])))
    return Timeline(times=times, center=center, track_yaw=col["track_yaw"], house_yaw=col["house_yaw"],
                    alpha=col["alpha"], beta=col["beta"], reach=col["reach"], tip_z=col["tip_z"],
                    cabin=pts["cabin"], bucket=pts["bucket"], engine=pts["engine"], mode=ex["mode"],
                    operating=bool(ex["operating"]), driving=bool(ex["drive"]), drive_speed=float(ex["speed"]),
                    workers=workers, posts=[np.asarray(p, np.float64) for p, _, _ in scene.posts])
