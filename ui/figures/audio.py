"""Figures of one audio clip (Sample explorer): its log-mel spectrogram, with the contributions of
its spectrogram patches (mel band x time segment, the audio kind's players) laid over it."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.errors import DataError
from ui.figures.style import CONTRIBUTION_COLORSCALE, empty_figure, style_figure

#: candidate frequency ticks (Hz); those inside the spectrogram's range and not crowding a higher one are shown
FREQUENCY_TICKS = (50, 100, 250, 500, 1000, 2000, 4000, 8000, 16000)
#: the least distance between two ticks, as a fraction of the mel bins
MIN_TICK_GAP = 0.08
#: the columns of a patch row (the audio kind's ``describe()`` keys) and its contribution
PATCH_COLUMNS = ("band", "segment", "mel_lo", "mel_hi", "t0_ms", "t1_ms", "phi")


def _hz_label(hz: float) -> str:
    return f"{hz / 1000:g}k" if hz >= 1000 else f"{hz:g}"


def mel_position(hz: Any, hz_edges: np.ndarray) -> np.ndarray:
    """Where frequencies (Hz) fall on a spectrogram's row axis: mel bin ``i`` spans ``i - 0.5`` to
    ``i + 0.5``, its edges ``hz_edges`` (n_mels + 1, increasing), linear in between."""
    return np.interp(np.asarray(hz, dtype=float), hz_edges, np.arange(len(hz_edges)) - 0.5)


def make_spectrogram_figure(
    db: np.ndarray,
    times: Sequence[float],
    hz_edges: Sequence[float],
    patches: pd.DataFrame | None = None,
    *,
    title: str | None = None,
    opacity: float = 0.55,
) -> go.Figure:
    """The log-mel spectrogram ``db`` (n_mels, frames) in grey (dB), time (s) across and frequency
    (Hz, mel scale: one row per mel bin) up, with the patches' contributions over it when ``patches``
    (rows with :data:`PATCH_COLUMNS`) are given: a semi-transparent diverging heatmap, symmetric around
    0 (red pushes towards the explained output, blue against), one cell per patch."""
    db = np.asarray(db, dtype=float)
    if db.ndim == 2 and db.size == 0:
        return empty_figure("This clip has no frames.", title)
    traces = spectrogram_traces(db, times, hz_edges, patches, opacity=opacity)
    fig = go.Figure(traces)
    style_figure(fig, title, "Time (s)", "Frequency (Hz, mel scale)", height=420)
    fig.update_yaxes(**mel_axis(hz_edges))
    return fig


def spectrogram_traces(db: np.ndarray, times: Sequence[float], hz_edges: Sequence[float],
                       patches: pd.DataFrame | None = None, *, opacity: float = 0.55, zmax: float | None = None,
                       show_scale: bool = True) -> list[go.Heatmap]:
    """The traces of :func:`make_spectrogram_figure`: the spectrogram in grey (its dB colour bar only
    when no patches are drawn and ``show_scale``), then the patches' contributions when given, on a
    symmetric scale to ``zmax`` (their own largest |value| when not given)."""
    db = np.asarray(db, dtype=float)
    if db.ndim != 2:
        raise DataError(f"the spectrogram must be (n_mels, frames), got shape {db.shape}", fix="pass one clip's")
    n_mels, frames = db.shape
    times = np.asarray(times, dtype=float)
    edges = np.asarray(hz_edges, dtype=float)
    if times.shape != (frames,) or edges.shape != (n_mels + 1,):
        raise DataError(f"{times.size} frame times and {edges.size} band edges for a {n_mels} x {frames} spectrogram",
                        fix="pass one time per frame and n_mels + 1 edges (core.kinds.audio.spectrogram_of)")
    explained = patches is not None and not patches.empty
    traces: list[go.Heatmap] = [go.Heatmap(
        z=db.astype(np.float32), x=times, y=np.arange(n_mels), colorscale="gray",  # float32: half the bytes
        showscale=show_scale and not explained, colorbar={"title": {"text": "dB"}, "thickness": 16},
        customdata=np.repeat(np.round(np.sqrt(edges[:-1] * edges[1:]))[:, None], frames, axis=1).astype(np.float32),
        hovertemplate="%{x:.2f} s, ~%{customdata:.0f} Hz<br>%{z:.1f} dB<extra></extra>",
    )]
    if explained:
        missing = [c for c in PATCH_COLUMNS if c not in patches.columns]
        if missing:
            raise DataError(f"audio patch rows lack column(s) {missing}", fix="pass the audio modality's feature rows")
        traces.append(_patch_trace(patches, edges, opacity, zmax, show_scale))
    return traces


def mel_axis(hz_edges: Sequence[float]) -> dict[str, Any]:
    """Settings of a spectrogram's frequency axis (one row per mel bin): ticks at round frequencies,
    from the top down, none crowding the one above."""
    edges = np.asarray(hz_edges, dtype=float)
    n_mels = len(edges) - 1
    ticks: list[tuple[float, float]] = []  # (Hz, row position), from the top down
    for hz in sorted((f for f in FREQUENCY_TICKS if edges[0] <= f <= edges[-1]), reverse=True):
        y = float(mel_position(hz, edges))
        if not ticks or ticks[-1][1] - y >= MIN_TICK_GAP * n_mels:  # low frequencies crowd on a mel axis
            ticks.append((hz, y))
    return {"tickmode": "array", "tickvals": [y for _, y in ticks], "ticktext": [_hz_label(f) for f, _ in ticks],
            "range": [-0.5, n_mels - 0.5]}


def patch_values(patches: pd.DataFrame | None) -> np.ndarray:
    """The Shapley values of an audio clip's patches (none for None)."""
    return np.zeros(0) if patches is None or patches.empty else patches["phi"].to_numpy(dtype=float)


