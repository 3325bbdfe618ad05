"""The players of one sample: one masker per explained modality, built by its kind.

Each modality's kind (:mod:`core.kinds`) builds its masker and says what a
masked player becomes (``ModalityKind.fill``); :func:`core.kinds.build_maskers`
chooses the image patch grid from the text modalities' token counts (the
reference MM-SHAP rule, ``grid`` of :class:`~core.explain.ExplainSettings`;
without text :data:`~core.explain.DEFAULT_IMAGE_GRID`) and the video tube grid
from ``video_grid`` x ``video_segments``, a time series' segments from
``series_segments``, an audio clip's spectrogram patches from ``audio_bands`` x
``audio_segments``. Nothing here knows a kind by name.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from core.errors import ConfigError, FusionLensError
from core.explain._settings import DEFAULT_IMAGE_GRID, ExplainSettings
from core.kinds import Masker, get_kind, list_kinds
from core.kinds import build_maskers as build_kind_maskers

if TYPE_CHECKING:
    import torch


def modality_kind(model: Any, modality: str) -> str:
    """The registered kind of one of the model's modalities (an old name such as ``features``
    resolves to its current one); a modality of no known kind fails naming the known kinds."""
    kinds = getattr(model, "modality_kinds", None)
    if isinstance(kinds, Mapping) and modality in kinds:
        name = str(kinds[modality])
    else:
        encoders = getattr(model, "encoders", None)
        try:
            name = str(encoders[modality].kind)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"cannot tell the kind of modality {modality!r}",
                              fix="give the model encoders with a .kind, or a modality_kinds dict") from exc
    try:
        return get_kind(name).name
    except FusionLensError as exc:
        raise ConfigError(f"modality {modality!r} is of kind {name!r}, which no registered kind is",
                          fix=f"register the kind in core.kinds, or use one of: {', '.join(list_kinds())}") from exc


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


def fill_values() -> dict[str, Any]:
    """What a masked player of each registered kind becomes (stored with every explanation)."""
    return {name: get_kind(name).fill for name in list_kinds()}


def build_maskers(
    model: Any, inputs: Mapping[str, dict[str, torch.Tensor]], players: Sequence[str], settings: ExplainSettings
) -> tuple[dict[str, Masker], dict[str, Any]]:
    """One masker per explained modality of ``model``, built by its kind, and how the grids were
    chosen (``text_tokens``, ``image_grid``, ``grid_rule`` and the settings of the kinds present,
    such as ``video_grid``, ``video_segments``, ``series_segments``, ``audio_bands`` and ``audio_segments``)."""
    kinds = {m: modality_kind(model, m) for m in players}
    return build_kind_maskers(kinds, inputs, players, encoders=getattr(model, "encoders", None),
                              grid=settings.grid, video_grid=settings.video_grid,
                              video_segments=settings.video_segments, series_segments=settings.series_segments,
                              audio_bands=settings.audio_bands, audio_segments=settings.audio_segments,
                              default_grid=DEFAULT_IMAGE_GRID)
