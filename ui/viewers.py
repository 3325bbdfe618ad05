"""How the dashboard shows one sample of a modality kind, with its contributions.

One viewer per kind (:data:`VIEWERS`, keyed by the name the kind's
:attr:`core.kinds.ModalityKind.viewer` gives, its own name): ``show`` draws a
sample's item in the Sample explorer with its MM-SHAP feature contributions when
an explanation is stored (patches over an image, tubes over a video frame,
tokens coloured by value, a vector's columns as bars of their contributions, spectrogram
patches over an audio clip's log-mel spectrogram, a time series' segments as shaded bands
over its channels and its x/y track map);
``picture`` and ``caption`` make its cell in the Overview's gallery. A new kind
registers its viewer with :func:`register_viewer` (and a test removes it with
:func:`unregister_viewer`); the pages only loop over the dataset's modalities,
and a modality whose kind has no viewer is shown as its item's text
(:data:`PLAIN_VIEWER`). A sample with clips first gets :func:`show_clip_player`: its clips and
audio playing in sync in one cached figure, above the viewers or in a container the page gives
(the explorer's is full width, below its columns; the viewers' frame sliders step through the clips).

The value extractors (:func:`patch_grid`, :func:`tube_values`, :func:`token_values`,
:func:`column_values`, :func:`audio_patches`, :func:`series_contributions`) live in the plain
:mod:`ui.contributions` (the report's cards use them too).
"""
from __future__ import annotations

import contextlib
import hashlib
import html
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import streamlit as st

from core.data import frame_rate
from core.errors import FusionLensError
from core.kinds import get_kind
from core.kinds.audio import wav_bytes
from core.kinds.tabular import column_names
from core.kinds.timeseries import channel_names as series_channel_names
from ui import figures as F
from ui.contributions import (
    audio_patches,
    audio_settings,
    audio_track,
    column_values,
    patch_grid,
    series_contributions,
    token_values,
    tube_values,
)
from ui.context import Context
from ui.loaders import dataset, items, load_run
from ui.stamps import dataset_stamp, run_stamp

__all__ = [
    "Viewer",
    "VIEWERS",
    "PLAIN_VIEWER",
    "register_viewer",
    "unregister_viewer",
    "registered_viewer",
    "viewer_for",
    "show_sample",
    "show_clip_player",
]


# --------------------------------------------------------------------------- one viewer per kind


def show_image(ctx: Context, sample_id: str, modality: str, explanation: Any) -> None:
    """The image, with its patch contributions over it when explained."""
    images = items(ctx, modality, [sample_id])
    if images is None:
        return
    grid = patch_grid(explanation, modality) if explanation is not None else None
    if grid is not None:
        st.plotly_chart(F.make_image_overlay_figure(images[0], grid, f"{modality}: patch contributions"),
                        key=f"ov_{modality}")
    else:
        st.image(images[0], caption=modality, width=220)


def show_video(ctx: Context, sample_id: str, modality: str, explanation: Any) -> None:
    """One frame of the clip (a slider picks it), with the contributions of the tubes over it."""
    clips = items(ctx, modality, [sample_id])
    if clips is None:
        return
    clip = np.asarray(clips[0])
    n = clip.shape[0]
    idx = st.slider(f"{modality} frame", 1, max(n, 1), 1, key=f"frame_{modality}", disabled=n <= 1) - 1
    values = tube_values(explanation, modality) if explanation is not None else None
    if values is None:
        values = np.full((1, 1, 1), np.nan)
        title = f"{modality}: frame {idx + 1} of {n} (no explanation yet)"
    else:
        title = f"{modality}: frame {idx + 1} of {n}, tube contributions"
    st.plotly_chart(F.make_frames_overlay_figure(clip, values, idx, title=title), key=f"frames_{modality}")


def show_text(ctx: Context, sample_id: str, modality: str, explanation: Any) -> None:
    """The text, its tokens coloured by contribution when explained."""
    texts = items(ctx, modality, [sample_id])
    if texts is None:
        return
    tokens = token_values(explanation, modality) if explanation is not None else None
    st.markdown(f"**{modality}**")
    if tokens is not None:
        st.html(F.token_html(*tokens))
    else:
        st.html(f"<div style='font-size:17px'>{html.escape(str(texts[0]))}</div>")


