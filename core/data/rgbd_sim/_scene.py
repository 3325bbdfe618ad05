"""One clip's scene over time, computed once; every modality is rendered from it.

A :class:`Scene` holds what the scenario sampler decided (the variant, the
excavator's states and key points per frame, the workers' trajectories, posts,
props, the camera, the lighting) at every frame time. Renderers read it and
never draw from the clip's generator themselves, so a new modality (audio, tag
positions, trajectories) is a new renderer over the same scene.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.data.rgbd_sim._actors import excavator_boxes, worker_boxes
from core.data.rgbd_sim._geometry import BoxList, Camera
from core.data.rgbd_sim._site import PART_IDS


@dataclass
class Scene:
    """The sampled scene of one clip at each of its frame ``times`` (seconds).

    ``excavator`` holds its per-frame ``states`` (position, yaws, arm angles,
    beacon) and its program (``mode``, ``operating``, ``drive``, ``speed``,
    ``heading``, ``side``); ``kinematics`` its key points per frame (centre,
    cabin, beacon, bucket, ...). ``key_worker`` is the trajectory (``pos``,
    ``heading``, ``gait``, ``swing``, ``walking``) of the worker that defines
    the clip, or None; ``others`` are the other workers' trajectories (with
    ``height`` and ``look``); ``posts`` are (position, yaw, height); ``static``
    holds the boxes that never move (track, posts, props).
    """

    label: str
    variant: str
    times: np.ndarray
    look: dict[str, Any]
    excavator: dict[str, Any]
    kinematics: list[dict[str, Any]]
    palette: dict[str, Any]
    camera: Camera
    key_worker: dict[str, Any] | None
    key_height: float
    key_look: dict[str, Any]
    others: list[dict[str, Any]]
    posts: list[tuple[np.ndarray, float, float]]
    static: BoxList
    target: np.ndarray

    @property
    def frames(self) -> int:
        return len(self.times)

    def moving_boxes(self, k: int) -> BoxList:
        """The boxes of frame ``k`` that move: the excavator and every worker."""
        dyn = BoxList()
        excavator_boxes(dyn, self.excavator["states"][k], self.palette)
        if self.key_worker is not None:
            w = self.key_worker
            worker_boxes(dyn, w["pos"][k], w["heading"][k], self.key_height, w["gait"][k], w["swing"][k],
                         self.key_look, PART_IDS["key_worker"])
        for w in self.others:
            worker_boxes(dyn, w["pos"][k], w["heading"][k], w["height"], w["gait"][k], w["swing"][k], w["look"],
                         PART_IDS["other_worker"])
        return dyn
