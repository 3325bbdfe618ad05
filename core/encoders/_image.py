"""Image encoders: a small CNN and a small ViT trained from scratch on CPU, and
any Hugging Face vision model (id or local folder with safetensors weights).

All take ``HxWx3`` uint8 arrays, resize them to ``image_size`` and normalise
with per-channel mean/std buffers learnt from the training images, so that 0
in model-input space is the dataset mean colour (the MM-SHAP patch fill).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.encoders.registry import ENCODERS
from core.encoders._base import Encoder, flip_and_shift
from core.model_sources import load_pretrained
from core.errors import ConfigError, DataError


def images_to_tensor(items: Sequence[Any], image_size: int) -> torch.Tensor:
    """Stack ``HxWx3`` uint8 arrays (or PIL images) into (B, 3, S, S) floats in [0, 1]."""
    out = []
    for i, item in enumerate(items):
        arr = np.asarray(item)
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise DataError(
                f"image item {i} has shape {arr.shape}, expected HxWx3",
                fix="give RGB images (grayscale and RGBA are converted by core.data.load_image)",
            )
        arr = arr[..., :3]
        t = torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1).float()
        if arr.dtype == np.uint8:
            t = t / 255.0
        if t.shape[1:] != (image_size, image_size):
            t = F.interpolate(t[None], size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)[0]
        out.append(t)
    if not out:
        raise DataError("no images to encode", fix="pass at least one image")
    return torch.stack(out)


class ImageEncoder(Encoder):
    """Shared preprocessing for image encoders (resize, learnt normalisation)."""

    kind = "image"

    def __init__(self, image_size: int, in_channels: int = 3) -> None:
        super().__init__()
        self.image_size = int(image_size)
        self.in_channels = int(in_channels)
        self.register_buffer("mean", torch.full((3,), 0.5))
        self.register_buffer("std", torch.full((3,), 0.25))

    def fit_preprocessing(self, items: Sequence[Any]) -> None:
        x = images_to_tensor(items, self.image_size)
        self.mean.copy_(x.mean(dim=(0, 2, 3)))
        self.std.copy_(x.std(dim=(0, 2, 3)).clamp_min(1e-3))

    def prepare(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        x = images_to_tensor(items, self.image_size)
        return {"pixels": (x - self.mean[None, :, None, None]) / self.std[None, :, None, None]}

    def augment(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {**inputs, "pixels": flip_and_shift(inputs["pixels"])}

    def structure(self, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
        _, c, h, w = inputs["pixels"].shape
        return {"channels": c, "height": h, "width": w}


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


@ENCODERS.register("small-cnn", kind="image")
class SmallCNNEncoder(ImageEncoder):
    """Four conv blocks (widths ``width * (1, 2, 4, 8)``), global average pool, linear."""

    registry_name = "small-cnn"

    def __init__(self, image_size: int = 48, width: int = 16, out_dim: int = 128, dropout: float = 0.1) -> None:
        super().__init__(image_size)
        self.width, self.dropout = int(width), float(dropout)
        w = self.width
        self.features = nn.Sequential(
            _conv_block(3, w), nn.MaxPool2d(2),
            _conv_block(w, 2 * w), nn.MaxPool2d(2),
            _conv_block(2 * w, 4 * w), nn.MaxPool2d(2),
            _conv_block(4 * w, 8 * w),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(self.dropout),
        )
        self.proj = nn.Linear(8 * w, out_dim)
        self.out_dim = int(out_dim)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.relu(self.proj(self.features(inputs["pixels"].to(self.mean.device))))

    def spec(self) -> dict[str, Any]:
        return {"name": "small-cnn", "kwargs": {"image_size": self.image_size, "width": self.width,
                                                 "out_dim": self.out_dim, "dropout": self.dropout}}


@ENCODERS.register("small-vit", kind="image")
class SmallViTEncoder(ImageEncoder):
    """A small ViT (transformers ``ViTModel`` built from a config, no weights downloaded)."""

    registry_name = "small-vit"

    def __init__(self, image_size: int = 48, patch_size: int = 8, hidden_size: int = 96, layers: int = 3,
                 heads: int = 4, out_dim: int = 128) -> None:
        super().__init__(image_size)
        from transformers import ViTConfig, ViTModel

        if image_size % patch_size:
            raise ConfigError(f"image_size {image_size} is not a multiple of patch_size {patch_size}",
                              fix="pick sizes such as image_size = 48, patch_size = 8 (encoder_kwargs in the "
                                  "experiment file)")
        self.patch_size, self.hidden_size, self.layers, self.heads = patch_size, hidden_size, layers, heads
        cfg = ViTConfig(image_size=image_size, patch_size=patch_size, num_channels=3, hidden_size=hidden_size,
                        num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=2 * hidden_size,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        self.vit = ViTModel(cfg, add_pooling_layer=False)
        self.proj = nn.Linear(hidden_size, out_dim)
        self.out_dim = int(out_dim)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.vit(pixel_values=inputs["pixels"].to(self.mean.device)).last_hidden_state
        return F.gelu(self.proj(hidden[:, 0]))

    def structure(self, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
        out = super().structure(inputs)
        out["patch_size"] = self.patch_size
        out["patch_grid"] = self.image_size // self.patch_size
        return out

    def spec(self) -> dict[str, Any]:
        return {"name": "small-vit", "kwargs": {"image_size": self.image_size, "patch_size": self.patch_size,
                                                 "hidden_size": self.hidden_size, "layers": self.layers,
                                                 "heads": self.heads, "out_dim": self.out_dim}}


@ENCODERS.register("hf-vision", kind="image")
class HFVisionEncoder(ImageEncoder):
    """Any Hugging Face vision backbone (id or local path), pooled; fine-tuned unless ``trainable=False``."""

    registry_name = "hf-vision"

    def __init__(self, model: str, image_size: int = 224, trainable: bool = True) -> None:
        super().__init__(image_size)
        from transformers import AutoModel

        self.model_name, self.trainable = model, bool(trainable)
        self.saves_weights = True
        if not isinstance(model, str) or not model:
            raise ConfigError(f"vision model {model!r} is not a name",
                              fix="use a Hugging Face id or a local folder with safetensors weights")
        self.backbone = load_pretrained(AutoModel, model, model, what="vision model")
        cfg = self.backbone.config
        self.out_dim = int(getattr(cfg, "hidden_size", None) or cfg.hidden_sizes[-1])
        if not self.trainable:
            for p in self.backbone.parameters():
                p.requires_grad_(False)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        out = self.backbone(pixel_values=inputs["pixels"].to(self.mean.device))
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:
            pooled = out.last_hidden_state.mean(1)
        return pooled.flatten(1)

    def spec(self) -> dict[str, Any]:
        return {"name": "hf-vision", "kwargs": {"model": self.model_name, "image_size": self.image_size,
                                                 "trainable": self.trainable}}
