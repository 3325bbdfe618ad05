"""Procedural RGB-D construction-site simulator (railway works, excavator, workers).

Every clip is a small 3D scene built from boxes (cylinders are approximated by
boxes) standing on a ground plane, seen by a pinhole camera and rendered with a
z-buffer: each primitive is rasterised inside its projected bounding rectangle
(analytic ray/box coverage on a pixel grid, numpy-vectorised) and kept where it
is nearer than what the buffer already holds. The result is an RGB sequence
(uint8, ``T,H,W,3``) and an exact metric depth sequence (float32 metres along
the optical axis, ``T,H,W``), optionally degraded the way a monocular depth
estimator would degrade it (:func:`degrade_depth`).

The four classes arise from what the actors do (where the workers walk, what
the excavator does), never from a colour or watermark. The scenario variants
are built so that each modality carries information the other lacks;
``docs/SIMULATOR.md`` lists which cue lives in which modality, and each clip's
``meta["reliance"]`` says which modality is needed to tell it from its nearest
look-alike of another class.

Public API: :data:`CLASSES`, :func:`simulate_clip`, :func:`degrade_depth`,
:func:`generate_dataset`, and the small rendering layer (:class:`Camera`,
:class:`Box`, :func:`render_boxes`) that tests use to check the geometry.
"""
from __future__ import annotations

import json
import math
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from core.errors import ConfigError, DataError
from core.io import atomic_path, read_json, write_json, write_parquet

__all__ = [
    "CLASSES",
    "VARIANTS",
    "RELIANCE",
    "PARTS",
    "MAX_DEPTH",
    "DURATION_S",
    "Camera",
    "Box",
    "render_boxes",
    "simulate_clip",
    "degrade_depth",
    "generate_dataset",
]

SIMULATOR_VERSION = 1

CLASSES: list[str] = ["Bucket-Worker", "Cabin-Worker", "Track-Excavator", "Safe"]

#: Scenario variants per class, drawn uniformly from the clip's seed.
VARIANTS: dict[str, tuple[str, ...]] = {
    "Bucket-Worker": ("walk_under", "stand_under"),
    "Cabin-Worker": ("arm_moving", "arm_still"),
    "Track-Excavator": ("drive_to_track",),
    "Safe": (
        "clear",
        "behind_bucket",
        "post_under_bucket",
        "idle_near_cabin",
        "front_of_cabin",
        "drive_parallel_or_away",
    ),
}

#: Which modality alone separates a variant from its nearest look-alike of another
#: class: "rgb", "depth", "either" (each alone suffices) or "both" (needs the two
#: together). This is the designed ground truth for modality reliance.
RELIANCE: dict[str, str] = {
    "walk_under": "depth",
    "stand_under": "both",
    "arm_moving": "depth",
    "arm_still": "both",
    "drive_to_track": "either",
    "clear": "either",
    "behind_bucket": "depth",
    "post_under_bucket": "rgb",
    "idle_near_cabin": "rgb",
    "front_of_cabin": "depth",
    "drive_parallel_or_away": "either",
}

#: Segmentation ids stored in each clip's ``parts`` array.
PARTS: dict[int, str] = {
    0: "sky",
    1: "ground",
    2: "track",
    3: "excavator_undercarriage",
    4: "excavator_house",
    5: "excavator_cabin",
    6: "excavator_beacon",
    7: "excavator_arm",
    8: "excavator_bucket",
    9: "key_worker",
    10: "other_worker",
    11: "grey_post",
    12: "prop",
}
_P = {name: idx for idx, name in PARTS.items()}

MAX_DEPTH = 100.0        # far plane (metres); sky and anything beyond read as this value
DURATION_S = 4.0         # every clip spans 4 s whatever its frame count
_NEAR = 0.05
_SUPERSAMPLE = 2         # RGB is averaged over 2x2 samples per pixel (anti-aliasing)

# Excavator geometry (metres), a ~20 t tracked excavator.
_TRACK_LEN, _TRACK_W, _TRACK_H, _TRACK_OFF = 4.4, 0.7, 0.9, 1.25
_HOUSE_FWD, _HOUSE_SIZE = -0.3, (3.0, 2.5, 1.0)
_CABIN_FWD, _CABIN_LAT, _CABIN_SIZE, _CABIN_Z0 = 0.45, 0.7, (1.5, 1.0, 1.6), 2.05
_PIVOT_FWD, _PIVOT_LAT, _PIVOT_Z = 1.2, -0.2, 2.0
_BOOM_LEN, _STICK_LEN = 5.0, 2.8
_BUCKET_SIZE = (0.9, 1.05, 0.85)

# Distances that define the classes (metres, horizontal).
UNDER_BUCKET_M = 0.8       # worker centre within this of the bucket centre = under it
CABIN_CLOSE_M = 1.8        # worker within this of the cabin footprint = too close
SAFE_BUCKET_M = 2.5        # other workers stay at least this far from the bucket
SAFE_CABIN_M = 3.5         # ... and from the cabin


# --------------------------------------------------------------------------- geometry

def _rot(yaw: float, pitch: float = 0.0) -> np.ndarray:
    """Rotation whose columns are the box axes: yaw about +z, then pitch (x tilts up)."""
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[cp, 0.0, -sp], [0.0, 1.0, 0.0], [sp, 0.0, cp]])
    return rz @ ry


@dataclass
class Box:
    """An oriented box: ``center`` (3,), ``size`` full extents along its own axes,
    ``rotation`` (3, 3) whose columns are its axes in world coordinates."""

    center: Sequence[float]
    size: Sequence[float]
    color: Sequence[float] = (0.5, 0.5, 0.5)
    rotation: np.ndarray | None = None
    part: int = _P["prop"]
    emissive: bool = False
    texture: int = 0          # 0 flat, 1 grain (piles, dirt), 2 ballast stones


class _Boxes:
    """Struct-of-arrays box list (what the rasteriser consumes)."""

    def __init__(self) -> None:
        self._rows: list[tuple] = []

    def add(self, center, size, color, *, yaw: float = 0.0, pitch: float = 0.0,
            rotation: np.ndarray | None = None, part: int = _P["prop"],
            emissive: bool = False, texture: int = 0) -> None:
        rot = _rot(yaw, pitch) if rotation is None else np.asarray(rotation, dtype=np.float64)
        self._rows.append((np.asarray(center, np.float64), np.asarray(size, np.float64) / 2.0,
                           rot, np.asarray(color, np.float64), part, emissive, texture))

    def add_box(self, box: Box) -> None:
        self.add(box.center, box.size, box.color, rotation=box.rotation if box.rotation is not None else np.eye(3),
                 part=box.part, emissive=box.emissive, texture=box.texture)

    def __len__(self) -> int:
        return len(self._rows)

    def arrays(self) -> dict[str, np.ndarray]:
        if not self._rows:
            return {"center": np.zeros((0, 3)), "half": np.zeros((0, 3)), "axes": np.zeros((0, 3, 3)),
                    "color": np.zeros((0, 3)), "part": np.zeros(0, np.uint8),
                    "emissive": np.zeros(0, bool), "texture": np.zeros(0, np.int8)}
        c, h, r, col, part, em, tex = zip(*self._rows)
        return {"center": np.stack(c), "half": np.stack(h), "axes": np.stack(r), "color": np.stack(col),
                "part": np.asarray(part, np.uint8), "emissive": np.asarray(em, bool),
                "texture": np.asarray(tex, np.int8)}


@dataclass
class Camera:
    """Pinhole camera: ``rotation`` rows are the camera axes (x right, y down,
    z forward) in world coordinates; ``focal`` in pixels; square images."""

    position: np.ndarray
    rotation: np.ndarray
    focal: float
    size: int

    @classmethod
    def look_at(cls, position: Sequence[float], target: Sequence[float], focal: float, size: int,
                roll: float = 0.0) -> "Camera":
        pos = np.asarray(position, np.float64)
        fwd = np.asarray(target, np.float64) - pos
        fwd /= np.linalg.norm(fwd)
        right = np.cross(fwd, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(fwd, right)
        cr, sr = math.cos(roll), math.sin(roll)
        right, down = cr * right + sr * down, -sr * right + cr * down
        return cls(pos, np.stack([right, down, fwd]), float(focal), int(size))

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) -> (..., 3) of (u, v, z): pixel column, row, depth."""
        cam = (np.asarray(points, np.float64) - self.position) @ self.rotation.T
        z = cam[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.focal * cam[..., 0] / z + self.size / 2.0
            v = self.focal * cam[..., 1] / z + self.size / 2.0
        return np.stack([u, v, z], axis=-1)

    def rays(self, scale: int = 1) -> np.ndarray:
        """World ray directions (H*s, W*s, 3) through sample centres, scaled so
        that the ray parameter t equals the camera-z depth."""
        n = self.size * scale
        coords = (np.arange(n) + 0.5) / scale - self.size / 2.0
        xs, ys = np.meshgrid(coords / self.focal, coords / self.focal)
        cam = np.stack([xs, ys, np.ones_like(xs)], axis=-1)
        return cam @ self.rotation

    def to_json(self) -> dict[str, Any]:
        return {"position": self.position.tolist(), "rotation": self.rotation.tolist(),
                "focal": self.focal, "size": self.size, "principal": [self.size / 2.0, self.size / 2.0]}


# --------------------------------------------------------------------------- rasteriser

def _box_rects(b: dict[str, np.ndarray], cam: Camera, n_px: int, scale: int) -> np.ndarray:
    """Pixel rectangles (N, 4) y0, y1, x0, x1 covering each box's projection."""
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], np.float64)
    corners = b["center"][:, None, :] + np.einsum("nij,nkj->nki", b["axes"], signs[None] * b["half"][:, None, :])
    cam_pts = (corners - cam.position) @ cam.rotation.T
    z = cam_pts[..., 2]
    # boxes straddling the camera plane keep the full-screen rectangle
    rects = np.zeros((len(z), 4), np.int64)
    rects[:, 1] = rects[:, 3] = n_px
    behind_all = (z < _NEAR).all(axis=1)
    ok = ~(z < _NEAR).any(axis=1)
    if ok.any():
        f = cam.focal * scale
        zc = z[ok]
        u = f * cam_pts[ok, :, 0] / zc + n_px / 2.0
        v = f * cam_pts[ok, :, 1] / zc + n_px / 2.0
        rects[ok, 0] = np.clip(np.floor(v.min(1)) - 1, 0, n_px)
        rects[ok, 1] = np.clip(np.ceil(v.max(1)) + 1, 0, n_px)
        rects[ok, 2] = np.clip(np.floor(u.min(1)) - 1, 0, n_px)
        rects[ok, 3] = np.clip(np.ceil(u.max(1)) + 1, 0, n_px)
    rects[behind_all] = 0
    return rects


