"""Time-series files: read a user's series, fill its gaps, resample it in time.

A series is a ``.npy`` array ``(T, C)`` (``(T,)`` is one channel) or a ``.csv``
table (a header row of channel names, one row per time step). :func:`read_series`
reads one as float64 with its NaN gaps still in it, :func:`fill_gaps` applies
the documented gap rules (the table in :mod:`core.kinds.timeseries`) and
:func:`resample_series` brings it to a fixed number of time steps by linear
interpolation. numpy only: manifest validation and the dashboard read series
without torch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from core.errors import DataError

__all__ = ["EMPTY_CHANNEL_RULES", "SERIES_SUFFIXES", "default_channels", "fill_gaps", "read_series",
           "resample_series", "series_channels"]

SERIES_SUFFIXES = (".npy", ".csv")
#: what a channel with no valid value in a sample becomes: refused, or the channel's training mean
EMPTY_CHANNEL_RULES = ("refuse", "zero")

_FORMAT_FIX = ("store each series as a .npy float array (T, C), time first, or a .csv with a header row of channel "
               "names and one row of numbers per time step")
_SHORT_FIX = "give every series at least 2 time steps with a value in every channel, or drop that sample"


def default_channels(n: int) -> list[str]:
    """``c0, c1, ...``: the channel names of a series without a header."""
    return [f"c{i}" for i in range(n)]


def series_channels(path: str | Path) -> list[str] | None:
    """The channel names a series file carries (a ``.csv`` header), or None (a ``.npy`` array)."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        return None
    import pandas as pd

    return [str(c).strip() for c in pd.read_csv(path, nrows=0).columns]


def read_series(path: str | Path, who: str) -> tuple[np.ndarray, list[str] | None]:
    """One series file as float64 ``(T, C)`` with its NaN gaps, and its channel names (a csv
    header) or None. ``who`` names the sample in messages (``sample 's003'``). Raises
    :class:`DataError` for a missing file, another format, a pickled or non-numeric array,
    another rank, a csv cell that is not a number, or an empty series."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{who}: series file {path} is missing",
                        fix="add the file, or correct its path in the manifest (paths are relative to the manifest)")
    suffix = path.suffix.lower()
    names: list[str] | None = None
    if suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as exc:  # a pickled object array, a truncated or foreign file
            raise DataError(f"{who}: series file {path} is not a plain .npy array ({type(exc).__name__}: {exc})",
                            fix="save a float array with numpy.save (no pickled objects)") from exc
        if not isinstance(arr, np.ndarray) or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) \
                or np.issubdtype(arr.dtype, np.complexfloating):
            raise DataError(f"{who}: series file {path} holds {getattr(arr, 'dtype', type(arr).__name__)}, not real "
                            "numbers", fix="store floats (or integers)")
    elif suffix == ".csv":
        arr, names = _read_csv(path, who)
    else:
        raise DataError(f"{who}: series file {path} has an unsupported type {path.suffix or '(none)'!r}",
                        fix=_FORMAT_FIX)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"{who}: series in {path} has shape {arr.shape}, not (T,) or (T, C)",
                        fix="store one series per file, time first and one column per channel")
    if arr.shape[1] == 0:
        raise DataError(f"{who}: series in {path} has no channel (shape {arr.shape})", fix=_FORMAT_FIX)
    return arr.astype(np.float64), names


def _read_csv(path: Path, who: str) -> tuple[np.ndarray, list[str]]:
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise DataError(f"{who}: series file {path} is not a readable csv table ({type(exc).__name__}: {exc})",
                        fix=_FORMAT_FIX) from exc
    names = [str(c).strip() for c in frame.columns]
    text = frame.apply(lambda col: col.str.strip())
    blank = text.isin(["", "nan", "NaN", "NA", "null"])
    values = text.where(~blank).apply(pd.to_numeric, errors="coerce")
    bad = values.isna() & ~blank
    if bad.to_numpy().any():
        row, col = (int(i[0]) for i in np.nonzero(bad.to_numpy()))
        raise DataError(f"{who}: series file {path} has {int(bad.to_numpy().sum())} cell(s) that are not numbers, "
                        f"e.g. row {row + 2}, channel {names[col]!r}: {frame.iat[row, col]!r}",
                        fix="write plain numbers (a decimal point, no units); leave a cell empty for a gap")
    return values.to_numpy(dtype=np.float64, na_value=np.nan), names


def fill_gaps(series: np.ndarray, who: str, channels: Sequence[str], *, empty: str = "refuse") -> np.ndarray:
    """``series`` (T, C) with its NaN gaps filled by linear interpolation in time per channel,
    the edges held at the nearest valid value; float32.

    A channel with no valid value is refused (a :class:`DataError` naming ``who`` and the
    channel) unless ``empty = "zero"``: then it stays NaN, which the encoder sets to the
    channel's training mean. Infinite values, a single time step and a channel with a single
    valid value are refused ("too short").
    """
    arr = np.asarray(series, dtype=np.float64)
    if arr.shape[0] < 2:
        raise DataError(f"{who}: series is too short ({arr.shape[0]} time step(s); at least 2 are needed)",
                        fix=_SHORT_FIX)
    infinite = np.isinf(arr)
    if infinite.any():
        cols = sorted(set(np.nonzero(infinite)[1].tolist()))
        raise DataError(f"{who}: series holds {int(infinite.sum())} infinite value(s) in channel(s) "
                        f"{', '.join(repr(channels[c]) for c in cols)}",
                        fix="replace them with a number, or leave the cell empty (NaN) to have it interpolated")
    valid = ~np.isnan(arr)
    counts = valid.sum(axis=0)
    if (counts == len(arr)).all():
        return arr.astype(np.float32)
    out = arr.copy()
    steps = np.arange(len(arr), dtype=np.float64)
    for c in range(arr.shape[1]):
        if counts[c] == 0:
            if empty == "zero":
                continue
            raise DataError(f"{who}: channel {channels[c]!r} has no valid value (every step is empty or NaN)",
                            fix='record that channel, drop the sample, or set empty_channel = "zero" in '
                                "[modalities.<name>] of the experiment file (the channel becomes its training mean)")
        if counts[c] == 1:
            raise DataError(f"{who}: channel {channels[c]!r} is too short (1 valid time step; gaps need 2 to be "
                            "interpolated)", fix=_SHORT_FIX)
        if counts[c] < len(arr):
            out[:, c] = np.interp(steps, steps[valid[:, c]], arr[valid[:, c], c])  # edges: nearest valid value
    return out.astype(np.float32)


def resample_series(series: np.ndarray, length: int) -> np.ndarray:
    """``series`` (T, C) at ``length`` time steps by linear interpolation in time (float64): step
    ``k`` of the result is position ``k * (T - 1) / (length - 1)`` of the original, so the first
    and last steps are kept. A NaN channel stays NaN."""
    arr = np.asarray(series, dtype=np.float64)
    t = arr.shape[0]
    if t == length:
        return arr.copy()
    pos = np.linspace(0.0, t - 1, length) if length > 1 else np.zeros(1)
    lo = np.minimum(np.floor(pos).astype(np.int64), t - 1)
    hi = np.minimum(lo + 1, t - 1)
    w = (pos - lo)[:, None]
    return arr[lo] * (1.0 - w) + arr[hi] * w
