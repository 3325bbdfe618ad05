"""Noise on raw items, one or more per modality kind (:data:`NOISES`, keyed ``<kind>/<noise>``).

A noise takes one raw item (what :meth:`core.kinds.ModalityKind.load` returns), a level in
[0, 1] and a random generator, and returns the perturbed item. Level 0 returns the item
itself. Each sample's generator is seeded by the sample id, the modality and the noise, not
by the level: every level reuses the same random draws scaled or thresholded by the level
(common random numbers), so a higher level perturbs the same sample more, never differently.

=============  ================  ==========================================================
kind           noise             what a level ``l`` does
=============  ================  ==========================================================
image, video   ``pixel-noise``   Gaussian noise of sd ``0.5 l`` x the value range (255 for
                                 uint8, else the item's max - min), clipped to the range
image, video   ``occlusion``     a rectangle of sides ``sqrt(l)`` x the frame's (area
                                 ``l``) set to the item's mean per channel, at a seeded
                                 centre (the same box in every frame of a clip)
text           ``token-dropout`` each whitespace token dropped with probability ``l``
audio          ``white-noise``   white noise at SNR ``40 - 50 l`` dB (35 dB at 0.1, -10 dB
                                 at 1) relative to the clip's RMS (at least 1e-3), clipped
                                 to [-1, 1]
timeseries     ``jitter``        Gaussian noise of sd ``l`` x the channel's training sd
timeseries     ``dropouts``      each time step lost with probability ``l`` and filled by
                                 the kind's rule: linear interpolation in time, edges held;
                                 a channel with no step left becomes NaN, which the encoder
                                 sets to the channel's training mean
tabular        ``column-noise``  Gaussian noise of sd ``l`` x the column's training sd
                                 (a missing value stays missing)
=============  ================  ==========================================================

Every registered kind (:func:`core.kinds.list_kinds`) has at least one noise; a test checks it.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from core.errors import ConfigError, choices
from core.kinds import canonical_kind
from core.registry import Registry

#: The SNR of audio white noise: ``AUDIO_SNR_DB[0] - AUDIO_SNR_DB[1] * level`` dB.
AUDIO_SNR_DB = (40.0, 50.0)
#: The smallest RMS audio noise is scaled against (a silent clip still gets noise).
AUDIO_MIN_RMS = 1e-3


@dataclass(frozen=True)
class Noise:
    """One noise of one kind: ``apply(item, level, rng, stats)``; ``fit(train_items)`` the statistics
    it needs from the training split (None: it needs none)."""

    kind: str
    name: str
    doc: str
    apply: Callable[[Any, float, np.random.Generator, Mapping[str, Any]], Any]
    fit: Callable[[Sequence[Any]], dict[str, Any]] | None = None


NOISES: Registry[Noise] = Registry("noise")


def register_noise(kind: str, name: str, doc: str, fit: Callable[[Sequence[Any]], dict[str, Any]] | None = None,
                   ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``apply(item, level, rng, stats)`` as the noise ``name`` of ``kind``."""

    def decorator(apply: Callable[..., Any]) -> Callable[..., Any]:
        noise = Noise(kind, name, doc, apply, fit)
        NOISES.register(f"{kind}/{name}", kind=kind, noise=name)(lambda: noise)
        return apply

    return decorator


def noises_for(kind: str) -> list[str]:
    """The noise names of ``kind`` (an old kind name resolves), in registration order."""
    return [NOISES.meta(n)["noise"] for n in NOISES.names(kind=canonical_kind(kind))]


def get_noise(kind: str, name: str) -> Noise:
    """The noise ``name`` of ``kind``; an unknown one fails naming the kind's noises."""
    kind = canonical_kind(kind)
    key = f"{kind}/{name}"
    if key not in NOISES:
        raise ConfigError(f"kind {kind!r} has no noise {name!r}", fix=f"use one of: {choices(noises_for(kind))}")
    return NOISES.create(key)


def check_level(level: Any) -> float:
    """``level`` as a float in [0, 1]; anything else is a ConfigError naming the value and the fix."""
    if isinstance(level, bool) or not isinstance(level, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(level)) or not 0.0 <= float(level) <= 1.0:
        raise ConfigError(f"noise level {level!r} is outside [0, 1]",
                          fix="use a level between 0 (clean) and 1 (the strongest noise)")
    return float(level)


