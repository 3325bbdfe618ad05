"""The time-series kind: a manifest cell holds a series' path; players are time segments x channel groups.

A series is a ``.npy`` float array ``(T, C)`` (``(T,)`` is one channel) or a
``.csv`` table with a header row of channel names and one row per time step
(:mod:`core.kinds.series_files`), for example a worker's and an excavator's
positioning tags over a clip. ``T`` may differ between samples; ``C`` may not.
Keys of ``[modalities.<name>]``:

* ``length``: every series is resampled to this many time steps by linear
  interpolation in time (step ``k`` is position ``k * (T - 1) / (length - 1)``
  of the original, so the first and last steps are kept); default: the
  training split's median ``T``, fixed when the encoder is fitted and saved
  with the run;
* ``channels``: channel names in column order (default: the csv header,
  recorded at prepare, else ``c0, c1, ...``);
* ``channel_groups``: lists of channel names; each player is one time segment
  of one group (default: one group of every channel). Every channel belongs
  to exactly one group;
* ``xy``: pairs of channels that are x/y positions in metres (``["worker_x",
  "worker_y", "excavator_x", "excavator_y"]``); the Sample explorer then also
  draws a top-down track map;
* ``empty_channel``: ``"refuse"`` (default) or ``"zero"`` (see below).

Every file is read and checked at prepare; ``load`` returns float32 ``(T, C)``
arrays with their gaps filled. The rules for bad input:

======================================  ===================================================
input                                   what happens
======================================  ===================================================
NaN / empty cells (a tag's dropouts)    linear interpolation in time per channel; the
                                        edges are held at the nearest valid value
a channel with no valid value           DataError naming the sample and the channel; with
                                        ``empty_channel = "zero"`` it stays NaN for the
                                        encoder, which sets it to the channel's training
                                        mean (0 after standardisation)
+-inf                                   DataError (leave the cell empty for a gap instead)
one time step, or a channel with one    DataError ("too short"): interpolation needs two
valid value                             points
a 3-D (or 0-D) array                    DataError naming the shape
a csv cell that is not a number         DataError naming the row and the channel
a missing file, another file type, a    DataError naming the sample
pickled or non-numeric ``.npy``
another channel count (or csv header)   DataError naming the samples that differ from the
than the first sample                   first
======================================  ===================================================

The default encoder ``gru`` (also ``tcn``) standardises each channel with the
training split's mean and standard deviation, so 0 in its input ``series``
(B, length, C) is the training mean. The masker (:class:`SegmentMasker`) cuts
the resampled series into ``series_segments`` equal time segments (the
explain setting, default 8; boundaries ``floor(i * length / segments)``) and
the channels into their groups; a masked player's values become 0, the
training mean.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from core.errors import ConfigError, DataError
from core.kinds.base import PREVIEW, DatasetLike, MaskerContext, ModalityKind, OptionKey, preview
from core.kinds.masking import Masker, edges, part_index, single_input
from core.kinds.registry import KINDS
from core.kinds.series_files import (
    EMPTY_CHANNEL_RULES,
    default_channels,
    fill_gaps,
    read_series,
    series_channels,
)

if TYPE_CHECKING:
    import torch

#: time segments of a series when the explain settings do not say (``series_segments``)
DEFAULT_SERIES_SEGMENTS = 8


@KINDS.register("timeseries")
class TimeSeriesKind(ModalityKind):
    """Series (T, C) of numbers; one player per time segment and channel group."""

    name = "timeseries"
    default_encoder = "gru"
    input_keys = ("series",)
    segment_axis = 1  # series (B, length, C)
    fill = 0.0  # after standardisation: the training mean of the channel
    feature_columns = {"segment": "int", "group": "int", "t0": "int", "t1": "int", "channels": "str"}
    cell_doc = ("a path relative to the manifest to a `.npy` float array (T, C) or (T,), or a `.csv` with a header "
                "row of channel names and one row per time step; T may differ between samples")
    options = {
        "length": OptionKey("int", "time steps every series is resampled to (linear interpolation in time)",
                            default_doc="the training split's median length"),
        "channels": OptionKey("list[str]", "channel names, in column order",
                              default_doc="the csv header, else c0, c1, ..."),
        "channel_groups": OptionKey("list[list[str]]", "channel groups (names): each MM-SHAP player is one time "
                                    "segment of one group; every channel in exactly one group",
                                    default_doc="one group of every channel"),
        "xy": OptionKey("list[str]", "pairs of channels that are x/y positions in metres (x1, y1, x2, y2, ...): the "
                        "Sample explorer draws them as a top-down track map", default_doc="no track map"),
        "empty_channel": OptionKey("str", "a channel with no valid value in a sample: `refuse` (an error naming it) "
                                   "or `zero` (it becomes the channel's training mean)", default_doc='`"refuse"`',
                                   choices=EMPTY_CHANNEL_RULES),
    }

    def check_files(self, frame: pd.DataFrame, modality: str, root: Path, options: Mapping[str, Any], *,
                    progress: bool = False) -> None:
        """Every series is read and its gaps filled (the rules of the module docstring); all have the
        channel count (and csv header) of the first; the options fit the channels."""
        super().check_files(frame, modality, root, options, progress=progress)
        empty = empty_rule(options)
        bad: list[str] = []
        fixes: dict[str, None] = {}
        shapes: dict[tuple[int, tuple[str, ...] | None], list[str]] = {}
        for sid, cell in zip(frame["id"].astype(str), frame[modality].astype(str)):
            try:
                arr, header = read_series(root / cell, f"sample {sid!r}")
                fill_gaps(arr, f"sample {sid!r}", channel_names(options, arr.shape[1], header), empty=empty)
            except DataError as exc:
                bad.append(exc.problem)
                fixes.setdefault(exc.fix or "fix or drop those samples")
                continue
            shapes.setdefault((arr.shape[1], tuple(header) if header else None), []).append(sid)
        if bad:
            raise DataError(f"modality {modality!r}: {len(bad)} series file(s) cannot be used: "
                            f"{'; '.join(bad[:PREVIEW])}{' and more' if len(bad) > PREVIEW else ''}",
                            fix="; ".join(list(fixes)[:3]) + " (the time-series rules: docs/FORMATS.md)")
        if not shapes:
            return
        n_first = next(iter(shapes))[0]
        header = next((h for _, h in shapes if h), None)  # the first csv header names the channels
        odd = [f"{n} channel(s){' ' + repr(list(h)) if h else ''} ({preview(ids)})"
               for (n, h), ids in shapes.items() if n != n_first or (h and h != header)]
        if odd:
            raise DataError(f"modality {modality!r}: the series differ in channels: the first sample has {n_first} "
                            f"channel(s){' ' + repr(list(header)) if header else ''}, others have {'; '.join(odd)}",
                            fix="give every sample the same channels in the same order")
        check_options(modality, options, channel_names(options, n_first, header), n_first)

    def finish_dataset(self, dataset: DatasetLike, modalities: list[str], config: Mapping[str, Any], *,
                       user_data: bool, progress: bool = False) -> None:
        """Records a csv header as the modality's ``channels`` (kept in ``dataset.json``), so the encoder,
        the players and the dashboard name the channels as the files do."""
        for m in modalities:
            if dataset.options.get(m, {}).get("channels"):
                continue
            cell = next((c for c in dataset.frame[m].astype(str) if c.lower().endswith(".csv")), None)
            header = series_channels(dataset.root / cell) if cell is not None else None
            if header:
                dataset.options.setdefault(m, {})["channels"] = header

    def load(self, dataset: DatasetLike, modality: str, rows: pd.DataFrame) -> list[Any]:
        options = dataset.options.get(modality, {})
        empty = empty_rule(options)
        out = []
        for sid, cell in zip(rows["id"].astype(str), rows[modality].astype(str)):
            arr, header = read_series(dataset.root / cell, f"sample {sid!r}")
            names = channel_names(options, arr.shape[1], header)
            out.append(fill_gaps(arr, f"sample {sid!r}", names, empty=empty))
        return out

    def encoder_kwargs(self, first_item: Any, modality: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """``in_channels``, ``channels`` (names), and ``channel_groups`` and ``length`` when the
        experiment file gives them (else the encoder's defaults: one group, the median length)."""
        n = int(np.shape(first_item)[1]) if np.ndim(first_item) == 2 else 1
        kwargs: dict[str, Any] = {"in_channels": n, "channels": channel_names(options, n, None)}
        if options.get("channel_groups"):
            kwargs["channel_groups"] = [list(map(str, g)) for g in options["channel_groups"]]
        if options.get("length") is not None:
            kwargs["length"] = int(options["length"])
        return kwargs

    def build_masker(self, inputs: dict[str, torch.Tensor], *, encoder: Any = None,
                     context: MaskerContext = MaskerContext()) -> SegmentMasker:
        return SegmentMasker(inputs, segments=context.series_segments, channels=getattr(encoder, "channels", None),
                             channel_groups=getattr(encoder, "channel_groups", None), fill=self.fill)

    def masker_settings(self, context: MaskerContext) -> dict[str, Any]:
        return {"series_segments": int(context.series_segments)}

    def feature_label(self, info: Mapping[str, Any]) -> str:
        return f"t{int(info['t0'])}-{int(info['t1'])} [{info['channels']}]"


def empty_rule(options: Mapping[str, Any]) -> str:
    """The modality's ``empty_channel`` rule (``refuse`` unless the experiment file says ``zero``)."""
    rule = options.get("empty_channel") or "refuse"
    if rule not in EMPTY_CHANNEL_RULES:
        raise ConfigError(f"empty_channel = {rule!r} is not a rule",
                          fix=f"use one of: {', '.join(EMPTY_CHANNEL_RULES)}")
    return str(rule)


def channel_names(options: Mapping[str, Any], n: int, header: Sequence[str] | None) -> list[str]:
    """The names of a modality's ``n`` channels: its ``channels`` option, else the csv header, else ``c0, ...``."""
    names = options.get("channels") or header
    return [str(c) for c in names] if names else default_channels(n)


def group_indices(groups: Sequence[Sequence[str]] | None, names: Sequence[str]) -> list[list[int]]:
    """Channel groups (names) as column indices: one group of every channel when ``groups`` is
    None; a ConfigError for an unknown name, a channel in two groups or one in none."""
    names = [str(n) for n in names]
    if not groups:
        return [list(range(len(names)))]
    index = {n: i for i, n in enumerate(names)}
    unknown = [str(c) for g in groups for c in g if str(c) not in index]
    flat = [str(c) for g in groups for c in g]
    twice = sorted({c for c in flat if flat.count(c) > 1})
    left = [n for n in names if n not in flat]
    fix = f"list each of the channels ({', '.join(names)}) in exactly one group of channel_groups"
    if unknown:
        raise ConfigError(f"channel_groups names unknown channel(s) {', '.join(map(repr, unknown))}", fix=fix)
    if twice or left or any(not g for g in groups):
        what = (f"puts {', '.join(map(repr, twice))} in more than one group" if twice else
                f"leaves out {', '.join(map(repr, left))}" if left else "has an empty group")
        raise ConfigError(f"channel_groups {what}", fix=fix)
    return [[index[str(c)] for c in g] for g in groups]


def check_options(modality: str, options: Mapping[str, Any], names: Sequence[str], n_channels: int) -> None:
    """The modality's ``channels``, ``channel_groups``, ``xy`` and ``length`` against its ``n_channels``
    channels, named ``names``."""
    where = f"[modalities.{modality}]"
    given = options.get("channels")
    if given and len(given) != n_channels:
        raise ConfigError(f"{where} channels names {len(given)} channel(s), the series have {n_channels}",
                          fix="give one name per column of the series, in order")
    try:
        group_indices(options.get("channel_groups"), names)
    except ConfigError as exc:
        raise ConfigError(f"{where} {exc.problem}", fix=exc.fix) from None
    xy = [str(c) for c in options.get("xy") or []]
    unknown = [c for c in xy if c not in names]
    if len(xy) % 2 or unknown:
        what = f"names unknown channel(s) {', '.join(map(repr, unknown))}" if unknown else \
            f"has {len(xy)} names, not x/y pairs"
        raise ConfigError(f"{where} xy {what}",
                          fix=f"list pairs of channels (x, y, x, y, ...) among: {', '.join(names)}")
    length = options.get("length")
    if length is not None and (isinstance(length, bool) or int(length) != length or length < 2):
        raise ConfigError(f"{where} length = {length!r} is not an integer >= 2",
                          fix="give the number of time steps every series is resampled to, or leave it out")


class SegmentMasker(Masker):
    """Players over ``series`` (1, L, C): ``segments`` time segments x channel groups; a masked
    player's values are set to ``fill``.

    Players are numbered segment-major: ``segment * n_groups + group``; time spans are
    half-open ``[t0, t1)`` steps of the resampled series (boundaries ``floor(i * L / segments)``).
    More segments than time steps are cut to one segment per step.

    Args:
        inputs: time-series inputs of one sample (``series``, standardised by the encoder).
        segments: time segments (default 8).
        channels: one name per channel (default ``c0``, ``c1``, ...).
        channel_groups: groups of channel names (default: one group of every channel).
        fill: value of a masked entry (default 0, the training mean after standardisation).
    """

    kind = "timeseries"
    input_keys = ("series",)
    key = "series"

    def __init__(self, inputs: dict[str, torch.Tensor], *, segments: int = DEFAULT_SERIES_SEGMENTS,
                 channels: Sequence[str] | None = None, channel_groups: Sequence[Sequence[str]] | None = None,
                 fill: float = 0.0) -> None:
        import torch  # lazy: core.kinds is read without torch (see core.kinds.masking)

        x = single_input(inputs, self.key, self.kind, 3)
        length, n_channels = int(x.shape[1]), int(x.shape[2])
        if isinstance(segments, bool) or int(segments) != segments or segments < 1:
            raise ConfigError(f"series_segments must be a positive integer, got {segments!r}",
                              fix="use series_segments = 8 (the default) or another integer >= 1")
        if channels is not None and len(channels) != n_channels:
            raise ConfigError(f"got {len(channels)} channel names for {n_channels} channels",
                              fix="pass one name per channel")
        self.channels = [str(c) for c in channels] if channels is not None else default_channels(n_channels)
        self.groups = group_indices(channel_groups, self.channels)
        self.segments = min(int(segments), length)
        self.length, self.fill = length, float(fill)
        self.n_features = self.segments * len(self.groups)
        self.time_edges = edges(length, self.segments)
        group_of = np.empty(n_channels, dtype=np.int64)
        for g, cols in enumerate(self.groups):
            group_of[cols] = g
        fmap = part_index(length, self.segments)[:, None] * len(self.groups) + group_of[None, :]
        self.feature_map = torch.as_tensor(fmap)  # (L, C)

    def apply(self, inputs: dict[str, torch.Tensor], mask: Any) -> dict[str, torch.Tensor]:
        import torch  # lazy: see core.kinds.masking

        x = single_input(inputs, self.key, self.kind, 3)
        m = self._mask(mask, x.device)
        keep = m[:, self.feature_map.to(x.device)]  # (B, L, C)
        out = self._repeat(inputs, m.shape[0], skip=(self.key,))
        out[self.key] = torch.where(keep, x, torch.full((), self.fill, dtype=x.dtype, device=x.device))
        return out

    def describe(self) -> list[dict[str, Any]]:
        return [{"segment": s, "group": g, "t0": int(self.time_edges[s]), "t1": int(self.time_edges[s + 1]),
                 "channels": ", ".join(self.channels[c] for c in cols)}
                for s in range(self.segments) for g, cols in enumerate(self.groups)]
