"""The audio kind: a manifest cell holds a clip's path; players are patches of its log-mel spectrogram.

A clip is a sound file that soundfile reads (``.wav``, ``.flac``, ``.ogg``, ...)
or a ``.npy`` 1-D float waveform (values in [-1, 1]) at the kind option
``npy_rate`` (default 16000 Hz). :meth:`AudioKind.load` returns float32 mono
waveforms at the option ``sample_rate`` (default 16000 Hz), every one cut or
zero-padded to the option ``seconds`` (default: the training split's median
clip length, fixed at prepare and kept in ``dataset.json``). Cutting keeps the
start of a clip and padding adds silence at its end: the timing of an event
within a clip is kept, never centred.

Prepare checks every clip (headers with soundfile, a full read only for float
samples, which alone can hold NaN) and applies these rules:

=====================================  ===================================================
clip                                   rule
=====================================  ===================================================
missing, unreadable, zero-length       DataError naming the sample, the path and the fix
NaN / +-inf samples                    DataError (naming the sample and the fix)
a ``.npy`` that is not a 1-D float     DataError (store float samples in [-1, 1])
array (2-D, integers, pickled)
shorter than one analysis window       DataError with the minimum length in seconds: one
(:data:`WINDOW_SECONDS`, the default   STFT frame (``n_fft`` = 512 samples at 16 kHz)
encoder's ``n_fft``)
stereo / multichannel                  mixed down to mono (the mean of the channels);
                                       counted in the prepare report
another sample rate                    resampled to ``sample_rate`` (``librosa.resample``,
                                       soxr); counted in the prepare report
clipped (>= 1 % of samples at          kept; reported as a warning with the ids
\\|x\\| >= 0.999 of full scale)
silent (peak < 1e-4)                   kept (silence is information: no machine running);
                                       reported as a warning with the ids
longer / shorter than ``seconds``      cut at the end / zero-padded at the end
=====================================  ===================================================

The default encoder ``audio-cnn`` turns a waveform into a standardised log-mel
spectrogram ``spec`` (1, 1, n_mels, frames) (:func:`log_mel`). The masker
(:class:`SpectrogramPatchMasker`) lays ``audio_bands`` mel bands x
``audio_segments`` time segments over it (default 4 x 6 = 24 players); a masked
patch becomes 0, the training mean of each mel bin.

soundfile and librosa are imported when a clip is read (``core.kinds`` is read
without them, and without torch).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import pandas as pd

from core.errors import ConfigError, DataError
from core.kinds.base import PREVIEW, DatasetLike, MaskerContext, ModalityKind, OptionKey
from core.kinds.masking import RegionMasker, edges, part_index, single_input
from core.kinds.registry import KINDS

if TYPE_CHECKING:
    import torch

DEFAULT_SAMPLE_RATE = 16000
#: one analysis window (the default encoder's ``n_fft``: 512 samples at 16 kHz); a shorter clip is refused
WINDOW_SECONDS = 0.032
#: the default encoder's hop between frames, as a fraction of the window
HOP_FRACTION = 0.5
#: a sample at or above this fraction of full scale counts as clipped
CLIP_LEVEL = 0.999
#: a clip with at least this fraction of clipped samples is reported as clipped
CLIPPED_FRACTION = 0.01
#: a clip whose peak is below this is reported as silent
SILENT_PEAK = 1e-4
#: the floor of the log-mel spectrogram in dB (power relative to 1.0, full scale)
DB_FLOOR = -100.0
NPY_SUFFIX = ".npy"

_FORMAT_FIX = ("convert it to WAV, FLAC or OGG (any file soundfile reads), or save a 1-D float waveform in [-1, 1] "
               "with numpy.save")


# --------------------------------------------------------------------------- one clip


@dataclass(frozen=True)
class ClipInfo:
    """A clip's header: ``frames`` samples per channel at ``rate`` Hz, ``channels``, and whether its
    samples are floats (the only ones that can hold NaN)."""

    frames: int
    rate: int
    channels: int
    float_samples: bool

    @property
    def seconds(self) -> float:
        return self.frames / self.rate


def window_samples(sample_rate: int) -> int:
    """One analysis window at ``sample_rate``: :data:`WINDOW_SECONDS` in samples (512 at 16 kHz)."""
    return max(2, int(round(WINDOW_SECONDS * sample_rate)))


def clip_info(path: Path, *, npy_rate: int = DEFAULT_SAMPLE_RATE) -> ClipInfo:
    """The header of one clip (a ``.npy`` is memory-mapped, a sound file's header read); a DataError
    ``"<path>: <why>"`` when the file is missing, empty, unreadable or not a 1-D float ``.npy``."""
    path = _existing(Path(path))
    if path.suffix.lower() == NPY_SUFFIX:
        arr = _npy(path, mmap=True)
        return ClipInfo(int(arr.shape[0]), int(npy_rate), 1, True)
    import soundfile as sf  # lazy: see the module docstring

    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError by version
        raise DataError(f"{path}: unreadable ({_short(exc)})", fix=_FORMAT_FIX) from exc
    return ClipInfo(int(info.frames), int(info.samplerate), int(info.channels),
                    str(info.subtype).upper() in ("FLOAT", "DOUBLE"))


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise DataError(f"{path}: missing", fix="fix the paths (relative to the manifest)")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: an empty file (0 bytes)", fix="replace the empty files")
    return path


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__


def _npy(path: Path, *, mmap: bool = False) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a plain .npy array ({_short(exc)})", fix=_FORMAT_FIX) from exc
    if not isinstance(arr, np.ndarray) or arr.ndim != 1 or not np.issubdtype(arr.dtype, np.floating):
        what = f"shape {arr.shape} and dtype {arr.dtype}" if isinstance(arr, np.ndarray) else type(arr).__name__
        raise DataError(f"{path}: {what}, not a 1-D float waveform",
                        fix="save one mono waveform per file as a 1-D float array in [-1, 1] (divide int16 samples "
                            "by 32768)")
    return arr


def read_clip(path: Path, *, npy_rate: int = DEFAULT_SAMPLE_RATE) -> tuple[np.ndarray, int]:
    """The samples of one clip as float32 ``(frames, channels)`` (as stored: no mix-down, no
    resampling) and its sample rate; a DataError (problem only) when unusable."""
    path = _existing(Path(path))
    if path.suffix.lower() == NPY_SUFFIX:
        return np.asarray(_npy(path), dtype=np.float32)[:, None], int(npy_rate)
    import soundfile as sf  # lazy: see the module docstring

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise DataError(f"{path}: unreadable ({_short(exc)})", fix=_FORMAT_FIX) from exc
    return data, int(rate)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """``(frames, channels)`` -> ``(frames,)``: the mean of the channels (the documented mix-down)."""
    samples = np.asarray(samples, dtype=np.float32)
    return samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1, dtype=np.float32)


def resample(wave: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    """``wave`` at ``rate`` Hz resampled to ``sample_rate`` Hz (librosa with soxr; unchanged when equal)."""
    if int(rate) == int(sample_rate):
        return np.asarray(wave, dtype=np.float32)
    import librosa  # lazy: ~1 s of imports that manifest validation never needs

    return librosa.resample(np.asarray(wave, dtype=np.float32), orig_sr=int(rate), target_sr=int(sample_rate),
                            res_type="soxr_hq").astype(np.float32)


def fit_length(wave: np.ndarray, n_samples: int) -> np.ndarray:
    """``wave`` cut at the end, or zero-padded at the end, to ``n_samples`` (the start is kept)."""
    wave = np.asarray(wave, dtype=np.float32)
    if len(wave) >= n_samples:
        return wave[:n_samples]
    return np.concatenate([wave, np.zeros(n_samples - len(wave), dtype=np.float32)])


def load_audio(path: str | Path, *, sample_rate: int = DEFAULT_SAMPLE_RATE, npy_rate: int = DEFAULT_SAMPLE_RATE,
               n_samples: int | None = None, clip_id: str | None = None) -> np.ndarray:
    """One clip as a float32 mono waveform at ``sample_rate`` (mixed down, resampled), cut or padded at
    the end to ``n_samples`` when given. Raises a DataError naming ``clip_id`` when it is unusable."""
    who = f"sample {clip_id!r}: " if clip_id is not None else ""
    try:
        samples, rate = read_clip(Path(path), npy_rate=npy_rate)
        if samples.shape[0] == 0:
            raise DataError(f"{path}: no samples", fix="replace the empty files")
        if not np.isfinite(samples).all():
            raise DataError(f"{path}: {int((~np.isfinite(samples)).sum())} NaN/inf samples",
                            fix="re-export the clip with finite samples")
    except DataError as exc:
        raise DataError(who + exc.problem, fix=exc.fix) from exc
    wave = resample(to_mono(samples), rate, sample_rate)
    return fit_length(wave, n_samples) if n_samples is not None else wave


# --------------------------------------------------------------------------- spectrogram


def mel_edges_hz(n_mels: int, sample_rate: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """``n_mels + 1`` boundaries (Hz) between the mel bins: halfway (in mel) between neighbouring
    filter centres, ``fmin`` and ``fmax`` at the ends; bin ``i`` covers ``[edges[i], edges[i+1])``."""
    import librosa  # lazy: see resample

    fmax = float(fmax) if fmax is not None else sample_rate / 2.0
    points = np.linspace(librosa.hz_to_mel(fmin), librosa.hz_to_mel(fmax), n_mels + 2)
    hz = np.asarray(librosa.mel_to_hz((points[1:-2] + points[2:-1]) / 2), dtype=np.float64)
    return np.concatenate([[float(fmin)], hz, [fmax]])  # the ends exact, not through the mel round trip


def log_mel(waves: np.ndarray, *, sample_rate: int, n_mels: int = 64, n_fft: int = 512, hop_length: int = 256,
            fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """The log-mel spectrogram of ``waves`` (N,) or (B, N) float32: the power spectrogram (librosa STFT,
    Hann window, centred frames) through librosa's mel filters (Slaney), in dB relative to 1.0 (full
    scale), floored at :data:`DB_FLOOR`; shape ``(n_mels, 1 + N // hop_length)`` or ``(B, n_mels, frames)``,
    float32 (what ``librosa.feature.melspectrogram`` and ``power_to_db(ref=1.0, top_db=None)`` give)."""
    import librosa  # lazy: see resample

    power = np.abs(librosa.stft(np.asarray(waves, dtype=np.float32), n_fft=int(n_fft), hop_length=int(hop_length),
                                window="hann", center=True)) ** 2
    basis = _mel_basis(int(sample_rate), int(n_fft), int(n_mels), float(fmin), None if fmax is None else float(fmax))
    # einsum, not a BLAS product: small products on a multithreaded BLAS spin-wait ~10x slower on a busy CPU
    mel = np.einsum("mf,...ft->...mt", basis, power, optimize=False)
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    return np.maximum(db, DB_FLOOR).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    import librosa  # lazy: see resample

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).astype(np.float32)


def spectrogram_of(wave: np.ndarray, *, sample_rate: int = DEFAULT_SAMPLE_RATE, n_mels: int = 64,
                   n_fft: int | None = None, hop_length: int | None = None, fmin: float = 0.0,
                   fmax: float | None = None, **_: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a viewer draws of one waveform, with an audio encoder's settings (its ``spec()`` kwargs;
    the default encoder's for those not given, others ignored): the log-mel spectrogram in dB
    ``(n_mels, frames)``, each frame's centre time in seconds and the mel bins' edges in Hz."""
    n_fft = int(n_fft) if n_fft else window_samples(int(sample_rate))
    hop = int(hop_length) if hop_length else int(round(n_fft * HOP_FRACTION))
    db = log_mel(wave, sample_rate=int(sample_rate), n_mels=int(n_mels), n_fft=n_fft, hop_length=hop, fmin=fmin,
                 fmax=fmax)
    return db, np.arange(db.shape[-1]) * hop / float(sample_rate), mel_edges_hz(int(n_mels), int(sample_rate), fmin,
                                                                                 fmax)


def wav_bytes(wave: np.ndarray, sample_rate: int) -> bytes:
    """A mono waveform (float in [-1, 1]) as the bytes of a 16-bit PCM WAV file at ``sample_rate``
    (what a page's or a report's audio player plays); samples beyond full scale are clipped."""
    import io

    import soundfile  # lazy: see the module's docstring

    samples = np.clip(np.nan_to_num(np.asarray(wave, dtype=np.float32).reshape(-1)), -1.0, 1.0)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, int(sample_rate), subtype="PCM_16", format="WAV")
    return buffer.getvalue()


