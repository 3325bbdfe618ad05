"""Intermediate fusion methods, each registered in ``FUSIONS`` by name.

Every method takes ``(in_dims, dim=128, **kw)``, fuses any number (two or
more) of per-modality embeddings and sets ``out_dim``:

==============  ======================  =============
name            class                   out_dim
==============  ======================  =============
``multconcat``  ``MultConcatFusion``    ``(N+1)*dim``
``concat``      ``ConcatFusion``        ``N*dim``
``addition``    ``AdditionFusion``      ``dim``
``max``         ``MaxFusion``           ``dim``
``product``     ``ProductFusion``       ``dim``
``average``     ``AverageFusion``       ``dim``
``gated``       ``GatedFusion``         ``dim``
``lmf``         ``LowRankFusion``       ``dim``
``tensor``      ``TensorFusion``        ``dim``
==============  ======================  =============

Keyword arguments a method does not know raise ``ConfigError`` rather than
being ignored, so a typo in an experiment file is caught at build time.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from core.errors import ConfigError
from core.fusion.registry import FUSIONS
from core.fusion._base import FusionMethod


def _reject_unknown_kwargs(cls: type, kw: dict[str, Any], accepted: tuple[str, ...] = ()) -> None:
    if kw:
        unknown = ", ".join(sorted(kw))
        known = ", ".join(("in_dims", "dim") + accepted)
        raise ConfigError(
            f"{cls.__name__} got unknown option(s): {unknown}",
            fix=f"use only: {known}",
        )


def _check_inputs(module: FusionMethod, xs: list[torch.Tensor]) -> None:
    if len(xs) != len(module.in_dims):
        raise ValueError(
            f"{type(module).__name__} was built for {len(module.in_dims)} modalities, "
            f"got {len(xs)} inputs"
        )


def _linear_projections(in_dims: list[int], dim: int) -> nn.ModuleList:
    return nn.ModuleList(nn.Linear(d, dim) for d in in_dims)


class _ProjectedFusion(FusionMethod):
    """Shared part of the simple methods: one ``Linear(in_dims[i], dim)`` per modality."""

    def __init__(self, in_dims: list[int], dim: int = 128, **kw: Any) -> None:
        super().__init__(in_dims, dim)
        _reject_unknown_kwargs(type(self), kw)
        self.projections = _linear_projections(self.in_dims, dim)

    def _project(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        _check_inputs(self, xs)
        return [torch.relu(p(x)) for p, x in zip(self.projections, xs)]


@FUSIONS.register("multconcat", strategy="intermediate", label="MultConcat")
class MultConcatFusion(_ProjectedFusion):
    """Concatenation plus the element-wise product of all projected modalities.

    Each modality is projected as ``out_i = ReLU(W_i x_i + b_i)`` to ``dim``;
    the output is ``[out_1, ..., out_N, out_1 * ... * out_N]``, so the
    classifier sees both the unimodal features and their multiplicative
    interaction. ``out_dim = (N + 1) * dim``.
    """

    def __init__(self, in_dims: list[int], dim: int = 128, **kw: Any) -> None:
        super().__init__(in_dims, dim, **kw)
        self.out_dim = (len(self.in_dims) + 1) * dim

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        outs = self._project(xs)
        product = outs[0]
        for h in outs[1:]:
            product = product * h
        return torch.cat(outs + [product], dim=-1)


@FUSIONS.register("concat", strategy="intermediate", label="Concatenation")
class ConcatFusion(_ProjectedFusion):
    """Concatenation of per-modality projections, the standard late-feature baseline.

    Each modality is projected as ``ReLU(W_i x_i + b_i)`` to ``dim`` and the
    projections are concatenated. ``out_dim = N * dim``.
    """

    def __init__(self, in_dims: list[int], dim: int = 128, **kw: Any) -> None:
        super().__init__(in_dims, dim, **kw)
        self.out_dim = len(self.in_dims) * dim

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(self._project(xs), dim=-1)


@FUSIONS.register("addition", strategy="intermediate", label="Addition")
class AdditionFusion(_ProjectedFusion):
    """Element-wise sum of per-modality projections ``ReLU(W_i x_i + b_i)``.

    ``out_dim = dim``.
    """

    def __init__(self, in_dims: list[int], dim: int = 128, **kw: Any) -> None:
        super().__init__(in_dims, dim, **kw)
        self.out_dim = dim

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(self._project(xs), dim=0).sum(dim=0)


@FUSIONS.register("max", strategy="intermediate", label="Max")
class MaxFusion(_ProjectedFusion):
    """Element-wise maximum of per-modality projections ``ReLU(W_i x_i + b_i)``.

    Uses ``amax``, which splits the gradient evenly between tied modalities
    instead of picking one arbitrarily. ``out_dim = dim``.
    """

    def __init__(self, in_dims: list[int], dim: int = 128, **kw: Any) -> None:
        super().__init__(in_dims, dim, **kw)
        self.out_dim = dim

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(self._project(xs), dim=0).amax(dim=0)


@FUSIONS.register("product", strategy="intermediate", label="Product")
class ProductFusion(_ProjectedFusion):
    """Element-wise product of per-modality projections ``1 + tanh(W_i x_i + b_i)``.

    ``1 + tanh`` keeps each factor in ``(0, 2)`` and centred on 1: at
    initialisation the pre-activations are small, so every factor is close to
    1 and the product of N of them stays close to 1 whatever N is, and it can
    never exceed ``2**N``. A plain ReLU or tanh projection would instead drive
    the product to zero (dead or sub-unit factors) as N grows, and a plain
    linear one could explode. ``out_dim = dim``.
    """

    def __init__(self, in_dims: list[int], dim: int = 128, **kw: Any) -> None:
        super().__init__(in_dims, dim, **kw)
        self.out_dim = dim

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        _check_inputs(self, xs)
        out = None
        for p, x in zip(self.projections, xs):
            h = 1.0 + torch.tanh(p(x))
            out = h if out is None else out * h
        return out


@FUSIONS.register("average", strategy="intermediate", label="Average")
class AverageFusion(_ProjectedFusion):
    """Element-wise mean of per-modality projections ``ReLU(W_i x_i + b_i)``.

    ``out_dim = dim``.
    """

    def __init__(self, in_dims: list[int], dim: int = 128, **kw: Any) -> None:
        super().__init__(in_dims, dim, **kw)
        self.out_dim = dim

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(self._project(xs), dim=0).mean(dim=0)


@FUSIONS.register("gated", strategy="intermediate", label="Gated")
class GatedFusion(FusionMethod):
    """Gated sum of modalities with per-feature gates computed from all inputs.

    In the spirit of the Gated Multimodal Unit (Arevalo et al., 2017, "Gated
    Multimodal Units for Information Fusion"), generalised to N modalities:
    ``h_i = tanh(W_i x_i + b_i)``; a linear map of the concatenated inputs
    gives one logit per modality and feature, a softmax over modalities turns
    them into gates ``g_i`` (summing to 1 per feature), and the output is
    ``sum_i g_i * h_i``. The gates say how much each modality contributes to
    each feature. ``out_dim = dim``.
    """

    def __init__(self, in_dims: list[int], dim: int = 128, **kw: Any) -> None:
        super().__init__(in_dims, dim)
        _reject_unknown_kwargs(type(self), kw)
        self.projections = _linear_projections(self.in_dims, dim)
        self.gate = nn.Linear(sum(self.in_dims), len(self.in_dims) * dim)
        self.out_dim = dim

    def gates(self, xs: list[torch.Tensor]) -> torch.Tensor:
        """Gates of shape ``(B, N, dim)``, summing to 1 over modalities."""
        _check_inputs(self, xs)
        logits = self.gate(torch.cat(xs, dim=-1))
        return torch.softmax(logits.view(-1, len(self.in_dims), self.dim), dim=1)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        g = self.gates(xs)
        h = torch.stack([torch.tanh(p(x)) for p, x in zip(self.projections, xs)], dim=1)
        return (g * h).sum(dim=1)


@FUSIONS.register("lmf", strategy="intermediate", label="Low-rank Multimodal Fusion (LMF)")
class LowRankFusion(FusionMethod):
    """Low-rank Multimodal Fusion (Liu et al., 2018, "Efficient Low-rank
    Multimodal Fusion with Modality-Specific Factors", ACL).

    Equivalent to tensor fusion with a rank-``rank`` weight tensor, without
    building the outer product: each input gets a 1 appended, is multiplied by
    its modality-specific factor ``(rank, d_i + 1, dim)``, the N results are
    multiplied element-wise, and a learned weighted sum over the ``rank``
    components plus a bias gives the output. To keep outputs well-scaled for
    any N, each input is first layer-normalised (no affine; skipped for a
    1-dimensional input) and factors are drawn with std ``1/sqrt(d_i + 1)``,
    so every per-modality term has about unit variance and so does their
    product; fusion weights have std ``1/sqrt(rank)``. A consequence is that
    the method ignores the overall scale of each input embedding.
    ``out_dim = dim``; option ``rank`` (default 4).
    """

    def __init__(self, in_dims: list[int], dim: int = 128, rank: int = 4, **kw: Any) -> None:
        super().__init__(in_dims, dim)
        _reject_unknown_kwargs(type(self), kw, ("rank",))
        if rank < 1:
            raise ConfigError(f"LowRankFusion rank must be at least 1, got {rank}", fix="set rank >= 1")
        self.rank = rank
        self.norms = nn.ModuleList(
            nn.LayerNorm(d, elementwise_affine=False) if d > 1 else nn.Identity() for d in self.in_dims
        )
        self.factors = nn.ParameterList(
            nn.Parameter(torch.randn(rank, d + 1, dim) / math.sqrt(d + 1)) for d in self.in_dims
        )
        self.fusion_weights = nn.Parameter(torch.randn(1, rank) / math.sqrt(rank))
        self.fusion_bias = nn.Parameter(torch.zeros(1, dim))
        self.out_dim = dim

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        _check_inputs(self, xs)
        fused = None
        for norm, factor, x in zip(self.norms, self.factors, xs):
            ones = x.new_ones(x.shape[0], 1)
            z = torch.cat([norm(x), ones], dim=-1)  # (B, d+1)
            term = torch.einsum("bd,rdk->brk", z, factor)  # (B, rank, dim)
            fused = term if fused is None else fused * term
        return torch.einsum("or,brk->bk", self.fusion_weights, fused) + self.fusion_bias


@FUSIONS.register("tensor", strategy="intermediate", label="Tensor Fusion (TFN)")
class TensorFusion(FusionMethod):
    """Tensor Fusion Network (Zadeh et al., 2017, "Tensor Fusion Network for
    Multimodal Sentiment Analysis", EMNLP).

    Each modality is projected to ``t`` features with ``tanh(W_i x_i + b_i)``
    (bounded, so products of many terms cannot explode), a 1 is appended so
    unimodal and lower-order interactions survive, the N-way outer product of
    the ``(t + 1)``-vectors is flattened and a linear layer maps it to ``dim``.
    The outer product has ``(t + 1)**N`` entries, so ``t`` is the requested
    ``tensor_dim`` (default 16) capped at the largest value with
    ``(t + 1)**N <= max_entries`` (default 8192): 16 for N = 2 and 3, 8 for
    N = 4, 5 for N = 5, and never below 1. The value used is ``self.tensor_dim``.
    ``out_dim = dim``.
    """

    def __init__(
        self,
        in_dims: list[int],
        dim: int = 128,
        tensor_dim: int = 16,
        max_entries: int = 8192,
        **kw: Any,
    ) -> None:
        super().__init__(in_dims, dim)
        _reject_unknown_kwargs(type(self), kw, ("tensor_dim", "max_entries"))
        if tensor_dim < 1:
            raise ConfigError(f"TensorFusion tensor_dim must be at least 1, got {tensor_dim}", fix="set tensor_dim >= 1")
        n = len(self.in_dims)
        t = tensor_dim
        while t > 1 and (t + 1) ** n > max_entries:
            t -= 1
        self.tensor_dim = t
        self.projections = _linear_projections(self.in_dims, t)
        self.output = nn.Linear((t + 1) ** n, dim)
        self.out_dim = dim

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        _check_inputs(self, xs)
        outer = None
        for p, x in zip(self.projections, xs):
            z = torch.tanh(p(x))
            z = torch.cat([z, z.new_ones(z.shape[0], 1)], dim=-1)
            outer = z if outer is None else (outer.unsqueeze(-1) * z.unsqueeze(1)).flatten(1)
        return self.output(outer)


__all__ = [
    "AdditionFusion",
    "AverageFusion",
    "ConcatFusion",
    "GatedFusion",
    "LowRankFusion",
    "MaxFusion",
    "MultConcatFusion",
    "ProductFusion",
    "TensorFusion",
]
