"""Video clip files: load a user's own clips and check that an RGB clip and its depth clip agree.

A clip is one of (see ``docs/FORMATS.md``):

* a ``.npy`` array ``(T, H, W)`` or ``(T, H, W, C)``,
* a ``.npz`` archive: the array named like the modality column (``rgb``,
  ``depth``, ...), else its only array,
* a folder of frame images (PNG, JPEG, BMP, TIFF, WebP), read in name order.

:func:`load_clip` always returns ``(T, H, W, C)`` with ``C`` in {1, 3}: uint8
stays uint8, every other dtype becomes float32 (values untouched, so 16-bit
depth PNGs keep their units, for example millimetres). :func:`validate_pair`
then checks an RGB clip against its depth clip and either raises a
:class:`~core.errors.DataError` naming the clip, the problem and the fix, or,
with ``repair=True``, applies the documented repairs:

================================  ==============================================
problem                           repair (``repair=True``)
================================  ==============================================
RGB with 1 channel                replicated to 3 channels (grey)
depth with 3 equal channels       first channel kept (a depth map saved as grey)
depth with 3 differing channels   none: a colour-mapped depth image has lost its
                                  metric values; always an error
other channel counts (2, 4, ...)  none: always an error
NaN / +-inf in depth              replaced by 0 ("no measurement", the hole value
                                  of the simulator's degraded depth)
NaN / +-inf in float RGB          replaced by 0
different frame counts            depth resampled to the RGB frame count by
                                  nearest index in time (frame k of T_rgb takes
                                  depth frame floor((k + 0.5) * T_d / T_rgb))
different frame sizes             depth resized to the RGB size by nearest
                                  neighbour (never blends depths across edges)
================================  ==============================================
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from core.errors import DataError

__all__ = ["IMAGE_SUFFIXES", "load_clip", "validate_pair", "resample_frames", "resize_nearest"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

_FORMAT_FIX = ("store each clip as a .npy array (T,H,W[,C]), a .npz holding an array named like the "
               "modality column, or a folder of frame images")


def _name(path: Path, clip_id: str | None) -> str:
    return f"clip {clip_id!r}" if clip_id is not None else f"clip {path.stem!r}"


def load_clip(path: str | Path, modality: str, *, clip_id: str | None = None) -> np.ndarray:
    """Read one clip of ``modality`` from ``path`` as ``(T, H, W, C)``, C in {1, 3}.

    ``clip_id`` (the manifest id) is only used in error messages; it defaults to
    the file name. Raises :class:`DataError` when the file is missing, unreadable
    or not shaped like a clip.
    """
    path = Path(path)
    who = _name(path, clip_id)
    if not path.exists():
        raise DataError(f"{who}: {modality} file {path} is missing",
                        fix=f"add the file, or correct the {modality!r} path in the manifest (paths are relative "
                            "to the manifest)")
    if path.is_dir():
        arr = _load_frames(path, who, modality)
    elif path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise DataError(f"{who}: {modality} file {path} is unreadable ({type(exc).__name__}: {exc})",
                            fix="re-export it with numpy.save (no pickled objects)") from exc
    elif path.suffix.lower() == ".npz":
        arr = _load_npz(path, who, modality)
    else:
        raise DataError(f"{who}: {modality} file {path} has an unsupported type {path.suffix or '(none)'!r}",
                        fix=_FORMAT_FIX)
    return _as_clip(arr, who, modality, path)


def _load_npz(path: Path, who: str, modality: str) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files)
            if modality in names:
                return z[modality]
            if len(names) == 1:
                return z[names[0]]
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{who}: {modality} file {path} is unreadable ({type(exc).__name__}: {exc})",
                        fix="re-export it with numpy.savez / savez_compressed (no pickled objects)") from exc
    raise DataError(f"{who}: {path} holds arrays {names} but none is named {modality!r}",
                    fix=f"name the array {modality!r} (numpy.savez(path, {modality}=...)) or keep a single array "
                        "in the file")


def _load_frames(folder: Path, who: str, modality: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{who}: {modality} frame folder {folder} holds no images",
                        fix=f"put the frames there as {', '.join(IMAGE_SUFFIXES)} files, named so that they sort "
                            "in time order (frame_0001.png, ...)")
    frames = []
    for f in files:
        try:
            with Image.open(f) as im:
                frames.append(_image_array(im))
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{who}: frame {f} is unreadable ({exc})", fix="re-export or remove that frame") from exc
        if frames[-1].shape[:2] != frames[0].shape[:2]:
            raise DataError(f"{who}: frame {f.name} is {frames[-1].shape[1]}x{frames[-1].shape[0]} but "
                            f"{files[0].name} is {frames[0].shape[1]}x{frames[0].shape[0]}",
                            fix="export every frame of a clip at the same size")
        if frames[-1].shape != frames[0].shape:
            raise DataError(f"{who}: frame {f.name} has {frames[-1].shape[2]} channels but {files[0].name} has "
                            f"{frames[0].shape[2]}", fix="export every frame of a clip in the same colour mode")
    return np.stack(frames)


def _image_array(im) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im)
        return (a.astype(np.float32) if a.dtype != np.uint8 else a)[..., None]
    if im.mode == "L":
        return np.asarray(im)[..., None]
    if im.mode in ("LA", "1"):
        return np.asarray(im.convert("L"))[..., None]
    return np.asarray(im.convert("RGB"))


def _as_clip(arr: np.ndarray, who: str, modality: str, path: Path) -> np.ndarray:
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DataError(f"{who}: {modality} array in {path} has dtype {arr.dtype}", fix="store numbers")
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise DataError(f"{who}: {modality} array in {path} has shape {arr.shape}, not (T,H,W) or (T,H,W,C)",
                        fix="store one clip per file with time first; a single image needs a leading axis of 1")
    if 0 in arr.shape:
        raise DataError(f"{who}: {modality} clip in {path} is empty (shape {arr.shape})",
                        fix="store at least one frame")
    if arr.shape[-1] not in (1, 3):
        hint = " (channels-first? move the channel axis last)" if arr.shape[1] in (1, 3) else ""
        raise DataError(f"{who}: {modality} clip in {path} has {arr.shape[-1]} channels{hint}",
                        fix="store RGB with 3 channels and depth with 1 (drop alpha channels)")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    return arr.astype(np.float32)


def resample_frames(clip: np.ndarray, n: int) -> np.ndarray:
    """Pick ``n`` frames by nearest index in time: frame k takes floor((k + 0.5) * T / n)."""
    t = clip.shape[0]
    idx = np.minimum(((np.arange(n) + 0.5) * t / n).astype(np.int64), t - 1)
    return clip[idx]


def resize_nearest(clip: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of (T, H, W, C) to (T, height, width, C)."""
    h, w = clip.shape[1:3]
    ys = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    xs = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    return clip[:, ys][:, :, xs]


