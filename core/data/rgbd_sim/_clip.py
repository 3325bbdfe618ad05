"""One clip, start to finish: draw the variant, sample the scene, render each modality, record it.

The clip's generator is seeded by (seed, class, simulator version) and drawn
in a fixed order: the variant, the lighting, the scene (again until one
satisfies the variant and shows its actors), the camera's sensor noise, the
depth degradation. :func:`simulate` returns a :class:`SimulatedClip`;
:func:`simulate_clip` its (rgb, depth, meta) form.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.data.rgbd_sim._actors import bucket_dist, cabin_dist, sample_look
from core.data.rgbd_sim._depth import degrade_with_params
from core.data.rgbd_sim._rgbd import finish_rgb, render_rgbd
from core.data.rgbd_sim._scenarios import Reject, actors_visible, layout
from core.data.rgbd_sim._scene import Scene
from core.data.rgbd_sim._site import (CLASSES, DURATION_S, MAX_DEPTH, PART_IDS, PARTS, RELIANCE, SIMULATOR_VERSION,
                                      VARIANT_WEIGHTS, VARIANTS)
from core.errors import ConfigError

#: Scenes drawn at most per clip before giving up (a variant's constraints reject some draws).
_MAX_LAYOUTS = 60


@dataclass(frozen=True, eq=False)
class SimulatedClip:
    """One rendered clip: ``rgb`` (T, H, W, 3) uint8, ``depth`` (T, H, W) float32 metres along the
    optical axis (degraded when asked, holes = 0), ``parts`` (T, H, W) uint8 segmentation ids
    (:data:`PARTS`) and ``meta`` (the JSON-serialisable record of the scene)."""

    rgb: np.ndarray
    depth: np.ndarray
    parts: np.ndarray
    meta: dict[str, Any]


def _check(label: str, seed: int, frames: int = 1, size: int = 16) -> None:
    if label not in CLASSES:
        raise ConfigError(f"unknown class {label!r}", fix=f"use one of {', '.join(CLASSES)}")
    if int(frames) < 1 or int(size) < 16:
        raise ConfigError(f"frames={frames}, size={size} is too small", fix="use frames >= 1 and size >= 16")
    if int(seed) < 0:
        raise ConfigError(f"seed {seed} is negative", fix="use a seed >= 0")


def _clip_rng(label: str, seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), CLASSES.index(label), SIMULATOR_VERSION]))


def _draw_variant(label: str, rng: np.random.Generator) -> str:
    variants = VARIANTS[label]
    weights = np.array([VARIANT_WEIGHTS.get(v, 1) for v in variants])
    pick = int(rng.integers(int(weights.sum())))
    return variants[int(np.searchsorted(np.cumsum(weights), pick, side="right"))]


def clip_variant(label: str, seed: int) -> str:
    """The scenario variant the clip ``(label, seed)`` shows (its first draw; nothing is rendered)."""
    _check(label, seed)
    return _draw_variant(label, _clip_rng(label, int(seed)))


def simulate(label: str, seed: int, *, frames: int = 16, size: int = 64, degrade: bool = True) -> SimulatedClip:
    """Render one clip of class ``label`` with its segmentation (see :func:`simulate_clip`)."""
    _check(label, seed, frames, size)
    return run_simulation(label, int(seed), int(frames), int(size), bool(degrade))


def simulate_clip(label: str, seed: int, *, frames: int = 16, size: int = 64,
                  degrade: bool = True) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Render one clip of class ``label``.

    Returns ``rgb`` (frames, size, size, 3) uint8, ``depth`` (frames, size, size)
    float32 metres along the optical axis (degraded like a monocular estimate
    when ``degrade``, holes = 0), and a JSON-serialisable ``meta`` dict (variant,
    reliance, camera, actor trajectories, segmentation legend). The same
    (label, seed, frames, size, degrade) always gives identical arrays.
    """
    clip = simulate(label, seed, frames=frames, size=size, degrade=degrade)
    return clip.rgb, clip.depth, clip.meta


