"""The image kind: a manifest cell holds an image file's path; players are patches.

Every file is opened at prepare (:func:`core.kinds.image_files.image_problem`:
Pillow verifies raster files, SVG files are rasterised small), and one error
names every file that cannot be used. Items are ``HxWx3`` uint8 arrays; SVG
files are rasterised at the modality's raster size (the encoder's
``image_size``). The masker lays a ``p x p`` patch grid over the normalised
pixels; a masked patch becomes 0, the dataset mean colour.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import pandas as pd

from core.errors import ConfigError, DataError
from core.kinds.base import PREVIEW, DatasetLike, MaskerContext, ModalityKind
from core.kinds.image_files import SVG_FIX, image_problem, load_image, supported_image_formats
from core.kinds.masking import RegionMasker, check_grid, edges, part_index, patch_grid_for_tokens, single_input
from core.kinds.registry import KINDS

if TYPE_CHECKING:
    import torch


@KINDS.register("image")
class ImageKind(ModalityKind):
    """Image files; one player per patch of a square grid."""

    name = "image"
    default_encoder = "small-cnn"
    input_keys = ("pixels",)
    fill = 0.0
    feature_columns = {"row": "int", "col": "int", "y0": "int", "y1": "int", "x0": "int", "x1": "int"}
    cell_doc = ("a path relative to the manifest; any format Pillow opens (PNG, JPEG, GIF, BMP, TIFF, WebP, ...), "
                "SVG/SVGZ with the optional resvg-py")
    uses_grid = True
    raster_size_key = "image_size"

    def check_files(self, frame: pd.DataFrame, modality: str, root: Path, options: Mapping[str, Any], *,
                    progress: bool = False) -> None:
        """Every file exists and opens; one DataError naming all that cannot be used."""
        from tqdm.auto import tqdm  # lazy: ~50 ms that a page reading a dataset never needs

        super().check_files(frame, modality, root, options, progress=progress)
        bad: list[tuple[str, str, str]] = []
        cells = list(zip(frame["id"], frame[modality].astype(str)))
        for sid, cell in tqdm(cells, desc=f"checking {modality} images", disable=not progress, leave=False):
            why = image_problem(root / cell)
            if why:
                bad.append((sid, cell, why))
        if not bad:
            return
        shown = "; ".join(f"{sid} ({cell}: {why})" for sid, cell, why in bad[:PREVIEW])
        more = f"; and {len(bad) - PREVIEW} more" if len(bad) > PREVIEW else ""
        fix = (f"convert or replace those files (readable here: {supported_image_formats()}), or drop those rows "
               "from the manifest")
        n_svg = sum(why.startswith("SVG, and resvg-py") for _, _, why in bad)
        if n_svg:
            fix = SVG_FIX + ("" if n_svg == len(bad) else f"; for the others: {fix}")
        raise DataError(f"modality {modality!r}: {len(bad)} of {len(frame)} image file(s) cannot be used: "
                        f"{shown}{more}", fix=fix)

    def load(self, dataset: DatasetLike, modality: str, rows: pd.DataFrame) -> list[Any]:
        size = dataset.raster_sizes.get(modality)
        return [load_image(dataset.root / c, size) for c in rows[modality]]

    def build_masker(self, inputs: dict[str, torch.Tensor], *, encoder: Any = None,
                     context: MaskerContext = MaskerContext()) -> ImagePatchMasker:
        """A ``context.grid`` patch grid, made coarser when the image has fewer pixels per side."""
        pixels = single_input(inputs, "pixels", "image", 4)
        return ImagePatchMasker(inputs, grid=min(int(context.grid), int(min(pixels.shape[-2:]))))

    def feature_label(self, info: Mapping[str, Any]) -> str:
        return f"r{int(info['row'])}c{int(info['col'])}"


class ImagePatchMasker(RegionMasker):
    """A ``grid x grid`` patch grid over ``pixels`` (1, C, H, W); a masked patch is set to ``fill``.

    Args:
        inputs: image inputs of one sample (``pixels``).
        grid: patches per side; or ``n_text_tokens`` to use the reference rule
            :func:`~core.kinds.masking.patch_grid_for_tokens`.
        fill: value of a masked pixel (0.0 = dataset mean in normalised space).
    Players are numbered row-major: player ``row * grid + col``.
    """

    kind = "image"
    input_keys = ("pixels",)
    key = "pixels"
    ndim = 4

    def __init__(self, inputs: dict[str, torch.Tensor], *, grid: int | None = None,
                 n_text_tokens: int | None = None, fill: float = 0.0) -> None:
        import torch  # lazy: core.kinds is read without torch (see core.kinds.masking)

        pixels = single_input(inputs, self.key, self.kind, 4)
        height, width = int(pixels.shape[2]), int(pixels.shape[3])
        if grid is None:
            if n_text_tokens is None:
                raise ConfigError("the image masker needs a grid size",
                                  fix="pass grid=p, or n_text_tokens=n for the reference rule p = ceil(sqrt(n))")
            grid = patch_grid_for_tokens(n_text_tokens)
        self.grid = check_grid(grid, height, width, "image")
        self.fill = float(fill)
        self.height, self.width = height, width
        self.n_features = self.grid * self.grid
        self.row_edges = edges(height, self.grid)
        self.col_edges = edges(width, self.grid)
        rows = part_index(height, self.grid)
        cols = part_index(width, self.grid)
        self.feature_map = torch.as_tensor(rows[:, None] * self.grid + cols[None, :])  # (H, W)

    def describe(self) -> list[dict[str, Any]]:
        return [{"row": r, "col": c,
                 "y0": int(self.row_edges[r]), "y1": int(self.row_edges[r + 1]),
                 "x0": int(self.col_edges[c]), "x1": int(self.col_edges[c + 1])}
                for r in range(self.grid) for c in range(self.grid)]
