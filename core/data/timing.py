"""When a clip's frames happen: the frame rate of a video modality, where it is known.

A user's clips carry no time, so the rate comes from the video kind's option ``fps``
(``[modalities.<name>] fps``); the simulator's clips (``rgbd-sim``, ``site-sim``) each span
the duration recorded in their folder's ``simulator.json``, so their rate is their frame
count over it. Without either, the rate is unknown and readers count frames. The
site's audio spans the same seconds as its clips (:func:`core.data.rgbd_sim.generate_site_dataset`),
which is what lets the dashboard's clip player move a cursor over the sound in step.
"""
from __future__ import annotations

import math
from typing import Any

from core.data.rgbd_sim import recorded_duration

__all__ = ["frame_rate"]


def frame_rate(dataset: Any, modality: str, n_frames: int) -> float | None:
    """Frames per second of ``modality``'s clips in ``dataset`` (a :class:`core.data.Dataset`), a clip
    having ``n_frames`` frames: the option ``fps``, else ``n_frames`` over the simulator's recorded
    clip duration, else None (unknown)."""
    fps = (getattr(dataset, "options", None) or {}).get(modality, {}).get("fps")
    if fps is not None and not isinstance(fps, bool) and math.isfinite(float(fps)) and float(fps) > 0:
        return float(fps)
    root = getattr(dataset, "root", None)
    seconds = recorded_duration(root) if root is not None else None
    if seconds is None or n_frames < 1:
        return None
    return n_frames / seconds