def _finite(arr: np.ndarray, name: str, who: str, repair: bool, fix: str) -> np.ndarray:
    """``arr`` with NaN/inf set to 0 when repairing; otherwise a DataError if it holds any."""
    if not np.issubdtype(arr.dtype, np.floating) or np.isfinite(arr).all():
        return arr
    n_bad = int((~np.isfinite(arr)).sum())
    if not repair:
        raise DataError(f"{who}: {name} holds {n_bad} NaN/inf values", fix=fix)
    log.warning("%s: replaced %d NaN/inf %s values with 0", who, n_bad, name)
    return np.where(np.isfinite(arr), arr, 0).astype(arr.dtype)


def validate_pair(rgb: np.ndarray, depth: np.ndarray, clip_id: str, *,
                  repair: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Check an RGB clip (T,H,W,3) against its depth clip (T,H,W[,1]).

    Returns ``(rgb, depth)`` as (T,H,W,3) and (T,H,W,1), repaired when
    ``repair`` is true (see the module docstring for each repair; each one
    applied is logged at WARNING level). Without ``repair`` any mismatch raises
    :class:`DataError` naming ``clip_id``, the problem and the fix.
    """
    rgb = np.asarray(rgb)
    depth = np.asarray(depth)
    who = f"clip {clip_id!r}"
    again = "or set repair_video = true in [dataset] of the experiment file (repair=True from Python) to"
    if rgb.ndim == 3:
        rgb = rgb[..., None]
    if depth.ndim == 3:
        depth = depth[..., None]
    for name, arr in (("RGB", rgb), ("depth", depth)):
        if arr.ndim != 4:
            raise DataError(f"{who}: {name} has shape {arr.shape}, not (T,H,W[,C])",
                            fix="store one clip per file with time first")
        if 0 in arr.shape:
            raise DataError(f"{who}: {name} is empty (shape {arr.shape})", fix="store at least one frame")

    # channels
    if rgb.shape[-1] != 3:
        if rgb.shape[-1] == 1 and repair:
            rgb = np.repeat(rgb, 3, axis=-1)
            log.warning("%s: RGB had 1 channel; replicated to 3 (grey)", who)
        else:
            fix = "store RGB frames with 3 channels (drop alpha)"
            if rgb.shape[-1] == 1:
                fix += f", {again} replicate the grey channel"
            raise DataError(f"{who}: RGB has {rgb.shape[-1]} channels, expected 3", fix=fix)
    if depth.shape[-1] != 1:
        same = depth.shape[-1] == 3 and np.array_equal(depth[..., :1].repeat(3, -1), depth, equal_nan=True)
        if same and repair:
            depth = depth[..., :1]
            log.warning("%s: depth had 3 identical channels; kept one", who)
        elif same:
            raise DataError(f"{who}: depth has 3 channels (all equal), expected 1",
                            fix=f"save depth as a single-channel array or grey/16-bit image, {again} keep one channel")
        elif depth.shape[-1] == 3:
            raise DataError(f"{who}: depth has 3 different channels, expected 1 (a colour-mapped depth image?)",
                            fix="export the raw metric depth (a float .npy/.npz or a 16-bit grey PNG), not a "
                                "colour visualisation")
        else:
            raise DataError(f"{who}: depth has {depth.shape[-1]} channels, expected 1",
                            fix="save depth as a single-channel array")

    # non-finite values
    depth = _finite(depth, "depth", who, repair, f"fill the holes with 0 (no measurement), {again} replace them with 0")
    rgb = _finite(rgb, "RGB", who, repair, f"re-export the frames, {again} replace them with 0")

    # frame count, then frame size
    if rgb.shape[0] != depth.shape[0]:
        if not repair:
            raise DataError(f"{who}: RGB has {rgb.shape[0]} frames but depth has {depth.shape[0]}",
                            fix=f"export both modalities with the same frames, {again} resample the depth frames "
                                "to the RGB frame count (nearest index in time)")
        log.warning("%s: resampled depth from %d to %d frames (nearest index)", who, depth.shape[0], rgb.shape[0])
        depth = resample_frames(depth, rgb.shape[0])
    if rgb.shape[1:3] != depth.shape[1:3]:
        if not repair:
            raise DataError(f"{who}: RGB frames are {rgb.shape[2]}x{rgb.shape[1]} (WxH) but depth frames are "
                            f"{depth.shape[2]}x{depth.shape[1]}",
                            fix=f"export both modalities at the same size, {again} resize depth to the RGB size "
                                "(nearest neighbour)")
        log.warning("%s: resized depth from %sx%s to %sx%s (nearest neighbour)", who, depth.shape[2], depth.shape[1],
                    rgb.shape[2], rgb.shape[1])
        depth = resize_nearest(depth, rgb.shape[1], rgb.shape[2])
    return rgb, depth
