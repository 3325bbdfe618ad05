"""The masker contract and what the region maskers share.

A masker switches the features (the MM-SHAP players) of ONE sample's model
inputs off. Every modality kind builds its own (``ModalityKind.build_masker``);
they all honour this contract (shap's "one masker per input"):

* ``n_features``: how many players this modality contributes;
* ``apply(inputs, mask)``: ``mask`` is boolean ``(B, n_features)`` (True =
  present); returns the inputs dict with batch dimension ``B``, row ``b``
  masked by ``mask[b]``. Keys the masker does not change are repeated; tensors
  stay on their device and dtype;
* ``describe()``: one dict per feature, with the keys the kind declares in
  ``feature_columns`` (token and position, patch row/col and pixel box, ...).

Uneven grids: a side of ``H`` pixels split into ``p`` parts has boundaries at
``floor(i * H / p)``, so parts differ by at most one pixel and every pixel
belongs to exactly one part; frames split into temporal segments the same way.

torch is imported inside the functions that need it: this package is read by
manifest validation and by the dashboard's pages, which must start without it.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import numpy as np

from core.errors import ConfigError, DataError

if TYPE_CHECKING:
    import torch


class Masker:
    """Base class: every masker provides ``n_features``, ``apply`` and ``describe``."""

    kind: ClassVar[str]
    #: keys of the model inputs that the masker changes
    input_keys: ClassVar[tuple[str, ...]]
    n_features: int

    def apply(self, inputs: dict[str, torch.Tensor], mask: Any) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def describe(self) -> list[dict[str, Any]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _mask(self, mask: Any, device: torch.device) -> torch.Tensor:
        import torch  # lazy: see the module docstring

        m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask)
        if m.ndim == 1:
            m = m[None]
        if m.ndim != 2 or m.shape[1] != self.n_features:
            raise ConfigError(
                f"{self.kind} masker expects a mask of shape (B, {self.n_features}), got {tuple(m.shape)}",
                fix="pass one boolean row per masked variant, one column per feature",
            )
        return m.to(device=device, dtype=torch.bool)

    @staticmethod
    def _repeat(inputs: dict[str, torch.Tensor], batch: int, skip: Sequence[str]) -> dict[str, torch.Tensor]:
        out = {}
        for key, value in inputs.items():
            if key in skip:
                continue
            if hasattr(value, "expand") and value.ndim >= 1 and value.shape[0] == 1:
                out[key] = value.expand(batch, *value.shape[1:]).contiguous()
            else:
                out[key] = value
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_features={self.n_features})"


def single_input(inputs: dict[str, torch.Tensor], key: str, kind: str, ndim: int) -> torch.Tensor:
    """``inputs[key]`` of one sample as a tensor of ``ndim`` dimensions with batch size 1."""
    import torch  # lazy: see the module docstring

    if key not in inputs:
        raise DataError(
            f"{kind} inputs have no {key!r} (keys: {', '.join(sorted(inputs)) or 'none'})",
            fix=f"pass the dict that the {kind} encoder's prepare() returns for one sample",
        )
    value = inputs[key]
    if not isinstance(value, torch.Tensor):
        value = torch.as_tensor(np.asarray(value))
    if value.ndim != ndim or value.shape[0] != 1:
        raise DataError(
            f"{kind} input {key!r} must have shape (1, ...) with {ndim} dimensions, got {tuple(value.shape)}",
            fix="explain one sample at a time: slice the batch with [i:i+1]",
        )
    return value


def edges(size: int, parts: int) -> np.ndarray:
    """Boundaries ``floor(i * size / parts)``: parts differ by at most one element."""
    return (np.arange(parts + 1) * size) // parts


def part_index(size: int, parts: int) -> np.ndarray:
    """For each of ``size`` elements, the part it falls in."""
    return np.repeat(np.arange(parts), np.diff(edges(size, parts)))


def patch_grid_for_tokens(n_tokens: int) -> int:
    """The reference MM-SHAP grid: ``p = ceil(sqrt(n_tokens))``, so a p x p image grid
    gives about as many image players as there are text tokens (8 tokens -> p = 3)."""
    if isinstance(n_tokens, bool) or int(n_tokens) != n_tokens or n_tokens < 1:
        raise ConfigError(f"n_tokens must be a positive integer, got {n_tokens!r}", fix="count the text tokens")
    return math.isqrt(int(n_tokens) - 1) + 1


def check_grid(grid: Any, height: int, width: int, kind: str) -> int:
    """``grid`` as an int that fits a ``height x width`` frame (a ConfigError otherwise)."""
    if isinstance(grid, bool) or int(grid) != grid or grid < 1:
        raise ConfigError(f"{kind} grid must be a positive integer, got {grid!r}", fix="use grid=p for p x p patches")
    grid = int(grid)
    if grid > min(height, width):
        raise ConfigError(f"a {grid} x {grid} grid does not fit a {height} x {width} {kind}",
                          fix=f"use grid <= {min(height, width)}")
    return grid


class RegionMasker(Masker):
    """Shared part of the patch and tube maskers: ``feature_map`` gives each pixel (or voxel)
    of ``inputs[key]`` (1, C, *spatial) its feature index; a masked one is set to ``fill``."""

    key: str
    ndim: int
    fill: float
    feature_map: torch.Tensor

    def apply(self, inputs: dict[str, torch.Tensor], mask: Any) -> dict[str, torch.Tensor]:
        import torch  # lazy: see the module docstring

        x = single_input(inputs, self.key, self.kind, self.ndim)
        m = self._mask(mask, x.device)
        keep = m[:, self.feature_map.to(x.device)]  # (B, *spatial)
        out = self._repeat(inputs, m.shape[0], skip=(self.key,))
        fill = torch.full((), self.fill, dtype=x.dtype, device=x.device)
        out[self.key] = torch.where(keep[:, None], x, fill)
        return out


class SubsetMasker(Masker):
    """Some players of another masker, the others always present: a model that ignores part of its
    input (an adaptive run's skipped segments) has no players there, so they are left out rather
    than given a Shapley value of 0. ``keep``: the indices, in ``base``'s order, that stay players."""

    def __init__(self, base: Masker, keep: Sequence[int]) -> None:
        self.base = base
        self.kind = base.kind  # type: ignore[misc]  (the instance's kind is its base's)
        self.input_keys = base.input_keys  # type: ignore[misc]
        self.keep = np.asarray(sorted({int(k) for k in keep}), dtype=np.int64)
        if len(self.keep) and (self.keep[0] < 0 or self.keep[-1] >= base.n_features):
            raise ConfigError(f"players {self.keep.tolist()} are not all among the {base.n_features} of the masker",
                              fix=f"keep indices between 0 and {base.n_features - 1}")
        self.n_features = int(len(self.keep))

    def apply(self, inputs: dict[str, torch.Tensor], mask: Any) -> dict[str, torch.Tensor]:
        import torch  # lazy: see the module docstring

        m = self._mask(mask, torch.device("cpu"))
        full = torch.ones(m.shape[0], self.base.n_features, dtype=torch.bool)
        full[:, torch.as_tensor(self.keep)] = m
        return self.base.apply(inputs, full)

    def describe(self) -> list[dict[str, Any]]:
        rows = self.base.describe()
        return [rows[int(k)] for k in self.keep]
