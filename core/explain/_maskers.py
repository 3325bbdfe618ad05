"""Maskers: the explain package's names for the maskers the modality kinds own.

Every modality kind of :mod:`core.kinds` builds its own masker
(``ModalityKind.build_masker``: the players MM-SHAP uses) and is the only
registry of them; the contract every masker honours is
:class:`core.kinds.Masker` (``n_features``, ``apply(inputs, mask)``,
``describe()``). This module re-exports the maskers of the built-in kinds and
builds one by kind name (:func:`create_masker`), so a kind registered later
(a test's toy kind, a new modality) has its masker here with no edit.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.kinds import (
    ColumnMasker,
    ImagePatchMasker,
    Masker,
    MaskerContext,
    TextTokenMasker,
    VideoTubeMasker,
    get_kind,
    list_kinds,
    patch_grid_for_tokens,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "ColumnMasker", "ImagePatchMasker", "Masker", "MaskerContext", "TextTokenMasker", "VideoTubeMasker",
    "create_masker", "list_maskers", "patch_grid_for_tokens",
]


def create_masker(kind: str, inputs: dict[str, torch.Tensor], *, encoder: Any = None,
                  context: MaskerContext | None = None) -> Masker:
    """The masker of one sample's model inputs of modality kind ``kind`` (an old name such as
    ``features`` resolves), built by the kind: ``encoder`` gives what the kind reads from it
    (the pad id and token strings of a text encoder, the column names of a tabular one),
    ``context`` the grids (:class:`core.kinds.MaskerContext`). Unknown kinds list the known ones."""
    return get_kind(kind).build_masker(inputs, encoder=encoder, context=context or MaskerContext())


def list_maskers() -> list[str]:
    """The kinds that build a masker: every registered modality kind."""
    return list_kinds()
