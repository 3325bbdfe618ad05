"""The players of one sample: one masker per explained modality, built through the kinds.

:func:`build_maskers` is the only place that decides the image patch grid from
the other modalities' players (the reference MM-SHAP rule): text maskers are
built first, their token counts (special tokens included) give
``p = ceil(sqrt(n))``, and every kind that ``uses_grid`` then gets a ``p x p``
grid (made coarser for an image with fewer pixels per side). ``grid=None`` (or
``"mean"``) applies the rule to the mean token count of the text modalities,
``"total"`` to their sum, an integer fixes ``p``; without text ``p`` is
``default_grid``.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from core.errors import ConfigError, DataError
from core.kinds.base import MaskerContext
from core.kinds.masking import Masker, patch_grid_for_tokens
from core.kinds.registry import get_kind

if TYPE_CHECKING:
    import torch


def grid_for(token_counts: Sequence[int], grid: int | str | None, default_grid: int) -> tuple[int, str]:
    """The image patch grid ``p`` and the rule that chose it (stored with the explanation)."""
    if isinstance(grid, int) and not isinstance(grid, bool):
        return grid, "fixed"
    if grid not in (None, "mean", "total"):
        raise ConfigError(f"grid={grid!r} is not understood", fix='use None or "mean", "total", or an integer')
    if not token_counts:
        return default_grid, "default (no text)"
    if grid == "total":
        return patch_grid_for_tokens(sum(token_counts)), "ceil(sqrt(total text tokens))"
    return patch_grid_for_tokens(math.ceil(sum(token_counts) / len(token_counts))), "ceil(sqrt(mean text tokens))"


def build_maskers(kinds: Mapping[str, str], inputs: Mapping[str, dict[str, torch.Tensor]], players: Sequence[str],
                  *, encoders: Mapping[str, Any] | None = None, grid: int | str | None = None,
                  video_grid: int = 3, video_segments: int = 2, series_segments: int = 8,
                  audio_bands: int = 4, audio_segments: int = 6, default_grid: int = 3) -> tuple[dict[str, Masker], dict[str, Any]]:
    """One masker per modality of ``players`` (kind names in ``kinds``), and how the grids were chosen:
    ``text_tokens`` (modality: tokens counted), ``image_grid`` (modality: grid used), ``grid_rule``,
    and the settings of the kinds present (``video_grid``, ``video_segments``, ``series_segments``,
    ``audio_bands``, ``audio_segments``)."""
    for m in players:
        if m not in inputs:
            raise DataError(f"no inputs for modality {m!r}", fix=f"pass inputs for: {', '.join(players)}")
        if m not in kinds:
            raise ConfigError(f"cannot tell the kind of modality {m!r}",
                              fix="give the model encoders with a .kind, or a modality_kinds dict")
    kind_of = {m: get_kind(kinds[m]) for m in players}
    encoder_of = dict(encoders or {})
    context = MaskerContext(video_grid=video_grid, video_segments=video_segments, series_segments=series_segments,
                            audio_bands=audio_bands, audio_segments=audio_segments)
    maskers: dict[str, Masker] = {}
    counts: dict[str, int] = {}
    for m in players:  # first the kinds whose players do not depend on the others
        if not kind_of[m].uses_grid:
            maskers[m] = kind_of[m].build_masker(inputs[m], encoder=encoder_of.get(m), context=context)
            n = kind_of[m].token_count(maskers[m])
            if n is not None:
                counts[m] = n
    p, rule = grid_for(list(counts.values()), grid, default_grid)
    context = MaskerContext(grid=p, video_grid=video_grid, video_segments=video_segments,
                            series_segments=series_segments, audio_bands=audio_bands, audio_segments=audio_segments)
    grids: dict[str, int] = {}
    for m in players:
        if kind_of[m].uses_grid:
            maskers[m] = kind_of[m].build_masker(inputs[m], encoder=encoder_of.get(m), context=context)
            grids[m] = int(maskers[m].grid)  # type: ignore[attr-defined]
    info: dict[str, Any] = {"text_tokens": counts, "image_grid": grids, "grid_rule": rule}
    for kind in dict.fromkeys(kind_of.values()):
        info.update(kind.masker_settings(context))
    return {m: maskers[m] for m in players}, info
