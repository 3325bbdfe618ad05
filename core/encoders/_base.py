"""The one contract every encoder honours.

An encoder maps a batch of one modality's raw items to embeddings in two steps:

* ``prepare(items) -> inputs``: raw items (strings for text, ``HxWx3`` uint8
  arrays for images, ``TxHxWxC`` arrays for video clips, 1-D float arrays for
  feature vectors) become a dict of tensors, the *model inputs*. Everything
  that an explanation masks lives in these tensors, under fixed keys:

  ========  ==============================================================
  kind      keys of ``inputs``
  ========  ==============================================================
  text      ``input_ids`` (B, L) long, ``attention_mask`` (B, L),
            ``special_tokens_mask`` (B, L) (1 = [CLS]/[SEP]/pad, never masked)
  image     ``pixels`` (B, C, H, W) float, normalised so 0 = dataset mean
  video     ``clips`` (B, C, T, H, W) float, normalised so 0 = dataset mean
  tabular   ``features`` (B, D) float, standardised so 0 = training mean
  audio     ``spec`` (B, 1, n_mels, frames) float: a log-mel spectrogram
            standardised per mel bin so 0 = training mean
  ========  ==============================================================

* ``forward(inputs) -> (B, out_dim)`` embeddings.

``structure(inputs)`` describes the maskable units (tokens, pixel grid, frames,
columns); the maskers of :mod:`core.kinds` switch individual players off.
``spec()`` returns the JSON-serialisable constructor arguments; with the
registry name that is everything needed to rebuild the encoder before its
weights are loaded from safetensors.
"""
from __future__ import annotations

from typing import Any, ClassVar, Sequence

import torch
from torch import nn


class Encoder(nn.Module):
    kind: ClassVar[str]            # a kind of core.kinds: "text" | "image" | "video" | "tabular" | ...
    registry_name: ClassVar[str] = ""
    out_dim: int
    #: False for a pretrained encoder kept frozen (stage 1 trains only its classifier).
    trainable: bool = True
    #: False when the weights come from outside the bundle (a pretrained package or
    #: hub id named in ``spec()``) and are therefore not saved with the run.
    saves_weights: bool = True

    def prepare(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def structure(self, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def spec(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit_preprocessing(self, items: Sequence[Any]) -> None:
        """Learn input statistics (for example per-channel mean/std) from training items."""

    def augment(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A random training-time variant of prepared inputs (``[train.unimodal] augment = true``); identity
        unless the kind has a label-preserving augmentation (image and video: :func:`flip_and_shift`; audio:
        masked mel bands and time spans)."""
        return inputs

    def training_inputs(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Prepared inputs in the form stage-1 training iterates over, epoch after epoch. Identity, unless the
        encoder's first step is a fixed, parameter-free function of its inputs that commutes with :meth:`augment`:
        then it may return that step's output computed once (StatCNN's temporal summaries), and :meth:`forward`
        and :meth:`augment` must accept both forms. Explanations and inference always pass ``prepare``'s form."""
        return inputs

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")


def flip_and_shift(x: torch.Tensor, max_shift: float = 1 / 16) -> torch.Tensor:
    """Mirror each sample left-right with probability 1/2 and translate the whole batch by up to ``max_shift`` of
    the frame in x and y, filling with 0 (the dataset mean). Spatial axes are the last two; draws come from
    torch's global generator, so a seeded training run is repeatable."""
    flip = torch.rand(x.shape[0]) < 0.5
    out = torch.where(flip.view(-1, *([1] * (x.ndim - 1))).to(x.device), x.flip(-1), x)
    h, w = x.shape[-2:]
    dy, dx = (int(torch.randint(-int(n * max_shift), int(n * max_shift) + 1, (1,))) for n in (h, w))
    if dy or dx:
        shifted = torch.zeros_like(out)
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        shifted[..., yd, xd] = out[..., ys, xs]
        out = shifted
    return out
