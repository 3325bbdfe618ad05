"""The contract of a modality kind: everything kind-specific, in one class.

A modality kind (text, image, video, tabular, ...) is one module in
``core/kinds/`` holding one :class:`ModalityKind` subclass registered in
:data:`core.kinds.KINDS`. It owns:

* **the manifest column**: which columns a modality of this kind reads
  (:meth:`~ModalityKind.manifest_columns`), the cheap cell rules checked before
  the split (:meth:`~ModalityKind.check_cells`: empty text, missing paths,
  non-numeric values), the file checks run on the kept rows
  (:meth:`~ModalityKind.check_files`: files exist, images open), what is checked
  once the whole dataset is known (:meth:`~ModalityKind.finish_dataset`:
  RGB/depth pairs, an audio clip length; what it noticed goes to the prepare log through
  :meth:`~ModalityKind.preparation_notes`), how a batch of rows is loaded as raw items
  (:meth:`~ModalityKind.load`), and which columns hold file paths
  (:meth:`~ModalityKind.file_columns`, for readers that check paths);
* **its keys in the experiment file** (:attr:`~ModalityKind.options`, extra keys
  of ``[modalities.<name>]`` such as ``empty`` or ``columns``);
* **its default encoder** (:attr:`~ModalityKind.default_encoder`, registered in
  ``core.encoders`` with ``kind=<name>``) and the encoder arguments the data
  decides (:meth:`~ModalityKind.encoder_kwargs`: input channels, vector length);
* **its masker** (:meth:`~ModalityKind.build_masker`, the players MM-SHAP uses,
  see :mod:`core.kinds.masking`) and **fill value** (:attr:`~ModalityKind.fill`,
  what a masked player becomes, stored with every explanation);
* **the shape of its stored contributions** (:attr:`~ModalityKind.feature_columns`,
  the keys each player's ``describe()`` row has, and :meth:`~ModalityKind.feature_label`);
* **its viewer's name** (:attr:`~ModalityKind.viewer`): the dashboard registers
  a viewer under that name; ``core`` never imports the UI. Whether its cells are
  text the dashboard can list and search (:attr:`~ModalityKind.text_cells`).

Kinds are stateless: :func:`core.kinds.get_kind` returns one shared instance.
Nothing here imports torch at import time (manifest validation and the pages
use kinds); maskers import it when they are built.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Protocol, Sequence

import pandas as pd

from core.errors import DataError

if TYPE_CHECKING:
    import torch

    from core.kinds.masking import Masker

#: ids named in a message before "and N more"
PREVIEW = 10


def preview(values: Sequence[Any], n: int = 5) -> str:
    """``a, b, c and 7 more`` for a message."""
    vals = list(values)
    more = f" and {len(vals) - n} more" if len(vals) > n else ""
    return ", ".join(map(str, vals[:n])) + more


@dataclass(frozen=True)
class OptionKey:
    """A key a kind adds to ``[modalities.<name>]`` of the experiment file.

    The fields mean what they mean in ``core.experiment_schema.Key`` (which this becomes,
    applying only when ``kind`` is this kind): ``type`` is ``int``, ``float``, ``str``,
    ``bool``, ``list[str]`` or ``list[list[str]]``.
    """

    type: str
    doc: str
    default: Any = None
    default_doc: str | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class MaskerContext:
    """What the explanation settings decide for a masker (each kind reads what it needs).

    ``grid``: the image patch grid after the reference rule (``ceil(sqrt(text tokens))``);
    ``video_grid`` x ``video_grid`` x ``video_segments``: the video tube grid;
    ``series_segments``: the time segments of a time series;
    ``audio_bands`` x ``audio_segments``: the patch grid of an audio clip's log-mel spectrogram.
    """

    grid: int = 3
    video_grid: int = 3
    video_segments: int = 2
    series_segments: int = 8
    audio_bands: int = 4
    audio_segments: int = 6


class DatasetLike(Protocol):
    """What a kind reads from a :class:`core.data.Dataset` when it loads items."""

    name: str
    root: Path
    frame: pd.DataFrame
    modalities: dict[str, str]
    options: dict[str, dict[str, Any]]
    raster_sizes: dict[str, int]
    video_pairs: list[tuple[str, str]]
    repair_video: bool
    #: what preparation changed or noticed (``describe_preparation`` prints it; kept in ``dataset.json``)
    report: dict[str, Any]

    def ids(self, split: str | None = None) -> list[str]: ...

    def items(self, modality: str, ids: Sequence[str]) -> list[Any]: ...


class ModalityKind:
    """One modality kind. Subclasses set the class attributes and override what differs."""

    #: the name the experiment file uses (``kind = "<name>"``)
    name: ClassVar[str]
    #: a registered encoder of this kind, the one docs and messages suggest first
    default_encoder: ClassVar[str]
    #: keys of the model inputs (``Encoder.prepare``) that the masker changes
    input_keys: ClassVar[tuple[str, ...]]
    #: what a masked player becomes (JSON, stored in every explanation's settings)
    fill: ClassVar[Any]
    #: ``describe()`` keys of one player -> ``"int"`` or ``"str"``: the kind's columns of stored contributions
    feature_columns: ClassVar[dict[str, str]]
    #: extra keys of ``[modalities.<name>]`` (besides kind, encoder, encoder_kwargs)
    options: ClassVar[dict[str, OptionKey]] = {}
    #: what one cell holds, for docs and messages
    cell_doc: ClassVar[str] = ""
    #: whether raw items of several modalities of this kind can be stacked into one encoder (early fusion)
    early_fusion: ClassVar[bool] = False
    #: whether the masker takes the image patch grid, which the other kinds' player counts decide
    uses_grid: ClassVar[bool] = False
    #: whether a manifest cell is the item itself as readable text (the dashboard lists such
    #: columns beside the predictions and its search looks in them)
    text_cells: ClassVar[bool] = False
    #: the encoder argument that sets the size vector files (SVG) are rasterised at when loaded
    #: (``Dataset.raster_sizes``); None for a kind that rasterises nothing
    raster_size_key: ClassVar[str | None] = None
    #: the axis of the prepared input ``input_keys[0]`` that is time, for a kind whose items can be cut
    #: into temporal segments (the adaptive strategy runs its encoder on each segment); None: not segmentable
    segment_axis: ClassVar[int | None] = None

    @property
    def viewer(self) -> str:
        """The name the dashboard's viewer for this kind is registered under (the kind's name)."""
        return self.name

    # ----------------------------------------------------------------- manifest

    def manifest_columns(self, modality: str, options: Mapping[str, Any]) -> list[str]:
        """The manifest columns a modality of this kind reads (by default the one named like it)."""
        return [modality]

    def file_columns(self, modality: str, options: Mapping[str, Any]) -> list[str]:
        """The manifest columns whose cells are file paths (relative to the manifest), which readers
        outside ``load`` (the dashboard's path check) must keep inside the data folder."""
        return [modality]

    def missing_columns_fix(self, modality: str, options: Mapping[str, Any]) -> str | None:
        """How to fix a manifest that lacks this modality's columns, when the generic advice is not enough."""
        return None

    def check_cells(self, frame: pd.DataFrame, modality: str, options: Mapping[str, Any],
                    report: dict[str, Any]) -> pd.DataFrame:
        """Cheap checks of every cell, before classes are counted and split: a cell with no file
        path is refused. May return fewer rows (recorded in ``report``); raises :class:`DataError`."""
        blank = frame[modality].isna() | (frame[modality].astype(str).str.strip() == "")
        if blank.any():
            raise DataError(f"modality {modality!r}: sample(s) {preview(frame['id'][blank].tolist())} have no file path",
                            fix="fill them in or drop those rows from the manifest")
        return frame

    def check_files(self, frame: pd.DataFrame, modality: str, root: Path, options: Mapping[str, Any], *,
                    progress: bool = False) -> None:
        """Checks of the kept rows' files: every path (relative to ``root``) exists."""
        absent = [(i, root / str(c)) for i, c in zip(frame["id"], frame[modality]) if not (root / str(c)).exists()]
        if absent:
            raise DataError(f"modality {modality!r}: file(s) missing for sample(s) {preview([i for i, _ in absent])} "
                            f"(e.g. {absent[0][1]})",
                            fix="fix the paths (relative to the manifest) or drop those rows")

    def finish_dataset(self, dataset: DatasetLike, modalities: list[str], config: Mapping[str, Any], *,
                       user_data: bool, progress: bool = False) -> None:
        """Once the dataset is split: checks over several modalities of this kind (``config`` is
        the experiment's ``[dataset]`` table; ``user_data``: a user's own files, not a demo)."""

    def preparation_notes(self, report: Mapping[str, Any]) -> list[str]:
        """Lines for the prepare log on what this kind changed or noticed, from what it wrote into the
        dataset's ``report`` (its own keys); none by default."""
        return []

    def load(self, dataset: DatasetLike, modality: str, rows: pd.DataFrame) -> list[Any]:  # pragma: no cover
        """Raw items of ``modality`` for ``rows`` (of ``dataset.frame``), in row order."""
        raise NotImplementedError

    # ----------------------------------------------------------------- model

    def encoder_kwargs(self, first_item: Any, modality: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """Encoder arguments the data decides (from one training item), filled in when the
        experiment file does not give them; they are saved with the run's encoder spec."""
        return {}

    # ----------------------------------------------------------------- explanation

    def build_masker(self, inputs: dict[str, torch.Tensor], *, encoder: Any = None,
                     context: MaskerContext = MaskerContext()) -> Masker:  # pragma: no cover - abstract
        """The masker of one sample's model inputs of this kind."""
        raise NotImplementedError

    def masker_settings(self, context: MaskerContext) -> dict[str, Any]:
        """The settings of ``context`` this kind's maskers used, stored with the explanation."""
        return {}

    def token_count(self, masker: Masker) -> int | None:
        """Tokens this masker's modality counts for the reference image-grid rule (text only)."""
        return None

    def feature_label(self, info: Mapping[str, Any]) -> str:
        """A short label of one player from its ``describe()`` row."""
        return ", ".join(f"{k}={info[k]}" for k in self.feature_columns if info.get(k) is not None)

    def __repr__(self) -> str:
        return f"<modality kind {self.name!r}>"