def _rasterise(b: dict[str, np.ndarray], cam: Camera, rays: np.ndarray, scale: int,
               zbuf: np.ndarray, idbuf: np.ndarray, axbuf: np.ndarray, far: float = MAX_DEPTH) -> None:
    """Z-buffer every box into (zbuf, idbuf, axbuf) in place (one vectorised pass per box)."""
    n_px = rays.shape[0]
    rects = _box_rects(b, cam, n_px, scale)
    origin = cam.position
    rays32 = rays.astype(np.float32)
    axes32 = b["axes"].astype(np.float32)
    # box-frame camera origin and slab planes, computed once in float64
    ol = np.einsum("nk,nkj->nj", origin - b["center"], b["axes"])
    lo = (-b["half"] - ol).astype(np.float32)
    hi = (b["half"] - ol).astype(np.float32)
    for n in range(len(rects)):
        y0, y1, x0, x1 = rects[n]
        if y0 >= y1 or x0 >= x1:
            continue
        d = rays32[y0:y1, x0:x1]
        a = axes32[n]
        dl = d[..., 0:1] * a[0] + d[..., 1:2] * a[1] + d[..., 2:3] * a[2]   # ray dirs in box frame
        dl[np.abs(dl) < 1e-12] = 1e-12
        inv = 1.0 / dl
        ta = lo[n] * inv
        tb = hi[n] * inv
        tmin = np.minimum(ta, tb)
        tmax = np.maximum(ta, tb)
        # slab test; reductions over the size-3 axis spelled out (numpy reduces them slowly)
        t0, t1, t2 = tmin[..., 0], tmin[..., 1], tmin[..., 2]
        tn = np.maximum(np.maximum(t0, t1), t2)
        tf = np.minimum(np.minimum(tmax[..., 0], tmax[..., 1]), tmax[..., 2])
        zs = zbuf[y0:y1, x0:x1]
        win = (tf >= tn) & (tn > _NEAR) & (tn < zs) & (tn < far)
        if not win.any():
            continue
        zs[win] = tn[win]
        idbuf[y0:y1, x0:x1][win] = n
        axis = np.where(t2 >= np.maximum(t0, t1), 2, np.where(t1 >= t0, 1, 0))
        axbuf[y0:y1, x0:x1][win] = axis[win]


def _hash2(ix: np.ndarray, iy: np.ndarray, salt: float) -> np.ndarray:
    v = np.sin(ix * 12.9898 + iy * 78.233 + salt) * 43758.5453
    return v - np.floor(v)


class _Shader:
    """Lighting, textures and atmosphere of one clip."""

    def __init__(self, look: dict[str, Any]) -> None:
        self.look = look
        self.sun = np.asarray(look["sun_dir"])
        self.sun_col = np.asarray(look["sun_color"])
        self.amb_col = np.asarray(look["ambient_color"])
        self.ambient = look["ambient"]
        self.diffuse = look["diffuse"]
        self.sky_top = np.asarray(look["sky_top"])
        self.haze = np.asarray(look["haze"])
        self.fog = look["fog_m"]
        self.field = np.asarray(look["ground_field"])   # (K, 4): fx, fy, phase, amplitude
        self.salt = look["salt"]

    def light(self, base: np.ndarray, normal: np.ndarray) -> np.ndarray:
        lam = np.clip(normal @ self.sun, 0.0, None)[:, None]
        # a hemisphere term keeps faces turned away from the sun distinguishable
        hemi = (0.75 + 0.25 * normal[:, 2:3])
        return base * (self.ambient * hemi * self.amb_col + self.diffuse * lam * self.sun_col)

    def ground(self, hit: np.ndarray) -> np.ndarray:
        x, y = hit[:, 0], hit[:, 1]
        f = self.field
        patch = (f[:, 3][None] * np.sin(x[:, None] * f[:, 0] + y[:, None] * f[:, 1] + f[:, 2])).sum(1)
        m = np.clip(0.5 + patch, 0.0, 1.0)[:, None]
        col = np.asarray(self.look["ground_a"]) * (1 - m) + np.asarray(self.look["ground_b"]) * m
        grain = _hash2(np.floor(x * 5), np.floor(y * 5), self.salt)[:, None]
        return col * (0.88 + 0.24 * grain)

    def texture(self, base: np.ndarray, tex: np.ndarray, hit: np.ndarray) -> np.ndarray:
        out = base.copy()
        g = tex == 1
        if g.any():
            h = _hash2(np.floor(hit[g, 0] * 4 + hit[g, 2] * 3), np.floor(hit[g, 1] * 4 - hit[g, 2] * 2), self.salt + 1)
            out[g] *= (0.85 + 0.3 * h)[:, None]
        s = tex == 2
        if s.any():
            h = _hash2(np.floor(hit[s, 0] * 9), np.floor(hit[s, 1] * 9 + hit[s, 2] * 9), self.salt + 2)
            out[s] *= (0.7 + 0.6 * h)[:, None]
        return out

    def sky(self, rays: np.ndarray) -> np.ndarray:
        elev = rays[:, 2] / np.linalg.norm(rays, axis=1)
        w = np.clip(elev * 3.0, 0.0, 1.0)[:, None]
        return self.haze * (1 - w) + self.sky_top * w

    def atmosphere(self, col: np.ndarray, depth: np.ndarray) -> np.ndarray:
        k = np.exp(-depth / self.fog)[:, None]
        return col * k + self.haze * (1 - k)


