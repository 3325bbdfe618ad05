"""The pieces every contribution overlay on pictures shares: a picture as RGB bytes, a grid of
Shapley values as a semi-transparent diverging heatmap over it, and which temporal slice of a
clip's tubes covers a frame. The image and frame figures (:mod:`ui.figures.samples`) and the
clip player (:mod:`ui.figures.clips`) draw with them, so an overlay means the same everywhere:
red pushes towards the explained output, blue against, white is 0, the scale symmetric."""
from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from core.errors import DataError
from ui.figures.style import CONTRIBUTION_COLORSCALE

__all__ = ["to_rgb_uint8", "overlay_trace", "symmetric_max", "tube_array", "tube_slice", "clip_value_range"]


def to_rgb_uint8(image: Any, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """HxW, HxWx1, HxWx3 or HxWx4 array (uint8 or float) as HxWx3 uint8; a float picture is
    scaled from ``lo`` to ``hi`` (its own range when not given; [0, 1] pictures stay as they are)."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise DataError(f"image must be HxW or HxWx3, got shape {arr.shape}", fix="pass one image or frame")
    if arr.dtype != np.uint8:
        f = arr.astype(np.float64)
        lo = float(np.nanmin(f)) if lo is None else lo
        hi = float(np.nanmax(f)) if hi is None else hi
        if arr.ndim == 3 and lo >= 0 and hi <= 1.0:
            lo, hi = 0.0, 1.0
        f = (f - lo) / (hi - lo) if hi > lo else np.zeros_like(f)
        arr = np.clip(np.nan_to_num(f) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return arr


def overlay_trace(grid: np.ndarray, height: int, width: int, zmax: float, opacity: float,
                  show_scale: bool = True) -> go.Heatmap:
    """A (rows, cols) grid of Shapley values stretched over a ``height`` x ``width`` picture (pixel
    centres at integers), diverging around 0 from ``-zmax`` to ``zmax``."""
    ph, pw = grid.shape
    cell_h, cell_w = height / ph, width / pw
    rows = np.repeat(np.arange(ph), pw)
    cols = np.tile(np.arange(pw), ph)
    custom = np.stack([rows, cols], axis=1).reshape(ph, pw, 2)
    return go.Heatmap(
        z=grid,
        x=(np.arange(pw) + 0.5) * cell_w - 0.5,
        y=(np.arange(ph) + 0.5) * cell_h - 0.5,
        colorscale=CONTRIBUTION_COLORSCALE, zmin=-zmax, zmax=zmax, zmid=0, opacity=opacity,
        showscale=show_scale, customdata=custom,
        colorbar={"title": {"text": "SHAP value"}, "thickness": 16, "exponentformat": "e"},
        hovertemplate="Patch (row %{customdata[0]}, col %{customdata[1]})<br>SHAP value: %{z:.4f}<extra></extra>",
        hoverongaps=False,
    )


def symmetric_max(values: np.ndarray) -> float:
    """The largest |value| of the finite ``values`` (a tiny positive number when there is none):
    the end of a symmetric colour scale."""
    values = np.asarray(values, dtype=float)
    finite = np.abs(values[np.isfinite(values)])
    m = float(finite.max()) if finite.size else 0.0
    return m if m > 0 else 1e-9


def tube_array(tube_values: Any) -> np.ndarray:
    """A clip's tube contributions as (T', rows, cols): one grid per temporal slice, a single
    (rows, cols) grid for tubes that span the whole clip."""
    values = np.asarray(tube_values, dtype=float)
    if values.ndim == 2:
        values = values[None]
    if values.ndim != 3:
        raise DataError(f"tube values must be (T', rows, cols), got shape {values.shape}",
                        fix="pass one grid per time slice")
    return values


def tube_slice(n_slices: int, frame: int, n_frames: int) -> int:
    """The temporal slice (of ``n_slices`` equal ones) that covers frame ``frame`` of ``n_frames``."""
    return min(n_slices - 1, frame * n_slices // max(n_frames, 1))


def clip_value_range(frames: np.ndarray) -> tuple[float, float] | tuple[None, None]:
    """(lo, hi) of a single-channel float clip's finite values, so that every frame of it is scaled
    alike ((0, 1) when it has none); (None, None) for RGB or uint8 clips, which need no scaling."""
    frames = np.asarray(frames)
    single = frames.ndim == 3 or frames.shape[-1] == 1
    if not single or frames.dtype == np.uint8:
        return None, None
    finite = frames[np.isfinite(frames)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
