"""The audio kind: its rules for bad clips (one tiny file per rule), its spectrogram-patch masker,
its default encoder (log-mel, standardised with the training statistics), and a tiny audio +
tabular experiment trained, explained and shown in the dashboard."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from core.data import load_manifest
from core.data.manifest import describe_preparation
from core.encoders import create_encoder
from core.errors import ConfigError, DataError
from core.kinds import MaskerContext, SpectrogramPatchMasker, get_kind
from tests._tolerance import f32_atol

sf = pytest.importorskip("soundfile")

RATE = 16000
CLASSES = ("low", "high")
TONES = {"low": 300.0, "high": 2500.0}


def _tone(label: str, seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    noise = np.random.default_rng(seed).normal(0, 0.02, t.size)
    return (0.3 * np.sin(2 * np.pi * TONES[label] * t) + noise).astype(np.float32)


def _manifest(folder: Path, n: int = 8, seconds: float = 0.25) -> Path:
    """``n`` clips (two classes, a fixed split: 4 train, then val, test alternating) as 16-bit WAV."""
    (folder / "wav").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        sid, label = f"s{i}", CLASSES[i % 2]
        sf.write(folder / "wav" / f"{sid}.wav", _tone(label, seconds, seed=i), RATE, subtype="PCM_16")
        split = "train" if i < 4 else ("val" if i % 4 < 2 else "test")
        rows.append({"id": sid, "label": label, "split": split, "snd": f"wav/{sid}.wav"})
    path = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _prepared(path: Path, **options: Any):
    """The dataset with its audio checks run, as ``prepare`` runs them (the split is in the manifest)."""
    ds = load_manifest(path, {"snd": "audio"}, options={"snd": options})
    get_kind("audio").finish_dataset(ds, ["snd"], {}, user_data=True)
    return ds


# --------------------------------------------------------------------------- rules for bad clips


def test_clips_load_as_mono_float32_at_the_sample_rate_and_the_training_median_length(tmp_path):
    path = _manifest(tmp_path)
    for i, seconds in enumerate((0.2, 0.3, 0.4, 0.5)):  # the training clips: median 0.35 s
        sf.write(tmp_path / "wav" / f"s{i}.wav", _tone(CLASSES[i % 2], seconds, seed=i), RATE, subtype="PCM_16")
    sf.write(tmp_path / "wav" / "s6.wav", _tone("low", 2.0), RATE, subtype="PCM_16")  # a long test clip: not counted
    ds = _prepared(path)
    assert ds.options["snd"]["seconds"] == 0.35 and ds.report["audio"]["snd"]["seconds_rule"] == "median of train"
    items = ds.items("snd", ds.ids())
    assert all(w.dtype == np.float32 and w.shape == (5600,) for w in items)
    # cut or padded at the end: the start is kept, the padding is silence
    short = sf.read(tmp_path / "wav" / "s0.wav", dtype="float32")[0]
    np.testing.assert_array_equal(items[0][:3200], short)  # the same samples, copied
    assert (items[0][3200:] == 0).all()
    long = sf.read(tmp_path / "wav" / "s6.wav", dtype="float32")[0]
    np.testing.assert_array_equal(ds.items("snd", ["s6"])[0], long[:5600])
    assert "snd: clips cut or zero-padded at the end to 0.350 s (the training split's median length), at 16000 Hz" \
        in describe_preparation(ds.report)


def test_the_seconds_option_fixes_the_length(tmp_path):
    ds = _prepared(_manifest(tmp_path), seconds=0.1)
    assert ds.items("snd", ["s0"])[0].shape == (1600,) and ds.report["audio"]["snd"]["seconds_rule"] == "option"
    with pytest.raises(ConfigError, match=r"seconds = 0.01 is shorter than one analysis window \(0.032 s\)"):
        load_manifest(tmp_path / "manifest.csv", {"snd": "audio"}, options={"snd": {"seconds": 0.01}})
    with pytest.raises(ConfigError, match=r"sample_rate = 12 is not a sample rate in Hz"):
        load_manifest(tmp_path / "manifest.csv", {"snd": "audio"}, options={"snd": {"sample_rate": 12}})


def test_stereo_is_mixed_down_and_another_rate_resampled_both_reported(tmp_path):
    path = _manifest(tmp_path)
    left, right = _tone("low", 0.25, seed=1), _tone("high", 0.25, seed=2)
    sf.write(tmp_path / "wav" / "s1.wav", np.stack([left, right], axis=1), RATE, subtype="FLOAT")
    sf.write(tmp_path / "wav" / "s2.wav", _tone("high", 0.25, rate=8000), 8000, subtype="FLOAT")
    ds = _prepared(path)
    mixed, resampled = ds.items("snd", ["s1", "s2"])
    np.testing.assert_allclose(mixed, (left + right) / 2, atol=f32_atol(1.0))  # the mean of the channels
    assert resampled.shape == (4000,)  # 0.25 s at 16 kHz
    spectrum = np.abs(np.fft.rfft(resampled))
    assert abs(np.argmax(spectrum) * RATE / len(resampled) - TONES["high"]) <= RATE / len(resampled)  # same pitch
    report = ds.report["audio"]["snd"]
    assert report["mixed_down"] == {"samples": 1, "ids": ["s1"]} and report["resampled"] == {"samples": 1, "ids": ["s2"]}


def test_clipped_and_silent_clips_are_kept_and_reported_as_warnings(tmp_path):
    path = _manifest(tmp_path)
    loud = np.clip(4 * _tone("low", 0.25), -1, 1)
    assert (np.abs(loud) >= 0.999).mean() > 0.01
    sf.write(tmp_path / "wav" / "s3.wav", loud, RATE, subtype="PCM_16")
    sf.write(tmp_path / "wav" / "s5.wav", np.full(4000, 1e-5, dtype=np.float32), RATE, subtype="FLOAT")
    sf.write(tmp_path / "wav" / "s7.wav", np.clip(0.3 * _tone("low", 0.25), -1, 1), RATE, subtype="PCM_16")  # quiet
    ds = _prepared(path)
    assert len(ds.ids()) == 8  # nothing dropped
    report = ds.report["audio"]["snd"]
    assert report["clipped"] == {"samples": 1, "ids": ["s3"]} and report["silent"] == {"samples": 1, "ids": ["s5"]}
    lines = describe_preparation(ds.report)
    assert "snd: warning: 1 clip(s) clipped (>= 1% of samples at full scale), kept: s3" in lines
    assert "snd: warning: 1 clip(s) silent (peak < 0.0001), kept: s5" in lines
    assert np.abs(ds.items("snd", ["s5"])[0]).max() < 1e-4  # loaded as it is


def _write_bad(folder: Path, case: str) -> None:
    target = folder / "wav" / "s3.wav"
    if case == "missing":
        target.unlink()
    elif case == "empty-file":
        target.write_bytes(b"")
    elif case == "no-samples":
        sf.write(target, np.zeros(0, dtype=np.float32), RATE)
    elif case == "garbage":
        target.write_bytes(b"RIFF, but not really a wave file at all")
    elif case == "too-short":
        sf.write(target, _tone("low", 0.01), RATE, subtype="PCM_16")
    elif case == "nan-wav":
        wave = _tone("low", 0.25)
        wave[10:13] = np.nan
        sf.write(target, wave, RATE, subtype="FLOAT")


#: case -> the message's pattern (every one names the sample and the path, and says the fix)
BAD_CLIPS = {
    "missing": r"s3 \(wav/s3.wav: missing\).*Fix: fix the paths",
    "empty-file": r"s3 \(wav/s3.wav: an empty file \(0 bytes\)\).*Fix: replace the empty files",
    "no-samples": r"s3 \(wav/s3.wav: no samples\).*Fix: replace the empty files",
    "garbage": r"s3 \(wav/s3.wav: unreadable \(.*\)\).*Fix: convert it to WAV, FLAC or OGG",
    "too-short": r"s3 \(wav/s3.wav: 0.010 s long, shorter than one analysis window of 0.032 s\).*"
                 r"Fix: give every clip at least 0.032 s",
    "nan-wav": r"s3 \(wav/s3.wav: 3 NaN/inf samples\).*Fix: re-export those clips with finite samples",
}


@pytest.mark.parametrize("case", list(BAD_CLIPS))
def test_bad_clips_are_refused_naming_the_sample_the_path_and_the_fix(tmp_path, case):
    path = _manifest(tmp_path)
    _write_bad(tmp_path, case)
    with pytest.raises(DataError, match=r"modality 'snd': 1 of 8 audio clip\(s\) cannot be used: " + BAD_CLIPS[case]):
        load_manifest(path, {"snd": "audio"})


def test_npy_waveforms_load_at_npy_rate_and_bad_ones_are_named(tmp_path):
    (tmp_path / "npy").mkdir()
    ids = [f"n{i}" for i in range(6)]
    for i, sid in enumerate(ids):
        np.save(tmp_path / "npy" / f"{sid}.npy", _tone(CLASSES[i % 2], 0.25, rate=8000, seed=i))
    frame = pd.DataFrame({"id": ids, "label": [CLASSES[i % 2] for i in range(6)],
                          "split": ["train"] * 2 + ["val"] * 2 + ["test"] * 2,
                          "snd": [f"npy/{sid}.npy" for sid in ids]})
    frame.to_csv(tmp_path / "m.csv", index=False)
    ds = load_manifest(tmp_path / "m.csv", {"snd": "audio"}, options={"snd": {"npy_rate": 8000}})
    assert ds.items("snd", ["n0"])[0].shape == (4000,)  # 0.25 s, resampled from 8 kHz to 16 kHz
    nan = _tone("low", 0.25)
    nan[5] = np.inf
    for value, pattern in [(nan, r"n3 \(npy/n3.npy: 1 NaN/inf samples\)"),
                           (np.zeros((4000, 2), dtype=np.float32),
                            r"n3 \(npy/n3.npy: shape \(4000, 2\) and dtype float32, not a 1-D float waveform\).*"
                            r"divide int16 samples by 32768"),
                           (np.zeros(4000, dtype=np.int16), r"n3 \(npy/n3.npy: shape \(4000,\) and dtype int16"),
                           (np.array([{"a": 1}], dtype=object), r"n3 \(npy/n3.npy: not a plain .npy array")]:
        np.save(tmp_path / "npy" / "n3.npy", value, allow_pickle=True)
        with pytest.raises(DataError, match=pattern):
            load_manifest(tmp_path / "m.csv", {"snd": "audio"}, options={"snd": {"npy_rate": 8000}})


# --------------------------------------------------------------------------- the masker


def _spec(n_mels: int = 16, frames: int = 25) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"spec": torch.randn(1, 1, n_mels, frames, generator=g) + 3.0}  # no value is 0 before masking


def test_masker_players_are_bands_by_segments_described_in_hz_and_ms():
    masker = SpectrogramPatchMasker(_spec(), bands=4, segments=5, sample_rate=RATE, hop_length=256, n_samples=6400)
    assert masker.n_features == 20 and masker.kind == "audio"
    rows = masker.describe()
    assert [(r["band"], r["segment"]) for r in rows[:6]] == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0)]
    lows = [r["mel_lo"] for r in rows[::5]]
    highs = [r["mel_hi"] for r in rows[::5]]
    assert lows[0] == 0 and highs[-1] == RATE // 2 and lows[1:] == highs[:-1]  # contiguous bands, 0 to Nyquist
    assert np.all(np.diff(lows) > 0) and np.diff(highs[:2]) < np.diff(highs[-2:])  # mel: wider bands up high
    t0, t1 = [r["t0_ms"] for r in rows[:5]], [r["t1_ms"] for r in rows[:5]]
    assert t0[0] == 0 and t1[-1] == 400 and t0[1:] == t1[:-1]  # contiguous segments over the 0.4 s clip
    # frame f is centred at f * 256 / 16000 s: segment 1 starts half a hop before its first frame (5)
    assert t0[1] == round(1000 * (5 - 0.5) * 256 / RATE)
    assert get_kind("audio").feature_label(rows[1]) == f"0.07-0.15 s, 0-{highs[0]} Hz"


def test_masking_one_patch_changes_only_that_patch_to_the_fill():
    inputs = _spec()
    masker = SpectrogramPatchMasker(inputs, bands=3, segments=4, fill=-2.0)
    x = inputs["spec"][0, 0]
    out = masker.apply(inputs, ~np.eye(12, dtype=bool))["spec"]  # row j: only player j masked
    for j, row in enumerate(masker.describe()):
        b, s = row["band"], row["segment"]
        rows = slice(masker.band_edges[b], masker.band_edges[b + 1])
        cols = slice(masker.frame_edges[s], masker.frame_edges[s + 1])
        inside = torch.zeros_like(x, dtype=torch.bool)
        inside[rows, cols] = True
        assert (out[j, 0][inside] == -2.0).all()
        assert torch.equal(out[j, 0][~inside], x[~inside])  # copied untouched
    assert torch.equal(masker.apply(inputs, np.ones((1, 12), dtype=bool))["spec"], inputs["spec"])


def test_the_kind_builds_its_masker_from_the_context_and_the_encoder():
    kind = get_kind("audio")
    enc = create_encoder("audio-cnn", sample_rate=8000, n_samples=4000, n_mels=8, width=2, out_dim=4)
    masker = kind.build_masker(_spec(8, 20), encoder=enc, context=MaskerContext(audio_bands=2, audio_segments=3))
    assert (masker.bands, masker.segments, masker.n_features) == (2, 3, 6)
    assert masker.describe()[-1]["mel_hi"] == 4000 and masker.describe()[-1]["t1_ms"] == 500  # from the encoder
    coarse = kind.build_masker(_spec(3, 4), context=MaskerContext())  # 4 x 6 does not fit 3 x 4: made coarser
    assert (coarse.bands, coarse.segments) == (3, 4)
    assert kind.masker_settings(MaskerContext()) == {"audio_bands": 4, "audio_segments": 6}
    with pytest.raises(ConfigError, match=r"7 segments do not fit a spectrogram of 4 frames"):
        SpectrogramPatchMasker(_spec(3, 4), bands=1, segments=7)


# --------------------------------------------------------------------------- the encoder


def _clips(n: int = 6, seconds: float = 0.25) -> list[np.ndarray]:
    return [_tone(CLASSES[i % 2], seconds, seed=i) * (1 + i) for i in range(n)]


def test_encoder_standardises_each_mel_bin_with_the_training_statistics_and_reloads_exactly():
    train = _clips()
    torch.manual_seed(0)
    enc = create_encoder("audio-cnn", n_samples=4000, n_mels=16, width=4, out_dim=8).eval()
    raw = enc.log_mel(train)
    assert raw.shape == (6, 16, 1 + 4000 // 256) and raw.min() > -100.0
    assert (enc.log_mel([np.zeros(4000, dtype=np.float32)]) == -100.0).all()  # silence: the fixed floor, in dB
    import librosa  # the reference: librosa's mel spectrogram in dB of full scale, floored at -100 dB

    power = librosa.feature.melspectrogram(y=np.stack(train), sr=RATE, n_fft=512, hop_length=256, n_mels=16)
    expected = np.maximum(librosa.power_to_db(power, ref=1.0, top_db=None), -100.0)
    np.testing.assert_allclose(raw, expected, atol=1e-3)  # float32 powers of magnitude ~1e3 through log10
    enc.fit_preprocessing(train)
    spec = enc.prepare(train)["spec"]
    assert spec.shape == (6, 1, 16, 16) and spec.dtype == torch.float32
    mean, std = spec.mean(dim=(0, 1, 3)), spec.std(dim=(0, 1, 3), unbiased=False)
    assert mean.abs().max() <= f32_atol(100.0, 96) and (std - 1).abs().max() <= f32_atol(100.0, 96)
    other = enc.prepare([_tone("high", 0.25, seed=9) * 0.01])["spec"]  # not training data: not centred
    assert other.mean().abs() > 0.5
    state = {k: v.clone() for k, v in enc.state_dict().items()}
    assert {"mean", "std"} <= set(state)  # saved with the run's weights
    spec_json = json.loads(json.dumps(enc.spec()))
    twin = create_encoder(spec_json["name"], **spec_json["kwargs"])
    twin.load_state_dict(state)
    twin.eval()
    with torch.no_grad():  # the same weights and statistics through the same operations: the same outputs
        assert torch.equal(twin.prepare(train)["spec"], spec) and torch.equal(twin(twin.prepare(train)), enc({"spec": spec}))


def test_encoder_forward_is_deterministic_and_takes_a_gradient():
    def build():
        torch.manual_seed(3)
        return create_encoder("audio-cnn", n_samples=4000, n_mels=16, width=4, out_dim=8)

    a, b, trained = build().eval(), build().eval(), build().train()
    inputs = a.prepare(_clips(3))
    out = trained(inputs)
    assert out.shape == (3, 8) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in trained.parameters() if p.requires_grad)
    with torch.no_grad():  # same seed, same weights, same operations: the same outputs
        assert torch.equal(a(inputs), b(inputs))
    assert a.structure(inputs) == {"n_mels": 16, "frames": 16, "sample_rate": RATE, "hop_length": 256}


def test_encoder_augment_masks_bands_and_spans_with_the_mean_and_refuses_bad_clips():
    enc = create_encoder("audio-cnn", n_samples=8000, n_mels=32, width=2, out_dim=4)
    spec = enc.prepare(_clips(4, seconds=0.5))["spec"] + 5.0  # no value is 0
    torch.manual_seed(0)
    out = enc.augment({"spec": spec})["spec"]
    changed = out != spec
    assert changed.any() and (out[changed] == 0).all()  # masked to the training mean, nothing else touched
    assert changed.float().mean() < 0.5
    with pytest.raises(DataError, match=r"audio clips of 100 samples are shorter than one analysis window"):
        create_encoder("audio-cnn", n_mels=8).prepare([np.zeros(100, dtype=np.float32)])
    with pytest.raises(DataError, match=r"audio item 0 holds NaN"):
        enc.prepare([np.full(8000, np.nan, dtype=np.float32)])
    with pytest.raises(ConfigError, match=r"fmin = 9000.0 and fmax = None do not make a band"):
        create_encoder("audio-cnn", fmin=9000.0)


# --------------------------------------------------------------------------- a tiny experiment, end to end

EXPERIMENT = """
name = "snd"
seed = 0
[dataset]
source = "manifest"
manifest = "data/manifest.csv"
[modalities.sound]
kind = "audio"
encoder = "audio-cnn"
encoder_kwargs = { n_mels = 16, width = 4, out_dim = 8 }
[modalities.worker]
kind = "tabular"
encoder = "mlp"
encoder_kwargs = { hidden = 8, out_dim = 8 }
columns = ["zone", "speed"]
[fusion]
methods = ["concat"]
late = []
[train.unimodal]
epochs = 12
lr = 0.01
batch_size = 8
hidden = 16
patience = 12
[train.fusion]
epochs = 12
lr = 0.01
batch_size = 8
dim = 8
"""


def _experiment(folder: Path) -> Path:
    """Two classes that only the sound tells apart (a low or a high tone); the columns are noise."""
    data = folder / "data"
    (data / "wav").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(24):
        sid, label = f"c{i:02d}", CLASSES[i % 2]
        sf.write(data / "wav" / f"{sid}.wav", _tone(label, 0.3, seed=i), RATE, subtype="PCM_16")
        rows.append({"id": sid, "label": label, "sound": f"wav/{sid}.wav", "zone": rng.normal(),
                     "speed": rng.normal()})
    pd.DataFrame(rows).to_csv(data / "manifest.csv", index=False)
    path = folder / "snd.toml"
    path.write_text(EXPERIMENT)
    return path


def test_audio_and_tabular_experiment_trains_explains_and_shows_in_the_explorer(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from core.data import load_experiment_dataset
    from core.experiment import PROJECT_ROOT, load_experiment
    from core.explain import explain_sample, explanation_for
    from core.train import train_experiment

    exp = load_experiment(_experiment(tmp_path))
    assert exp.modalities == {"sound": "audio", "worker": "tabular"}
    root = tmp_path / "runs"
    train_experiment(exp, root, progress=False)
    ds, info = load_experiment_dataset(root / "snd")
    assert info["modality_options"]["sound"]["seconds"] == 0.3  # the training median, kept for every reader
    config = json.loads((root / "snd" / "unimodal-sound" / "config.json").read_text())
    assert {k: config["encoders"]["sound"]["kwargs"][k] for k in ("sample_rate", "n_samples")} == \
        {"sample_rate": RATE, "n_samples": 4800}
    metrics = json.loads((root / "snd" / "unimodal-sound" / "metrics.json").read_text())
    assert metrics["top1"] >= 0.75  # the tones separate the classes (chance: 1/2)

    run_dir = root / "snd" / "concat-sound+worker"
    sample = ds.ids("test")[0]
    e = explain_sample(run_dir, sample, store=True)
    assert e.settings["modality_kinds"] == {"sound": "audio", "worker": "tabular"}
    assert e.settings["audio_bands"] == 4 and e.settings["audio_segments"] == 6 and e.settings["fill"]["audio"] == 0.0
    sound = [info for info, m in zip(e.feature_info, e.feature_modality) if e.modalities[m] == "sound"]
    assert len(sound) == 24 and sound[-1]["t1_ms"] == 300 and sound[-1]["mel_hi"] == RATE // 2
    # 19 frames in 6 segments: the first is frames 0-2, up to half a hop before frame 3 (2.5 * 16 ms)
    assert e.feature_names()[0] == "sound:0-0.04 s, 0-" + f"{sound[0]['mel_hi']} Hz"
    assert abs(e.values.sum() - (e.full_value - e.base_value)) <= 1e-6  # efficiency
    back = explanation_for(run_dir, sample)
    assert back is not None and back.feature_info == e.feature_info  # the stored rows rebuild it
    coarse = explain_sample(run_dir, sample, audio_bands=2, audio_segments=3)
    assert int((np.asarray(coarse.feature_modality) == 0).sum()) == 6

    monkeypatch.setenv("FUSIONLENS_RUNS", str(root))
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120)
    for key, value in {"page": "explorer", "run": "concat-sound+worker", "sample": sample}.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, "\n".join(str(x.value) for x in at.exception)
    figures = {json.loads(c.proto.spec)["layout"]["title"]["text"]: json.loads(c.proto.spec)
               for c in at.get("plotly_chart")}
    spec = figures["sound: patch contributions"]
    assert [t["type"] for t in spec["data"]] == ["heatmap", "heatmap"]  # the spectrogram, the patches over it
    layout = spec["layout"]
    assert layout["xaxis"]["title"]["text"] == "Time (s)"
    assert layout["yaxis"]["title"]["text"] == "Frequency (Hz, mel scale)" and "1k" in layout["yaxis"]["ticktext"]
    assert len(at.get("audio")) == 1  # the clip, to listen to


def test_the_spectrogram_figure_puts_each_patch_over_its_band_and_span():
    from core.kinds.audio import spectrogram_of
    from ui.figures import make_spectrogram_figure

    db, times, hz_edges = spectrogram_of(_tone("low", 0.4), sample_rate=RATE, n_mels=16)
    assert db.shape == (16, 26) and times[1] == 256 / RATE and hz_edges[0] == 0 and hz_edges[-1] == RATE / 2
    masker = SpectrogramPatchMasker({"spec": torch.zeros(1, 1, 16, 26)}, bands=2, segments=3, n_samples=6400)
    patches = pd.DataFrame(masker.describe()).assign(phi=np.arange(6.0) - 2)
    fig = make_spectrogram_figure(db, times, hz_edges, patches, title="t")
    spectrogram, overlay = fig.data
    np.testing.assert_array_equal(np.asarray(overlay.z), [[-2, -1, 0], [1, 2, 3]])  # bands up, segments across
    # 26 frames in 3 segments (0-7, 8-16, 17-25): bounds half a hop (8 ms) before frames 8 and 17
    np.testing.assert_allclose(overlay.x, [0.0, 0.12, 0.264, 0.4])
    np.testing.assert_allclose(overlay.y, [-0.5, 7.5, 15.5], atol=0.01)  # the bands' bounds on the mel-bin axis
    assert overlay.zmin == -3 and overlay.zmax == 3 and not spectrogram.showscale  # symmetric; one colour bar
    ticks = list(fig.layout.yaxis.tickvals)
    assert ticks == sorted(ticks, reverse=True) and min(-np.diff(ticks)) >= 0.08 * 16 - 1e-9  # none crowded
    assert fig.layout.xaxis.title.text == "Time (s)" and fig.layout.yaxis.title.text == "Frequency (Hz, mel scale)"
    with pytest.raises(DataError, match="one time per frame"):
        make_spectrogram_figure(db, times[:-1], hz_edges)