def _shade(b: dict[str, np.ndarray], cam: Camera, rays: np.ndarray, zbuf: np.ndarray, idbuf: np.ndarray,
           axbuf: np.ndarray, shader: _Shader, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Colour (M, 3) and part id (M,) of the box pixels in ``mask``."""
    ids = idbuf[mask]
    ax = axbuf[mask]
    d = rays[mask]
    axis_vec = b["axes"][ids, :, ax]
    sgn = -np.sign((d * axis_vec).sum(1))
    normal = axis_vec * sgn[:, None]
    hit = cam.position + d * zbuf[mask][:, None]
    base = shader.texture(b["color"][ids], b["texture"][ids], hit)
    col = shader.light(base, normal)
    em = b["emissive"][ids]
    col[em] = b["color"][ids][em] * 1.15
    return col, b["part"][ids]


def _render_static(b: dict[str, np.ndarray], cam: Camera, rays: np.ndarray, scale: int, shader: _Shader,
                   ground: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Z-buffer, colour and part id of the ground and the static boxes."""
    n = rays.shape[0]
    zbuf = np.full((n, n), MAX_DEPTH)
    part = np.zeros((n, n), np.uint8)
    col = np.zeros((n, n, 3))
    if ground:
        dz = rays[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            tg = np.where(dz < 0, -cam.position[2] / dz, np.inf)
        g = tg < MAX_DEPTH
        zbuf[g] = tg[g]
        part[g] = _P["ground"]
    idbuf = np.full((n, n), -1, np.int64)
    axbuf = np.zeros((n, n), np.int64)
    _rasterise(b, cam, rays, scale, zbuf, idbuf, axbuf)
    sky = part == 0
    sky &= idbuf < 0
    col[sky] = shader.sky(rays[sky])
    gm = (part == _P["ground"]) & (idbuf < 0)
    if gm.any():
        hit = cam.position + rays[gm] * zbuf[gm][:, None]
        col[gm] = shader.light(shader.ground(hit), np.tile([0.0, 0.0, 1.0], (int(gm.sum()), 1)))
    bm = idbuf >= 0
    if bm.any():
        col[bm], part[bm] = _shade(b, cam, rays, zbuf, idbuf, axbuf, shader, bm)
    solid = ~sky
    col[solid] = shader.atmosphere(col[solid], zbuf[solid])
    return zbuf, col, part


def _render_dynamic(b: dict[str, np.ndarray], cam: Camera, rays: np.ndarray, scale: int, shader: _Shader,
                    static: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    zs, cs, ps = static
    zbuf = zs.copy()
    n = rays.shape[0]
    idbuf = np.full((n, n), -1, np.int64)
    axbuf = np.zeros((n, n), np.int64)
    _rasterise(b, cam, rays, scale, zbuf, idbuf, axbuf)
    col = cs.copy()
    part = ps.copy()
    bm = idbuf >= 0
    if bm.any():
        c, p = _shade(b, cam, rays, zbuf, idbuf, axbuf, shader, bm)
        col[bm] = shader.atmosphere(c, zbuf[bm])
        part[bm] = p
    return zbuf, col, part


def _downsample(z: np.ndarray, col: np.ndarray, part: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB: mean of the s x s samples; depth and part: the nearest sample (exact surface depth)."""
    if s == 1:
        return z, col, part
    n = z.shape[0] // s
    c = col.reshape(n, s, n, s, 3)
    col = sum(c[:, i, :, j] for i in range(s) for j in range(s)) / (s * s)
    zb = z.reshape(n, s, n, s).transpose(0, 2, 1, 3).reshape(n, n, s * s)
    pb = part.reshape(n, s, n, s).transpose(0, 2, 1, 3).reshape(n, n, s * s)
    k = zb.argmin(-1)[..., None]
    return np.take_along_axis(zb, k, -1)[..., 0], col, np.take_along_axis(pb, k, -1)[..., 0]


_DEFAULT_LOOK = {
    "sun_dir": (0.4, 0.3, 0.866), "sun_color": (1.0, 0.97, 0.92), "ambient_color": (0.95, 0.97, 1.0),
    "ambient": 0.45, "diffuse": 0.65, "sky_top": (0.45, 0.62, 0.85), "haze": (0.78, 0.82, 0.86),
    "fog_m": 400.0, "ground_field": [[0.3, 0.2, 0.0, 0.2]], "salt": 0.0,
    "ground_a": (0.50, 0.44, 0.36), "ground_b": (0.42, 0.40, 0.37),
}


def render_boxes(camera: Camera, boxes: Iterable[Box], *, ground: bool = True,
                 supersample: int = _SUPERSAMPLE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one frame of boxes on the ground plane z = 0.

    Returns ``rgb`` (H, W, 3) uint8, ``depth`` (H, W) float32 metres along the
    optical axis (``MAX_DEPTH`` where nothing is hit) and ``part`` (H, W) uint8
    (the ``part`` of the box each pixel sees; 1 ground, 0 sky).
    """
    bl = _Boxes()
    for box in boxes:
        bl.add_box(box)
    rays = camera.rays(supersample)
    z, col, part = _render_static(bl.arrays(), camera, rays, supersample, _Shader(_DEFAULT_LOOK), ground=ground)
    z, col, part = _downsample(z, col, part, supersample)
    rgb = np.clip(col * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return rgb, z.astype(np.float32), part


# --------------------------------------------------------------------------- scene

def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _jitter(rng: np.random.Generator, color: Sequence[float], amount: float = 0.06) -> np.ndarray:
    return np.clip(np.asarray(color) * _u(rng, 0.9, 1.1) + rng.uniform(-amount, amount, 3), 0.0, 1.0)


def _sample_look(rng: np.random.Generator) -> dict[str, Any]:
    elev = math.radians(_u(rng, 25, 70))
    az = _u(rng, -math.pi, math.pi)
    overcast = rng.random() < 0.3
    grounds = [((0.52, 0.43, 0.33), (0.42, 0.37, 0.30)),   # dirt
               ((0.55, 0.53, 0.50), (0.45, 0.44, 0.42)),   # gravel
               ((0.47, 0.42, 0.30), (0.38, 0.44, 0.30)),   # dirt and grass
               ((0.60, 0.52, 0.40), (0.50, 0.45, 0.38))]   # sand
    ga, gb = grounds[int(rng.integers(len(grounds)))]
    k = 5
    field = np.column_stack([rng.uniform(-0.6, 0.6, k), rng.uniform(-0.6, 0.6, k),
                             rng.uniform(0, 2 * np.pi, k), rng.uniform(0.05, 0.25, k)])
    warm = _u(rng, 0.85, 1.0)
    return {
        "sun_dir": [math.cos(elev) * math.cos(az), math.cos(elev) * math.sin(az), math.sin(elev)],
        "sun_color": [1.0, _u(rng, 0.93, 1.0), warm],
        "ambient_color": [_u(rng, 0.9, 1.0), _u(rng, 0.95, 1.0), 1.0],
        "ambient": _u(rng, 0.55, 0.75) if overcast else _u(rng, 0.35, 0.55),
        "diffuse": _u(rng, 0.2, 0.4) if overcast else _u(rng, 0.55, 0.8),
        "sky_top": (_jitter(rng, (0.62, 0.66, 0.70)) if overcast else _jitter(rng, (0.42, 0.60, 0.86))).tolist(),
        "haze": _jitter(rng, (0.80, 0.82, 0.84), 0.04).tolist(),
        "fog_m": _u(rng, 120, 500),
        "ground_field": field.tolist(),
        "salt": _u(rng, 0, 100),
        "ground_a": _jitter(rng, ga, 0.03).tolist(),
        "ground_b": _jitter(rng, gb, 0.03).tolist(),
        "exposure": _u(rng, 0.85, 1.15),
        "rgb_noise": _u(rng, 1.0, 4.0),
        "overcast": overcast,
    }


def _sample_palette(rng: np.random.Generator) -> dict[str, np.ndarray]:
    body = [(0.95, 0.72, 0.08), (0.93, 0.50, 0.10), (0.90, 0.85, 0.20), (0.85, 0.85, 0.82), (0.75, 0.15, 0.12)]
    vest = [(0.80, 0.98, 0.10), (1.00, 0.45, 0.05), (0.98, 0.85, 0.05)]
    helmet = [(0.95, 0.95, 0.93), (0.98, 0.85, 0.10), (1.0, 0.5, 0.1), (0.2, 0.35, 0.8)]
    trousers = [(0.12, 0.14, 0.25), (0.20, 0.20, 0.22), (0.08, 0.08, 0.08), (0.95, 0.45, 0.08)]
    skin = [(0.87, 0.70, 0.58), (0.62, 0.45, 0.33), (0.40, 0.28, 0.20), (0.95, 0.80, 0.70)]
    pick = lambda options: _jitter(rng, options[int(rng.integers(len(options)))], 0.04)  # noqa: E731
    return {
        "body": pick(body),
        "track": _jitter(rng, (0.16, 0.16, 0.17), 0.03),
        "steel": _jitter(rng, (0.30, 0.30, 0.32), 0.03),
        "glass": _jitter(rng, (0.10, 0.13, 0.17), 0.02),
        "beacon_on": np.array([1.0, _u(rng, 0.8, 0.9), _u(rng, 0.35, 0.5)]) * 1.2,
        "beacon_off": np.array([0.30, 0.22, 0.12]),
        "ballast": _jitter(rng, (0.50, 0.49, 0.47), 0.04),
        "sleeper": pick([(0.62, 0.61, 0.58), (0.38, 0.28, 0.20)]),
        "rail": _jitter(rng, (0.40, 0.36, 0.33), 0.03),
        "post": _jitter(rng, (0.55, 0.55, 0.55), 0.05),
        "_vest": vest, "_helmet": helmet, "_trousers": trousers, "_skin": skin,
    }


def _worker_look(rng: np.random.Generator, pal: dict[str, Any]) -> dict[str, Any]:
    pick = lambda options: _jitter(rng, options[int(rng.integers(len(options)))], 0.04)  # noqa: E731
    vest = pick(pal["_vest"])
    return {"vest": vest, "helmet": pick(pal["_helmet"]), "trousers": pick(pal["_trousers"]),
            "skin": pick(pal["_skin"]),
            "sleeve": vest if rng.random() < 0.5 else pick([(0.3, 0.35, 0.5), (0.5, 0.5, 0.5), (0.2, 0.2, 0.2)])}


def _ik(reach: float, tip_z: float) -> tuple[float, float]:
    """Boom and stick pitch (absolute, radians) that put the stick tip at (reach, tip_z)."""
    dx, dz = reach - _PIVOT_FWD, tip_z - _PIVOT_Z
    dist = math.hypot(dx, dz)
    dist_c = min(max(dist, abs(_BOOM_LEN - _STICK_LEN) + 0.05), _BOOM_LEN + _STICK_LEN - 0.05)
    phi = math.atan2(dz, dx)
    cos_b = (_BOOM_LEN ** 2 + dist_c ** 2 - _STICK_LEN ** 2) / (2 * _BOOM_LEN * dist_c)
    alpha = phi + math.acos(max(-1.0, min(1.0, cos_b)))
    bx, bz = _BOOM_LEN * math.cos(alpha), _BOOM_LEN * math.sin(alpha)
    tx, tz = dist_c * math.cos(phi), dist_c * math.sin(phi)
    beta = math.atan2(tz - bz, tx - bx)
    return alpha, beta


def _excavator_frame(bl: _Boxes, st: dict[str, Any], pal: dict[str, Any]) -> dict[str, np.ndarray]:
    """Add one frame's excavator boxes; return its key points."""
    base = np.array([st["x"], st["y"], 0.0])
    ty, hy = st["track_yaw"], st["house_yaw"]
    lt = np.array([-math.sin(ty), math.cos(ty), 0.0])
    fh = np.array([math.cos(hy), math.sin(hy), 0.0])
    lh = np.array([-math.sin(hy), math.cos(hy), 0.0])
    up = np.array([0.0, 0.0, 1.0])
    body, dark = pal["body"], pal["track"]
    for side in (-1.0, 1.0):
        bl.add(base + lt * side * _TRACK_OFF + up * _TRACK_H / 2, (_TRACK_LEN, _TRACK_W, _TRACK_H), dark,
               yaw=ty, part=_P["excavator_undercarriage"])
    bl.add(base + up * 0.6, (2.4, 1.9, 0.5), dark * 1.3, yaw=ty, part=_P["excavator_undercarriage"])
    bl.add(base + up * 0.98, (1.7, 1.7, 0.16), dark * 1.1, yaw=hy, part=_P["excavator_house"])
    house_c = base + fh * _HOUSE_FWD + up * (1.05 + _HOUSE_SIZE[2] / 2)
    bl.add(house_c, _HOUSE_SIZE, body, yaw=hy, part=_P["excavator_house"])
    bl.add(base - fh * 2.1 + up * 1.6, (0.8, 2.5, 1.0), body * 0.8, yaw=hy, part=_P["excavator_house"])
    cabin_c = base + fh * _CABIN_FWD + lh * _CABIN_LAT + up * (_CABIN_Z0 + _CABIN_SIZE[2] / 2)
    bl.add(cabin_c, _CABIN_SIZE, body, yaw=hy, part=_P["excavator_cabin"])
    bl.add(cabin_c + up * 0.2, (_CABIN_SIZE[0] + 0.03, _CABIN_SIZE[1] + 0.03, 0.75), pal["glass"], yaw=hy,
           part=_P["excavator_cabin"])
    beacon_c = cabin_c + fh * (-0.3) + lh * 0.1 + up * (_CABIN_SIZE[2] / 2 + 0.31)
    on = bool(st["beacon"])
    # the lamp sits on a dark housing so that its flashing stands out on any body colour
    bl.add(beacon_c - up * 0.25, (0.7, 0.7, 0.12), pal["glass"], yaw=hy, part=_P["excavator_beacon"])
    bl.add(beacon_c, (0.5, 0.5, 0.38), pal["beacon_on"] if on else pal["beacon_off"], yaw=hy,
           part=_P["excavator_beacon"], emissive=on)
    alpha, beta = st["alpha"], st["beta"]
    pivot = base + fh * _PIVOT_FWD + lh * _PIVOT_LAT + up * _PIVOT_Z
    bdir = fh * math.cos(alpha) + up * math.sin(alpha)
    bl.add(pivot + bdir * _BOOM_LEN / 2, (_BOOM_LEN, 0.5, 0.6), body, yaw=hy, pitch=alpha, part=_P["excavator_arm"])
    stick0 = pivot + bdir * _BOOM_LEN
    sdir = fh * math.cos(beta) + up * math.sin(beta)
    bl.add(stick0 + sdir * _STICK_LEN / 2, (_STICK_LEN, 0.38, 0.45), body * 0.9, yaw=hy, pitch=beta,
           part=_P["excavator_arm"])
    tip = stick0 + sdir * _STICK_LEN
    gamma = beta + math.pi / 2 + st["curl"]
    rb = _rot(hy, gamma)
    bucket_c = tip - rb[:, 2] * 0.42
    bl.add(bucket_c, _BUCKET_SIZE, pal["steel"], rotation=rb, part=_P["excavator_bucket"])
    half = np.asarray(_BUCKET_SIZE) / 2
    signs = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)])
    bottom = float((bucket_c + (signs * half) @ rb.T)[:, 2].min())
    return {"center": base, "house_yaw": hy, "track_yaw": ty, "cabin": cabin_c, "beacon": beacon_c,
            "bucket": bucket_c, "bucket_bottom": bottom, "tip": tip, "pivot": pivot}


def _worker_boxes(bl: _Boxes, pos: np.ndarray, heading: float, height: float, gait: float, swing: float,
                  look: dict[str, Any], part: int) -> None:
    s = height / 1.8
    up = np.array([0.0, 0.0, 1.0])
    f = np.array([math.cos(heading), math.sin(heading), 0.0])
    lat = np.array([-math.sin(heading), math.cos(heading), 0.0])
    hip = pos + up * 0.88 * s
    ang = swing * math.sin(gait)
    for side, a in ((1.0, ang), (-1.0, -ang)):
        r = _rot(heading, -math.pi / 2 + a)          # box x axis points down the leg
        bl.add(hip + lat * side * 0.11 + r[:, 0] * 0.425 * s, (0.85 * s, 0.17, 0.17), look["trousers"], rotation=r,
               part=part)
    bl.add(hip + up * 0.31 * s, (0.26, 0.44, 0.62 * s), look["vest"], yaw=heading, part=part)
    shoulder = pos + up * 1.46 * s
    for side, a in ((1.0, -ang), (-1.0, ang)):
        r = _rot(heading, -math.pi / 2 + 0.8 * a)
        bl.add(shoulder + lat * side * 0.29 + r[:, 0] * 0.3 * s, (0.6 * s, 0.12, 0.12), look["sleeve"], rotation=r,
               part=part)
    bl.add(pos + up * 1.61 * s + f * 0.01, (0.2, 0.2, 0.22 * s), look["skin"], yaw=heading, part=part)
    bl.add(pos + up * 1.74 * s, (0.27, 0.27, 0.12 * s), look["helmet"], yaw=heading, part=part)


def _post_boxes(bl: _Boxes, pos: np.ndarray, yaw: float, height: float, color: np.ndarray) -> None:
    """A grey worker-sized signpost: same silhouette and size as a worker, no colours."""
    s = height / 1.8
    up = np.array([0.0, 0.0, 1.0])
    bl.add(pos + up * 0.44 * s, (0.3, 0.4, 0.88 * s), color, yaw=yaw, part=_P["grey_post"])
    bl.add(pos + up * 1.17 * s, (0.28, 0.68, 0.58 * s), color * 0.95, yaw=yaw, part=_P["grey_post"])
    bl.add(pos + up * 1.62 * s, (0.22, 0.22, 0.36 * s), color * 1.05, yaw=yaw, part=_P["grey_post"])


# -- scenario -------------------------------------------------------------------

def _rect_dist(p: np.ndarray, center: np.ndarray, yaw: float, half_len: float, half_w: float) -> float:
    """Horizontal distance from point p to an oriented rectangle (0 inside)."""
    d = p[:2] - center[:2]
    c, s = math.cos(yaw), math.sin(yaw)
    lx, ly = d[0] * c + d[1] * s, -d[0] * s + d[1] * c
    ex, ey = max(abs(lx) - half_len, 0.0), max(abs(ly) - half_w, 0.0)
    return math.hypot(ex, ey)


def _excavator_clearance(p: np.ndarray, ex: dict[str, Any]) -> float:
    """Horizontal distance from p to the excavator's ground footprint (tracks and house)."""
    tracks = _rect_dist(p, ex["center"], ex["track_yaw"], _TRACK_LEN / 2, _TRACK_OFF + _TRACK_W / 2)
    fh = np.array([math.cos(ex["house_yaw"]), math.sin(ex["house_yaw"]), 0.0])
    house = _rect_dist(p, ex["center"] - fh * 0.6, ex["house_yaw"], 1.95, 1.25)
    return min(tracks, house)


def _cabin_dist(p: np.ndarray, ex: dict[str, Any]) -> float:
    return _rect_dist(p, ex["cabin"], ex["house_yaw"], _CABIN_SIZE[0] / 2, _CABIN_SIZE[1] / 2)


def _bucket_dist(p: np.ndarray, ex: dict[str, Any]) -> float:
    return float(np.hypot(*(p[:2] - ex["bucket"][:2])))


def _arm_program(mode: str, rng: np.random.Generator, label: str) -> dict[str, float]:
    if mode == "hold":
        return {"r0": _u(rng, 5.2, 7.0), "z0": _u(rng, 3.5, 4.4), "ar": _u(rng, 0.0, 0.15), "az": _u(rng, 0.0, 0.15),
                "w": _u(rng, 0.6, 1.5), "ph": _u(rng, 0, 6.3), "swing_amp": math.radians(_u(rng, 0, 3)),
                "sw": _u(rng, 0.5, 1.2), "sph": _u(rng, 0, 6.3), "curl0": _u(rng, -0.3, 0.1), "curl_amp": 0.05}
    if mode == "dig":
        big = label == "Safe"
        return {"r0": _u(rng, 5.0, 7.0), "z0": _u(rng, 1.0, 3.2), "ar": _u(rng, 0.5, 1.3), "az": _u(rng, 0.5, 1.1),
                "w": _u(rng, 1.2, 2.4), "ph": _u(rng, 0, 6.3),
                "swing_amp": math.radians(_u(rng, 10, 35) if big else _u(rng, 0, 6)),
                "sw": _u(rng, 0.6, 1.4), "sph": _u(rng, 0, 6.3), "curl0": _u(rng, -0.5, 0.2), "curl_amp": 0.5}
    if mode == "travel":
        return {"r0": _u(rng, 4.2, 5.2), "z0": _u(rng, 1.4, 2.4), "ar": 0.0, "az": 0.0, "w": 0.0, "ph": 0.0,
                "swing_amp": 0.0, "sw": 0.0, "sph": 0.0, "curl0": _u(rng, -0.6, 0.0), "curl_amp": 0.0}
    # still
    return {"r0": _u(rng, 4.5, 7.0), "z0": _u(rng, 0.8, 4.2), "ar": 0.0, "az": 0.0, "w": 0.0, "ph": 0.0,
            "swing_amp": 0.0, "sw": 0.0, "sph": 0.0, "curl0": _u(rng, -0.5, 0.2), "curl_amp": 0.0}


def _excavator_states(label: str, variant: str, rng: np.random.Generator, times: np.ndarray) -> dict[str, Any]:
    side = 1.0 if rng.random() < 0.5 else -1.0          # which side of the track it stands on
    drive = variant in ("drive_to_track", "drive_parallel_or_away")
    speed = _u(rng, 0.5, 0.9) if drive else 0.0
    if variant == "drive_to_track":
        yaw = math.atan2(-side, 0.0) + _u(rng, -0.3, 0.3)
    elif variant == "drive_parallel_or_away":
        if rng.random() < 0.6:
            yaw = (0.0 if rng.random() < 0.5 else math.pi) + _u(rng, -0.1, 0.1)
        else:
            yaw = math.atan2(side, 0.0) + _u(rng, -0.3, 0.3)
    else:
        yaw = _u(rng, -math.pi, math.pi)
    travel = speed * DURATION_S
    near = max(6.0, travel + 4.0)
    y0 = side * _u(rng, near, near + 3.5)
    x0 = _u(rng, -3, 3)
    if drive:
        swing0 = _u(rng, -0.25, 0.25) if rng.random() < 0.8 else _u(rng, -math.pi, math.pi)
    else:
        swing0 = _u(rng, -math.pi, math.pi)
    if variant in ("walk_under", "stand_under", "behind_bucket", "post_under_bucket"):
        mode = "hold"
    elif variant == "clear":
        mode = "dig"
    elif variant in ("arm_moving", "arm_still", "front_of_cabin"):
        # the depth-only look-alike (front_of_cabin) shares Cabin-Worker's arm behaviour
        mode = "dig" if (variant == "arm_moving" or (variant == "front_of_cabin" and rng.random() < 0.5)) else "still"
    elif variant == "idle_near_cabin":
        mode = "still"
    else:
        mode = "travel"
    operating = variant != "idle_near_cabin"
    arm = _arm_program(mode, rng, label)
    run = int(rng.integers(1, 3))
    phase = int(rng.integers(0, 2 * run))
    states = []
    for k, t in enumerate(times):
        x = x0 + speed * t * math.cos(yaw)
        y = y0 + speed * t * math.sin(yaw)
        reach = arm["r0"] + arm["ar"] * math.sin(arm["w"] * t + arm["ph"])
        tip_z = arm["z0"] + arm["az"] * math.cos(arm["w"] * t + arm["ph"])
        alpha, beta = _ik(reach, tip_z)
        states.append({
            "x": x, "y": y, "track_yaw": yaw,
            "house_yaw": yaw + swing0 + arm["swing_amp"] * math.sin(arm["sw"] * t + arm["sph"]),
            "alpha": alpha, "beta": beta,
            "curl": arm["curl0"] + arm["curl_amp"] * math.sin(arm["w"] * t + arm["ph"] + 1.0),
            "beacon": bool(operating and ((k + phase) // run) % 2 == 0),
        })
    return {"states": states, "side": side, "mode": mode, "operating": operating, "speed": speed,
            "heading": yaw, "drive": drive}


def _walk(rng: np.random.Generator, times: np.ndarray, goal: np.ndarray, walking: bool,
          arrive: float | None = None) -> dict[str, Any]:
    """A trajectory that reaches ``goal`` (walking in) or lingers around it (standing)."""
    n = len(times)
    if walking:
        t_arr = arrive if arrive is not None else _u(rng, 0.3, 0.65) * DURATION_S
        speed = _u(rng, 0.7, 1.4)
        ang = _u(rng, -math.pi, math.pi)
        d = np.array([math.cos(ang), math.sin(ang), 0.0])
        start = goal - d * speed * t_arr
        drift = _u(rng, 0.0, 0.2)
        pos = np.empty((n, 3))
        for k, t in enumerate(times):
            pos[k] = start + d * speed * t if t <= t_arr else goal + d * drift * (t - t_arr)
        heading = np.full(n, ang)
        moving = times <= t_arr
        gait = np.cumsum(np.where(moving, speed, drift) * (DURATION_S / n)) / 0.7 * math.pi
        swing = np.where(moving, math.radians(_u(rng, 20, 30)), math.radians(4))
    else:
        ang = _u(rng, -math.pi, math.pi)
        d = np.array([math.cos(ang), math.sin(ang), 0.0])
        sway = _u(rng, 0.0, 0.06)
        pos = goal[None] + d[None] * (sway * np.sin(times * _u(rng, 1, 3)))[:, None]
        heading = np.full(n, _u(rng, -math.pi, math.pi))
        gait = np.zeros(n)
        swing = np.zeros(n)
    return {"pos": pos, "heading": heading, "gait": gait, "swing": swing, "walking": walking}


def _free_walk(rng: np.random.Generator, times: np.ndarray, center: np.ndarray) -> dict[str, Any]:
    walking = rng.random() < 0.6
    if walking:
        speed = _u(rng, 0.6, 1.4)
        ang = _u(rng, -math.pi, math.pi)
        d = np.array([math.cos(ang), math.sin(ang), 0.0])
        pos = center[None] + d[None] * (speed * (times - DURATION_S / 2))[:, None]
        gait = speed * times / 0.7 * math.pi
        return {"pos": pos, "heading": np.full(len(times), ang), "gait": gait,
                "swing": np.full(len(times), math.radians(_u(rng, 20, 30))), "walking": True}
    return _walk(rng, times, center, walking=False)


def _map_along_ray(traj: dict[str, Any], cam_pos: np.ndarray, s: float) -> dict[str, Any]:
    """Slide a trajectory along the camera's horizontal viewing rays by factor s."""
    out = dict(traj)
    c = np.array([cam_pos[0], cam_pos[1], 0.0])
    out["pos"] = c + s * (traj["pos"] - c)
    return out


class _Reject(Exception):
    pass


def _sample_camera(rng: np.random.Generator, size: int, target: np.ndarray, house_yaw: float,
                   grow: float) -> Camera:
    az = house_yaw + math.radians(_u(rng, 25, 155))     # always on the cabin (left) side
    dist = _u(rng, 9.0, 14.0) * grow
    height = _u(rng, 4.5, 9.0)
    pos = np.array([target[0] + dist * math.cos(az), target[1] + dist * math.sin(az), height])
    aim = target + np.array([_u(rng, -0.8, 0.8), _u(rng, -0.8, 0.8), _u(rng, 0.0, 1.0)])
    return Camera.look_at(pos, aim, focal=size * _u(rng, 1.05, 1.5), size=size,
                          roll=math.radians(_u(rng, -3, 3)))


def _in_frame(cam: Camera, pts: np.ndarray, margin: float = 0.06) -> bool:
    uvz = cam.project(pts)
    m = margin * cam.size
    return bool((uvz[:, 2] > 1.0).all() and (uvz[:, 0] > m).all() and (uvz[:, 0] < cam.size - m).all()
                and (uvz[:, 1] > m).all() and (uvz[:, 1] < cam.size - m).all())


def _layout(label: str, variant: str, rng: np.random.Generator, times: np.ndarray, size: int) -> dict[str, Any]:
    """Sample one clip's actors and camera; raise _Reject when constraints fail."""
    n = len(times)
    ex = _excavator_states(label, variant, rng, times)
    pal = _sample_palette(rng)
    scratch = _Boxes()
    kin = [_excavator_frame(scratch, st, pal) for st in ex["states"]]
    mid = n // 2
    bucket_under = variant in ("walk_under", "stand_under", "behind_bucket", "post_under_bucket")
    if bucket_under and min(k["bucket_bottom"] for k in kin) < 2.35:
        raise _Reject("bucket too low")
    track_pt = np.array([kin[0]["center"][0], 0.0, 0.45])
    key_pts = [kin[0]["center"] + [0, 0, 1.5], kin[-1]["center"] + [0, 0, 1.5], kin[mid]["bucket"], track_pt]
    target = np.mean([kin[mid]["center"], kin[mid]["bucket"], kin[mid]["cabin"] * [1, 1, 0]], axis=0)
    target = target * 0.85 + track_pt * [0.15, 0.15, 0]

    height_key = _u(rng, 1.6, 1.95)
    key: dict[str, Any] | None = None
    post_pos: np.ndarray | None = None
    for attempt in range(12):
        cam = _sample_camera(rng, size, target, kin[mid]["house_yaw"], 1.08 ** attempt)
        key, post_pos = None, None
        try:
            if variant in ("walk_under", "stand_under", "behind_bucket"):
                off = rng.uniform(-0.3, 0.3, 3) * [1, 1, 0]
                goal = kin[mid]["bucket"] * [1, 1, 0] + off
                walking = variant == "walk_under" or (variant == "behind_bucket" and rng.random() < 0.5)
                traj = _walk(rng, times, goal, walking)
                if variant == "behind_bucket":
                    cdist = float(np.hypot(*(goal[:2] - cam.position[:2])))
                    delta = _u(rng, 1.6, 3.2)
                    s = 1.0 + delta / cdist
                    # an under-the-bucket worker of this height would look the same in RGB
                    h_u = cam.position[2] - (cam.position[2] - height_key) / s
                    if h_u + 0.1 > min(k["bucket_bottom"] for k in kin):
                        raise _Reject("behind worker would overlap the bucket")
                    traj = _map_along_ray(traj, cam.position, s)
                    if min(_bucket_dist(p, k) for p, k in zip(traj["pos"], kin)) < 1.6:
                        raise _Reject("behind worker too close to the bucket")
                else:
                    after = [(_bucket_dist(p, k), k) for p, k, t in zip(traj["pos"], kin, times)
                             if t >= 0.65 * DURATION_S]
                    if max(d for d, _ in after) > UNDER_BUCKET_M:
                        raise _Reject("worker not under the bucket")
                    if min(k["bucket_bottom"] for _, k in after) < height_key + 0.3:
                        raise _Reject("bucket hits the worker")
                key = traj
            elif variant in ("arm_moving", "arm_still", "idle_near_cabin", "front_of_cabin"):
                k = kin[mid]
                fh = np.array([math.cos(k["house_yaw"]), math.sin(k["house_yaw"]), 0.0])
                lh = np.array([-fh[1], fh[0], 0.0])
                goal = k["center"] + fh * _u(rng, -0.5, 1.4) + lh * _u(rng, 1.9, 3.0)
                traj = _walk(rng, times, goal * [1, 1, 0], walking=rng.random() < 0.5)
                if variant == "front_of_cabin":
                    cdist = float(np.hypot(*(goal[:2] - cam.position[:2])))
                    s = 1.0 - _u(rng, 2.5, 5.0) / cdist
                    if s < 0.35:
                        raise _Reject("camera too close")
                    traj = _map_along_ray(traj, cam.position, s)
                    if min(_cabin_dist(p, kk) for p, kk in zip(traj["pos"], kin)) < SAFE_CABIN_M - 1.0:
                        raise _Reject("front worker too close to the cabin")
                else:
                    late = [_cabin_dist(p, kk) for p, kk, t in zip(traj["pos"], kin, times)
                            if t >= 0.65 * DURATION_S]
                    if max(late) > CABIN_CLOSE_M:
                        raise _Reject("worker not close to the cabin")
                key = traj
            elif variant == "post_under_bucket":
                post_pos = kin[mid]["bucket"] * [1, 1, 0] + rng.uniform(-0.3, 0.3, 3) * [1, 1, 0]
                if min(k["bucket_bottom"] for k in kin) < height_key + 0.3:
                    raise _Reject("bucket hits the post")
            if key is not None:
                for p, k in zip(key["pos"], kin):
                    if _excavator_clearance(p, k) < 0.3:
                        raise _Reject("worker inside the excavator")
                    # one danger per clip: the key worker is safe from every hazard but its own
                    if label != "Bucket-Worker" and ex["operating"] and _bucket_dist(p, k) < 1.6:
                        raise _Reject("worker under the bucket")
                    if label != "Cabin-Worker" and ex["operating"] and _cabin_dist(p, k) < 2.5:
                        raise _Reject("worker near the cabin")
                head = key["pos"] + [0, 0, height_key]
                pts = np.concatenate([np.array(key_pts), key["pos"][[0, mid, -1]], head[[0, mid, -1]]])
            else:
                pts = np.array(key_pts)
            if post_pos is not None:
                pts = np.concatenate([pts, [post_pos, post_pos + [0, 0, 1.8]]])
            if not _in_frame(cam, pts):
                raise _Reject("out of frame")
            break
        except _Reject:
            continue
    else:
        raise _Reject("no camera frames the action")

    # Other workers, posts and props keep safe distances from the action.
    obstacles: list[tuple[np.ndarray, float]] = []
    for k in kin:
        obstacles.append((k["center"], 3.6))
        obstacles.append((k["bucket"] * [1, 1, 0], 1.2))
    if key is not None:
        obstacles += [(p, 0.8) for p in key["pos"][:: max(1, n // 4)]]
    if post_pos is not None:
        obstacles.append((post_pos, 0.8))
    cam_xy = cam.position * [1, 1, 0]

    def blocks_view(p: np.ndarray, radius: float) -> bool:
        # keep the wedge between the camera and the action free of props
        a, b = cam_xy, target * [1, 1, 0]
        ab = b - a
        t = float(np.clip(np.dot(p - a, ab) / np.dot(ab, ab), 0.0, 1.2))
        return float(np.hypot(*(p - (a + t * ab))[:2])) < radius + 2.5

    def free(p: np.ndarray, radius: float, view: bool = True) -> bool:
        if any(np.hypot(*(p - c)[:2]) < r + radius for c, r in obstacles):
            return False
        if float(np.hypot(*(p - cam_xy)[:2])) < radius + 3.0:
            return False
        return not (view and blocks_view(p, radius))

    def spot(radius: float, r_lo: float, r_hi: float, track_clear: float, view: bool = True) -> np.ndarray | None:
        for _ in range(30):
            ang = _u(rng, -math.pi, math.pi)
            p = target * [1, 1, 0] + _u(rng, r_lo, r_hi) * np.array([math.cos(ang), math.sin(ang), 0.0])
            if abs(p[1]) < track_clear + radius:
                continue
            if free(p, radius, view):
                return p
        return None

    others = []
    n_other = int(rng.integers(1, 4)) if variant == "clear" else int(rng.integers(0, 3))
    for _ in range(n_other):
        for _try in range(10):
            c = spot(0.5, 4.0, 13.0, 0.0, view=False)
            if c is None:
                break
            traj = _free_walk(rng, times, c)
            ok = all(
                _excavator_clearance(p, k) > 2.5 and _bucket_dist(p, k) > SAFE_BUCKET_M
                and _cabin_dist(p, k) > SAFE_CABIN_M and np.hypot(*(p - cam_xy)[:2]) > 3.0
                for p, k in zip(traj["pos"], kin))
            if ok:
                traj["height"] = _u(rng, 1.6, 1.95)
                traj["look"] = _worker_look(rng, pal)
                others.append(traj)
                obstacles.extend((p, 0.8) for p in traj["pos"][:: max(1, n // 4)])
                break

    static = _Boxes()
    posts = []
    if post_pos is not None:
        posts.append((post_pos, _u(rng, -math.pi, math.pi), height_key))
    for _ in range(int(rng.integers(0, 3))):
        p = spot(0.5, 3.0, 14.0, 2.2)
        if p is not None:
            posts.append((p, _u(rng, -math.pi, math.pi), _u(rng, 1.6, 1.95)))
            obstacles.append((p, 0.6))
    for p, yaw, h in posts:
        _post_boxes(static, p, yaw, h, pal["post"])
    _track_boxes(static, pal, target[0])
    _props(static, rng, spot, obstacles)
    return {"ex": ex, "kin": kin, "pal": pal, "cam": cam, "key": key, "height_key": height_key,
            "key_look": _worker_look(rng, pal), "others": others, "posts": posts, "static": static,
            "target": target}


def _track_boxes(bl: _Boxes, pal: dict[str, Any], x_mid: float) -> None:
    length = 240.0
    bl.add((x_mid, 0.0, 0.15), (length, 3.4, 0.3), pal["ballast"], part=_P["track"], texture=2)
    spacing = 0.75
    first = math.floor((x_mid - 30) / spacing) * spacing
    for i in range(int(60 / spacing)):
        bl.add((first + i * spacing, 0.0, 0.33), (0.26, 2.6, 0.16), pal["sleeper"], part=_P["track"])
    for y in (-0.75, 0.75):
        bl.add((x_mid, y, 0.48), (length, 0.12, 0.14), pal["rail"], part=_P["track"])


def _props(bl: _Boxes, rng: np.random.Generator, spot, obstacles: list) -> None:
    def place(radius: float, lo: float, hi: float, track_clear: float) -> np.ndarray | None:
        p = spot(radius, lo, hi, track_clear)
        if p is not None:
            obstacles.append((p, radius))
        return p

    orange = _jitter(rng, (1.0, 0.42, 0.05), 0.04)
    for _ in range(int(rng.integers(2, 7))):                       # traffic cones
        p = place(0.3, 2.0, 12.0, 1.9)
        if p is None:
            continue
        bl.add(p + [0, 0, 0.02], (0.4, 0.4, 0.04), orange * 0.6)
        bl.add(p + [0, 0, 0.3], (0.2, 0.2, 0.55), orange)
        bl.add(p + [0, 0, 0.36], (0.22, 0.22, 0.1), (0.92, 0.92, 0.9))
    for _ in range(int(rng.integers(0, 3))):                       # material piles (sand, gravel)
        p = place(1.7, 5.0, 16.0, 2.0)
        if p is None:
            continue
        col = _jitter(rng, [(0.72, 0.62, 0.42), (0.5, 0.49, 0.47), (0.45, 0.35, 0.25)][int(rng.integers(3))], 0.03)
        yaw = _u(rng, 0, math.pi)
        sc = _u(rng, 0.6, 1.1)
        for i, (w, d, h) in enumerate([(3.0, 2.5, 0.5), (2.2, 1.8, 0.5), (1.2, 1.0, 0.4)]):
            bl.add(p + [0, 0, sc * (0.25 + 0.5 * i)], (w * sc, d * sc, h * sc), col * (1 + 0.04 * i), yaw=yaw,
                   texture=1)
    for _ in range(int(rng.integers(0, 3))):                       # pallets of blocks / pipe stacks
        p = place(1.0, 4.0, 14.0, 2.0)
        if p is None:
            continue
        col = _jitter(rng, [(0.35, 0.38, 0.45), (0.15, 0.15, 0.15), (0.6, 0.6, 0.58)][int(rng.integers(3))], 0.04)
        w, h = _u(rng, 1.0, 3.0), _u(rng, 0.5, 1.0)
        bl.add(p + [0, 0, h / 2], (w, 1.1, h), col, yaw=_u(rng, 0, math.pi))
    if rng.random() < 0.5:                                         # site container
        p = place(3.2, 9.0, 20.0, 2.5)
        if p is not None:
            col = _jitter(rng, [(0.2, 0.35, 0.6), (0.25, 0.45, 0.25), (0.65, 0.2, 0.15), (0.85, 0.85, 0.82)]
                          [int(rng.integers(4))], 0.04)
            bl.add(p + [0, 0, 1.3], (6.0, 2.4, 2.6), col, yaw=_u(rng, 0, math.pi))
    if rng.random() < 0.4:                                         # light tower
        p = place(1.0, 6.0, 18.0, 2.5)
        if p is not None:
            bl.add(p + [0, 0, 0.5], (1.5, 1.2, 1.0), _jitter(rng, (0.9, 0.8, 0.2)))
            bl.add(p + [0, 0, 3.5], (0.15, 0.15, 5.0), (0.5, 0.5, 0.5))
            bl.add(p + [0, 0, 6.1], (1.0, 0.3, 0.5), (0.9, 0.9, 0.85))


# --------------------------------------------------------------------------- clips

def _render_clip(lay: dict[str, Any], times: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cam: Camera = lay["cam"]
    s = _SUPERSAMPLE
    rays = cam.rays(s)
    shader = _Shader(lay["look"])
    static = _render_static(lay["static"].arrays(), cam, rays, s, shader)
    n = len(times)
    rgb = np.empty((n, size, size, 3), np.float64)
    depth = np.empty((n, size, size), np.float32)
    parts = np.empty((n, size, size), np.uint8)
    for k in range(n):
        dyn = _Boxes()
        _excavator_frame(dyn, lay["ex"]["states"][k], lay["pal"])
        if lay["key"] is not None:
            w = lay["key"]
            _worker_boxes(dyn, w["pos"][k], w["heading"][k], lay["height_key"], w["gait"][k], w["swing"][k],
                          lay["key_look"], _P["key_worker"])
        for w in lay["others"]:
            _worker_boxes(dyn, w["pos"][k], w["heading"][k], w["height"], w["gait"][k], w["swing"][k], w["look"],
                          _P["other_worker"])
        z, col, part = _render_dynamic(dyn.arrays(), cam, rays, s, shader, static)
        depth[k], rgb[k], parts[k] = _downsample(z, col, part, s)
    return rgb, depth, parts


def _finish_rgb(rgb: np.ndarray, look: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    n = rgb.shape[0]
    gain = look["exposure"] * (1.0 + rng.normal(0.0, 0.01, (n, 1, 1, 1)))
    noisy = rgb * gain * 255.0 + rng.normal(0.0, look["rgb_noise"], rgb.shape)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


def simulate_clip(label: str, seed: int, *, frames: int = 16, size: int = 64,
                  degrade: bool = True) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Render one clip of class ``label``.

    Returns ``rgb`` (frames, size, size, 3) uint8, ``depth`` (frames, size, size)
    float32 metres along the optical axis (degraded like a monocular estimate
    when ``degrade``, holes = 0), and a JSON-serialisable ``meta`` dict (variant,
    reliance, camera, actor trajectories, segmentation legend). The same
    (label, seed, frames, size, degrade) always gives identical arrays.
    """
    if label not in CLASSES:
        raise ConfigError(f"unknown class {label!r}", fix=f"use one of {', '.join(CLASSES)}")
    if int(frames) < 1 or int(size) < 16:
        raise ConfigError(f"frames={frames}, size={size} is too small", fix="use frames >= 1 and size >= 16")
    if int(seed) < 0:
        raise ConfigError(f"seed {seed} is negative", fix="use a seed >= 0")
    rgb, depth, _, meta = _simulate(label, int(seed), int(frames), int(size), bool(degrade))
    return rgb, depth, meta


def _simulate(label: str, seed: int, frames: int, size: int,
              degrade: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), CLASSES.index(label), SIMULATOR_VERSION]))
    variant = VARIANTS[label][int(rng.integers(len(VARIANTS[label])))]
    times = np.arange(frames) * (DURATION_S / frames)
    look = _sample_look(rng)
    rgb_f = depth = parts = lay = None
    for attempt in range(60):
        try:
            lay = _layout(label, variant, rng, times, size)
        except _Reject:
            continue
        lay["look"] = look
        rgb_f, depth, parts = _render_clip(lay, times, size)
        if _visible(variant, parts):
            break
    else:
        raise RuntimeError(f"simulator found no valid layout for {label}/{variant} seed {seed}")  # pragma: no cover
    rgb = _finish_rgb(rgb_f, look, rng)
    meta = _meta(label, variant, seed, lay, times, parts, depth)
    if degrade:
        depth, params = _degrade(depth, rng)
        meta["degrade"] = params
    else:
        meta["degrade"] = None
    return rgb, depth.astype(np.float32), parts, meta


def _visible(variant: str, parts: np.ndarray) -> bool:
    """The actor that defines the clip must actually be seen."""
    n = parts.shape[0]
    area = parts.shape[1] * parts.shape[2]
    min_px = max(2, area // 1000)
    if variant in ("walk_under", "stand_under", "behind_bucket", "arm_moving", "arm_still", "idle_near_cabin",
                   "front_of_cabin"):
        seen = ((parts == _P["key_worker"]).sum(axis=(1, 2)) >= min_px).sum()
        if seen < 0.6 * n:
            return False
    if variant in ("arm_still", "idle_near_cabin"):
        if ((parts == _P["excavator_beacon"]).sum(axis=(1, 2)) >= 1).sum() < 0.6 * n:
            return False
    if variant == "post_under_bucket":
        if ((parts == _P["grey_post"]).sum(axis=(1, 2)) >= min_px).sum() < 0.6 * n:
            return False
    if variant in ("walk_under", "stand_under", "behind_bucket", "post_under_bucket"):
        if ((parts == _P["excavator_bucket"]).sum(axis=(1, 2)) >= 1).sum() < 0.6 * n:
            return False
    return True


def _r(x: Any, nd: int = 3) -> Any:
    return np.round(np.asarray(x, np.float64), nd).tolist()


def _meta(label: str, variant: str, seed: int, lay: dict[str, Any], times: np.ndarray, parts: np.ndarray,
          depth: np.ndarray) -> dict[str, Any]:
    kin = lay["kin"]
    key = lay["key"]
    ex = lay["ex"]
    meta: dict[str, Any] = {
        "simulator_version": SIMULATOR_VERSION, "label": label, "variant": variant, "reliance": RELIANCE[variant],
        "seed": int(seed), "frames": len(times), "size": int(parts.shape[1]), "duration_s": DURATION_S,
        "times_s": _r(times), "camera": lay["cam"].to_json(), "depth_units": "metres along the optical axis",
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
                          for w in lay["others"]],
        "posts": [{"pos": _r(p), "height": round(h, 3)} for p, _, h in lay["posts"]],
        "look": {k: v for k, v in lay["look"].items() if k != "ground_field"},
    }
    if key is not None:
        meta["key_worker"] = {
            "pos": _r(key["pos"]), "height": round(lay["height_key"], 3), "walking": bool(key["walking"]),
            "vest_rgb": _r(lay["key_look"]["vest"]),
            "bucket_dist_m": _r([_bucket_dist(p, k) for p, k in zip(key["pos"], kin)]),
            "cabin_dist_m": _r([_cabin_dist(p, k) for p, k in zip(key["pos"], kin)]),
            "pixels": [int(v) for v in (parts == _P["key_worker"]).sum(axis=(1, 2))],
        }
    return meta


# --------------------------------------------------------------------------- depth degradation

def _gauss_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur over the last two axes (reflect padding)."""
    if sigma <= 0:
        return x
    r = max(1, int(math.ceil(2.5 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = [(0, 0)] * (x.ndim - 2)
    y = np.pad(x, pad + [(r, r), (0, 0)], mode="reflect")
    y = sum(k[i] * y[..., i:i + x.shape[-2], :] for i in range(2 * r + 1))
    y = np.pad(y, pad + [(0, 0), (r, r)], mode="reflect")
    return sum(k[i] * y[..., :, i:i + x.shape[-1]] for i in range(2 * r + 1))


def _degrade(depth: np.ndarray, rng: np.random.Generator, *, scale_range=(0.8, 1.25), blur_sigma=(0.6, 1.4),
             noise=(0.01, 0.03), hole_fraction=(0.003, 0.02), hole_value: float = 0.0,
             temporal_jitter: float = 0.02) -> tuple[np.ndarray, dict[str, Any]]:
    d = np.asarray(depth, np.float64)
    squeeze = d.ndim == 2
    if squeeze:
        d = d[None]
    t, h, w = d.shape
    valid = np.isfinite(d) & (d > 0)
    d = np.where(valid, d, 0.0)
    scale = float(np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1]))))
    gamma = _u(rng, 0.85, 1.0)
    sigma = _u(rng, *blur_sigma)
    rel_noise = _u(rng, *noise)
    holes = _u(rng, *hole_fraction)
    ref = float(np.median(d[valid])) if valid.any() else 1.0
    out = _gauss_blur(d, sigma)
    # monocular estimators compress the far range and get the global scale wrong
    out = ref * np.power(np.maximum(out, 1e-6) / ref, gamma) * scale
    # a smooth, static, low-frequency error field (+-5 %) and per-frame flicker of the scale
    coarse = rng.uniform(-0.05, 0.05, (4, 4))
    yy, xx = np.linspace(0, 3, h), np.linspace(0, 3, w)
    field = _bilinear(coarse, yy, xx)
    flicker = 1.0 + rng.normal(0.0, temporal_jitter, (t, 1, 1))
    out = out * (1.0 + field)[None] * flicker
    out = out * (1.0 + rng.normal(0.0, rel_noise, out.shape))
    # holes: small blobs where the estimate is missing, plus already-invalid pixels
    hole = ~valid
    n_blobs = max(1, int(round(holes * h * w / 6.0)))
    cy = rng.integers(0, h, (t, n_blobs))
    cx = rng.integers(0, w, (t, n_blobs))
    rad = rng.uniform(0.8, 2.2, (t, n_blobs))
    gy, gx = np.mgrid[0:h, 0:w]
    for k in range(t):
        dist2 = (gy[None] - cy[k][:, None, None]) ** 2 + (gx[None] - cx[k][:, None, None]) ** 2
        hole[k] |= (dist2 <= rad[k][:, None, None] ** 2).any(0)
    out = np.clip(out, 0.0, MAX_DEPTH * 1.5)
    out[hole] = hole_value
    if squeeze:
        out = out[0]
    params = {"scale": round(scale, 4), "gamma": round(gamma, 4), "blur_sigma_px": round(sigma, 3),
              "rel_noise": round(rel_noise, 4), "hole_fraction": round(float(hole.mean()), 4),
              "hole_value": "nan" if np.isnan(hole_value) else float(hole_value)}
    return out.astype(np.float32), params


def _bilinear(grid: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    y0 = np.clip(np.floor(yy).astype(int), 0, grid.shape[0] - 2)
    x0 = np.clip(np.floor(xx).astype(int), 0, grid.shape[1] - 2)
    fy, fx = (yy - y0)[:, None], (xx - x0)[None, :]
    g = grid
    return ((1 - fy) * (1 - fx) * g[y0][:, x0] + (1 - fy) * fx * g[y0][:, x0 + 1]
            + fy * (1 - fx) * g[y0 + 1][:, x0] + fy * fx * g[y0 + 1][:, x0 + 1])


def degrade_depth(depth: np.ndarray, rng: np.random.Generator, *, scale_range: tuple[float, float] = (0.8, 1.25),
                  blur_sigma: tuple[float, float] = (0.6, 1.4), noise: tuple[float, float] = (0.01, 0.03),
                  hole_fraction: tuple[float, float] = (0.003, 0.02), hole_value: float = 0.0,
                  temporal_jitter: float = 0.02) -> np.ndarray:
    """Make exact depth (T, H, W) or (H, W) look like a monocular estimate.

    Draws from ``rng``: a Gaussian blur (sigma in ``blur_sigma`` pixels), a
    far-range compression (power 0.85-1), a global scale error (log-uniform in
    ``scale_range``), a smooth +-5 % error field, per-frame scale flicker
    (``temporal_jitter``), multiplicative pixel noise (``noise``), and holes
    (small blobs covering about ``hole_fraction`` of the pixels, plus pixels that
    were already 0 or non-finite) set to ``hole_value``. The default hole value
    0 keeps the array finite ("0 = no estimate"); pass ``float('nan')`` to mark
    holes with NaN instead. Returns float32.
    """
    out, _ = _degrade(depth, rng, scale_range=scale_range, blur_sigma=blur_sigma, noise=noise,
                      hole_fraction=hole_fraction, hole_value=hole_value, temporal_jitter=temporal_jitter)
    return out


# --------------------------------------------------------------------------- dataset

def _clip_label(seed: int, i: int) -> str:
    """Labels come in seeded blocks of four (one per class), so any prefix of the
    clip list is balanced to within one clip per class, whatever ``n_clips``."""
    perm = np.random.default_rng(np.random.SeedSequence([int(seed), i // len(CLASSES), 7])).permutation(len(CLASSES))
    return CLASSES[int(perm[i % len(CLASSES)])]


def _clip_seed(seed: int, i: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(i), 11]).generate_state(1, np.uint32)[0])


def _split(labels: Sequence[str], seed: int) -> list[str]:
    """Seeded stratified 70/15/15 split (val and test get one clip each from any
    class with at least three)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 13]))
    out = ["train"] * len(labels)
    by_class: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by_class.setdefault(lab, []).append(i)
    for lab in sorted(by_class):
        idx = np.array(by_class[lab])
        rng.shuffle(idx)
        m = len(idx)
        n_test = int(round(0.15 * m))
        n_val = int(round(0.15 * m))
        if m >= 3:
            n_test, n_val = max(1, n_test), max(1, n_val)
        for j in idx[:n_test]:
            out[j] = "test"
        for j in idx[n_test:n_test + n_val]:
            out[j] = "val"
    return out


def _clip_job(job: tuple) -> dict[str, Any]:
    i, label, clip_seed, path, frames, size, degrade = job
    path = Path(path)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
            same = (meta["seed"] == clip_seed and meta["label"] == label and meta["frames"] == frames
                    and meta["size"] == size and (meta["degrade"] is not None) == degrade
                    and meta["simulator_version"] == SIMULATOR_VERSION)
            if same:
                return _summary(i, meta)
        except Exception:       # a file we cannot read back is rendered again
            pass
        path.unlink(missing_ok=True)
    rgb, depth, parts, meta = _simulate(label, clip_seed, frames, size, degrade)
    meta["clip_index"] = i
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, rgb=rgb, depth=depth.astype(np.float16), parts=parts,
                                meta=np.array(json.dumps(meta)))
    return _summary(i, meta)


def _summary(i: int, meta: dict[str, Any]) -> dict[str, Any]:
    kw = meta.get("key_worker") or {}
    return {"index": i, "label": meta["label"], "variant": meta["variant"], "reliance": meta["reliance"],
            "clip_seed": meta["seed"], "operating": meta["excavator"]["operating"],
            "arm_mode": meta["excavator"]["arm_mode"], "driving": meta["excavator"]["driving"],
            "n_workers": (1 if kw else 0) + len(meta["other_workers"]),
            "min_key_bucket_m": min(kw["bucket_dist_m"]) if kw else float("nan"),
            "min_key_cabin_m": min(kw["cabin_dist_m"]) if kw else float("nan")}


def generate_dataset(out_dir: str | os.PathLike, *, n_clips: int = 1600, seed: int = 0, frames: int = 16,
                     size: int = 64, degrade: bool = True, workers: int = 2, progress: bool = True) -> Path:
    """Render ``n_clips`` balanced clips into ``out_dir`` and return its ``manifest.csv``.

    Layout: ``clips/clip_00000.npz`` (arrays ``rgb`` T,H,W,3 uint8; ``depth``
    T,H,W float16 metres; ``parts`` T,H,W uint8 segmentation; ``meta`` JSON
    string), ``manifest.csv`` (id, label, split, group, rgb, depth; paths
    relative to the manifest), ``simulator.json`` (the generation settings) and
    ``clips_meta.parquet`` (variant, reliance and actor summary per clip).
    Resumable: clip files already present are kept; the manifest is written
    atomically once every clip exists. Deterministic: the same settings give
    identical arrays whatever ``workers``.
    """
    out = Path(out_dir)
    if n_clips < 1:
        raise ConfigError(f"n_clips={n_clips}", fix="ask for at least one clip")
    settings = {"simulator_version": SIMULATOR_VERSION, "seed": int(seed), "frames": int(frames), "size": int(size),
                "degrade": bool(degrade), "depth_dtype": "float16", "duration_s": DURATION_S}
    cfg_path = out / "simulator.json"
    if cfg_path.is_file():
        old = read_json(cfg_path, what="simulator settings")
        old_cmp = {k: old.get(k) for k in settings}
        if old_cmp != settings:
            diff = ", ".join(f"{k}: {old_cmp[k]} -> {settings[k]}" for k in settings if old_cmp[k] != settings[k])
            raise DataError(f"{out} holds clips rendered with other settings ({diff})",
                            fix="pass another out_dir, or delete that folder to render it again")
    write_json(cfg_path, {**settings, "n_clips": int(n_clips)})
    clip_dir = out / "clips"
    clip_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for i in range(n_clips):
        jobs.append((i, _clip_label(seed, i), _clip_seed(seed, i), str(clip_dir / f"clip_{i:05d}.npz"),
                     int(frames), int(size), bool(degrade)))
    results: list[dict[str, Any]] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=n_clips, desc="rendering clips", unit="clip")
    workers = max(1, int(workers))
    try:
        if workers == 1:
            for job in jobs:
                results.append(_clip_job(job))
                if bar is not None:
                    bar.update(1)
        else:
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            with ctx.Pool(workers) as pool:
                for res in pool.imap_unordered(_clip_job, jobs, chunksize=4):
                    results.append(res)
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    results.sort(key=lambda r: r["index"])
    labels = [r["label"] for r in results]
    ids = [f"clip_{r['index']:05d}" for r in results]
    manifest = pd.DataFrame({
        "id": ids, "label": labels, "split": _split(labels, seed), "group": ids,
        "rgb": [f"clips/{i}.npz" for i in ids], "depth": [f"clips/{i}.npz" for i in ids],
    })
    meta = pd.DataFrame(results).drop(columns=["index"])
    meta.insert(0, "id", ids)
    write_parquet(out / "clips_meta.parquet", meta)
    path = out / "manifest.csv"
    with atomic_path(path) as tmp:
        manifest.to_csv(tmp, index=False)
    return path
