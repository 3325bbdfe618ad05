"""Audio encoders: a small 2-D CNN on a standardised log-mel spectrogram.

``prepare`` cuts or zero-pads each waveform at its end to ``n_samples``, takes
its log-mel spectrogram (:func:`core.kinds.audio.log_mel`: power mel
spectrogram in dB relative to full scale, floored at -100 dB) and standardises
every mel bin with the training split's mean and standard deviation (learnt by
``fit_preprocessing``, kept as buffers and so saved in the run's safetensors).
0 in model-input space is then the training mean of each mel bin: the MM-SHAP
fill of a masked spectrogram patch. The input key is ``spec``
(B, 1, n_mels, frames).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from core.encoders._base import Encoder
from core.encoders.registry import ENCODERS
from core.errors import ConfigError, DataError
from core.kinds.audio import DEFAULT_SAMPLE_RATE, HOP_FRACTION, fit_length, log_mel, window_samples


def _positive_int(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{name} = {value!r} is not an integer >= {low}", fix=f"give {name} as an integer >= {low}")
    return int(value)


def waves_to_array(items: Sequence[Any], n_samples: int | None) -> np.ndarray:
    """(B, N) float32 of 1-D waveforms, each cut or zero-padded at its end to ``n_samples`` (None: the
    longest item's length); a DataError for an item that is not a finite 1-D float waveform."""
    waves = []
    for i, item in enumerate(items):
        w = np.asarray(item)
        if w.ndim != 1 or not np.issubdtype(w.dtype, np.number) or w.size == 0:
            raise DataError(f"audio item {i} has shape {w.shape} and dtype {w.dtype}, expected a 1-D waveform",
                            fix="give mono float waveforms (core.kinds.audio.load_audio reads a clip as one)")
        if not np.isfinite(w).all():
            raise DataError(f"audio item {i} holds NaN or infinite samples", fix="give finite samples only")
        waves.append(w.astype(np.float32, copy=False))
    if not waves:
        raise DataError("no audio clips to encode", fix="pass at least one waveform")
    n = n_samples if n_samples is not None else max(len(w) for w in waves)
    return np.stack([fit_length(w, n) for w in waves])


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


@ENCODERS.register("audio-cnn", kind="audio")
class AudioCNNEncoder(Encoder):
    """A small 2-D CNN (four conv blocks, widths ``width * (1, 2, 4, 8)``, batch norm, ReLU, 2x2 pooling, then
    global mean and max pooling) on the standardised log-mel spectrogram.

    ``sample_rate`` and ``n_samples`` are filled in from the data at training (the kind's ``sample_rate``
    option and the clip length). ``n_fft`` and ``hop_length`` default to 32 ms and 16 ms (512 and 256
    samples at 16 kHz); ``fmax`` to half the sample rate.
    """

    kind = "audio"
    registry_name = "audio-cnn"

    def __init__(self, sample_rate: int = DEFAULT_SAMPLE_RATE, n_samples: int | None = None, n_mels: int = 64,
                 n_fft: int | None = None, hop_length: int | None = None, fmin: float = 0.0,
                 fmax: float | None = None, width: int = 16, out_dim: int = 128, dropout: float = 0.1) -> None:
        super().__init__()
        self.sample_rate = _positive_int("sample_rate", sample_rate, 1000)
        self.n_fft = _positive_int("n_fft", n_fft if n_fft is not None else window_samples(self.sample_rate), 2)
        self.hop_length = _positive_int("hop_length", hop_length if hop_length is not None
                                        else int(round(self.n_fft * HOP_FRACTION)))
        self.n_samples = None if n_samples is None else _positive_int("n_samples", n_samples, self.n_fft)
        self.n_mels = _positive_int("n_mels", n_mels)
        self.fmin = float(fmin)
        self.fmax = None if fmax is None else float(fmax)
        top = self.fmax if self.fmax is not None else self.sample_rate / 2
        if not 0 <= self.fmin < top <= self.sample_rate / 2:
            raise ConfigError(f"fmin = {fmin!r} and fmax = {fmax!r} do not make a band below {self.sample_rate / 2:g} "
                              "Hz (half the sample rate)", fix="give 0 <= fmin < fmax <= sample_rate / 2, or leave "
                                                               "them out")
        self.width, self.out_dim, self.dropout = _positive_int("width", width), _positive_int("out_dim", out_dim), \
            float(dropout)
        self.register_buffer("mean", torch.zeros(self.n_mels))
        self.register_buffer("std", torch.ones(self.n_mels))
        w = self.width
        self.features = nn.Sequential(
            _conv_block(1, w), nn.MaxPool2d(2, ceil_mode=True),
            _conv_block(w, 2 * w), nn.MaxPool2d(2, ceil_mode=True),
            _conv_block(2 * w, 4 * w), nn.MaxPool2d(2, ceil_mode=True),
            _conv_block(4 * w, 8 * w),
        )
        self.drop = nn.Dropout(self.dropout)
        self.proj = nn.Linear(16 * w, self.out_dim)

    # ------------------------------------------------------------------ preprocessing

    def log_mel(self, items: Sequence[Any]) -> np.ndarray:
        """(B, n_mels, frames) log-mel spectrograms (dB, before standardisation) of waveforms."""
        waves = waves_to_array(items, self.n_samples)
        if waves.shape[1] < self.n_fft:
            raise DataError(f"audio clips of {waves.shape[1]} samples are shorter than one analysis window "
                            f"({self.n_fft} samples, {self.n_fft / self.sample_rate:.3f} s)",
                            fix=f"give clips of at least {self.n_fft / self.sample_rate:.3f} s")
        return log_mel(waves, sample_rate=self.sample_rate, n_mels=self.n_mels, n_fft=self.n_fft,
                       hop_length=self.hop_length, fmin=self.fmin, fmax=self.fmax)

    def fit_preprocessing(self, items: Sequence[Any]) -> None:
        """Per mel bin mean and standard deviation (over clips and frames) of the training clips."""
        if len(items) == 0:
            raise DataError("no training clips to fit the mel-bin statistics on", fix="give the train split samples")
        spec = torch.from_numpy(self.log_mel(items)).double()  # (B, n_mels, frames)
        std = spec.std(dim=(0, 2), unbiased=False)
        self.mean.copy_(spec.mean(dim=(0, 2)).float())
        self.std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)).float())

    def prepare(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        spec = torch.from_numpy(self.log_mel(items))
        mean, std = self.mean.cpu()[None, :, None], self.std.cpu()[None, :, None]
        return {"spec": ((spec - mean) / std)[:, None]}

    def augment(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """SpecAugment-style: per clip one band of up to ``n_mels / 8`` mel bins and one span of up to
        1/10 of the frames set to 0 (the training mean); draws from torch's global generator."""
        x = inputs["spec"]
        b, _, n_mels, frames = x.shape
        keep = torch.ones(b, 1, n_mels, frames, dtype=torch.bool)
        for i in range(b):
            for axis, size in ((2, n_mels), (3, frames)):
                width = int(torch.randint(0, max(size // (8 if axis == 2 else 10), 0) + 1, (1,)))
                if width:
                    start = int(torch.randint(0, size - width + 1, (1,)))
                    index = [i, slice(None), slice(None), slice(None)]
                    index[axis] = slice(start, start + width)
                    keep[tuple(index)] = False
        return {**inputs, "spec": torch.where(keep.to(x.device), x, torch.zeros((), dtype=x.dtype, device=x.device))}

    # ------------------------------------------------------------------ model

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        h = self.features(inputs["spec"].to(self.mean.device))
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return torch.relu(self.proj(self.drop(pooled)))

    def structure(self, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
        _, _, n_mels, frames = inputs["spec"].shape
        return {"n_mels": int(n_mels), "frames": int(frames), "sample_rate": self.sample_rate,
                "hop_length": self.hop_length}

    def spec(self) -> dict[str, Any]:
        return {"name": "audio-cnn", "kwargs": {
            "sample_rate": self.sample_rate, "n_samples": self.n_samples, "n_mels": self.n_mels, "n_fft": self.n_fft,
            "hop_length": self.hop_length, "fmin": self.fmin, "fmax": self.fmax, "width": self.width,
            "out_dim": self.out_dim, "dropout": self.dropout}}
