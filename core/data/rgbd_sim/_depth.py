"""Depth degradation: exact metric depth made to look like a monocular depth estimate.

:func:`degrade_depth` is the public form; :func:`degrade_with_params` also returns the drawn
parameters, which a clip records in ``meta["degrade"]``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from core.data.rgbd_sim._draws import uniform
from core.data.rgbd_sim._site import MAX_DEPTH
from core.errors import DataError


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


def degrade_with_params(depth: np.ndarray, rng: np.random.Generator, *, scale_range=(0.8, 1.25), blur_sigma=(0.6, 1.4),
             noise=(0.01, 0.03), hole_fraction=(0.003, 0.02), hole_value: float = 0.0,
             temporal_jitter: float = 0.02, parts: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """:func:`degrade_depth` plus the parameters it drew (scale, gamma, blur, noise, hole fraction)."""
    d = np.asarray(depth, np.float64)
    squeeze = d.ndim == 2
    if squeeze:
        d = d[None]
    t, h, w = d.shape
    valid = np.isfinite(d) & (d > 0)
    d = np.where(valid, d, 0.0)
    scale = float(np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1]))))
    gamma = uniform(rng, 0.85, 1.0)
    sigma = uniform(rng, *blur_sigma)
    rel_noise = uniform(rng, *noise)
    holes = uniform(rng, *hole_fraction)
    ref = float(np.median(d[valid])) if valid.any() else 1.0
    if parts is not None:
        parts = np.asarray(parts)
        parts = parts[None] if squeeze and parts.ndim == 2 else parts
        if parts.shape != d.shape:
            raise DataError(f"parts has shape {parts.shape} but the depth {d.shape}",
                            fix="pass the segmentation rendered with this depth (same frames and size), or none")
    out = _gauss_blur(d, sigma) if parts is None else _segment_blur(d, parts, sigma)
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


def _segment_blur(d: np.ndarray, parts: np.ndarray, sigma: float) -> np.ndarray:
    """:func:`_gauss_blur` within each segment (a normalised convolution per part id): the estimate is smooth
    on a surface and sharp at object edges, as current monocular estimators are, so the sky's 100 m does not
    bleed into a bucket a few pixels wide. Each part is blurred within its bounding box (plus the kernel's
    radius and the reflect padding's reach), which keeps the small parts cheap."""
    out = np.empty_like(d)
    r = max(1, int(math.ceil(2.5 * sigma)))
    h, w = parts.shape[-2:]
    for part in np.unique(parts):
        inside = parts == part
        xs = np.flatnonzero(inside.any(axis=tuple(range(inside.ndim - 1))))
        ys = np.flatnonzero(inside.any(axis=tuple(range(inside.ndim - 2)) + (inside.ndim - 1,)))
        # the box's own blur reflects at its edges, where the full frame's would read pixels outside it:
        # 2r of margin keeps every reflected read on pixels that are masked out anyway or in the frame's padding
        y0, y1 = max(0, ys[0] - 2 * r), min(h, ys[-1] + 2 * r + 1)
        x0, x1 = max(0, xs[0] - 2 * r), min(w, xs[-1] + 2 * r + 1)
        box = (..., slice(y0, y1), slice(x0, x1))
        mask = inside[box].astype(np.float64)
        num = _gauss_blur(mask * d[box], sigma)
        den = _gauss_blur(mask, sigma)
        out[box] = np.where(inside[box], num / np.maximum(den, 1e-9), out[box])
    return out


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
                  temporal_jitter: float = 0.02, parts: np.ndarray | None = None) -> np.ndarray:
    """Make exact depth (T, H, W) or (H, W) look like a monocular estimate.

    Draws from ``rng``: a Gaussian blur (sigma in ``blur_sigma`` pixels; with a segmentation ``parts`` of the
    same shape, within each part only, so object edges stay sharp as in current monocular estimators), a
    far-range compression (power 0.85-1), a global scale error (log-uniform in
    ``scale_range``), a smooth +-5 % error field, per-frame scale flicker
    (``temporal_jitter``), multiplicative pixel noise (``noise``), and holes
    (small blobs covering about ``hole_fraction`` of the pixels, plus pixels that
    were already 0 or non-finite) set to ``hole_value``. The default hole value
    0 keeps the array finite ("0 = no estimate"); pass ``float('nan')`` to mark
    holes with NaN instead. Returns float32.
    """
    out, _ = degrade_with_params(depth, rng, scale_range=scale_range, blur_sigma=blur_sigma, noise=noise,
                                 hole_fraction=hole_fraction, hole_value=hole_value,
                                 temporal_jitter=temporal_jitter, parts=parts)
    return out
