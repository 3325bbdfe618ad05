"""The site simulator's other modalities: audio, worker tag location and trajectories of the RGB-D scenes."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile

from core.data import load_manifest
from core.data import rgbd_sim as sim
from core.data.rgbd_sim import (AUDIO_SOURCES, LOCATION_COLUMNS, RELIANCE, RELIANCE5, SITE_MODALITIES, TAG_RANGE_M,
                                TRAJECTORY_CHANNELS, generate_dataset, generate_site_dataset, simulate,
                                simulate_site)
from core.data.sources import DATA_SOURCES
from core.errors import ConfigError, DataError
from core.experiment_schema import schema_keys
from core.kinds import list_kinds
from tests._tolerance import f32_atol

SMALL = {"frames": 8, "size": 32}
RATE = 16000
CH = {name: i for i, name in enumerate(TRAJECTORY_CHANNELS)}


def _seeds(label: str, variant: str, n: int, start: int = 0) -> list[int]:
    """The first ``n`` seeds whose clip of ``label`` draws ``variant``."""
    out = [s for s in range(start, start + 400) if sim.clip_variant(label, s) == variant][:n]
    assert len(out) == n, f"fewer than {n} seeds draw {variant}"
    return out


def _band_db(x: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(len(x), 1.0 / RATE)
    return float(10 * np.log10(spec[(f >= lo) & (f < hi)].sum() / len(x) ** 2))


def _centroid(x: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(len(x), 1.0 / RATE)
    m = (f >= lo) & (f < hi)
    return float((spec[m] * f[m]).sum() / spec[m].sum())


def _onsets(x: np.ndarray, refractory_s: float = 0.03) -> np.ndarray:
    """Times (s) where |x| first rises above a third of its peak, at most one per refractory period."""
    env = np.abs(x)
    if env.max() == 0:
        return np.zeros(0)
    above = np.flatnonzero(env > env.max() / 3)
    keep = [above[0]] + [b for a, b in zip(above[:-1], above[1:]) if b - a > refractory_s * RATE]
    return np.array(keep) / RATE


def _walkers(meta: dict) -> int:
    key = meta["key_worker"]
    return int(bool(key and key["walking"])) + sum(w["walking"] for w in meta["other_workers"])


def test_ground_truth_covers_every_variant_with_known_modalities():
    assert set(RELIANCE5) == set(RELIANCE) == {v for vs in sim.VARIANTS.values() for v in vs}
    for variant, sets in RELIANCE5.items():
        assert sets, variant
        for s in sets:
            assert set(s.split("+")) <= set(SITE_MODALITIES), (variant, s)
    # the RGB-vs-depth view is the five-modality truth restricted to rgb and depth
    assert RELIANCE5["post_under_bucket"][0] == "rgb" and RELIANCE["post_under_bucket"] == "rgb"
    assert "depth" in RELIANCE5["behind_bucket"] and RELIANCE["behind_bucket"] == "depth"


def test_site_clip_has_the_rgbd_clip_and_three_more_modalities():
    clip = simulate_site("Bucket-Worker", 3, frames=4, size=32)
    ref = simulate("Bucket-Worker", 3, frames=4, size=32)
    # the same seed through the same deterministic renderer: the very same arrays
    assert np.array_equal(clip.rgb, ref.rgb) and np.array_equal(clip.depth, ref.depth)
    assert np.array_equal(clip.parts, ref.parts)
    assert {k: v for k, v in clip.meta.items() if k != "site"} == ref.meta
    assert clip.audio.shape == (4 * RATE,) and clip.audio.dtype == np.float32 and clip.audio_rate == RATE
    assert np.isfinite(clip.audio).all() and np.abs(clip.audio).max() <= 1.0
    assert list(clip.stems) == list(AUDIO_SOURCES)
    total = np.sum([clip.stems[k].astype(np.float64) for k in AUDIO_SOURCES], axis=0)
    np.testing.assert_allclose(clip.audio, total, rtol=0, atol=f32_atol(1.0, len(AUDIO_SOURCES)))
    assert list(clip.location) == list(LOCATION_COLUMNS)
    assert all(np.isfinite(v) for v in clip.location.values())
    assert clip.trajectory.shape == clip.true_trajectory.shape == (40, len(TRAJECTORY_CHANNELS))
    assert clip.trajectory.dtype == np.float32
    assert clip.meta["site"]["modalities_reliance"] == list(RELIANCE5[clip.meta["variant"]])
    with pytest.raises(ConfigError, match="audio_rate"):
        simulate_site("Safe", 0, audio_rate=4000)
    with pytest.raises(ConfigError, match="unknown class"):
        simulate_site("Excavator", 0)


def test_same_seed_same_site_and_seeds_differ():
    a = simulate_site("Cabin-Worker", 5, **SMALL)
    b = simulate_site("Cabin-Worker", 5, **SMALL)
    c = simulate_site("Cabin-Worker", 6, **SMALL)
    # a seeded rerun in the same process: bit-identical
    assert np.array_equal(a.audio, b.audio) and a.location == b.location
    assert np.array_equal(a.trajectory, b.trajectory, equal_nan=True)
    assert not np.array_equal(a.audio, c.audio) and a.location != c.location


def test_trajectory_follows_the_motion_the_frames_show():
    # 8 frames over 4 s: frame k is at 0.5 k s, which is trajectory step 5 k at 10 Hz
    for label, seed in (("Track-Excavator", 2), ("Safe", 1)):
        clip = simulate_site(label, seed, **SMALL)
        centre = np.array(clip.meta["excavator"]["center"])[:, :2]
        steps = clip.true_trajectory[::5, [CH["excavator_x"], CH["excavator_y"]]]
        np.testing.assert_allclose(steps, centre, rtol=0, atol=1e-3)   # meta rounds to 1 mm


def test_engine_is_louder_and_higher_when_operating_than_idle():
    def stats(label, variant):
        vals = []
        for seed in _seeds(label, variant, 4):
            audio = simulate_site(label, seed, frames=4, size=32).audio
            vals.append((_band_db(audio, 20, 400), _centroid(audio, 20, 400)))
        return np.mean(vals, axis=0)

    working, idle = stats("Cabin-Worker", "arm_still"), stats("Safe", "idle_near_cabin")
    assert working[0] > idle[0] + 3.0            # engine band energy (dB)
    assert working[1] > idle[1] + 10.0           # higher rpm: the band's spectral centroid (Hz)


def test_clatter_and_alarm_only_when_driving():
    alarms = 0
    for label, variant, n in (("Track-Excavator", "drive_to_track", 4), ("Safe", "drive_parallel_or_away", 3),
                              ("Cabin-Worker", "arm_moving", 2), ("Bucket-Worker", "stand_under", 2)):
        for seed in _seeds(label, variant, n):
            clip = simulate_site(label, seed, frames=4, size=32)
            driving = clip.meta["excavator"]["driving"]
            assert driving == variant.startswith("drive")
            clatter, alarm = clip.stems["clatter"], clip.stems["alarm"]
            if not driving:
                assert not clatter.any() and not alarm.any()
                continue
            # clicks of two tracks at speed / shoe pitch each (0.5-0.9 m/s, 0.17-0.21 m shoes)
            rate = len(_onsets(clatter, 0.02)) / 4.0
            assert 3.0 <= rate <= 12.0, rate
            if alarm.any():
                alarms += 1
                spec = np.abs(np.fft.rfft(alarm))
                peak = np.fft.rfftfreq(len(alarm), 1.0 / RATE)[spec.argmax()]
                assert 850 <= peak <= 1250
                on = np.abs(alarm).reshape(400, -1).max(axis=1) > 0   # 10 ms blocks: 0.5 s on, 0.5 s off
                assert 0.4 <= on.mean() <= 0.6
    assert alarms >= 1


def test_footsteps_only_with_a_walking_worker():
    heard = 0
    for label, variant, n in (("Bucket-Worker", "walk_under", 4), ("Bucket-Worker", "stand_under", 4),
                              ("Safe", "post_under_bucket", 3)):
        for seed in _seeds(label, variant, n):
            clip = simulate_site(label, seed, frames=4, size=32)
            steps = clip.stems["footsteps"]
            if _walkers(clip.meta) == 0:
                assert not steps.any()
            if variant == "walk_under":
                # the key worker walks at least 0.84 m before he stops: one step or more
                assert len(_onsets(steps)) >= 1
                heard += 1
    assert heard == 4


def test_tags_put_under_bucket_workers_closer_than_behind_bucket_ones_and_posts_have_none():
    def readings(label, variant, n):
        locs = [simulate_site(label, s, frames=4, size=32).meta["site"]["location"]
                for s in _seeds(label, variant, n)]
        return np.array([loc["loc_bucket_m"] for loc in locs]), np.array([loc["true_bucket_m"] for loc in locs])

    under, under_true = np.concatenate([readings("Bucket-Worker", v, 4) for v in ("stand_under", "walk_under")],
                                       axis=1)
    behind, behind_true = readings("Safe", "behind_bucket", 8)
    assert under_true.max() <= sim.UNDER_BUCKET_M and behind_true.min() >= 1.6
    # ~0.9 m tag noise: informative on average (true means differ by ~2 m), not decisive clip by clip
    assert under.mean() + 0.5 < behind.mean()
    for seed in _seeds("Safe", "post_under_bucket", 4):
        clip = simulate_site("Safe", seed, frames=4, size=32)
        assert clip.meta["key_worker"] is None and len(clip.meta["posts"]) >= 1
        workers = len(clip.meta["other_workers"])
        assert clip.location["loc_tags"] == workers            # the post wears no tag
        assert clip.trajectory[:, CH["worker1_tag"]].max() == float(workers >= 1)
        if workers == 0:
            assert clip.location["loc_bucket_m"] == TAG_RANGE_M
            assert not clip.trajectory[:, :4].any()


def test_trajectory_gaps_and_the_excavators_direction():
    def track_distance_change(traj):
        y = np.abs(traj[:, CH["excavator_y"]])
        return float(np.nanmean(y[-5:]) - np.nanmean(y[:5]))

    gaps = 0
    for label, variant, n in (("Track-Excavator", "drive_to_track", 4), ("Safe", "drive_parallel_or_away", 4),
                              ("Safe", "clear", 2)):
        for seed in _seeds(label, variant, n):
            traj = simulate_site(label, seed, frames=4, size=32).trajectory
            nan = np.isnan(traj)
            gaps += int(nan.any())
            assert not nan.all(axis=0).any()                   # never a whole channel
            for a, b in ((0, 2), (2, 4), (4, 8)):               # a lost fix loses the tag's channels together
                assert (nan[:, a:b].all(axis=1) == nan[:, a:b].any(axis=1)).all()
            assert not nan[:, [CH["worker1_tag"], CH["worker2_tag"]]].any()
            if variant == "drive_to_track":
                assert track_distance_change(traj) < -1.5      # 2-3.6 m toward the rails in 4 s
            elif variant == "drive_parallel_or_away":
                assert track_distance_change(traj) > -0.6      # along the rails (+-6 deg) or away
    assert gaps >= 1


def test_site_dataset_manifest_loads_and_resumes(tmp_path):
    out = tmp_path / "site"
    manifest = generate_site_dataset(out, n_clips=12, seed=5, workers=1, progress=False, **SMALL)
    df = pd.read_csv(manifest)
    assert list(df.columns) == ["id", "label", "split", "group", "rgb", "depth", "audio", "trajectory",
                                *LOCATION_COLUMNS]
    assert df[list(LOCATION_COLUMNS)].notna().all().all()
    # the audio and time-series kinds check the .wav and .npy files where they are registered
    extra = {m: k for m, k in (("audio", "audio"), ("trajectory", "timeseries")) if k in list_kinds()}
    ds = load_manifest(manifest, {"rgb": "video", "depth": "video", "location": "tabular", **extra},
                       options={"location": {"columns": list(LOCATION_COLUMNS)}})
    assert len(ds.frame) == 12
    for _, row in df.iterrows():
        audio, rate = soundfile.read(out / row["audio"], dtype="float32")
        assert rate == RATE and audio.shape == (4 * RATE,)
        assert soundfile.info(str(out / row["audio"])).subtype == "PCM_16"
        traj = np.load(out / row["trajectory"], allow_pickle=False)
        assert traj.shape == (40, len(TRAJECTORY_CHANNELS)) and traj.dtype == np.float32
    meta = pd.read_parquet(out / "clips_meta.parquet")
    for _, row in meta.iterrows():
        assert json.loads(row["reliance5"]) == list(RELIANCE5[row["variant"]])
        assert row["reliance"] == RELIANCE[row["variant"]]

    # the same clips as the rgbd-sim dataset of the same settings
    ref = pd.read_csv(generate_dataset(tmp_path / "rgbd", n_clips=12, seed=5, workers=1, progress=False, **SMALL))
    assert ref.equals(df[list(ref.columns)])
    for cid in df["id"][:3]:
        with np.load(out / "clips" / f"{cid}.npz") as a, np.load(tmp_path / "rgbd" / "clips" / f"{cid}.npz") as b:
            for key in ("rgb", "depth", "parts"):
                assert np.array_equal(a[key], b[key])

    # resumable: a second call renders nothing; a deleted file comes back identical
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.suffix in (".npz", ".wav", ".npy"))
    stamps = {p: p.stat().st_mtime_ns for p in files}
    wav = out / df.iloc[3]["audio"]
    wav_bytes = wav.read_bytes()
    generate_site_dataset(out, n_clips=12, seed=5, workers=1, progress=False, **SMALL)
    assert {p: p.stat().st_mtime_ns for p in files} == stamps
    wav.unlink()
    generate_site_dataset(out, n_clips=12, seed=5, workers=1, progress=False, **SMALL)
    assert wav.read_bytes() == wav_bytes
    assert pd.read_csv(manifest).equals(df)
    with pytest.raises(DataError, match="other settings"):
        generate_site_dataset(out, n_clips=12, seed=5, workers=1, progress=False, audio_rate=8000, **SMALL)


def test_site_sim_source_renders_into_its_own_cache_folder(tmp_path, monkeypatch):
    assert "[dataset] audio_rate" in schema_keys()
    monkeypatch.setenv("FUSIONLENS_CACHE", str(tmp_path))
    table = {"source": "site-sim", "n_clips": 12, "frames": 4, "size": 32, "audio_rate": 8000}
    manifest = DATA_SOURCES.get("site-sim")(table, seed=1, progress=False)
    assert manifest.parent.parent == tmp_path and manifest.parent.name.startswith("site-sim-")
    df = pd.read_csv(manifest)
    assert len(df) == 12 and soundfile.info(str(manifest.parent / df["audio"][0])).samplerate == 8000
    other = DATA_SOURCES.get("site-sim")({**table, "audio_rate": 16000}, seed=1, progress=False)
    assert other.parent != manifest.parent          # another setting, another folder
