"""The RGB-D camera of a scene: RGB frames, exact depth and part ids, then sensor exposure and noise.

:func:`render_rgbd` renders the static boxes once and each frame's moving boxes
over them; :func:`finish_rgb` turns the shaded frames into uint8 like a
camera would (exposure with per-frame gain flicker, pixel noise).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from core.data.rgbd_sim._render import SUPERSAMPLE, Shader, downsample, render_dynamic, render_static
from core.data.rgbd_sim._scene import Scene


def render_rgbd(scene: Scene, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``rgb`` (T, size, size, 3) float64 in [0, 1], ``depth`` (T, size, size) float32 metres, ``parts`` uint8."""
    cam = scene.camera
    s = SUPERSAMPLE
    rays = cam.rays(s)
    shader = Shader(scene.look)
    static = render_static(scene.static.arrays(), cam, rays, s, shader)
    n = len(scene.times)
    rgb = np.empty((n, size, size, 3), np.float64)
    depth = np.empty((n, size, size), np.float32)
    parts = np.empty((n, size, size), np.uint8)
    for k in range(n):
        z, col, part = render_dynamic(scene.moving_boxes(k).arrays(), cam, rays, s, shader, static)
        depth[k], rgb[k], parts[k] = downsample(z, col, part, s)
    return rgb, depth, parts


def finish_rgb(rgb: np.ndarray, look: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Shaded frames (float, [0, 1]) -> uint8 with the clip's exposure, gain flicker and pixel noise."""
    n = rgb.shape[0]
    gain = look["exposure"] * (1.0 + rng.normal(0.0, 0.01, (n, 1, 1, 1)))
    noisy = rgb * gain * 255.0 + rng.normal(0.0, look["rgb_noise"], rgb.shape)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
