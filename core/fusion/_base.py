"""The one contract every fusion method honours."""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn


class FusionMethod(nn.Module):
    """Fuses a list of per-modality embeddings into one vector.

    Subclasses take ``in_dims`` (one embedding size per modality, two or more)
    and ``dim`` (the shared projection size), set ``self.out_dim`` in
    ``__init__``, and implement ``forward(xs) -> (B, out_dim)`` where ``xs`` is
    a list of ``(B, in_dims[i])`` tensors in the order of ``in_dims``.
    """

    strategy: ClassVar[str] = "intermediate"
    out_dim: int

    def __init__(self, in_dims: list[int], dim: int = 128) -> None:
        super().__init__()
        if len(in_dims) < 2:
            raise ValueError(f"{type(self).__name__} fuses two or more modalities, got {len(in_dims)}")
        self.in_dims = list(in_dims)
        self.dim = dim

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