def noise_levels(count: int) -> list[float]:
    """``count`` levels evenly spaced from 0 to 1 (11: 0, 0.1, ..., 1 as in MultiBench)."""
    if isinstance(count, bool) or int(count) != count or count < 2:
        raise ConfigError(f"{count!r} noise levels cannot span 0 to 1", fix="use 2 or more levels (11 by default)")
    return [round(i / (int(count) - 1), 6) for i in range(int(count))]


def sample_rng(seed: int, modality: str, noise: str, sample_id: str) -> np.random.Generator:
    """The generator of one sample's noise: the same for every level (common random numbers)."""
    key = zlib.crc32(f"{modality}\0{noise}\0{sample_id}".encode())
    return np.random.default_rng([int(seed) % (2**32), key])


def fit_noise(kind: str, name: str, train_items: Sequence[Any]) -> dict[str, Any]:
    """The training-split statistics the noise needs (empty when it needs none)."""
    noise = get_noise(kind, name)
    return noise.fit(train_items) if noise.fit is not None else {}


def perturb_items(kind: str, name: str, items: Sequence[Any], level: float, *, ids: Sequence[str], modality: str,
                  seed: int = 0, stats: Mapping[str, Any] | None = None) -> list[Any]:
    """``items`` (raw, of one modality, ids ``ids``) with the noise ``name`` at ``level``, each sample
    seeded by its id; level 0 returns the items themselves."""
    level = check_level(level)
    noise = get_noise(kind, name)
    if len(ids) != len(items):
        raise ConfigError(f"{len(items)} items but {len(ids)} ids", fix="pass one id per item")
    if level == 0.0:
        return list(items)
    stats = stats or {}
    return [noise.apply(item, level, sample_rng(seed, modality, name, str(i)), stats) for item, i in zip(items, ids)]


# --------------------------------------------------------------------------- pixels (image, video)

def _value_range(a: np.ndarray) -> tuple[float, float]:
    if a.dtype == np.uint8:
        return 0.0, 255.0
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def _as_dtype(x: np.ndarray, like: np.ndarray) -> np.ndarray:
    return np.rint(x).astype(like.dtype) if np.issubdtype(like.dtype, np.integer) else x.astype(like.dtype)


def pixel_noise(item: Any, level: float, rng: np.random.Generator, stats: Mapping[str, Any]) -> np.ndarray:
    a = np.asarray(item)
    lo, hi = _value_range(a)
    z = rng.standard_normal(a.shape)
    return _as_dtype(np.clip(a.astype(np.float64) + level * 0.5 * (hi - lo) * z, lo, hi), a)


def occlusion(item: Any, level: float, rng: np.random.Generator, stats: Mapping[str, Any],
              spatial: tuple[int, int] = (0, 1)) -> np.ndarray:
    """A box of sides ``sqrt(level)`` x the frame's at a seeded centre, set to the item's mean per channel.
    ``spatial``: the height and width axes."""
    a = np.asarray(item)
    h, w = a.shape[spatial[0]], a.shape[spatial[1]]
    cy, cx = rng.random(2)
    side = math.sqrt(level)
    bh, bw = max(1, int(round(side * h))), max(1, int(round(side * w)))
    y0 = int(min(max(round(cy * h - bh / 2), 0), h - bh))
    x0 = int(min(max(round(cx * w - bw / 2), 0), w - bw))
    out = a.astype(np.float64)
    if a.ndim == max(spatial) + 2:  # a channel axis last: the mean colour
        fill: Any = out.reshape(-1, a.shape[-1]).mean(0)
    else:
        fill = out.mean()
    index: list[Any] = [slice(None)] * a.ndim
    index[spatial[0]], index[spatial[1]] = slice(y0, y0 + bh), slice(x0, x0 + bw)
    out[tuple(index)] = fill
    return _as_dtype(out, a)


