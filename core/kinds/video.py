"""The video kind: a manifest cell holds a clip's path; players are patch tubes.

A clip is a ``.npy`` / ``.npz`` array or a folder of frames
(:mod:`core.kinds.video_files`). A user's two video modalities are an RGB clip
and its depth clip: once the dataset is split every pair is loaded and checked
(:func:`~core.kinds.video_files.validate_pair`), or repaired when
``[dataset] repair_video = true``. Video modalities can be fused early (clips
stacked on the channel axis). The masker lays a ``grid x grid`` x ``segments``
tube grid over the normalised clip, the same for every video modality so that
RGB and depth shares stay comparable; a masked tube becomes 0, the dataset mean.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.kinds.base import DatasetLike, MaskerContext, ModalityKind, OptionKey
from core.kinds.masking import RegionMasker, check_grid, edges, part_index, single_input
from core.kinds.registry import KINDS
from core.kinds.video_files import load_clip, validate_pair

if TYPE_CHECKING:
    import torch

#: rows loaded at a time when every RGB/depth pair is checked
PAIR_CHECK_BATCH = 64


@KINDS.register("video")
class VideoKind(ModalityKind):
    """Clips (T, H, W, C); one player per patch tube (spatial patch x temporal segment)."""

    name = "video"
    default_encoder = "slowfast"  # the RGB-D demo's default
    input_keys = ("clips",)
    fill = 0.0
    feature_columns = {"row": "int", "col": "int", "segment": "int", "frame_start": "int", "frame_end": "int",
                       "y0": "int", "y1": "int", "x0": "int", "x1": "int"}
    cell_doc = ("a path relative to the manifest to a `.npy` array (T,H,W[,C]), a `.npz` (the array named like the "
                "modality column, or its only array), or a folder of frame images (sorted by name)")
    early_fusion = True
    segment_axis = 2  # clips (B, C, T, H, W)
    options = {
        "fps": OptionKey("float", "frames per second of the clips: the Sample explorer's clip player then shows each "
                         "frame's time in seconds", default_doc="unknown: frame numbers (the simulator's clips: "
                         "their frames over the clip's 4 s)"),
    }

    def check_cells(self, frame: pd.DataFrame, modality: str, options: Mapping[str, Any],
                    report: dict[str, Any]) -> pd.DataFrame:
        """The option ``fps``, when given, is a positive number; then every cell holds a path."""
        fps = options.get("fps")
        if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float, np.number))
                                or not np.isfinite(fps) or fps <= 0):
            raise ConfigError(f"[modalities.{modality}] fps = {fps!r} is not a frame rate",
                              fix="give the clips' frames per second as a positive number (e.g. fps = 25), "
                                  "or leave it out to show frame numbers")
        return super().check_cells(frame, modality, options, report)

    def finish_dataset(self, dataset: DatasetLike, modalities: list[str], config: Mapping[str, Any], *,
                       user_data: bool, progress: bool = False) -> None:
        """A user's RGB + depth pair (exactly two video modalities, the first RGB): every pair is
        loaded once and checked, or repaired with ``repair_video = true``; raises on the first mismatch."""
        from tqdm.auto import tqdm  # lazy: ~50 ms that a page reading a dataset never needs

        if len(modalities) != 2 or not user_data:  # a generated demo is consistent by construction
            return
        dataset.video_pairs = [(modalities[0], modalities[1])]
        dataset.repair_video = bool(config.get("repair_video", False))
        ids = dataset.ids()
        for start in tqdm(range(0, len(ids), PAIR_CHECK_BATCH), desc="checking RGB-D pairs", disable=not progress,
                          leave=False):
            dataset.items(modalities[0], ids[start:start + PAIR_CHECK_BATCH])

    def load(self, dataset: DatasetLike, modality: str, rows: pd.DataFrame) -> list[Any]:
        ids = rows["id"].tolist()
        clips = [load_clip(dataset.root / c, modality, clip_id=i) for i, c in zip(ids, rows[modality])]
        pair = next((p for p in dataset.video_pairs if modality in p), None)
        if pair is None:
            return clips
        first = modality == pair[0]
        other = pair[1] if first else pair[0]
        out = []
        for i, clip, cell in zip(ids, clips, rows[other]):
            partner = load_clip(dataset.root / cell, other, clip_id=i)
            rgb, depth = (clip, partner) if first else (partner, clip)
            rgb, depth = validate_pair(rgb, depth, i, repair=dataset.repair_video)
            out.append(rgb if first else depth)
        return out

    def encoder_kwargs(self, first_item: Any, modality: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """``in_channels``: 3 for RGB, 1 for depth (a bare (T, H, W) clip)."""
        return {"in_channels": clip_channels(first_item)}

    def build_masker(self, inputs: dict[str, torch.Tensor], *, encoder: Any = None,
                     context: MaskerContext = MaskerContext()) -> VideoTubeMasker:
        return VideoTubeMasker(inputs, grid=context.video_grid, segments=context.video_segments)

    def masker_settings(self, context: MaskerContext) -> dict[str, Any]:
        return {"video_grid": int(context.video_grid), "video_segments": int(context.video_segments)}

    def feature_label(self, info: Mapping[str, Any]) -> str:
        return f"r{int(info['row'])}c{int(info['col'])}s{int(info['segment'])}"


def clip_channels(clip: Any) -> int:
    """Channels of a (T, H, W[, C]) clip: 1 for a bare depth clip."""
    shape = np.shape(clip)
    return 1 if len(shape) == 3 else int(shape[-1])


class VideoTubeMasker(RegionMasker):
    """Patch tubes over ``clips`` (1, C, T, H, W): a ``grid x grid`` spatial grid times
    ``segments`` temporal segments; a masked tube is set to ``fill``.

    Players are numbered segment-major: ``segment * grid**2 + row * grid + col``;
    frame spans are half-open ``[frame_start, frame_end)``.
    """

    kind = "video"
    input_keys = ("clips",)
    key = "clips"
    ndim = 5

    def __init__(self, inputs: dict[str, torch.Tensor], *, grid: int = 3, segments: int = 2,
                 fill: float = 0.0) -> None:
        import torch  # lazy: core.kinds is read without torch (see core.kinds.masking)

        clips = single_input(inputs, self.key, self.kind, 5)
        frames, height, width = (int(s) for s in clips.shape[2:])
        self.grid = check_grid(grid, height, width, "video")
        if isinstance(segments, bool) or int(segments) != segments or not 1 <= segments <= frames:
            raise ConfigError(f"{segments!r} temporal segments do not fit a clip of {frames} frames",
                              fix=f"use segments between 1 and {frames}")
        self.segments = int(segments)
        self.fill = float(fill)
        self.frames, self.height, self.width = frames, height, width
        self.n_features = self.segments * self.grid * self.grid
        self.frame_edges = edges(frames, self.segments)
        self.row_edges = edges(height, self.grid)
        self.col_edges = edges(width, self.grid)
        seg = part_index(frames, self.segments)
        rows = part_index(height, self.grid)
        cols = part_index(width, self.grid)
        fmap = seg[:, None, None] * self.grid ** 2 + rows[None, :, None] * self.grid + cols[None, None, :]
        self.feature_map = torch.as_tensor(fmap)  # (T, H, W)

    def describe(self) -> list[dict[str, Any]]:
        return [{"row": r, "col": c, "segment": s,
                 "frame_start": int(self.frame_edges[s]), "frame_end": int(self.frame_edges[s + 1]),
                 "y0": int(self.row_edges[r]), "y1": int(self.row_edges[r + 1]),
                 "x0": int(self.col_edges[c]), "x1": int(self.col_edges[c + 1])}
                for s in range(self.segments) for r in range(self.grid) for c in range(self.grid)]
