"""Scene geometry: oriented boxes, the box list the rasteriser consumes, the pinhole camera.

Everything in a scene is an oriented box standing on the ground plane ``z = 0``
(cylinders are approximated by boxes), seen by a :class:`Camera`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from core.data.rgbd_sim._site import PART_IDS


def yaw_pitch(yaw: float, pitch: float = 0.0) -> np.ndarray:
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
    part: int = PART_IDS["prop"]
    emissive: bool = False
    texture: int = 0          # 0 flat, 1 grain (piles, dirt), 2 ballast stones


class BoxList:
    """Struct-of-arrays box list (what the rasteriser consumes); ``add`` takes yaw/pitch or a rotation."""

    def __init__(self) -> None:
        self._rows: list[tuple] = []

    def add(self, center, size, color, *, yaw: float = 0.0, pitch: float = 0.0,
            rotation: np.ndarray | None = None, part: int = PART_IDS["prop"],
            emissive: bool = False, texture: int = 0) -> None:
        rot = yaw_pitch(yaw, pitch) if rotation is None else np.asarray(rotation, dtype=np.float64)
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