register_noise("image", "pixel-noise", "Gaussian pixel noise, sd 0.5 x level x the value range")(pixel_noise)
register_noise("image", "occlusion", "a box of sides sqrt(level) x the image's, set to its mean colour")(occlusion)
register_noise("video", "pixel-noise", "Gaussian voxel noise, sd 0.5 x level x the value range")(pixel_noise)


@register_noise("video", "occlusion", "a box of sides sqrt(level) x the frame's, the same in every frame")
def _video_occlusion(item: Any, level: float, rng: np.random.Generator, stats: Mapping[str, Any]) -> np.ndarray:
    return occlusion(item, level, rng, stats, spatial=(1, 2))  # (T, H, W[, C])


# --------------------------------------------------------------------------- text

@register_noise("text", "token-dropout", "each whitespace token dropped with probability = level")
def _token_dropout(item: Any, level: float, rng: np.random.Generator, stats: Mapping[str, Any]) -> str:
    words = str(item).split()
    keep = rng.random(len(words)) >= level
    return " ".join(w for w, k in zip(words, keep) if k)


# --------------------------------------------------------------------------- audio

@register_noise("audio", "white-noise", "white noise at SNR 40 - 50 x level dB")
def _white_noise(item: Any, level: float, rng: np.random.Generator, stats: Mapping[str, Any]) -> np.ndarray:
    x = np.asarray(item, dtype=np.float64)
    rms = max(float(np.sqrt(np.mean(x * x))) if x.size else 0.0, AUDIO_MIN_RMS)
    snr_db = AUDIO_SNR_DB[0] - AUDIO_SNR_DB[1] * level
    noise = rng.standard_normal(x.shape) * rms * 10 ** (-snr_db / 20)
    return np.clip(x + noise, -1.0, 1.0).astype(np.asarray(item).dtype)


# --------------------------------------------------------------------------- time series and tabular

def _column_stats(train_items: Sequence[Any]) -> dict[str, Any]:
    """Per-column (tabular) or per-channel (time series) sd over the training items, NaN ignored."""
    rows = [np.asarray(a, dtype=np.float64).reshape(-1, np.shape(a)[-1] if np.ndim(a) > 1 else np.size(a))
            for a in train_items]
    if not rows:
        return {"sd": None}
    stacked = np.concatenate(rows, axis=0)
    with np.errstate(invalid="ignore"):
        sd = np.nanstd(stacked, axis=0) if np.isfinite(stacked).any() else np.zeros(stacked.shape[1])
    return {"sd": np.nan_to_num(sd, nan=0.0)}


def _scaled_noise(item: Any, level: float, rng: np.random.Generator, stats: Mapping[str, Any]) -> np.ndarray:
    x = np.asarray(item, dtype=np.float64)
    sd = stats.get("sd")
    if sd is None:  # no training statistics: the item's own sd per column / channel
        sd = np.nanstd(x.reshape(-1, x.shape[-1]), axis=0) if x.ndim > 1 else np.full(x.shape, np.nanstd(x))
    z = rng.standard_normal(x.shape)
    return (x + level * np.asarray(sd) * z).astype(np.asarray(item).dtype)


register_noise("timeseries", "jitter", "Gaussian noise, sd level x the channel's training sd",
               fit=_column_stats)(_scaled_noise)


@register_noise("timeseries", "dropouts", "time steps lost with probability = level, interpolated")
def _series_dropouts(item: Any, level: float, rng: np.random.Generator, stats: Mapping[str, Any]) -> np.ndarray:
    x = np.asarray(item, dtype=np.float64)
    x2 = x.reshape(x.shape[0], -1)
    lost = rng.random(x2.shape[0]) < level
    out = x2.copy()
    if lost.any():
        steps = np.arange(x2.shape[0], dtype=np.float64)
        kept = ~lost
        for c in range(x2.shape[1]):
            valid = kept & ~np.isnan(x2[:, c])
            out[:, c] = np.interp(steps, steps[valid], x2[valid, c]) if valid.any() else np.nan
    return out.reshape(x.shape).astype(np.asarray(item).dtype)


register_noise("tabular", "column-noise", "Gaussian noise, sd level x the column's training sd",
               fit=_column_stats)(_scaled_noise)