def show_tabular(ctx: Context, sample_id: str, modality: str, explanation: Any) -> None:
    """The vector's columns as horizontal bars: each column's contribution when explained (its
    value written on the bar), else its value."""
    vectors = items(ctx, modality, [sample_id])
    if vectors is None:
        return
    values = np.asarray(vectors[0], dtype=float).reshape(-1)
    explained = column_values(explanation, modality) if explanation is not None else None
    if explained is not None and len(explained[0]) == len(values):
        names, contributions = explained
        title = f"{modality}: column contributions"
    else:
        loaded = dataset(ctx, quiet=True)
        options = loaded[0].options.get(modality, {}) if loaded is not None else {}
        names, contributions = column_names(modality, options, len(values)), None
        title = f"{modality}: column values (no explanation yet)"
    run = load_run(ctx, ctx.run, quiet=True) if ctx.run else None  # cached: the page loaded it already
    color = F.modality_color(modality, list(run.modalities) if run is not None else None)  # as in every figure
    st.plotly_chart(F.make_column_contribution_figure(names, values, contributions, color=color, title=title),
                    key=f"columns_{modality}")


def show_timeseries(ctx: Context, sample_id: str, modality: str, explanation: Any) -> None:
    """The series' channels over time, its segments' contributions as shaded bands when explained,
    and a top-down track map of its ``xy`` channel pairs (the modality's option) when it has any."""
    loaded_items = items(ctx, modality, [sample_id])
    if loaded_items is None:
        return
    series = np.asarray(loaded_items[0], dtype=float)
    series = series[:, None] if series.ndim == 1 else series
    loaded = dataset(ctx, quiet=True)
    options = loaded[0].options.get(modality, {}) if loaded is not None else {}
    run = load_run(ctx, ctx.run, quiet=True) if ctx.run else None  # cached: the page loaded it already
    spec = (run.config.get("encoders") or {}).get(modality, {}) if run is not None else {}
    kwargs = spec.get("kwargs") or {}
    channels = [str(c) for c in kwargs.get("channels") or series_channel_names(options, series.shape[1], None)]
    groups = kwargs.get("channel_groups") or options.get("channel_groups") or [channels]
    contributions = series_contributions(explanation, modality) if explanation is not None else None
    color = F.modality_color(modality, list(run.modalities) if run is not None else None)  # as in every figure
    title = f"{modality}: {'segment contributions' if contributions is not None else 'channels (no explanation yet)'}"
    st.plotly_chart(F.make_series_figure(series, channels, contributions=contributions, groups=groups, color=color,
                                         title=title), key=f"series_{modality}")
    if options.get("xy"):
        st.plotly_chart(F.make_track_figure(series, channels, options["xy"], contributions=contributions,
                                            groups=groups, color=color, title=f"{modality}: track map (top-down)"),
                        key=f"track_{modality}")


def _audio_settings(ctx: Context, modality: str) -> dict[str, Any]:
    """The run's spectrogram settings of an audio modality (its encoder's), with the dataset's sample rate."""
    run = load_run(ctx, ctx.run, quiet=True) if ctx.run else None  # cached: the page loaded it already
    kwargs = ((run.config.get("encoders") or {}).get(modality) or {}).get("kwargs") if run else None
    loaded = dataset(ctx, quiet=True)
    return audio_settings(kwargs, loaded[0].options.get(modality, {}) if loaded is not None else {})


def _audio_track(ctx: Context, sample_id: str, modality: str, explanation: Any
                 ) -> tuple[F.AudioTrack, np.ndarray, int] | None:
    """An audio modality's clip of one sample as the run's encoder sees it (its log-mel spectrogram),
    with its patch contributions when explained, the wave and its sample rate; None when the item
    cannot be read (the problem is shown)."""
    waves = items(ctx, modality, [sample_id])
    if waves is None:
        return None
    settings = _audio_settings(ctx, modality)
    wave = np.asarray(waves[0], dtype=np.float32)
    return audio_track(wave, modality, explanation, settings), wave, settings["sample_rate"]


