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

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")
