"""Maskers: switch the features of one sample's model inputs off.

One masker per modality kind (shap's "one masker per input"), registered in
:data:`MASKERS` under the kind name. A masker is built from the model inputs
of ONE sample (batch dimension 1, keys as in :mod:`core.encoders._base`) and
provides:

* ``n_features``: how many players this modality contributes;
* ``apply(inputs, mask)``: ``mask`` is boolean ``(B, n_features)``
  (True = present); returns the inputs dict with batch dimension ``B``, row
  ``b`` masked by ``mask[b]``. Keys the masker does not change are repeated;
  tensors stay on their device and dtype;
* ``describe()``: one dict per feature, used for storage and display
  (token text and position; patch row/col and pixel box; frame span).

Fill values, the reference MM-SHAP choices:

* text: a masked token's id becomes ``pad_token_id``; the attention mask is
  unchanged (the model sees a pad token in place). Special tokens
  (``special_tokens_mask == 1``) and padding are never features, never change.
* image / video: a masked patch or tube is set to ``fill`` (default 0.0, which
  in normalised pixel space is the dataset mean colour).
* features: a masked entry is set to ``baseline`` (default zeros).

Uneven grids: a side of ``H`` pixels split into ``p`` patches has boundaries at
``floor(i * H / p)``, so patch sizes differ by at most one pixel and every
pixel belongs to exactly one patch; frames split into temporal segments the
same way. A grid finer than the image (``p > H``) is refused.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, Sequence

import numpy as np
import torch

from core.errors import ConfigError, DataError
from core.registry import Registry


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

    # helpers shared by the subclasses -------------------------------------------------

    def _mask(self, mask: Any, device: torch.device) -> torch.Tensor:
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
            if isinstance(value, torch.Tensor) and value.ndim >= 1 and value.shape[0] == 1:
                out[key] = value.expand(batch, *value.shape[1:]).contiguous()
            else:
                out[key] = value
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_features={self.n_features})"


MASKERS: Registry[Masker] = Registry("masker")


def _single(inputs: dict[str, torch.Tensor], key: str, kind: str, ndim: int) -> torch.Tensor:
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


def _edges(size: int, parts: int) -> np.ndarray:
    """Boundaries ``floor(i * size / parts)``: parts differ by at most one element."""
    return (np.arange(parts + 1) * size) // parts


def _part_index(size: int, parts: int) -> np.ndarray:
    """For each of ``size`` elements, the part it falls in."""
    edges = _edges(size, parts)
    return np.repeat(np.arange(parts), np.diff(edges))


def patch_grid_for_tokens(n_tokens: int) -> int:
    """The reference MM-SHAP grid: ``p = ceil(sqrt(n_tokens))``, so a p x p image grid
    gives about as many image players as there are text tokens (8 tokens -> p = 3)."""
    if isinstance(n_tokens, bool) or int(n_tokens) != n_tokens or n_tokens < 1:
        raise ConfigError(f"n_tokens must be a positive integer, got {n_tokens!r}", fix="count the text tokens")
    return math.isqrt(int(n_tokens) - 1) + 1


def _check_grid(grid: Any, height: int, width: int, kind: str) -> int:
    if isinstance(grid, bool) or int(grid) != grid or grid < 1:
        raise ConfigError(f"{kind} grid must be a positive integer, got {grid!r}", fix="use grid=p for p x p patches")
    grid = int(grid)
    if grid > min(height, width):
        raise ConfigError(
            f"a {grid} x {grid} grid does not fit a {height} x {width} {kind}",
            fix=f"use grid <= {min(height, width)}",
        )
    return grid


@MASKERS.register("text")
class TextTokenMasker(Masker):
    """Features are the non-special, attended tokens; a masked token becomes the pad id.

    Args:
        inputs: text inputs of one sample (``input_ids``, ``special_tokens_mask``,
            optional ``attention_mask``).
        pad_token_id: id written in place of a masked token.
        tokens: token strings, one per position of ``input_ids`` or one per feature.
    """

    kind = "text"
    input_keys = ("input_ids",)

    def __init__(
        self,
        inputs: dict[str, torch.Tensor],
        *,
        pad_token_id: int,
        tokens: Sequence[str] | None = None,
    ) -> None:
        ids = _single(inputs, "input_ids", "text", 2)
        special = _single(inputs, "special_tokens_mask", "text", 2)
        attention = inputs.get("attention_mask")
        attention = torch.ones_like(ids) if attention is None else _single(inputs, "attention_mask", "text", 2)
        if isinstance(pad_token_id, bool) or int(pad_token_id) != pad_token_id:
            raise ConfigError(
                f"pad_token_id must be an integer, got {pad_token_id!r}", fix="pass tokenizer.pad_token_id"
            )
        self.pad_token_id = int(pad_token_id)
        keep = (attention[0] != 0) & (special[0] == 0)
        self.positions = torch.nonzero(keep, as_tuple=False)[:, 0].cpu()
        self.n_features = int(len(self.positions))
        #: attended tokens, special tokens included (the count of the reference grid rule)
        self.n_tokens = int((attention[0] != 0).sum())
        self.seq_len = int(ids.shape[1])
        if tokens is None:
            self.tokens = [str(int(t)) for t in ids[0, self.positions].tolist()]
        else:
            tokens = [str(t) for t in tokens]
            if len(tokens) == self.seq_len:
                self.tokens = [tokens[i] for i in self.positions.tolist()]
            elif len(tokens) == self.n_features:
                self.tokens = tokens
            else:
                raise ConfigError(
                    f"got {len(tokens)} token strings for {self.seq_len} positions ({self.n_features} maskable)",
                    fix="pass one string per position of input_ids, or one per maskable token",
                )

    def apply(self, inputs: dict[str, torch.Tensor], mask: Any) -> dict[str, torch.Tensor]:
        ids = _single(inputs, "input_ids", "text", 2)
        m = self._mask(mask, ids.device)
        batch = m.shape[0]
        out = self._repeat(inputs, batch, skip=("input_ids",))
        new_ids = ids.expand(batch, ids.shape[1]).clone()
        pos = self.positions.to(ids.device)
        pad = torch.full((), self.pad_token_id, dtype=ids.dtype, device=ids.device)
        new_ids[:, pos] = torch.where(m, new_ids[:, pos], pad)
        out["input_ids"] = new_ids
        return out

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"token": tok, "position": int(pos)}
            for tok, pos in zip(self.tokens, self.positions.tolist())
        ]


class _RegionMasker(Masker):
    """Shared part of the patch and tube maskers: ``feature_map`` gives each pixel (or
    voxel) of ``inputs[key]`` (1, C, *spatial) its feature index; a masked one is set to ``fill``."""

    key: str
    ndim: int
    fill: float
    feature_map: torch.Tensor

    def apply(self, inputs: dict[str, torch.Tensor], mask: Any) -> dict[str, torch.Tensor]:
        x = _single(inputs, self.key, self.kind, self.ndim)
        m = self._mask(mask, x.device)
        keep = m[:, self.feature_map.to(x.device)]  # (B, *spatial)
        out = self._repeat(inputs, m.shape[0], skip=(self.key,))
        fill = torch.full((), self.fill, dtype=x.dtype, device=x.device)
        out[self.key] = torch.where(keep[:, None], x, fill)
        return out


@MASKERS.register("image")
class ImagePatchMasker(_RegionMasker):
    """A ``grid x grid`` patch grid over ``pixels`` (1, C, H, W); a masked patch is set to ``fill``.

    Args:
        inputs: image inputs of one sample (``pixels``).
        grid: patches per side; or ``n_text_tokens`` to use the reference rule
            :func:`patch_grid_for_tokens`.
        fill: value of a masked pixel (0.0 = dataset mean in normalised space).
    Features are numbered row-major: feature ``row * grid + col``.
    """

    kind = "image"
    input_keys = ("pixels",)
    key = "pixels"
    ndim = 4

    def __init__(
        self,
        inputs: dict[str, torch.Tensor],
        *,
        grid: int | None = None,
        n_text_tokens: int | None = None,
        fill: float = 0.0,
    ) -> None:
        pixels = _single(inputs, self.key, self.kind, 4)
        height, width = int(pixels.shape[2]), int(pixels.shape[3])
        if grid is None:
            if n_text_tokens is None:
                raise ConfigError(
                    "the image masker needs a grid size",
                    fix="pass grid=p, or n_text_tokens=n for the reference rule p = ceil(sqrt(n))",
                )
            grid = patch_grid_for_tokens(n_text_tokens)
        self.grid = _check_grid(grid, height, width, "image")
        self.fill = float(fill)
        self.height, self.width = height, width
        self.n_features = self.grid * self.grid
        self.row_edges = _edges(height, self.grid)
        self.col_edges = _edges(width, self.grid)
        rows = _part_index(height, self.grid)
        cols = _part_index(width, self.grid)
        self.feature_map = torch.as_tensor(rows[:, None] * self.grid + cols[None, :])  # (H, W)

    def describe(self) -> list[dict[str, Any]]:
        info = []
        for r in range(self.grid):
            for c in range(self.grid):
                info.append({
                    "row": r, "col": c,
                    "y0": int(self.row_edges[r]), "y1": int(self.row_edges[r + 1]),
                    "x0": int(self.col_edges[c]), "x1": int(self.col_edges[c + 1]),
                })
        return info


@MASKERS.register("video")
class VideoTubeMasker(_RegionMasker):
    """Patch tubes over ``clips`` (1, C, T, H, W): a ``grid x grid`` spatial grid times
    ``segments`` temporal segments; a masked tube is set to ``fill``.

    Use the same ``grid`` and ``segments`` for every video modality (RGB and
    depth) so that their players, and therefore their shares, are comparable.
    Features are numbered segment-major: ``segment * grid**2 + row * grid + col``;
    frame spans are half-open ``[frame_start, frame_end)``.
    """

    kind = "video"
    input_keys = ("clips",)
    key = "clips"
    ndim = 5

    def __init__(
        self,
        inputs: dict[str, torch.Tensor],
        *,
        grid: int = 3,
        segments: int = 2,
        fill: float = 0.0,
    ) -> None:
        clips = _single(inputs, self.key, self.kind, 5)
        frames, height, width = (int(s) for s in clips.shape[2:])
        self.grid = _check_grid(grid, height, width, "video")
        if isinstance(segments, bool) or int(segments) != segments or not 1 <= segments <= frames:
            raise ConfigError(
                f"{segments!r} temporal segments do not fit a clip of {frames} frames",
                fix=f"use segments between 1 and {frames}",
            )
        self.segments = int(segments)
        self.fill = float(fill)
        self.frames, self.height, self.width = frames, height, width
        self.n_features = self.segments * self.grid * self.grid
        self.frame_edges = _edges(frames, self.segments)
        self.row_edges = _edges(height, self.grid)
        self.col_edges = _edges(width, self.grid)
        seg = _part_index(frames, self.segments)
        rows = _part_index(height, self.grid)
        cols = _part_index(width, self.grid)
        fmap = seg[:, None, None] * self.grid ** 2 + rows[None, :, None] * self.grid + cols[None, None, :]
        self.feature_map = torch.as_tensor(fmap)  # (T, H, W)

    def describe(self) -> list[dict[str, Any]]:
        info = []
        for s in range(self.segments):
            for r in range(self.grid):
                for c in range(self.grid):
                    info.append({
                        "row": r, "col": c, "segment": s,
                        "frame_start": int(self.frame_edges[s]), "frame_end": int(self.frame_edges[s + 1]),
                        "y0": int(self.row_edges[r]), "y1": int(self.row_edges[r + 1]),
                        "x0": int(self.col_edges[c]), "x1": int(self.col_edges[c + 1]),
                    })
        return info


@MASKERS.register("features")
class FeatureMasker(Masker):
    """Each entry of ``features`` (1, D) is a feature; a masked entry is set to ``baseline``.

    Args:
        inputs: feature inputs of one sample (``features``).
        baseline: scalar or (D,) vector of masked values (default zeros).
        names: optional name per entry (default ``f0``, ``f1``, ...).
    """

    kind = "features"
    input_keys = ("features",)
    key = "features"

    def __init__(
        self,
        inputs: dict[str, torch.Tensor],
        *,
        baseline: Any = None,
        names: Sequence[str] | None = None,
    ) -> None:
        feats = _single(inputs, self.key, self.kind, 2)
        self.n_features = int(feats.shape[1])
        if baseline is None:
            base = torch.zeros(self.n_features)
        else:
            base = torch.as_tensor(np.asarray(baseline, dtype=np.float64))
        if base.ndim == 0:
            base = base.expand(self.n_features)
        if base.shape != (self.n_features,):
            raise ConfigError(
                f"baseline has shape {tuple(base.shape)}, the features have {self.n_features} entries",
                fix=f"pass a scalar or a vector of length {self.n_features}",
            )
        self.baseline = base.clone()
        if names is not None and len(names) != self.n_features:
            raise ConfigError(
                f"got {len(names)} names for {self.n_features} features",
                fix="pass one name per feature entry",
            )
        self.names = [str(n) for n in names] if names is not None else [f"f{i}" for i in range(self.n_features)]

    def apply(self, inputs: dict[str, torch.Tensor], mask: Any) -> dict[str, torch.Tensor]:
        feats = _single(inputs, self.key, self.kind, 2)
        m = self._mask(mask, feats.device)
        out = self._repeat(inputs, m.shape[0], skip=(self.key,))
        base = self.baseline.to(device=feats.device, dtype=feats.dtype)
        out[self.key] = torch.where(m, feats, base[None, :])
        return out

    def describe(self) -> list[dict[str, Any]]:
        return [{"name": name} for name in self.names]


def create_masker(kind: str, inputs: dict[str, torch.Tensor], **kwargs: Any) -> Masker:
    """Build the registered masker for a modality kind; unknown kinds list the known ones."""
    return MASKERS.create(kind, inputs, **kwargs)


def list_maskers() -> list[str]:
    return MASKERS.names()