def show_audio(ctx: Context, sample_id: str, modality: str, explanation: Any, *, listen: bool = True) -> None:
    """The clip's log-mel spectrogram (as the run's encoder computes it), with the contributions of its
    patches over it when explained, and a player to listen to it (``listen``; the clip player above
    the viewers has one already when the sample also has clips)."""
    loaded = _audio_track(ctx, sample_id, modality, explanation)
    if loaded is None:
        return
    track, wave, rate = loaded
    db, times, hz_edges, patches = track.db, track.times, track.hz_edges, track.patches
    title = f"{modality}: {'patch contributions' if patches is not None else 'log-mel spectrogram (no explanation yet)'}"
    st.plotly_chart(F.make_spectrogram_figure(db, times, hz_edges, patches, title=title), key=f"spec_{modality}")
    if listen:
        st.audio(wav_bytes(wave, rate), format="audio/wav")


def show_plain(ctx: Context, sample_id: str, modality: str, explanation: Any) -> None:
    """The item as text: how a modality whose kind has no viewer is shown."""
    shown = items(ctx, modality, [sample_id])
    if shown is not None:
        st.markdown(f"**{modality}**")
        st.text(str(shown[0]))


def first_frame(item: Any) -> np.ndarray:
    """A picture of an image or a clip: the image itself, or the clip's first frame."""
    return item if item.ndim == 3 and item.shape[-1] in (1, 3, 4) else item[0]


@dataclass(frozen=True)
class Viewer:
    """How the dashboard shows one modality kind.

    ``show(ctx, sample_id, modality, explanation)`` draws one sample in the Sample
    explorer (``explanation`` is the stored :class:`core.explain.Explanation` or None);
    ``picture(item)`` is its image in the Overview's gallery (``picture_width`` pixels
    wide) and ``caption(item)`` its line of text there; either may be None.
    """

    show: Callable[[Context, str, str, Any], None]
    picture: Callable[[Any], np.ndarray] | None = None
    picture_width: int = 96
    caption: Callable[[Any], str] | None = None


#: The viewer of every modality kind, by its viewer name (:attr:`core.kinds.ModalityKind.viewer`).
VIEWERS: dict[str, Viewer] = {
    get_kind("image").viewer: Viewer(show_image, picture=first_frame, picture_width=96),
    get_kind("video").viewer: Viewer(show_video, picture=first_frame, picture_width=160),
    get_kind("text").viewer: Viewer(show_text, caption=str),
    get_kind("tabular").viewer: Viewer(show_tabular),
    get_kind("timeseries").viewer: Viewer(show_timeseries),
}
#: How a modality is shown when its kind has no viewer (an unknown kind, a kind without one): its item as text.
PLAIN_VIEWER = Viewer(show_plain, caption=str)


def register_viewer(name: str, viewer: Viewer) -> Viewer:
    """Register (or replace) the viewer ``name`` (a kind's :attr:`~core.kinds.ModalityKind.viewer`); returns it."""
    VIEWERS[str(name)] = viewer
    return viewer


def unregister_viewer(name: str) -> None:
    """Remove the viewer ``name`` (a test that registered a throw-away kind cleans up with this)."""
    if str(name) not in VIEWERS:
        raise KeyError(f"no viewer {name!r} is registered (known: {', '.join(sorted(VIEWERS))})")
    del VIEWERS[str(name)]


def registered_viewer(kind: str | None) -> Viewer | None:
    """The viewer registered for modality kind ``kind`` (an old name such as ``features``
    resolves through :func:`core.kinds.get_kind`), or None."""
    try:
        name = get_kind(str(kind)).viewer
    except FusionLensError:  # a kind this version does not know (an older or newer dataset.json)
        name = str(kind)
    return VIEWERS.get(name)


def viewer_for(kind: str | None) -> Viewer:
    """The viewer of modality kind ``kind``; a kind without one is shown as its item's text (:data:`PLAIN_VIEWER`)."""
    return registered_viewer(kind) or PLAIN_VIEWER


def _kind_name(kind: str | None) -> str | None:
    try:
        return get_kind(str(kind)).name
    except FusionLensError:  # a kind this version does not know
        return None


