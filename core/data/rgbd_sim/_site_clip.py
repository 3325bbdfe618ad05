"""One clip of the whole site: the RGB-D clip plus the audio, tag location and trajectories of its scene.

:func:`simulate_site` renders the RGB-D clip exactly as :func:`simulate` does
(same seed, same generator, same arrays), then samples the same scene with
``_timeline`` and renders the other modalities from a generator of their own
(a separate branch of the clip's seed, one stream per renderer), so the
RGB-D random stream is untouched and the same arguments always give the same audio, location and
trajectory.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.data.rgbd_sim._audio import AUDIO_RATE, AUDIO_SOURCES, CONTROL_RATE, render_audio
from core.data.rgbd_sim._clip import _check, simulate_scene
from core.data.rgbd_sim._scene import Scene
from core.data.rgbd_sim._site import CLASSES, DURATION_S, RELIANCE5, SIMULATOR_VERSION, SITE_VERSION
from core.data.rgbd_sim._tags import (LOCATION_COLUMNS, LOCATION_RATE, TRAJECTORY_CHANNELS, TRAJECTORY_RATE,
                                      location_meta, render_location, render_trajectory)
from core.data.rgbd_sim._timeline import sample_timeline
from core.errors import ConfigError

#: A branch tag of the clip's seed for the site's other modalities (never used by the RGB-D stream).
_SITE_BRANCH = 0x517E


@dataclass(frozen=True, eq=False)
class SiteClip:
    """One clip of the site in five modalities.

    ``rgb``, ``depth``, ``parts`` and ``meta`` are those of :func:`simulate` with the same arguments
    (``meta`` gains a ``"site"`` record); ``audio`` (rate * 4 s,) float32 in [-1, 1] at ``audio_rate``,
    with its sources in ``stems`` (``AUDIO_SOURCES``, summing to ``audio``); ``location`` the tag summary
    (``LOCATION_COLUMNS`` -> float); ``trajectory`` (40, C) float32 at 10 Hz with NaN gaps (channels
    ``TRAJECTORY_CHANNELS``) and ``true_trajectory`` the same without noise or gaps.
    """

    rgb: np.ndarray
    depth: np.ndarray
    parts: np.ndarray
    meta: dict[str, Any]
    audio: np.ndarray
    audio_rate: int
    stems: dict[str, np.ndarray]
    location: dict[str, float]
    trajectory: np.ndarray
    true_trajectory: np.ndarray


def _site_rngs(label: str, seed: int) -> list[np.random.Generator]:
    """One generator per renderer (audio, location, trajectory), so a change to one leaves the others' draws."""
    root = np.random.SeedSequence([int(seed), CLASSES.index(label), SIMULATOR_VERSION, SITE_VERSION, _SITE_BRANCH])
    return [np.random.default_rng(child) for child in root.spawn(3)]


def render_site(scene: Scene, label: str, seed: int, audio_rate: int) -> dict[str, Any]:
    """Audio, location and trajectory of ``scene`` (drawn from the clip's site generator) and their record."""
    rng_audio, rng_location, rng_trajectory = _site_rngs(label, seed)
    n_ctrl = int(DURATION_S * CONTROL_RATE)
    audio, stems, audio_info = render_audio(sample_timeline(scene, np.arange(n_ctrl) / CONTROL_RATE),
                                            np.asarray(scene.camera.position, np.float64), rng_audio, audio_rate)
    loc_tl = sample_timeline(scene, np.arange(int(DURATION_S * LOCATION_RATE)) / LOCATION_RATE)
    location = render_location(loc_tl, rng_location)
    trajectory, truth = render_trajectory(
        sample_timeline(scene, np.arange(int(DURATION_S * TRAJECTORY_RATE)) / TRAJECTORY_RATE), rng_trajectory)
    record = {
        "site_version": SITE_VERSION, "modalities_reliance": list(RELIANCE5[scene.variant]),
        "audio": audio_info, "audio_sources": list(AUDIO_SOURCES),
        "location": {**location, **location_meta(loc_tl)}, "location_columns": list(LOCATION_COLUMNS),
        "trajectory_rate": TRAJECTORY_RATE, "trajectory_channels": list(TRAJECTORY_CHANNELS),
        "trajectory_gaps": int(np.isnan(trajectory).any(axis=1).sum()),
    }
    return {"audio": audio, "stems": stems, "location": location, "trajectory": trajectory,
            "true_trajectory": truth, "record": record}


def simulate_site(label: str, seed: int, *, frames: int = 16, size: int = 64, degrade: bool = True,
                  audio_rate: int = AUDIO_RATE) -> SiteClip:
    """Render one clip of class ``label`` in all five site modalities (see :class:`SiteClip`).

    The RGB-D arrays equal ``simulate(label, seed, frames=..., size=..., degrade=...)``; the audio,
    location and trajectory come from the same scene and are the same for the same arguments.
    """
    _check(label, seed, frames, size)
    if not 8000 <= int(audio_rate) <= 48000:
        raise ConfigError(f"audio_rate={audio_rate} is out of range", fix="use an audio rate of 8000-48000 Hz")
    clip, scene = simulate_scene(label, int(seed), int(frames), int(size), bool(degrade))
    site = render_site(scene, label, int(seed), int(audio_rate))
    meta = {**clip.meta, "site": site["record"]}
    return SiteClip(rgb=clip.rgb, depth=clip.depth, parts=clip.parts, meta=meta, audio=site["audio"],
                    audio_rate=int(audio_rate), stems=site["stems"], location=site["location"],
                    trajectory=site["trajectory"], true_trajectory=site["true_trajectory"])
