"""Video encoders: a C3D-style 3D CNN, a SlowFast-style two-pathway network and a
TimeSformer (divided space-time attention), all small enough to train from
scratch on a CPU.

Every video encoder takes clips as ``TxHxWxC`` numpy arrays (uint8 0..255 for
RGB, float metres for depth, ``C = 4`` for RGB-D stacked on the last axis; a
``TxHxW`` array is read as one channel). With ``depth_input = "filled"`` or
``"log"`` the depth channel (``depth_channel``, the last by default) has its
holes filled (:func:`fill_depth_holes`), and with ``"log"`` is read as log
metres, so a relative depth difference reads the same near and far and a
global scale error is one offset. ``prepare`` then resamples each clip to
``num_frames`` frames by nearest-index sampling, resizes the frames to
``image_size`` and normalises with per-channel ``mean``/``std`` buffers, which
``fit_preprocessing`` learns from the training clips and which are saved with
the weights. The model inputs are ``{"clips": (B, C, T, H, W)}``; 0 in them is
the training mean, so a masker switches a spatio-temporal tube off by writing
0 into it.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.encoders.registry import ENCODERS
from core.encoders._base import Encoder, flip_and_shift
from core.errors import ConfigError, DataError

__all__ = ["C3DEncoder", "DEPTH_INPUTS", "SlowFastEncoder", "StatCNNEncoder", "TimesformerEncoder", "VideoEncoder",
           "fill_depth_holes"]


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}", fix=f"set {name} to an integer >= 1 (encoder_kwargs in the experiment file)")
    return int(value)


#: how a video encoder reads its depth channel (``depth_input``): as given ("metres"); with the holes filled
#: ("filled"); or filled, then as the natural log of the depth ("log"). A hole is a pixel with no estimate: 0,
#: negative or not finite (``docs/SIMULATOR.md``, "Degraded depth").
DEPTH_INPUTS = ("metres", "filled", "log")
#: the smallest depth "log" reads (a clip with no valid pixel at all stays 0, read as this)
LOG_DEPTH_FLOOR = 1e-3


def fill_depth_holes(depth: torch.Tensor) -> torch.Tensor:
    """``(T, H, W)`` depth with holes (values <= 0) -> every hole filled with the median of the same pixel's valid
    frames, or where a pixel is a hole in every frame, with the clip's median valid depth.

    Holes in a depth estimate are small blobs that move from frame to frame. Left at 0, they dominate what a
    network sees: the per-pixel minimum over 16 frames catches the holes of every frame, and a small CNN could not
    learn the simulator's behind-the-bucket cue from such clips (a balanced two-variant test: 0.66 test accuracy
    with holes, 0.93 with them filled; ``docs/SIMULATOR.md``). A clip without holes, or without any valid pixel,
    comes back unchanged."""
    valid = depth > 0
    if bool(valid.all()) or not bool(valid.any()):
        return depth
    # only the pixels with a hole, each the lower median of its valid frames (as torch.median) by sorting its holes
    # last: 10x nanmedian's speed on a whole clip
    frames = depth.shape[0]
    flat, ok = depth.reshape(frames, -1), valid.reshape(frames, -1)
    cols = (~ok).any(dim=0).nonzero().squeeze(1)
    values, good = flat[:, cols], ok[:, cols]
    count = good.sum(dim=0, keepdim=True)
    fill = torch.where(good, values, torch.inf).sort(dim=0).values.gather(0, (count - 1).clamp_min(0) // 2)
    if bool((count == 0).any()):
        fill = torch.where(count > 0, fill, depth[valid].median())
    out = flat.clone()
    out[:, cols] = torch.where(good, values, fill)
    return out.reshape(depth.shape)


class VideoEncoder(Encoder):
    """Shared preprocessing for video encoders; subclasses build ``forward``.

    ``registry_name`` is set on each subclass so ``spec()`` works whether the
    encoder was built directly or through ``create_encoder``.
    """

    kind = "video"

    def __init__(self, in_channels: int = 3, num_frames: int = 16, image_size: int = 64, out_dim: int = 128,
                 depth_input: str = "metres", depth_channel: int = -1) -> None:
        super().__init__()
        self.in_channels = _positive_int("in_channels", in_channels)
        self.num_frames = _positive_int("num_frames", num_frames)
        self.image_size = _positive_int("image_size", image_size)
        self.out_dim = _positive_int("out_dim", out_dim)
        if depth_input not in DEPTH_INPUTS:
            raise ConfigError(f"unknown depth_input {depth_input!r}",
                              fix=f"use one of: {', '.join(DEPTH_INPUTS)} (encoder_kwargs in the experiment file)")
        self.depth_input = str(depth_input)
        if isinstance(depth_channel, bool) or not isinstance(depth_channel, (int, np.integer)) or not (
                -self.in_channels <= depth_channel < self.in_channels):
            raise ConfigError(
                f"depth_channel={depth_channel!r} is not a channel of a {self.in_channels}-channel clip",
                fix=f"give the depth channel's index, 0..{self.in_channels - 1} (-1 = the last, RGB-D's depth)")
        self.depth_channel = int(depth_channel) % self.in_channels
        # Buffers, not attributes: the statistics travel with the safetensors weights.
        self.register_buffer("mean", torch.zeros(self.in_channels))
        self.register_buffer("std", torch.ones(self.in_channels))

    # -- configuration -----------------------------------------------------
    def _extra_kwargs(self) -> dict[str, Any]:
        """Architecture kwargs beyond the four shared ones (subclasses extend)."""
        return {}

    def spec(self) -> dict[str, Any]:
        kwargs = {
            "in_channels": self.in_channels,
            "num_frames": self.num_frames,
            "image_size": self.image_size,
            "out_dim": self.out_dim,
            **self._extra_kwargs(),
        }
        if self.depth_input != "metres":  # absent from bundles saved before it existed, which load as "metres"
            kwargs.update(depth_input=self.depth_input, depth_channel=self.depth_channel)
        return {"name": type(self).registry_name, "kwargs": kwargs}

    # -- preprocessing -----------------------------------------------------
    def _clip_to_tensor(self, clip: Any, index: int) -> torch.Tensor:
        """One raw clip -> (C, num_frames, image_size, image_size) float32, not normalised."""
        arr = np.asarray(clip)
        if arr.ndim == 3:  # (T, H, W): a single-channel clip such as depth
            arr = arr[..., None]
        if arr.ndim != 4:
            raise DataError(
                f"clip {index} has shape {arr.shape}; a video clip must be (frames, height, width, channels)",
                fix="pass each clip as a TxHxWxC array (TxHxW for one channel)",
            )
        frames, height, width, channels = arr.shape
        if channels != self.in_channels:
            raise DataError(
                f"clip {index} has {channels} channel(s) but this encoder expects in_channels={self.in_channels}",
                fix=(
                    f"export every clip of this modality with the same channels, {self.in_channels} on the last axis "
                    "(1 = depth, 3 = RGB, 4 = RGB-D stacked as RGB then depth); from Python, build the encoder with "
                    f"in_channels={channels}"
                ),
            )
        if frames == 0 or height == 0 or width == 0:
            raise DataError(f"clip {index} is empty (shape {arr.shape})", fix="drop the clip or re-export it")
        # torch.tensor copies: the caller's array (often read-only, memory-mapped) is never shared.
        if arr.dtype == np.uint8:
            data = torch.tensor(arr, dtype=torch.float32).div_(255.0)
        elif np.issubdtype(arr.dtype, np.number) and not np.issubdtype(arr.dtype, np.complexfloating):
            data = torch.tensor(arr, dtype=torch.float32)
        else:
            raise DataError(
                f"clip {index} has dtype {arr.dtype}; expected uint8 (0..255) or float (for example depth in metres)",
                fix="convert the clip to uint8 or float32",
            )
        if self.depth_input != "metres":
            depth = data[..., self.depth_channel]
            depth = fill_depth_holes(torch.where(torch.isfinite(depth), depth, 0.0))
            data[..., self.depth_channel] = depth.clamp_min(LOG_DEPTH_FLOOR).log() if self.depth_input == "log" \
                else depth
        if arr.dtype != np.uint8 and not torch.isfinite(data).all():  # uint8 is always finite
            raise DataError(
                f"clip {index} contains NaN or infinite values",
                fix="for depth, set depth_input = \"filled\" or \"log\" in the encoder_kwargs (holes are then filled "
                    "from the pixel's other frames); otherwise fill the holes before training or drop the clip",
            )
        # Nearest-index sampling at frame centres: shorter clips repeat frames, longer ones skip.
        if frames != self.num_frames:
            idx = ((torch.arange(self.num_frames, dtype=torch.float64) + 0.5) * frames / self.num_frames).long()
            data = data[idx.clamp_(0, frames - 1)]
        data = data.permute(0, 3, 1, 2)  # (T, C, H, W): interpolate treats T as the batch
        if (height, width) != (self.image_size, self.image_size):
            data = F.interpolate(
                data, size=(self.image_size, self.image_size), mode="bilinear",
                align_corners=False, antialias=height > self.image_size or width > self.image_size,
            )
        return data.permute(1, 0, 2, 3).contiguous()  # (C, T, H, W)

    def _check_items(self, items: Sequence[Any]) -> None:
        if isinstance(items, np.ndarray) and items.ndim in (4, 5):
            items = list(items)
        if len(items) == 0:
            raise DataError("no clips given", fix="pass a non-empty list of TxHxWxC arrays")

    def prepare(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        self._check_items(items)
        # One allocation, filled clip by clip and normalised in place: stacking and then normalising allocated
        # the whole batch three times, and at training-set size those page faults cost more than the arithmetic.
        clips: torch.Tensor | None = None
        for i, c in enumerate(items):
            data = self._clip_to_tensor(c, i)
            if clips is None:
                clips = torch.empty((len(items), *data.shape), dtype=torch.float32)
            clips[i] = data
        assert clips is not None  # _check_items refused an empty list
        clips.sub_(self.mean.detach().cpu().view(1, -1, 1, 1, 1)).div_(self.std.detach().cpu().view(1, -1, 1, 1, 1))
        return {"clips": clips.to(self.device)}

    def fit_preprocessing(self, items: Sequence[Any]) -> "VideoEncoder":
        """Per-channel mean/std over every voxel of the prepared (resampled, resized) clips."""
        self._check_items(items)
        total = torch.zeros(self.in_channels, dtype=torch.float64)
        total_sq = torch.zeros(self.in_channels, dtype=torch.float64)
        count = 0
        for i, clip in enumerate(items):
            data = self._clip_to_tensor(clip, i).double().flatten(1)
            total += data.sum(1)
            total_sq += (data * data).sum(1)
            count += data.shape[1]
        mean = total / count
        var = (total_sq / count - mean * mean).clamp_min(0.0)
        # A constant channel (for example an all-zero depth) would divide by zero.
        std = var.sqrt().clamp_min(1e-6)
        self.mean.copy_(mean.to(self.mean))
        self.std.copy_(std.to(self.std))
        return self

    def augment(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {**inputs, "clips": flip_and_shift(inputs["clips"])}

    # -- model side --------------------------------------------------------
    def _clips(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if "clips" not in inputs:
            raise DataError("video inputs have no 'clips' tensor", fix="build the inputs with encoder.prepare(clips)")
        clips = inputs["clips"]
        if clips.ndim != 5 or clips.shape[1] != self.in_channels:
            raise DataError(
                f"clips tensor has shape {tuple(clips.shape)}; expected (B, {self.in_channels}, T, H, W)",
                fix="build the inputs with encoder.prepare(clips) of the same encoder",
            )
        return clips

    def structure(self, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
        """The spatio-temporal grid a tube masker switches off (0 = dataset mean)."""
        _, channels, frames, height, width = self._clips(inputs).shape
        return {"frames": int(frames), "height": int(height), "width": int(width), "channels": int(channels)}


#: how a 3D CNN pools its last feature map over (T, H, W): the mean (the papers' choice), the max (a small cue,
#: a lamp or a vest a few pixels wide, survives pooling), or both concatenated
_POOL_WIDTH = {"mean": 1, "max": 1, "meanmax": 2}


def _check_pool(pool: Any) -> str:
    if pool not in _POOL_WIDTH:
        raise ConfigError(f"unknown pool {pool!r}", fix=f"use one of: {', '.join(_POOL_WIDTH)} (encoder_kwargs)")
    return str(pool)


def _pool(x: torch.Tensor, pool: str) -> torch.Tensor:
    if pool == "mean":
        return x.mean(dim=(2, 3, 4))
    peak = x.amax(dim=(2, 3, 4))
    return peak if pool == "max" else torch.cat([x.mean(dim=(2, 3, 4)), peak], dim=1)


def _conv_block(cin: int, cout: int, kernel: tuple[int, int, int], stride: tuple[int, int, int] = (1, 1, 1)) -> nn.Sequential:
    padding = tuple(k // 2 for k in kernel)
    return nn.Sequential(
        nn.Conv3d(cin, cout, kernel, stride=stride, padding=padding, bias=False),
        nn.BatchNorm3d(cout),
        nn.ReLU(inplace=True),
    )


@ENCODERS.register("c3d", kind="video")
class C3DEncoder(VideoEncoder):
    """C3D-style: four Conv3d(3x3x3)+BN+ReLU+MaxPool3d blocks, global average pool, linear.

    The first pool is spatial only (1x2x2) so early motion is kept, as in C3D;
    channel widths are ``width * (1, 2, 4, 8)``.
    """

    registry_name = "c3d"

    def __init__(
        self, in_channels: int = 3, num_frames: int = 16, image_size: int = 64, out_dim: int = 128, width: int = 8,
        pool: str = "mean", depth_input: str = "metres", depth_channel: int = -1,
    ) -> None:
        super().__init__(in_channels, num_frames, image_size, out_dim, depth_input, depth_channel)
        self.width = _positive_int("width", width)
        self.pool = _check_pool(pool)
        widths = [self.width * m for m in (1, 2, 4, 8)]
        blocks: list[nn.Module] = []
        cin = self.in_channels
        for i, cout in enumerate(widths):
            blocks.append(_conv_block(cin, cout, (3, 3, 3)))
            if i < len(widths) - 1:
                # ceil_mode keeps odd or tiny sizes (1 frame, 4 px) from collapsing to 0.
                blocks.append(nn.MaxPool3d((1, 2, 2) if i == 0 else (2, 2, 2), ceil_mode=True))
            cin = cout
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(_POOL_WIDTH[self.pool] * cin, self.out_dim)

    def _extra_kwargs(self) -> dict[str, Any]:
        return {"width": self.width, "pool": self.pool}

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.features(self._clips(inputs))
        return self.head(_pool(x, self.pool))


@ENCODERS.register("slowfast", kind="video")
class SlowFastEncoder(VideoEncoder):
    """SlowFast-style: a slow pathway on every ``alpha``-th frame with ``width`` channels,
    a fast pathway on every frame with ``width // beta_inv`` channels, and lateral
    time-strided convolutions (5x1x1, stride alpha) fusing fast into slow after
    the stem and after each stage but the last. Both pathways are pooled,
    concatenated and projected to ``out_dim``.

    As in the paper, the slow pathway has no temporal kernels before its last
    stage (1x3x3) while the fast pathway always does (3x3x3).
    """

    registry_name = "slowfast"

    def __init__(
        self, in_channels: int = 3, num_frames: int = 16, image_size: int = 64, out_dim: int = 128,
        width: int = 32, alpha: int = 4, beta_inv: int = 8, pool: str = "mean", depth_input: str = "metres",
        depth_channel: int = -1,
    ) -> None:
        super().__init__(in_channels, num_frames, image_size, out_dim, depth_input, depth_channel)
        self.width = _positive_int("width", width)
        self.alpha = _positive_int("alpha", alpha)
        self.beta_inv = _positive_int("beta_inv", beta_inv)
        self.pool = _check_pool(pool)
        slow = [self.width * m for m in (1, 2, 4)]
        fast = [max(1, c // self.beta_inv) for c in slow]
        lateral = [2 * c for c in fast]  # the paper's fast->slow channel doubling
        stride = (1, 2, 2)
        self.slow_stages = nn.ModuleList([
            _conv_block(self.in_channels, slow[0], (1, 3, 3), stride),
            _conv_block(slow[0] + lateral[0], slow[1], (1, 3, 3), stride),
            _conv_block(slow[1] + lateral[1], slow[2], (3, 3, 3), stride),
        ])
        self.fast_stages = nn.ModuleList([
            _conv_block(self.in_channels, fast[0], (3, 3, 3), stride),
            _conv_block(fast[0], fast[1], (3, 3, 3), stride),
            _conv_block(fast[1], fast[2], (3, 3, 3), stride),
        ])
        self.laterals = nn.ModuleList([
            nn.Sequential(
                nn.Conv3d(fast[i], lateral[i], (5, 1, 1), stride=(self.alpha, 1, 1), padding=(2, 0, 0), bias=False),
                nn.BatchNorm3d(lateral[i]),
                nn.ReLU(inplace=True),
            )
            for i in range(2)
        ])
        self.head = nn.Linear(_POOL_WIDTH[self.pool] * (slow[2] + fast[2]), self.out_dim)

    def _extra_kwargs(self) -> dict[str, Any]:
        return {"width": self.width, "alpha": self.alpha, "beta_inv": self.beta_inv, "pool": self.pool}

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        clips = self._clips(inputs)
        # Frames 0, alpha, 2*alpha, ...: ceil(T / alpha) of them, the count the lateral conv yields.
        slow, fast = clips[:, :, :: self.alpha], clips
        for i, (slow_stage, fast_stage) in enumerate(zip(self.slow_stages, self.fast_stages)):
            slow, fast = slow_stage(slow), fast_stage(fast)
            if i < len(self.laterals):
                slow = torch.cat([slow, self.laterals[i](fast)], dim=1)
        pooled = torch.cat([_pool(slow, self.pool), _pool(fast, self.pool)], dim=1)
        return self.head(pooled)


#: the per-pixel temporal summaries StatCNN stacks on the channel axis, in order
STAT_SUMMARIES = ("mean", "max", "min", "std", "late-minus-early")


@ENCODERS.register("statcnn", kind="video")
class StatCNNEncoder(VideoEncoder):
    """Temporal summaries + a full-resolution 2D CNN: per pixel and channel, the mean, max, min and standard
    deviation over time and the late-half minus early-half mean (signed motion), then ``width * (1, 2, 4, 8)``
    Conv2d(3x3)+BN+ReLU blocks with 2x2 max-pooling between them.

    Like "dynamic image" networks, time is summarised before the spatial network, so the cost hardly grows
    with ``num_frames``: every frame can be kept, and a lamp that flashes in one frame of two still shows in
    the max. The stem keeps full resolution (no strided convolution), so a cue a few pixels wide (a hi-vis
    vest, a beacon) survives; ``pool = "meanmax"`` (the default) keeps it through global pooling.
    ``blocks`` convolutions per stage (the first stage always has one).
    """

    registry_name = "statcnn"

    def __init__(
        self, in_channels: int = 3, num_frames: int = 16, image_size: int = 64, out_dim: int = 128, width: int = 16,
        blocks: int = 1, pool: str = "meanmax", depth_input: str = "metres", depth_channel: int = -1,
    ) -> None:
        super().__init__(in_channels, num_frames, image_size, out_dim, depth_input, depth_channel)
        self.width = _positive_int("width", width)
        self.blocks = _positive_int("blocks", blocks)
        self.pool = _check_pool(pool)
        widths = [self.width * m for m in (1, 2, 4, 8)]
        layers: list[nn.Module] = []
        cin = len(STAT_SUMMARIES) * self.in_channels
        for i, cout in enumerate(widths):
            for j in range(1 if i == 0 else self.blocks):
                layers += [nn.Conv2d(cin if j == 0 else cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                           nn.ReLU(inplace=True)]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))  # ceil_mode: a 4 px frame does not collapse to 0
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(_POOL_WIDTH[self.pool] * cin, self.out_dim)

    def _extra_kwargs(self) -> dict[str, Any]:
        return {"width": self.width, "blocks": self.blocks, "pool": self.pool}

    @staticmethod
    def summaries(clips: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, 5C, H, W): the :data:`STAT_SUMMARIES` of every channel over time.

        The standard deviation comes from the mean of squares (inputs are normalised, so there is no
        cancellation worth the cost): ``Tensor.std`` over the time axis took 6x as long as everything else here,
        and this function runs once per masked variant when a clip is explained."""
        frames = clips.shape[2]
        half = max(1, frames // 2)
        mean = clips.mean(2)
        motion = clips[:, :, frames - half:].mean(2) - clips[:, :, :half].mean(2)
        std = ((clips * clips).mean(2) - mean * mean).clamp_min_(0.0).sqrt_()
        return torch.cat([mean, clips.amax(2), clips.amin(2), std, motion], 1)

    def training_inputs(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The temporal summaries, computed once: they commute with :func:`flip_and_shift` (a spatial mirror or
        shift of every frame, filled with 0, mirrors or shifts the per-pixel summaries, and the summaries of a
        0-filled pixel are 0), so augmenting the summaries equals summarising the augmented clip, and an epoch
        no longer recomputes them (half of its time at 64 px and 16 frames)."""
        clips = self._clips(inputs)
        with torch.no_grad():  # in chunks: the squares of a whole training set would double its memory
            return {"summaries": torch.cat([self.summaries(clips[i:i + 64]) for i in range(0, len(clips), 64)])}

    def augment(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if "summaries" in inputs:
            return {**inputs, "summaries": flip_and_shift(inputs["summaries"])}
        return super().augment(inputs)

    def _summaries(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if "summaries" not in inputs:
            return self.summaries(self._clips(inputs))
        x = inputs["summaries"]
        if x.ndim != 4 or x.shape[1] != len(STAT_SUMMARIES) * self.in_channels:
            raise DataError(
                f"summaries tensor has shape {tuple(x.shape)}; expected (B, {len(STAT_SUMMARIES) * self.in_channels}, "
                "H, W)", fix="build it with encoder.training_inputs(encoder.prepare(clips)) of the same encoder")
        return x

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.features(self._summaries(inputs))
        return self.head(_pool(x.unsqueeze(2), self.pool))


@ENCODERS.register("timesformer", kind="video")
class TimesformerEncoder(VideoEncoder):
    """A small TimeSformer (transformers' ``TimesformerModel``, divided space-time
    attention) built from a config, never from downloaded weights.

    ``TimesformerModel`` takes any ``num_channels``: its patch embedding is a
    ``Conv2d(num_channels, hidden_size)``, so depth (1) and RGB-D (4) need no
    adapter. The embedding is the final [CLS] token (``pooling="cls"``) or the
    mean of the patch tokens (``pooling="mean"``), projected to ``out_dim``.

    Tokens after [CLS] are ordered patch-major: token ``1 + (row * cols + col) *
    frames + frame`` covers pixels ``row*patch : (row+1)*patch``,
    ``col*patch : (col+1)*patch`` of that frame (``structure()`` reports the grid).
    """

    registry_name = "timesformer"

    def __init__(
        self, in_channels: int = 3, num_frames: int = 16, image_size: int = 64, out_dim: int = 128,
        patch_size: int = 8, hidden_size: int = 64, num_layers: int = 2, num_heads: int = 4, pooling: str = "cls",
        depth_input: str = "metres", depth_channel: int = -1,
    ) -> None:
        super().__init__(in_channels, num_frames, image_size, out_dim, depth_input, depth_channel)
        from transformers import TimesformerConfig, TimesformerModel

        self.patch_size = _positive_int("patch_size", patch_size)
        self.hidden_size = _positive_int("hidden_size", hidden_size)
        self.num_layers = _positive_int("num_layers", num_layers)
        self.num_heads = _positive_int("num_heads", num_heads)
        if self.image_size % self.patch_size:
            raise ConfigError(
                f"image_size={self.image_size} is not a multiple of patch_size={self.patch_size}",
                fix="choose a patch_size that divides image_size, e.g. image_size = 64, patch_size = 8 "
                    "(encoder_kwargs in the experiment file)",
            )
        if self.hidden_size % self.num_heads:
            raise ConfigError(
                f"hidden_size={self.hidden_size} is not a multiple of num_heads={self.num_heads}",
                fix="choose num_heads that divides hidden_size (encoder_kwargs in the experiment file)",
            )
        if pooling not in ("cls", "mean"):
            raise ConfigError(f"unknown pooling {pooling!r}", fix="use 'cls' or 'mean'")
        self.pooling = pooling
        config = TimesformerConfig(
            image_size=self.image_size,
            patch_size=self.patch_size,
            num_channels=self.in_channels,
            num_frames=self.num_frames,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            intermediate_size=4 * self.hidden_size,
            attention_type="divided_space_time",
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            drop_path_rate=0,  # the config field is typed int
        )
        self.backbone = TimesformerModel(config)
        self.head = nn.Linear(self.hidden_size, self.out_dim)

    def _extra_kwargs(self) -> dict[str, Any]:
        return {
            "patch_size": self.patch_size, "hidden_size": self.hidden_size, "num_layers": self.num_layers,
            "num_heads": self.num_heads, "pooling": self.pooling,
        }

    def _clips(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        clips = super()._clips(inputs)
        # The divided attention reshapes by the configured grid, so the grid is fixed.
        expected = (self.num_frames, self.image_size, self.image_size)
        if tuple(clips.shape[2:]) != expected:
            raise DataError(
                f"clips tensor has (T, H, W) = {tuple(clips.shape[2:])}; this TimeSformer was built for {expected}",
                fix="build the inputs with encoder.prepare(clips), which resamples and resizes",
            )
        return clips

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        clips = self._clips(inputs)
        out = self.backbone(pixel_values=clips.permute(0, 2, 1, 3, 4), return_dict=True).last_hidden_state
        pooled = out[:, 0] if self.pooling == "cls" else out[:, 1:].mean(dim=1)
        return self.head(pooled)

    def structure(self, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
        grid = super().structure(inputs)
        rows, cols = grid["height"] // self.patch_size, grid["width"] // self.patch_size
        grid.update({
            "patch_size": self.patch_size,
            "patch_rows": rows,
            "patch_cols": cols,
            "tokens_per_frame": rows * cols,
            "num_tokens": 1 + rows * cols * grid["frames"],
            "token_order": "cls, then (row, col, frame)",
        })
        return grid
