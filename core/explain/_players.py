"""The players of one sample: one masker per explained modality, and how its grid was chosen.

* text: every non-special token of each text modality (special tokens count
  towards the grid rule but never change, as in :class:`TextTokenMasker`);
* image: a ``p x p`` patch grid per image modality. ``grid=None`` (default,
  ``"mean"``) applies the reference rule ``p = ceil(sqrt(n_tokens))`` to the
  *mean* token count (special tokens included) of the text modalities, so every
  modality gets about as many players as one text; ``grid="total"`` applies it
  to the summed count of all texts (identical to the reference with one text);
  an integer fixes ``p``. Without text the grid is
  :data:`~core.explain.DEFAULT_IMAGE_GRID`;
* video: a ``video_grid x video_grid`` x ``video_segments`` tube grid, the same
  for every video modality (RGB and depth shares stay comparable);
* features: every entry of the vector.

Masked tokens become the pad id, masked patches and tubes 0 (the dataset mean
in normalised pixel space), masked feature entries 0 (:data:`FILL_VALUES`).

Everything that depends on the modality kind is in the section marked
"kind-specific" below (:data:`FILL_VALUES` and :func:`_kind_masker`), so a
modality-kind registry can replace it with one lookup per kind.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch

from core.errors import ConfigError, DataError
from core.explain._maskers import Masker, create_masker, patch_grid_for_tokens
from core.explain._settings import DEFAULT_IMAGE_GRID, ExplainSettings


def modality_kind(model: Any, modality: str) -> str:
    """The kind (text/image/video/features) of one of the model's modalities."""
    kinds = getattr(model, "modality_kinds", None)
    if isinstance(kinds, Mapping) and modality in kinds:
        return str(kinds[modality])
    encoders = getattr(model, "encoders", None)
    try:
        return str(encoders[modality].kind)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"cannot tell the kind of modality {modality!r}",
                          fix="give the model encoders with a .kind, or a modality_kinds dict") from exc


def resolve_players(model: Any, modalities: Sequence[str] | None) -> list[str]:
    """The explained modalities in the model's order; unknown names fail with the known ones."""
    known = list(model.modalities)
    if modalities is None:
        return known
    unknown = [m for m in modalities if m not in known]
    if unknown:
        raise ConfigError(f"the model has no modality {', '.join(map(repr, unknown))}",
                          fix=f"explain some of: {', '.join(known)}")
    return [m for m in known if m in modalities]


# --------------------------------------------------------------------------- kind-specific
# The only place that knows modality kinds: a kind registry replaces this section.

#: What a masked feature of each kind becomes (recorded with every explanation).
FILL_VALUES: dict[str, Any] = {"text": "pad token", "image": 0.0, "video": 0.0, "features": 0.0}


def _text_tokens(encoder: Any, inputs: dict[str, torch.Tensor]) -> list[str] | None:
    tokens = getattr(encoder, "tokens", None)
    if callable(tokens):
        try:
            return list(tokens(inputs, 0))
        except Exception:  # token strings are cosmetic: ids are shown instead
            return None
    return None


def _text_masker(model: Any, modality: str, inputs: dict[str, torch.Tensor]) -> Masker:
    enc = model.encoders[modality] if hasattr(model, "encoders") else None
    pad = getattr(enc, "pad_token_id", 0)
    return create_masker("text", inputs, pad_token_id=pad, tokens=_text_tokens(enc, inputs))


def _kind_masker(kind: str, modality: str, inputs: dict[str, torch.Tensor], image_grid: int,
                 settings: ExplainSettings) -> tuple[Masker, int | None]:
    """The masker of a non-text modality, and the image grid it used (None for other kinds)."""
    if kind == "image":
        side = int(min(inputs["pixels"].shape[-2:]))
        grid = min(image_grid, side)
        return create_masker("image", inputs, grid=grid), grid
    if kind == "video":
        return create_masker("video", inputs, grid=settings.video_grid, segments=settings.video_segments), None
    if kind == "features":
        return create_masker("features", inputs), None
    raise ConfigError(f"no masker for modality {modality!r} of kind {kind!r}",
                      fix="register one in core.explain.MASKERS")


# --------------------------------------------------------------------------- maskers


def build_maskers(
    model: Any, inputs: Mapping[str, dict[str, torch.Tensor]], players: Sequence[str], settings: ExplainSettings
) -> tuple[dict[str, Masker], dict[str, Any]]:
    """One masker per explained modality, and how the grids were chosen.

    Text maskers come first: their token counts set the image grid (see the
    module docstring).
    """
    maskers: dict[str, Masker] = {}
    kinds = {m: modality_kind(model, m) for m in players}
    for m in players:
        if m not in inputs:
            raise DataError(f"no inputs for modality {m!r}", fix=f"pass inputs for: {', '.join(players)}")
        if kinds[m] == "text":
            maskers[m] = _text_masker(model, m, inputs[m])
    token_counts = [maskers[m].n_tokens for m in players if kinds[m] == "text"]
    info: dict[str, Any] = {"text_tokens": {m: maskers[m].n_tokens for m in players if kinds[m] == "text"}}
    if isinstance(settings.grid, int):
        p, rule = settings.grid, "fixed"
    elif not token_counts:
        p, rule = DEFAULT_IMAGE_GRID, "default (no text)"
    elif settings.grid == "total":
        p, rule = patch_grid_for_tokens(sum(token_counts)), "ceil(sqrt(total text tokens))"
    else:
        p, rule = patch_grid_for_tokens(math.ceil(sum(token_counts) / len(token_counts))), \
            "ceil(sqrt(mean text tokens))"
    grids: dict[str, int] = {}
    for m in players:
        if kinds[m] == "text":
            continue
        maskers[m], grid = _kind_masker(kinds[m], m, inputs[m], p, settings)
        if grid is not None:
            grids[m] = grid
    info.update(image_grid=grids, grid_rule=rule)
    if any(kinds[m] == "video" for m in players):
        info.update(video_grid=settings.video_grid, video_segments=settings.video_segments)
    return maskers, info
