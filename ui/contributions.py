"""An explanation's stored per-feature values, reshaped for a figure: one set of extractors.

The Sample explorer's viewers (:mod:`ui.viewers`) and the report's sample cards
(:mod:`ui.report`) read a modality's contributions through these functions, so both
show the same values the same way: :func:`patch_grid` (an image's patches, or one
time slice of a clip's tubes), :func:`tube_values` (a clip's tubes), :func:`token_values`
(a text's tokens), :func:`column_values` (a vector's columns), :func:`series_contributions`
(a time series' segments) and :func:`audio_patches` (an audio clip's spectrogram patches);
:func:`audio_track` is an audio clip as its run's encoder sees it, with those patches.
Each returns None when the modality has no such players; none computes anything.
Plain module: no streamlit.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.kinds.audio import DEFAULT_SAMPLE_RATE, spectrogram_of
from ui.figures.clips import AudioTrack

__all__ = [
    "feature_rows",
    "patch_grid",
    "tube_values",
    "token_values",
    "column_values",
    "series_contributions",
    "audio_patches",
    "audio_settings",
    "audio_track",
]


def feature_rows(explanation: Any, modality: str) -> pd.DataFrame:
    """The rows of ``explanation.per_feature_frame()`` of one modality."""
    frame = explanation.per_feature_frame()
    return frame[frame["modality"] == modality]


def _has(rows: pd.DataFrame, column: str) -> bool:
    return not rows.empty and column in rows.columns and not rows[column].isna().all()


def patch_grid(explanation: Any, modality: str, *, segment: int | None = None) -> np.ndarray | None:
    """(rows, cols) Shapley values of an image modality's patches, or None when it has none;
    ``segment``: only the tubes of that time slice of a clip (its first is 0)."""
    rows = feature_rows(explanation, modality)
    if not _has(rows, "row"):
        return None
    if segment is not None and "segment" in rows.columns:
        rows = rows[rows["segment"].fillna(0).astype(int) == int(segment)]
        if rows.empty:
            return None
    r = rows["row"].astype(int).to_numpy()
    c = rows["col"].astype(int).to_numpy()
    grid = np.full((r.max() + 1, c.max() + 1), np.nan)
    grid[r, c] = rows["phi"].to_numpy(dtype=float)
    return grid


def tube_values(explanation: Any, modality: str) -> np.ndarray | None:
    """(segments, rows, cols) Shapley values of a video modality's tubes, or None."""
    rows = feature_rows(explanation, modality)
    if not _has(rows, "row"):
        return None
    seg = rows["segment"].fillna(0).astype(int).to_numpy() if "segment" in rows.columns \
        else np.zeros(len(rows), dtype=int)
    r = rows["row"].astype(int).to_numpy()
    c = rows["col"].astype(int).to_numpy()
    values = np.full((seg.max() + 1, r.max() + 1, c.max() + 1), np.nan)
    values[seg, r, c] = rows["phi"].to_numpy(dtype=float)
    return values


def token_values(explanation: Any, modality: str) -> tuple[list[str], list[float]] | None:
    """Tokens and their Shapley values of a text modality, or None."""
    rows = feature_rows(explanation, modality)
    if not _has(rows, "token"):
        return None
    return rows["token"].astype(str).tolist(), rows["phi"].astype(float).tolist()


def column_values(explanation: Any, modality: str) -> tuple[list[str], list[float]] | None:
    """Column names and their Shapley values of a tabular modality, or None."""
    rows = feature_rows(explanation, modality)
    if not _has(rows, "column"):
        return None
    return rows["column"].astype(str).tolist(), rows["phi"].astype(float).tolist()


def series_contributions(explanation: Any, modality: str) -> pd.DataFrame | None:
    """The players of a time-series modality (segment, group, t0, t1, channels) with their Shapley
    values (``phi``), or None."""
    rows = feature_rows(explanation, modality)
    if not _has(rows, "channels"):
        return None
    out = rows[["segment", "group", "t0", "t1", "channels", "phi"]].reset_index(drop=True)
    return out.astype({"segment": int, "group": int, "t0": int, "t1": int, "phi": float})


def audio_patches(explanation: Any, modality: str) -> pd.DataFrame | None:
    """The spectrogram patches of an audio modality (band, segment, mel_lo, mel_hi, t0_ms, t1_ms)
    with their Shapley values (``phi``), or None."""
    rows = feature_rows(explanation, modality)
    if not _has(rows, "band"):
        return None
    return rows[["band", "segment", "mel_lo", "mel_hi", "t0_ms", "t1_ms", "phi"]].reset_index(drop=True)


def audio_settings(encoder_kwargs: Any, options: Any) -> dict[str, Any]:
    """The spectrogram settings of an audio modality: its encoder's (``encoder_kwargs``, the run's
    ``config["encoders"][m]["kwargs"]``) with the dataset's sample rate (its ``options``)."""
    settings = dict(encoder_kwargs or {})
    settings["sample_rate"] = int((options or {}).get("sample_rate") or settings.get("sample_rate")
                                  or DEFAULT_SAMPLE_RATE)
    return settings


def audio_track(wave: Any, modality: str, explanation: Any, settings: dict[str, Any]) -> AudioTrack:
    """One audio clip as the run's encoder sees it (its log-mel spectrogram with ``settings``, from
    :func:`audio_settings`), with its patch contributions when ``explanation`` is given."""
    wave = np.asarray(wave, dtype=np.float32)
    db, times, hz_edges = spectrogram_of(wave, **settings)
    patches = audio_patches(explanation, modality) if explanation is not None else None
    return AudioTrack(modality, db, times, hz_edges, len(wave) / settings["sample_rate"], patches)
