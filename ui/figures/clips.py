"""The clip player (Sample explorer, report): a sample's clips (RGB, depth, ...) and its audio
playing in sync, each with its contributions over it.

:func:`make_clip_player_figure` makes one Plotly figure with one picture per clip modality,
in the run's modality order, and, when the sample has audio, its spectrogram with a cursor at
the frame's time. Plotly animation frames step through the clip; Play / Pause buttons and a
frame slider sit inside the figure, so it plays in the page and in a saved HTML file alike.
The tube contributions are drawn as in the frame viewer (:func:`ui.figures.make_frames_overlay_figure`,
same pieces: :mod:`ui.figures.overlays`), on one symmetric scale shared by every modality and
frame, so one colour bar reads them all. The figure's JSON stays bounded: frames larger than
:data:`MAX_SIDE` pixels are averaged down, at most :data:`MAX_FRAMES` evenly spaced frames are
kept, pictures are bytes; the subtitle says what was done.

Saved with ``fig.write_html``, pass ``auto_play=False``: Plotly's autoplay animates with a
transition, and a transition does not redraw pictures or heatmaps (they vanish); the Play button
animates without one.
"""
from __future__ import annotations

import html
import math
import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.errors import DataError
from ui.figures.audio import mel_axis, patch_values, spectrogram_traces
from ui.figures.overlays import overlay_trace, symmetric_max, to_rgb_uint8, tube_array, tube_slice
from ui.figures.style import (
    BASE_FONT_SIZE,
    DEPTH_COLORSCALE,
    empty_figure,
    esc,
    modality_colors,
    style_figure,
)
from ui.labels import pretty_modality

__all__ = ["AudioTrack", "MAX_FRAMES", "MAX_SIDE", "MIN_FRAME_MS", "make_clip_player_figure", "player_frames"]

#: frames wider or taller than this (pixels) are averaged down to it
MAX_SIDE = 96
#: at most this many frames are kept (evenly spaced over the clip, the first and the last included)
MAX_FRAMES = 32
#: the shortest time a frame is shown while playing (ms): a browser redraws pictures no faster
MIN_FRAME_MS = 100
#: a longer spectrogram is averaged down to this many time columns
MAX_SPECTROGRAM_COLUMNS = 400
#: characters of a line of the subtitle (the notes on what is shown): it fits the explorer's column
SUBTITLE_CHARS = 64
#: the contributions' colour bar: narrow, its title along it (the explorer's column is narrow)
NARROW_BAR = {"title": {"side": "right"}, "thickness": 12}
#: how long a frame is shown when the frame rate is unknown (ms)
UNKNOWN_RATE_FRAME_MS = 250
#: pixels of the clips' row and of each audio row
CLIP_ROW_PX = 260
AUDIO_ROW_PX = 230
#: pixels between two rows (the depth colour bar and the next row's title sit there)
ROW_GAP_PX = 90


@dataclass(frozen=True)
class AudioTrack:
    """An audio modality of the sample as the player draws it: its log-mel spectrogram ``db``
    (n_mels, frames) with each frame's time (s) and the mel bins' edges (Hz), as
    :func:`core.kinds.audio.spectrogram_of` gives them; ``seconds``, the clip's length; and its
    patches' contributions (rows with :data:`ui.figures.audio.PATCH_COLUMNS`) when explained."""

    name: str
    db: np.ndarray
    times: np.ndarray
    hz_edges: np.ndarray
    seconds: float
    patches: pd.DataFrame | None = None


def player_frames(n_frames: int, max_frames: int = MAX_FRAMES) -> np.ndarray:
    """The frames the player keeps of a clip of ``n_frames``: all of them, or ``max_frames`` evenly
    spaced ones, the first and the last included."""
    if n_frames <= max_frames:
        return np.arange(n_frames)
    return np.unique(np.round(np.linspace(0, n_frames - 1, max(int(max_frames), 2))).astype(int))