def _explanation_key(explanation: Any) -> str:
    """A short hash of an explanation's values and their modalities (part of the clip player's cache key)."""
    if explanation is None:
        return "unexplained"
    digest = hashlib.sha256(np.ascontiguousarray(explanation.values, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(explanation.feature_modality, dtype=np.int64).tobytes())
    digest.update("\0".join(explanation.modalities).encode())
    return digest.hexdigest()[:16]


@st.cache_data(show_spinner=False, max_entries=16)
def _clip_player_cached(run_key: tuple, data_key: tuple, sample_id: str, explanation_key: str,
                        order: tuple[str, ...], fps: float | None, _clips: dict[str, np.ndarray],
                        _tubes: dict[str, np.ndarray | None], _audio: list[Any]) -> Any:
    """The clip player, built once per run files, dataset, sample and explanation (the arguments
    with a leading underscore follow from those and are not hashed)."""
    return F.make_clip_player_figure(_clips, _tubes, audio=_audio, modalities=list(order), fps=fps)


def show_clip_player(ctx: Context, sample_id: str, modalities: dict[str, str | None], explanation: Any) -> list[str]:
    """The sample's clips (every video modality) and audio playing in sync in one figure, with their
    contributions when explained (:func:`ui.figures.make_clip_player_figure`), rendered once and cached;
    then a player of each audio modality, which plays on its own. Returns the audio modalities given a
    player here (their viewers below then leave theirs out)."""
    kinds = {m: _kind_name(k) for m, k in modalities.items()}
    clips: dict[str, np.ndarray] = {}
    for modality in (m for m, k in kinds.items() if k == "video"):
        loaded_items = items(ctx, modality, [sample_id])
        if loaded_items is not None:
            clips[modality] = np.asarray(loaded_items[0])
    if not clips:
        return []
    tubes = {m: tube_values(explanation, m) if explanation is not None else None for m in clips}
    audio, waves = [], {}
    for modality in (m for m, k in kinds.items() if k == "audio"):
        loaded_track = _audio_track(ctx, sample_id, modality, explanation)
        if loaded_track is None:
            continue
        track, wave, rate = loaded_track
        audio.append(track)
        waves[modality] = (wave, rate)
    longest = max(clips, key=lambda m: clips[m].shape[0])
    loaded = dataset(ctx, quiet=True)
    fps = frame_rate(loaded[0], longest, clips[longest].shape[0]) if loaded is not None else None
    run_dir = ctx.run_path(ctx.run) if ctx.run else None
    data_key = dataset_stamp(ctx.exp_dir) if ctx.exp_dir is not None else ()
    fig = _clip_player_cached(run_stamp(run_dir) if run_dir is not None else (), data_key,
                              str(sample_id), _explanation_key(explanation), tuple(modalities), fps, clips, tubes,
                              audio)
    st.plotly_chart(fig, key="clip_player")
    for modality, (wave, rate) in waves.items():
        st.audio(wav_bytes(wave, rate), format="audio/wav")
        st.caption(f"{modality}: plays on its own, not in step with the clip player above; press both Play "
                   "buttons together to hear it with the frames.")
    return list(waves)


def show_sample(ctx: Context, sample_id: str, modalities: dict[str, str | None], explanation: Any, *,
                player: Any = None) -> None:
    """Every modality of one sample, each with its kind's viewer (``modalities``: name -> kind, None
    when unknown); when it has clips, first the clip player (:func:`show_clip_player`), which plays
    them and its audio in sync: drawn in ``player`` (a Streamlit container, e.g. a full-width one below
    the page's columns, so its pictures are not squeezed into a narrow column) when given, else here."""
    with player if player is not None else contextlib.nullcontext():
        listened = set(show_clip_player(ctx, sample_id, modalities, explanation))
    for modality, kind in modalities.items():
        viewer = viewer_for(kind)
        if modality in listened and viewer.show is show_audio:
            show_audio(ctx, sample_id, modality, explanation, listen=False)  # its player is by the clip player
        else:
            viewer.show(ctx, sample_id, modality, explanation)


register_viewer(get_kind("audio").viewer, Viewer(show_audio))
