"""Time-series encoders: a GRU and a small dilated temporal convolutional network (TCN).

Both take series as ``(T, C)`` float arrays (``(T,)`` is one channel; ``T``
may differ between items). ``prepare`` fills NaN gaps (the kind's rules,
:func:`core.kinds.series_files.fill_gaps`, a wholly empty channel allowed),
resamples every series to ``length`` time steps by linear interpolation and
standardises each channel with the training split's mean and standard
deviation. ``fit_preprocessing`` learns those statistics (buffers, saved in
the run's safetensors) and, when ``length`` is not given, fixes it to the
training items' median ``T`` (then part of ``spec()``, saved with the run). 0
in the model input ``{"series": (B, length, C)}`` is the training mean of a
channel, which is also what an empty channel and a masked player become.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from core.encoders._base import Encoder
from core.encoders.registry import ENCODERS
from core.errors import ConfigError, DataError
from core.kinds.series_files import default_channels, fill_gaps, resample_series
from core.kinds.timeseries import group_indices

__all__ = ["GRUSeriesEncoder", "SeriesEncoder", "TCNSeriesEncoder"]


def _positive_int(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}",
                          fix=f"set {name} to an integer >= {low} (encoder_kwargs in the experiment file)")
    return int(value)


class SeriesEncoder(Encoder):
    """Shared preprocessing of the time-series encoders; subclasses build ``forward``.

    ``in_channels`` (the series' channel count), ``channels`` (their names) and
    ``channel_groups`` (groups of names: the masker's players) are filled in from the
    data and the experiment file at training; ``length`` from the experiment file or,
    when absent, the training items' median length at ``fit_preprocessing``.
    """

    kind = "timeseries"

    def __init__(self, in_channels: int | None = None, length: int | None = None, out_dim: int = 32,
                 channels: list[str] | None = None, channel_groups: list[list[str]] | None = None) -> None:
        super().__init__()
        if in_channels is None:
            raise ConfigError(f"the {self.registry_name} encoder needs in_channels (the series' channel count)",
                              fix="training sets it from the data; from Python pass in_channels=<channels>")
        self.in_channels = _positive_int("in_channels", in_channels)
        self.length = None if length is None else _positive_int("length", length, low=2)
        self.out_dim = _positive_int("out_dim", out_dim)
        names = [str(c) for c in channels] if channels is not None else default_channels(self.in_channels)
        if len(names) != self.in_channels:
            raise ConfigError(f"{len(names)} channel names for {self.in_channels} channels",
                              fix="give one name per channel, or none")
        self.channels = names
        self.channel_groups = [[str(c) for c in g] for g in channel_groups] if channel_groups else None
        group_indices(self.channel_groups, self.channels)  # a ConfigError when they do not fit
        # Buffers, not attributes: the statistics travel with the safetensors weights.
        self.register_buffer("mean", torch.zeros(self.in_channels))
        self.register_buffer("std", torch.ones(self.in_channels))

    # -- configuration -----------------------------------------------------
    def _extra_kwargs(self) -> dict[str, Any]:
        """Architecture kwargs beyond the shared ones (subclasses extend)."""
        return {}

    def spec(self) -> dict[str, Any]:
        kwargs = {"in_channels": self.in_channels, "length": self.length, "out_dim": self.out_dim,
                  "channels": list(self.channels),
                  "channel_groups": [list(g) for g in self.channel_groups] if self.channel_groups else None,
                  **self._extra_kwargs()}
        return {"name": type(self).registry_name, "kwargs": kwargs}

    # -- preprocessing -----------------------------------------------------
    def _series(self, item: Any, index: int) -> np.ndarray:
        """One raw series -> (T, C) float32, gaps filled, not resampled."""
        arr = np.asarray(item)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) \
                or np.issubdtype(arr.dtype, np.complexfloating):
            raise DataError(f"series {index} has shape {arr.shape} and dtype {arr.dtype}, not (T, C) numbers",
                            fix="pass each series as a (T, C) float array, time first")
        if arr.shape[1] != self.in_channels:
            raise DataError(f"series {index} has {arr.shape[1]} channel(s) but this encoder expects "
                            f"in_channels={self.in_channels}",
                            fix="give every series of this modality the same channels in the same order")
        return fill_gaps(arr, f"series {index}", self.channels, empty="zero")

    def _resampled(self, items: Sequence[Any]) -> np.ndarray:
        if self.length is None:
            raise ConfigError(f"the {self.registry_name} encoder does not know its length yet",
                              fix="call fit_preprocessing(training items) first (it takes their median length), "
                                  "or pass length=<time steps>")
        if len(items) == 0:
            return np.zeros((0, self.length, self.in_channels))
        return np.stack([resample_series(self._series(s, i), self.length) for i, s in enumerate(items)])

    def fit_preprocessing(self, items: Sequence[Any]) -> "SeriesEncoder":
        """The length (the items' median ``T`` when not given) and each channel's mean and standard
        deviation over every time step of the resampled training items (a constant channel is
        only centred; a channel empty in every item gets mean 0 and deviation 1)."""
        if len(items) == 0:
            raise DataError("no training series to fit the channel statistics on",
                            fix="give the train split samples")
        if self.length is None:
            lengths = [len(self._series(s, i)) for i, s in enumerate(items)]
            self.length = max(2, int(np.floor(np.median(lengths) + 0.5)))
        x = self._resampled(items).reshape(-1, self.in_channels)
        seen = ~np.isnan(x)
        count = seen.sum(0)
        filled = np.where(seen, x, 0.0)
        mean = np.divide(filled.sum(0), count, out=np.zeros(self.in_channels), where=count > 0)
        var = np.divide((np.where(seen, x - mean, 0.0) ** 2).sum(0), count, out=np.ones(self.in_channels),
                        where=count > 0)
        std = np.sqrt(var)
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(np.where(std > 1e-12, std, 1.0), dtype=torch.float32))
        return self

    def prepare(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        x = torch.as_tensor(self._resampled(items), dtype=torch.float32)
        x = (x - self.mean.detach().cpu()) / self.std.detach().cpu()
        return {"series": torch.nan_to_num(x, nan=0.0).to(self.device)}  # an empty channel: the training mean

    # -- model side --------------------------------------------------------
    def _input(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if "series" not in inputs:
            raise DataError("time-series inputs have no 'series' tensor",
                            fix="build the inputs with encoder.prepare(series)")
        x = inputs["series"]
        if x.ndim != 3 or x.shape[2] != self.in_channels:
            raise DataError(f"series tensor has shape {tuple(x.shape)}; expected (B, T, {self.in_channels})",
                            fix="build the inputs with encoder.prepare(series) of the same encoder")
        return x.to(self.mean.device)

    def structure(self, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
        x = self._input(inputs)
        return {"length": int(x.shape[1]), "channels": list(self.channels),
                "channel_groups": [list(g) for g in self.channel_groups] if self.channel_groups else
                [list(self.channels)]}


@ENCODERS.register("gru", kind="timeseries")
class GRUSeriesEncoder(SeriesEncoder):
    """A GRU (``layers`` layers of ``hidden`` units) over the standardised series; its last hidden
    state and its mean over time, concatenated, projected to ``out_dim``."""

    registry_name = "gru"

    def __init__(self, in_channels: int | None = None, length: int | None = None, out_dim: int = 32,
                 channels: list[str] | None = None, channel_groups: list[list[str]] | None = None,
                 hidden: int = 64, layers: int = 1, dropout: float = 0.1) -> None:
        super().__init__(in_channels, length, out_dim, channels, channel_groups)
        self.hidden = _positive_int("hidden", hidden)
        self.layers = _positive_int("layers", layers)
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"dropout = {dropout!r} is not in [0, 1)", fix="use dropout = 0.1 (the default)")
        self.dropout = float(dropout)
        self.gru = nn.GRU(self.in_channels, self.hidden, num_layers=self.layers, batch_first=True,
                          dropout=self.dropout if self.layers > 1 else 0.0)
        self.head = nn.Linear(2 * self.hidden, self.out_dim)

    def _extra_kwargs(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "layers": self.layers, "dropout": self.dropout}

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        out, _ = self.gru(self._input(inputs))  # (B, T, hidden)
        return self.head(torch.cat([out[:, -1], out.mean(dim=1)], dim=1))


class _TemporalBlock(nn.Module):
    """Conv1d (kernel 3, ``dilation``, same length) + BatchNorm + ReLU, with a residual connection."""

    def __init__(self, width: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation, bias=False)
        self.norm = nn.BatchNorm1d(width)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(torch.relu(self.norm(self.conv(x))))


@ENCODERS.register("tcn", kind="timeseries")
class TCNSeriesEncoder(SeriesEncoder):
    """A small dilated temporal convolutional network (TCN): a 1x1 input projection to ``width``
    channels, ``levels`` residual blocks of kernel-3 convolutions with dilations ``2**i`` (a receptive
    field of ``2**(levels+1) - 1`` steps), then the mean and max over time, projected to ``out_dim``."""

    registry_name = "tcn"

    def __init__(self, in_channels: int | None = None, length: int | None = None, out_dim: int = 32,
                 channels: list[str] | None = None, channel_groups: list[list[str]] | None = None,
                 width: int = 32, levels: int = 4, dropout: float = 0.1) -> None:
        super().__init__(in_channels, length, out_dim, channels, channel_groups)
        self.width = _positive_int("width", width)
        self.levels = _positive_int("levels", levels)
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"dropout = {dropout!r} is not in [0, 1)", fix="use dropout = 0.1 (the default)")
        self.dropout = float(dropout)
        self.project = nn.Conv1d(self.in_channels, self.width, 1)
        self.blocks = nn.Sequential(*[_TemporalBlock(self.width, 2 ** i, self.dropout) for i in range(self.levels)])
        self.head = nn.Linear(2 * self.width, self.out_dim)

    def _extra_kwargs(self) -> dict[str, Any]:
        return {"width": self.width, "levels": self.levels, "dropout": self.dropout}

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.blocks(self.project(self._input(inputs).transpose(1, 2)))  # (B, width, T)
        return self.head(torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1))