def _as_clip(name: str, clip: Any) -> np.ndarray:
    arr = np.asarray(clip)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3, 4) or 0 in arr.shape:
        raise DataError(f"clip {name!r} must be (T, H, W[, C]) with 1, 3 or 4 channels, got shape {np.shape(clip)}",
                        fix="pass one clip per modality, time first (what the video kind loads)")
    return arr[..., :3] if arr.shape[-1] == 4 else arr


def _downscale(frames: np.ndarray, max_side: int) -> np.ndarray:
    """(T, H, W, C) averaged over square blocks so that no side exceeds ``max_side`` (edges
    repeated to fill the last block; NaN, a depth hole, ignored); uint8 stays uint8."""
    t, h, w, c = frames.shape
    f = -(-max(h, w) // int(max_side))
    if f <= 1:
        return frames
    hh, ww = -(-h // f) * f, -(-w // f) * f
    padded = np.pad(frames.astype(np.float32), ((0, 0), (0, hh - h), (0, ww - w), (0, 0)), mode="edge")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN block stays NaN: a hole in the depth
        out = np.nanmean(padded.reshape(t, hh // f, f, ww // f, f, c), axis=(2, 4))
    return np.clip(np.round(out), 0, 255).astype(np.uint8) if frames.dtype == np.uint8 else out.astype(np.float32)


def _narrow_spectrogram(db: np.ndarray, times: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """A spectrogram of more than ``columns`` time frames averaged over groups of neighbouring frames."""
    db, times = np.asarray(db, dtype=np.float32), np.asarray(times, dtype=float)
    if db.ndim != 2 or db.shape[1] <= columns:
        return db, times
    groups = np.array_split(np.arange(db.shape[1]), columns)
    return (np.stack([db[:, g].mean(axis=1) for g in groups], axis=1),
            np.array([times[g].mean() for g in groups]))


def _timeline(n_frames: int, fps: float | None, audio: Sequence[AudioTrack]) -> tuple[float | None, list[str]]:
    """The frame rate the player uses (``fps``; unknown but with audio: the clip spans the audio's
    seconds, as the site simulator's clips and sounds do; else None) and the notes that say so."""
    if fps is not None:
        rate, notes = float(fps), []
        differ = [a for a in audio if abs(n_frames / rate - a.seconds) > 0.05 * max(a.seconds, 1e-9)]
        if differ:  # the cursor follows the clip's clock
            notes.append(f"the clip ({n_frames / rate:.1f} s) and {differ[0].name} ({differ[0].seconds:.1f} s) "
                         "differ in length")
    elif audio and audio[0].seconds > 0:
        rate = n_frames / float(audio[0].seconds)
        notes = [f"frame times assume the clip spans the audio's {audio[0].seconds:.1f} s"]
    else:
        return None, [f"{n_frames} frames (frame rate unknown: the slider counts frames)"]
    return rate, [f"{n_frames} frames at {rate:.3g} fps ({n_frames / rate:.1f} s)", *notes]


def _controls(keep: np.ndarray, times: np.ndarray | None, frame_ms: float, below: int) -> dict[str, Any]:
    """Play / Pause buttons, and under them (they fit a narrow column) a slider with one step per kept
    frame, labelled with its time (or its number), ``below`` pixels under the plots."""
    play = {"frame": {"duration": int(round(frame_ms)), "redraw": True}, "fromcurrent": True,
            "transition": {"duration": 0}, "mode": "immediate"}
    still = {"frame": {"duration": 0, "redraw": True}, "transition": {"duration": 0}, "mode": "immediate"}
    labels = [f"{float(t):.2f} s" for t in times] if times is not None else [str(int(k) + 1) for k in keep]
    return {
        "updatemenus": [{"type": "buttons", "direction": "left", "showactive": False, "x": 0.0, "y": 0.0,
                         "xanchor": "left", "yanchor": "top", "pad": {"t": below, "r": 10},
                         "buttons": [{"label": "\u25B6 Play", "method": "animate", "args": [None, play]},
                                     {"label": "\u275A\u275A Pause", "method": "animate",
                                      "args": [[None], {**still, "frame": {"duration": 0, "redraw": False}}]}]}],
        "sliders": [{"active": 0, "x": 0.0, "len": 1.0, "y": 0.0, "yanchor": "top", "pad": {"t": below + 45},
                     "currentvalue": {"prefix": "Time: " if times is not None else "Frame: ",
                                      "font": {"size": BASE_FONT_SIZE}},
                     "steps": [{"label": label, "method": "animate", "args": [[str(int(k))], still]}
                               for k, label in zip(keep, labels)]}],
    }


def _wrap(notes: Sequence[str], width: int) -> list[str]:
    """The notes joined with "; " into lines of about ``width`` characters (a note is never split)."""
    lines: list[str] = []
    for note in notes:
        if lines and len(lines[-1]) + 2 + len(note) <= width:
            lines[-1] += "; " + note
        else:
            lines.append(note)
    return lines


def _finite_range(frames: np.ndarray) -> tuple[float, float]:
    finite = frames[np.isfinite(frames)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)


def _clip_base(frames: np.ndarray, name: str, lo: float | None, hi: float | None, depth_bar: dict[str, Any]) -> Any:
    """The picture trace of one frame: RGB as an image, a single channel (depth) as a heatmap on the
    depth scale, fixed over the clip (``lo``..``hi``)."""
    if frames.shape[-1] == 1:
        z = frames[..., 0].astype(np.float32)
        return go.Heatmap(z=z, colorscale=DEPTH_COLORSCALE, zmin=lo, zmax=hi, showscale=True, colorbar=depth_bar,
                          hoverongaps=False, name=name,
                          hovertemplate=f"{esc(pretty_modality(name))} %{{z:.2f}}<extra></extra>")
    return go.Image(z=to_rgb_uint8(frames, lo, hi), hoverinfo="skip", name=name)


def _base_update(frames: np.ndarray, lo: float | None, hi: float | None) -> dict[str, Any]:
    if frames.shape[-1] == 1:
        return {"type": "heatmap", "z": frames[..., 0].astype(np.float32)}
    return {"type": "image", "z": to_rgb_uint8(frames, lo, hi)}


def make_clip_player_figure(
    clips: Mapping[str, Any],
    tubes: Mapping[str, Any] | None = None,
    *,
    audio: Sequence[AudioTrack] = (),
    modalities: Sequence[str] | None = None,
    fps: float | None = None,
    title: str | None = None,
    max_side: int = MAX_SIDE,
    max_frames: int = MAX_FRAMES,
    opacity: float = 0.55,
) -> go.Figure:
    """One sample's clips and audio playing in sync, with their contributions.

    ``clips``: modality -> (T, H, W[, C]) clip, in the order to draw them (the run's); the clips
    cover the same time, so a clip of fewer frames holds each frame longer. ``tubes``: modality ->
    its tube contributions (T', rows, cols) or None when not explained (no overlay is drawn then).
    ``audio``: the sample's audio modalities (:class:`AudioTrack`); a cursor on each marks the
    frame's time. ``modalities``: the run's modalities, for their colours (default: the clips',
    then the audio's). ``fps``: frames per second of the longest clip; when unknown and audio is
    given, the clip is taken to span the audio's seconds; otherwise the slider counts frames.
    """
    shown_clips = {str(m): _as_clip(str(m), c) for m, c in clips.items()}
    if not shown_clips:
        return empty_figure("This sample has no clips to play.", title)
    tubes = {str(m): (None if v is None else tube_array(v)) for m, v in (tubes or {}).items()}
    audio = list(audio)
    if fps is not None and not (math.isfinite(float(fps)) and float(fps) > 0):
        raise DataError(f"fps = {fps!r} is not a frame rate", fix="pass the frames per second, or None when unknown")
    names = list(shown_clips)
    drawn = names + [a.name for a in audio]
    order = [str(m) for m in modalities] if modalities is not None else []
    colors = modality_colors(order + [m for m in drawn if m not in order])  # the run's colours, as everywhere
    n_total = max(c.shape[0] for c in shown_clips.values())
    keep = player_frames(n_total, max_frames)

    rate, notes = _timeline(n_total, fps, audio)
    notes.append(f"{len(keep)} evenly spaced frames of {n_total} shown" if len(keep) < n_total else "every frame shown")

    # every contribution on one symmetric scale: one colour bar reads them all
    explained = [v for m, v in tubes.items() if m in shown_clips and v is not None]
    sounds = [patch_values(a.patches) for a in audio]
    every = np.concatenate([v.ravel() for v in explained] + sounds) if (explained or any(s.size for s in sounds)) \
        else np.zeros(0)
    zmax = symmetric_max(every)

    n_cols, n_rows = len(names), 1 + len(audio)
    specs = [[{} for _ in names]] + [[{"colspan": n_cols}] + [None] * (n_cols - 1) for _ in audio]
    heights = [CLIP_ROW_PX] + [AUDIO_ROW_PX] * len(audio)
    plot_px = sum(heights) + ROW_GAP_PX * len(audio)
    fig = make_subplots(rows=n_rows, cols=n_cols, specs=specs, row_heights=heights,
                        vertical_spacing=ROW_GAP_PX / plot_px if audio else 0.0,
                        horizontal_spacing=min(0.12, 0.3 / max(n_cols - 1, 1)) if n_cols > 1 else 0.02,
                        subplot_titles=[f"<b>{esc(pretty_modality(m))}</b>" for m in names]
                        + [f"<b>{esc(pretty_modality(a.name))}</b> (log-mel spectrogram)" for a in audio])
    for annotation, name in zip(fig.layout.annotations, drawn):
        annotation.font = {"color": colors[name], "size": BASE_FONT_SIZE + 1}

    # the clips: one picture (and its overlay) per modality, the first kept frame drawn
    animated: list[int] = []  # indices of the traces the animation frames update
    per_clip: list[tuple[str, np.ndarray, float | None, float | None, np.ndarray | None, int]] = []
    downscaled: tuple[int, int, int, int] | None = None
    colour_bar_shown = False
    for col, name in enumerate(names, start=1):
        clip = shown_clips[name]
        n_m = clip.shape[0]
        picked = np.minimum(keep * n_m // n_total, n_m - 1)
        small = _downscale(clip[picked], max_side)
        if small.shape[1:3] != clip.shape[1:3]:
            downscaled = (*clip.shape[1:3], *small.shape[1:3])
        lo = hi = None
        if small.dtype != np.uint8:
            lo, hi = _finite_range(small)
        h, w = small.shape[1:3]
        domain = fig.get_subplot(1, col).xaxis.domain
        depth_bar = {"title": {"text": "Depth", "side": "top"}, "orientation": "h", "thickness": 10,
                     "x": (domain[0] + domain[1]) / 2, "xanchor": "center", "len": domain[1] - domain[0],
                     "y": fig.get_subplot(1, col).yaxis.domain[0], "yanchor": "top", "ypad": 4}
        fig.add_trace(_clip_base(small[0], name, lo, hi, depth_bar), row=1, col=col)
        animated.append(len(fig.data) - 1)
        values = tubes.get(name)
        if values is not None:
            grid = values[tube_slice(values.shape[0], int(picked[0]), n_m)]
            overlay = overlay_trace(grid, h, w, zmax, opacity, show_scale=not colour_bar_shown)
            overlay.update(colorbar=NARROW_BAR)
            fig.add_trace(overlay, row=1, col=col)
            colour_bar_shown = True
            animated.append(len(fig.data) - 1)
        per_clip.append((name, small, lo, hi, values, n_m))
        fig.update_xaxes(visible=False, range=[-0.5, w - 0.5], constrain="domain", row=1, col=col)
        fig.update_yaxes(visible=False, range=[h - 0.5, -0.5], scaleanchor=fig.get_subplot(1, col).yaxis.anchor,
                         constrain="domain", row=1, col=col)
    if downscaled is not None:
        notes.append(f"pictures averaged from {downscaled[0]}x{downscaled[1]} to {downscaled[2]}x{downscaled[3]} px")

    # the audio: its spectrogram (and patches) fixed, a cursor at the frame's time
    times = keep / rate if rate is not None else None
    narrowed = False
    for row, track in enumerate(audio, start=2):
        db, spec_times = _narrow_spectrogram(track.db, track.times, MAX_SPECTROGRAM_COLUMNS)
        narrowed = narrowed or db.shape != np.shape(track.db)
        explained_track = track.patches is not None and not track.patches.empty
        traces = spectrogram_traces(db, spec_times, track.hz_edges, track.patches, opacity=opacity, zmax=zmax,
                                    show_scale=explained_track and not colour_bar_shown)  # never a dB bar here
        colour_bar_shown = colour_bar_shown or explained_track
        for trace in traces:
            if trace.showscale:
                trace.update(colorbar=NARROW_BAR)
            fig.add_trace(trace, row=row, col=1)
        n_mels = np.asarray(track.db).shape[0]
        x0 = float(times[0]) if times is not None else 0.0
        fig.add_trace(go.Scatter(x=[x0, x0], y=[-0.5, n_mels - 0.5], mode="lines", showlegend=False,
                                 line={"color": colors[track.name], "width": 3}, hoverinfo="skip",
                                 name=f"{track.name} cursor"), row=row, col=1)
        animated.append(len(fig.data) - 1)
        fig.update_xaxes(title={"text": "Time (s)"}, range=[0, max(float(track.seconds), float(np.max(track.times)))],
                         row=row, col=1)
        fig.update_yaxes(title={"text": "Frequency (Hz, mel)"}, **mel_axis(track.hz_edges), row=row, col=1)
    if audio:
        notes.append("the cursor marks the frame's time on the audio"
                     + (f" (spectrogram averaged to {MAX_SPECTROGRAM_COLUMNS} columns)" if narrowed else ""))
    if explained or any(s.size for s in sounds):
        notes.append("red pushes towards the explained class, blue against (one scale for all)")
    else:
        notes.append("no explanation yet: no contributions drawn")

    # one animation frame per kept frame: new pictures, overlays, cursor positions
    frames = []
    for j, k in enumerate(keep):
        data: list[Any] = []
        for name, small, lo, hi, values, n_m in per_clip:
            data.append(_base_update(small[j], lo, hi))
            if values is not None:
                data.append({"type": "heatmap", "z": values[tube_slice(values.shape[0], int(k) * n_m // n_total, n_m)]})
        for track in audio:
            t = float(times[j]) if times is not None else 0.0
            data.append({"type": "scatter", "x": [t, t]})
        frames.append(go.Frame(name=str(int(k)), data=data, traces=animated))
    fig.frames = frames

    frame_ms = 1000.0 * (n_total / len(keep)) / rate if rate is not None else UNKNOWN_RATE_FRAME_MS
    if rate is not None and frame_ms < MIN_FRAME_MS:
        notes.append(f"plays at {frame_ms / MIN_FRAME_MS:.2g}x speed")
        frame_ms = MIN_FRAME_MS
    # below the last row: its time axis (audio), or a depth colour bar, then the controls
    below = 50 if audio else (80 if any(small.shape[-1] == 1 for _, small, *_ in per_clip) else 20)
    fig.update_layout(**_controls(keep, times, frame_ms, below))
    title = title if title is not None else f"{' + '.join(pretty_modality(m) for m in drawn)}: the clip playing"
    style_figure(fig, title)
    lines = _wrap(notes, SUBTITLE_CHARS)
    top = 70 + 17 * len(lines)
    fig.update_layout(title={"subtitle": {"text": "<br>".join(html.escape(line, quote=False) for line in lines),
                                          "font": {"size": BASE_FONT_SIZE - 2}},
                             "yref": "container", "y": 1.0, "yanchor": "top", "pad": {"t": 16}},
                      height=plot_px + top + below + 145,
                      margin={"l": 70 if audio else 20, "r": 20, "t": top, "b": below + 145})
    return fig
