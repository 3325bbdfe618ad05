"""The z-buffer renderer: boxes seen by a camera -> RGB, exact depth and part ids.

Each primitive is rasterised inside its projected bounding rectangle (analytic
ray/box slab test on a pixel grid, numpy-vectorised) and kept where it is nearer
than what the buffer already holds. Depth is metric, along the optical axis;
RGB is shaded (sun, ambient, textures, haze) and averaged over
``SUPERSAMPLE`` x ``SUPERSAMPLE`` samples per pixel, while depth and part ids
take the nearest sample (an exact surface depth). The ground plane and static
boxes are rendered once per clip (:func:`render_static`) and each frame's
moving boxes on top of them (:func:`render_dynamic`).
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from core.data.rgbd_sim._geometry import Box, BoxList, Camera
from core.data.rgbd_sim._site import MAX_DEPTH, PART_IDS

_NEAR = 0.05
SUPERSAMPLE = 2         # RGB is averaged over 2x2 samples per pixel (anti-aliasing)


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


class Shader:
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
           axbuf: np.ndarray, shader: Shader, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def render_static(b: dict[str, np.ndarray], cam: Camera, rays: np.ndarray, scale: int, shader: Shader,
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
        part[g] = PART_IDS["ground"]
    idbuf = np.full((n, n), -1, np.int64)
    axbuf = np.zeros((n, n), np.int64)
    _rasterise(b, cam, rays, scale, zbuf, idbuf, axbuf)
    sky = part == 0
    sky &= idbuf < 0
    col[sky] = shader.sky(rays[sky])
    gm = (part == PART_IDS["ground"]) & (idbuf < 0)
    if gm.any():
        hit = cam.position + rays[gm] * zbuf[gm][:, None]
        col[gm] = shader.light(shader.ground(hit), np.tile([0.0, 0.0, 1.0], (int(gm.sum()), 1)))
    bm = idbuf >= 0
    if bm.any():
        col[bm], part[bm] = _shade(b, cam, rays, zbuf, idbuf, axbuf, shader, bm)
    solid = ~sky
    col[solid] = shader.atmosphere(col[solid], zbuf[solid])
    return zbuf, col, part


def render_dynamic(b: dict[str, np.ndarray], cam: Camera, rays: np.ndarray, scale: int, shader: Shader,
                    static: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Z-buffer, colour and part id of one frame's moving boxes drawn over the static render."""
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


def downsample(z: np.ndarray, col: np.ndarray, part: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
                 supersample: int = SUPERSAMPLE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one frame of boxes on the ground plane z = 0.

    Returns ``rgb`` (H, W, 3) uint8, ``depth`` (H, W) float32 metres along the
    optical axis (``MAX_DEPTH`` where nothing is hit) and ``part`` (H, W) uint8
    (the ``part`` of the box each pixel sees; 1 ground, 0 sky).
    """
    bl = BoxList()
    for box in boxes:
        bl.add_box(box)
    rays = camera.rays(supersample)
    z, col, part = render_static(bl.arrays(), camera, rays, supersample, Shader(_DEFAULT_LOOK), ground=ground)
    z, col, part = downsample(z, col, part, supersample)
    rgb = np.clip(col * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return rgb, z.astype(np.float32), part