def run_simulation(label: str, seed: int, frames: int, size: int, degrade: bool) -> SimulatedClip:
    """:func:`simulate` without the argument checks (the dataset generator's jobs are built valid)."""
    return simulate_scene(label, seed, frames, size, degrade)[0]


def simulate_scene(label: str, seed: int, frames: int, size: int, degrade: bool) -> tuple[SimulatedClip, Scene]:
    """:func:`run_simulation` and the :class:`Scene` it rendered (for the site's other modalities)."""
    rng = _clip_rng(label, seed)
    variant = _draw_variant(label, rng)
    times = np.arange(frames) * (DURATION_S / frames)
    look = sample_look(rng)
    rgb_f = depth = parts = scene = None
    for attempt in range(_MAX_LAYOUTS):
        try:
            scene = layout(label, variant, rng, times, size, look)
        except Reject:
            continue
        rgb_f, depth, parts = render_rgbd(scene, size)
        if actors_visible(variant, parts):
            break
    else:
        raise RuntimeError(f"simulator found no valid layout for {label}/{variant} seed {seed}")  # pragma: no cover
    rgb = finish_rgb(rgb_f, look, rng)
    meta = clip_meta(scene, seed, parts)
    if degrade:
        depth, params = degrade_with_params(depth, rng, parts=parts)
        meta["degrade"] = params
    else:
        meta["degrade"] = None
    return SimulatedClip(rgb=rgb, depth=depth.astype(np.float32), parts=parts, meta=meta), scene


def _r(x: Any, nd: int = 3) -> Any:
    return np.round(np.asarray(x, np.float64), nd).tolist()


def clip_meta(scene: Scene, seed: int, parts: np.ndarray) -> dict[str, Any]:
    """The clip's JSON record: variant, reliance, camera, actor trajectories, segmentation legend."""
    label, variant, times = scene.label, scene.variant, scene.times
    kin = scene.kinematics
    key = scene.key_worker
    ex = scene.excavator
    meta: dict[str, Any] = {
        "simulator_version": SIMULATOR_VERSION, "label": label, "variant": variant, "reliance": RELIANCE[variant],
        "seed": int(seed), "frames": len(times), "size": int(parts.shape[1]), "duration_s": DURATION_S,
        "times_s": _r(times), "camera": scene.camera.to_json(), "depth_units": "metres along the optical axis",
        "max_depth": MAX_DEPTH, "parts_legend": {str(k): v for k, v in PARTS.items()},
        "excavator": {
            "operating": ex["operating"], "arm_mode": ex["mode"], "driving": ex["drive"],
            "speed_mps": round(ex["speed"], 3), "heading_rad": round(ex["heading"], 4),
            "beacon_on": [bool(s["beacon"]) for s in ex["states"]],
            "center": _r([k["center"] for k in kin]), "house_yaw": _r([k["house_yaw"] for k in kin], 4),
            "cabin": _r([k["cabin"] for k in kin]), "beacon": _r([k["beacon"] for k in kin]),
            "bucket": _r([k["bucket"] for k in kin]), "bucket_bottom_z": _r([k["bucket_bottom"] for k in kin]),
            "track_distance_m": _r([abs(k["center"][1]) for k in kin]),
        },
        "key_worker": None,
        "other_workers": [{"pos": _r(w["pos"]), "height": round(w["height"], 3), "walking": w["walking"]}
                          for w in scene.others],
        "posts": [{"pos": _r(p), "height": round(h, 3)} for p, _, h in scene.posts],
        "look": {k: v for k, v in scene.look.items() if k != "ground_field"},
    }
    if key is not None:
        meta["key_worker"] = {
            "pos": _r(key["pos"]), "height": round(scene.key_height, 3), "walking": bool(key["walking"]),
            "vest_rgb": _r(scene.key_look["vest"]),
            "bucket_dist_m": _r([bucket_dist(p, k) for p, k in zip(key["pos"], kin)]),
            "cabin_dist_m": _r([cabin_dist(p, k) for p, k in zip(key["pos"], kin)]),
            "pixels": [int(v) for v in (parts == PART_IDS["key_worker"]).sum(axis=(1, 2))],
        }
    return meta