# --------------------------------------------------------------------------- the kind


def _options(options: Mapping[str, Any]) -> tuple[int, int, float | None]:
    """``(sample_rate, npy_rate, seconds)`` of a modality's options, checked."""
    out = []
    for key in ("sample_rate", "npy_rate"):
        value = options.get(key, DEFAULT_SAMPLE_RATE)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1000 <= value <= 384000:
            raise ConfigError(f"{key} = {value!r} is not a sample rate in Hz",
                              fix=f"give an integer between 1000 and 384000, e.g. {key} = 16000")
        out.append(int(value))
    seconds = options.get("seconds")
    if seconds is not None:
        floor = window_samples(out[0]) / out[0]
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.number)) or not seconds >= floor:
            raise ConfigError(f"seconds = {seconds!r} is shorter than one analysis window ({floor:.3f} s)",
                              fix=f"give seconds >= {floor:.3f}, or leave it out for the training split's median "
                                  "clip length")
        seconds = float(seconds)
    return out[0], out[1], seconds


@KINDS.register("audio")
class AudioKind(ModalityKind):
    """Sound clips; one player per patch (mel band x time segment) of the log-mel spectrogram."""

    name = "audio"
    default_encoder = "audio-cnn"
    input_keys = ("spec",)
    segment_axis = 3  # spec (B, 1, n_mels, frames)
    fill = 0.0  # after standardisation: the training mean of each mel bin
    feature_columns = {"band": "int", "segment": "int", "mel_lo": "int", "mel_hi": "int", "t0_ms": "int",
                       "t1_ms": "int"}
    cell_doc = ("a path relative to the manifest to a sound file soundfile reads (`.wav`, `.flac`, `.ogg`, ...) or "
                "a `.npy` 1-D float waveform in [-1, 1] (at `npy_rate`)")
    options = {
        "sample_rate": OptionKey("int", "sample rate (Hz) every clip is resampled to (mono: channels are averaged)",
                                 DEFAULT_SAMPLE_RATE),
        "seconds": OptionKey("float", "clip length: longer clips are cut at the end, shorter ones zero-padded at the "
                             "end (the start is kept)", default_doc="the training split's median clip length"),
        "npy_rate": OptionKey("int", "sample rate (Hz) of `.npy` waveforms (sound files carry their own)",
                              DEFAULT_SAMPLE_RATE),
    }

    def check_cells(self, frame: pd.DataFrame, modality: str, options: Mapping[str, Any],
                    report: dict[str, Any]) -> pd.DataFrame:
        """Every cell holds a path; the options are valid sample rates and a length of at least one window."""
        _options(options)
        return super().check_cells(frame, modality, options, report)

    def check_files(self, frame: pd.DataFrame, modality: str, root: Path, options: Mapping[str, Any], *,
                    progress: bool = False) -> None:
        """Every clip exists, opens, is not empty, is at least one analysis window long and (float samples)
        is finite; one DataError names every clip that cannot be used."""
        from tqdm.auto import tqdm  # lazy: ~50 ms that a page reading a dataset never needs

        sample_rate, npy_rate, _ = _options(options)
        minimum = window_samples(sample_rate) / sample_rate
        bad: list[tuple[str, str, str, str]] = []  # (id, cell, why, fix)
        cells = list(zip(frame["id"], frame[modality].astype(str)))
        for sid, cell in tqdm(cells, desc=f"checking {modality} clips", disable=not progress, leave=False):
            problem = _clip_problem(root / cell, npy_rate, minimum)
            if problem:
                bad.append((sid, cell, *problem))
        if not bad:
            return
        shown = "; ".join(f"{sid} ({cell}: {why})" for sid, cell, why, _ in bad[:PREVIEW])
        more = f"; and {len(bad) - PREVIEW} more" if len(bad) > PREVIEW else ""
        fixes = list(dict.fromkeys(fix for *_, fix in bad))
        raise DataError(f"modality {modality!r}: {len(bad)} of {len(frame)} audio clip(s) cannot be used: {shown}{more}",
                        fix="; ".join(fixes) + ", or drop those rows from the manifest")

    def finish_dataset(self, dataset: DatasetLike, modalities: list[str], config: Mapping[str, Any], *,
                       user_data: bool, progress: bool = False) -> None:
        """Fix each modality's clip length (``seconds``: the training median unless given, kept in the
        dataset's options) and report mixed-down, resampled, clipped and silent clips (every clip is read
        once)."""
        from tqdm.auto import tqdm  # lazy: see check_files

        for m in modalities:
            options = dataset.options.setdefault(m, {})
            sample_rate, npy_rate, given = _options(options)
            seconds = clip_seconds(dataset, m)
            notes: dict[str, list[str]] = {"mixed_down": [], "resampled": [], "clipped": [], "silent": []}
            cells = list(zip(dataset.frame["id"], dataset.frame[m].astype(str)))
            for sid, cell in tqdm(cells, desc=f"reading {m} clips", disable=not progress, leave=False):
                try:
                    samples, rate = read_clip(dataset.root / cell, npy_rate=npy_rate)
                except DataError as exc:
                    raise DataError(f"sample {sid!r}: {exc.problem}", fix=exc.fix) from exc
                if samples.shape[1] > 1:
                    notes["mixed_down"].append(sid)
                if rate != sample_rate:
                    notes["resampled"].append(sid)
                level = np.abs(samples)
                if level.size and float(level.max()) < SILENT_PEAK:
                    notes["silent"].append(sid)
                elif level.size and float((level >= CLIP_LEVEL).mean()) >= CLIPPED_FRACTION:
                    notes["clipped"].append(sid)
            dataset.report.setdefault("audio", {})[m] = {
                "seconds": seconds, "seconds_rule": "option" if given is not None else "median of train",
                "sample_rate": sample_rate,
                **{k: {"samples": len(ids), "ids": ids[:PREVIEW]} for k, ids in notes.items()},
            }

    def preparation_notes(self, report: Mapping[str, Any]) -> list[str]:
        lines = []
        for m, info in (report.get("audio") or {}).items():
            rule = "given" if info.get("seconds_rule") == "option" else "the training split's median length"
            lines.append(f"{m}: clips cut or zero-padded at the end to {info['seconds']:.3f} s ({rule}), "
                         f"at {info['sample_rate']} Hz")
            for key, what in (("mixed_down", "multichannel, mixed down to mono"),
                              ("resampled", f"at another sample rate, resampled to {info['sample_rate']} Hz"),
                              ("clipped", f"clipped (>= {CLIPPED_FRACTION:.0%} of samples at full scale), kept"),
                              ("silent", f"silent (peak < {SILENT_PEAK:g}), kept")):
                entry = info.get(key) or {}
                if entry.get("samples"):
                    more = int(entry["samples"]) - len(entry.get("ids") or [])
                    ids = ", ".join(map(str, entry.get("ids") or [])) + (f" and {more} more" if more > 0 else "")
                    warn = "warning: " if key in ("clipped", "silent") else ""
                    lines.append(f"{m}: {warn}{entry['samples']} clip(s) {what}: {ids}")
        return lines

    def load(self, dataset: DatasetLike, modality: str, rows: pd.DataFrame) -> list[Any]:
        """Float32 mono waveforms at ``sample_rate``, each ``seconds`` long."""
        sample_rate, npy_rate, _ = _options(dataset.options.get(modality, {}))
        n = int(round(clip_seconds(dataset, modality) * sample_rate))
        return [load_audio(dataset.root / c, sample_rate=sample_rate, npy_rate=npy_rate, n_samples=n, clip_id=i)
                for i, c in zip(rows["id"], rows[modality])]

    def encoder_kwargs(self, first_item: Any, modality: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """``sample_rate`` (the option) and ``n_samples`` (the clip length in samples)."""
        return {"sample_rate": _options(options)[0], "n_samples": int(np.shape(first_item)[0])}

    def build_masker(self, inputs: dict[str, torch.Tensor], *, encoder: Any = None,
                     context: MaskerContext = MaskerContext()) -> SpectrogramPatchMasker:
        """A ``context.audio_bands`` x ``context.audio_segments`` grid (coarser when the spectrogram is
        smaller); Hz and seconds of each patch from the encoder's settings."""
        spec = single_input(inputs, "spec", "audio", 4)
        n_mels, frames = int(spec.shape[2]), int(spec.shape[3])
        geometry = {k: getattr(encoder, k) for k in ("sample_rate", "hop_length", "fmin", "fmax", "n_samples")
                    if getattr(encoder, k, None) is not None}
        return SpectrogramPatchMasker(inputs, bands=min(int(context.audio_bands), n_mels),
                                      segments=min(int(context.audio_segments), frames), fill=self.fill, **geometry)

    def masker_settings(self, context: MaskerContext) -> dict[str, Any]:
        return {"audio_bands": int(context.audio_bands), "audio_segments": int(context.audio_segments)}

    def feature_label(self, info: Mapping[str, Any]) -> str:
        """``0.67-1.33 s, 300-800 Hz``."""
        return (f"{_seconds(info['t0_ms'])}-{_seconds(info['t1_ms'])} s, "
                f"{int(info['mel_lo'])}-{int(info['mel_hi'])} Hz")


def _seconds(ms: Any) -> str:
    return f"{int(ms) / 1000:.2f}".rstrip("0").rstrip(".")


def _clip_problem(path: Path, npy_rate: int, minimum: float) -> tuple[str, str] | None:
    """Why one clip cannot be used, and the fix; None when it can."""
    try:
        info = clip_info(path, npy_rate=npy_rate)
        if info.frames == 0:
            return "no samples", "replace the empty files"
        if info.seconds < minimum:
            return (f"{info.seconds:.3f} s long, shorter than one analysis window of {minimum:.3f} s",
                    f"give every clip at least {minimum:.3f} s (pad short clips with silence at the end)")
        if info.float_samples:
            samples, _ = read_clip(path, npy_rate=npy_rate)
            n_bad = int((~np.isfinite(samples)).sum())
            if n_bad:
                return f"{n_bad} NaN/inf samples", "re-export those clips with finite samples"
    except DataError as exc:
        return exc.problem.removeprefix(f"{path}: "), exc.fix or _FORMAT_FIX
    return None


def clip_seconds(dataset: DatasetLike, modality: str) -> float:
    """The modality's clip length in seconds: its option ``seconds``, else the median length of its
    training clips (headers only), rounded to the millisecond and kept in ``dataset.options``."""
    options = dataset.options.setdefault(modality, {})
    sample_rate, npy_rate, seconds = _options(options)
    if seconds is not None:
        return seconds
    ids = dataset.ids("train") or dataset.ids()
    cells = dataset.frame.set_index("id").loc[ids, modality].astype(str).tolist()
    lengths = []
    for sid, cell in zip(ids, cells):
        try:
            lengths.append(clip_info(dataset.root / cell, npy_rate=npy_rate).seconds)
        except DataError as exc:
            raise DataError(f"sample {sid!r}: {exc.problem}", fix=exc.fix) from exc
    if not lengths:
        raise DataError(f"modality {modality!r} has no clips to take the median length of",
                        fix=f"give seconds = <length> in [modalities.{modality}] of the experiment file")
    seconds = max(round(float(np.median(lengths)), 3), window_samples(sample_rate) / sample_rate)
    options["seconds"] = seconds
    return seconds


# --------------------------------------------------------------------------- the masker


class SpectrogramPatchMasker(RegionMasker):
    """A ``bands`` x ``segments`` grid of patches over ``spec`` (1, 1, n_mels, frames): mel bands
    (low to high) times time segments; a masked patch is set to ``fill``.

    Players are numbered band-major: ``band * segments + segment``. ``describe()`` gives each
    patch's band and segment, its frequency range in Hz (``mel_lo``, ``mel_hi``: the mel bins'
    boundaries, :func:`mel_edges_hz`) and time span in milliseconds (``t0_ms``, ``t1_ms``; frame
    ``f`` is centred at ``f * hop_length / sample_rate``). The geometry arguments are the encoder's.
    """

    kind = "audio"
    input_keys = ("spec",)
    key = "spec"
    ndim = 4

    def __init__(self, inputs: dict[str, torch.Tensor], *, bands: int = 4, segments: int = 6, fill: float = 0.0,
                 sample_rate: int = DEFAULT_SAMPLE_RATE, hop_length: int | None = None, fmin: float = 0.0,
                 fmax: float | None = None, n_samples: int | None = None) -> None:
        import torch  # lazy: core.kinds is read without torch (see core.kinds.masking)

        spec = single_input(inputs, self.key, self.kind, 4)
        n_mels, frames = int(spec.shape[2]), int(spec.shape[3])
        for name, value, size, what in (("bands", bands, n_mels, "mel bins"), ("segments", segments, frames, "frames")):
            if isinstance(value, bool) or int(value) != value or not 1 <= value <= size:
                raise ConfigError(f"{value!r} {name} do not fit a spectrogram of {size} {what}",
                                  fix=f"use {name} between 1 and {size}")
        self.bands, self.segments, self.fill = int(bands), int(segments), float(fill)
        self.n_mels, self.frames = n_mels, frames
        self.sample_rate = int(sample_rate)
        self.hop_length = int(hop_length) if hop_length else int(round(window_samples(self.sample_rate) * HOP_FRACTION))
        self.n_features = self.bands * self.segments
        self.band_edges = edges(n_mels, self.bands)
        self.frame_edges = edges(frames, self.segments)
        self.hz_edges = mel_edges_hz(n_mels, self.sample_rate, fmin, fmax)
        duration = (n_samples if n_samples else (frames - 1) * self.hop_length) / self.sample_rate
        times = np.clip((np.arange(frames + 1) - 0.5) * self.hop_length / self.sample_rate, 0.0, duration)
        times[-1] = duration
        self.times = times  # (frames + 1,) boundaries between frames, seconds
        fmap = part_index(n_mels, self.bands)[:, None] * self.segments + part_index(frames, self.segments)[None, :]
        self.feature_map = torch.as_tensor(fmap)  # (n_mels, frames)

    def describe(self) -> list[dict[str, Any]]:
        return [{"band": b, "segment": s,
                 "mel_lo": int(round(self.hz_edges[self.band_edges[b]])),
                 "mel_hi": int(round(self.hz_edges[self.band_edges[b + 1]])),
                 "t0_ms": int(round(1000 * self.times[self.frame_edges[s]])),
                 "t1_ms": int(round(1000 * self.times[self.frame_edges[s + 1]]))}
                for b in range(self.bands) for s in range(self.segments)]