def _patch_trace(patches: pd.DataFrame, hz_edges: np.ndarray, opacity: float, zmax: float | None = None,
                 show_scale: bool = True) -> go.Heatmap:
    """One cell per patch: x edges are the segments' time bounds, y edges the bands' frequency bounds."""
    p = patches.astype({c: float for c in PATCH_COLUMNS})
    bands = p.groupby("band")[["mel_lo", "mel_hi"]].first().sort_index()
    segs = p.groupby("segment")[["t0_ms", "t1_ms"]].first().sort_index()
    grid = np.full((len(bands), len(segs)), np.nan)
    b_index = {int(b): i for i, b in enumerate(bands.index)}
    s_index = {int(s): i for i, s in enumerate(segs.index)}
    for row in p.itertuples(index=False):
        grid[b_index[int(row.band)], s_index[int(row.segment)]] = row.phi
    x_edges = np.append(segs["t0_ms"].to_numpy(), segs["t1_ms"].to_numpy()[-1]) / 1000.0
    y_edges = mel_position(np.append(bands["mel_lo"].to_numpy(), bands["mel_hi"].to_numpy()[-1]), hz_edges)
    if zmax is None:
        finite = np.abs(grid[np.isfinite(grid)])
        zmax = float(finite.max()) if finite.size and finite.max() > 0 else 1e-9
    hz = bands[["mel_lo", "mel_hi"]].to_numpy()  # (bands, 2)
    sec = segs[["t0_ms", "t1_ms"]].to_numpy() / 1000.0  # (segments, 2)
    custom = np.concatenate([np.repeat(sec[None], len(bands), axis=0),
                             np.repeat(hz[:, None], len(segs), axis=1)], axis=-1)  # (bands, segs, 4)
    return go.Heatmap(
        z=grid, x=x_edges, y=y_edges, colorscale=CONTRIBUTION_COLORSCALE, zmin=-zmax, zmax=zmax, zmid=0,
        opacity=opacity, customdata=custom, hoverongaps=False, showscale=show_scale,
        colorbar={"title": {"text": "SHAP value"}, "thickness": 16, "exponentformat": "e"},
        hovertemplate=("Patch %{customdata[0]:.2f}-%{customdata[1]:.2f} s, %{customdata[2]:.0f}-%{customdata[3]:.0f} "
                       "Hz<br>SHAP value: %{z:.4f}<extra></extra>"),
    )
