"""Modality kinds: one module per kind owns everything kind-specific.

``text``, ``image``, ``video``, ``tabular`` (formerly ``features``, still
accepted), ``timeseries`` and ``audio`` each live in their own module, a
:class:`ModalityKind` registered in :data:`KINDS`: manifest validation and loading, the kind's keys in the
experiment file, its default encoder, its masker and fill value, the columns of
its stored contributions and the name of its dashboard viewer (see
:mod:`core.kinds.base` for the contract). Every other layer loops over the
registry. Adding a kind is one module here (plus its encoder in
``core.encoders`` and its viewer in the UI package), imported below.

Importing this package never imports torch.
"""
from __future__ import annotations

from core.kinds.base import DatasetLike, MaskerContext, ModalityKind, OptionKey
from core.kinds.masking import Masker, SubsetMasker, patch_grid_for_tokens
from core.kinds.players import build_maskers, grid_for
from core.kinds.registry import KINDS, canonical_kind, get_kind, kind_alias_note, kinds_of, list_kinds

# Importing the modules registers their kinds (in this order: docs and choices list them so).
from core.kinds import text, image, video, tabular  # noqa: E402,F401,I001
from core.kinds import timeseries  # noqa: E402,F401
from core.kinds import audio  # noqa: E402,F401
from core.kinds.audio import SpectrogramPatchMasker  # noqa: E402
from core.kinds.image import ImagePatchMasker  # noqa: E402
from core.kinds.tabular import ColumnMasker  # noqa: E402
from core.kinds.text import TextTokenMasker  # noqa: E402
from core.kinds.timeseries import SegmentMasker  # noqa: E402
from core.kinds.video import VideoTubeMasker  # noqa: E402

__all__ = [
    "KINDS", "ColumnMasker", "DatasetLike", "ImagePatchMasker", "Masker", "MaskerContext", "ModalityKind",
    "OptionKey", "SegmentMasker", "SpectrogramPatchMasker", "SubsetMasker", "TextTokenMasker", "VideoTubeMasker", "build_maskers", "canonical_kind",
    "get_kind", "grid_for", "kind_alias_note", "kinds_of", "list_kinds", "patch_grid_for_tokens",
]
