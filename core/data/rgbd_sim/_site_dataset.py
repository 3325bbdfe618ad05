"""A five-modality site dataset on disk: the RGB-D clips plus audio, tag location and trajectories.

:func:`generate_site_dataset` renders the same clips as
:func:`~core.data.rgbd_sim.generate_dataset` with the same settings (same
labels, seeds, split and RGB-D arrays) and, from each clip's scene, a 16-bit
PCM ``.wav``, a trajectory ``.npy`` and the location columns of the manifest.
Resumable and independent of the number of worker processes, like the RGB-D
dataset.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.data.rgbd_sim._audio import AUDIO_RATE
from core.data.rgbd_sim._clip import simulate_scene
from core.data.rgbd_sim._dataset import (_clip_label, _clip_seed, _split, _summary, check_settings, read_clip_meta,
                                         run_jobs, write_clip)
from core.data.rgbd_sim._site import DURATION_S, SIMULATOR_VERSION, SITE_VERSION
from core.data.rgbd_sim._site_clip import render_site
from core.data.rgbd_sim._tags import LOCATION_COLUMNS, TRAJECTORY_CHANNELS
from core.errors import ConfigError
from core.io import atomic_path, write_parquet


def _paths(folder: Path, i: int) -> tuple[Path, Path, Path]:
    name = f"clip_{i:05d}"
    return folder / "clips" / f"{name}.npz", folder / "audio" / f"{name}.wav", folder / "trajectory" / f"{name}.npy"


def _site_job(job: tuple) -> dict[str, Any]:
    """Render one clip in five modalities (kept when its files, made with the same settings, are there)."""
    import soundfile

    i, label, clip_seed, folder, frames, size, degrade, rate = job
    npz, wav, npy = _paths(Path(folder), i)
    meta = read_clip_meta(npz, label, clip_seed, frames, size, degrade)
    site = (meta or {}).get("site") or {}
    if (meta is not None and site.get("site_version") == SITE_VERSION and site.get("audio", {}).get("rate") == rate
            and wav.is_file() and npy.is_file()):
        return _site_summary(i, meta)
    npz.unlink(missing_ok=True)        # the .npz is written last: it marks a complete clip
    clip, scene = simulate_scene(label, clip_seed, frames, size, degrade)
    out = render_site(scene, label, clip_seed, rate)
    meta = {**clip.meta, "clip_index": i, "site": out["record"]}
    with atomic_path(wav) as tmp:
        soundfile.write(str(tmp), out["audio"], rate, subtype="PCM_16", format="WAV")
    with atomic_path(npy) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, out["trajectory"], allow_pickle=False)
    write_clip(npz, clip.rgb, clip.depth, clip.parts, meta)
    return _site_summary(i, meta)


def _site_summary(i: int, meta: dict[str, Any]) -> dict[str, Any]:
    """The clip's row of ``clips_meta.parquet``: the RGB-D summary plus the site modalities' facts."""
    site = meta["site"]
    audio = site["audio"]
    return {**_summary(i, meta), "reliance5": json.dumps(site["modalities_reliance"]),
            "engine_state": audio["engine_state"], "alarm": bool(audio["alarm"]),
            "footsteps": int(sum(audio["footsteps"])), "snr_db": float(audio["snr_db"]),
            **{c: float(site["location"][c]) for c in LOCATION_COLUMNS}}


def generate_site_dataset(out_dir: str | os.PathLike, *, n_clips: int = 1600, seed: int = 0, frames: int = 16,
                          size: int = 64, degrade: bool = True, audio_rate: int = AUDIO_RATE, workers: int = 2,
                          progress: bool = True) -> Path:
    """Render ``n_clips`` balanced clips of the site in five modalities into ``out_dir``; return its manifest.

    Layout: ``clips/clip_00000.npz`` (as :func:`generate_dataset`, its ``meta`` with a ``"site"`` record),
    ``audio/clip_00000.wav`` (mono 16-bit PCM at ``audio_rate``, 4 s), ``trajectory/clip_00000.npy``
    ((40, C) float32, NaN gaps; channels in ``simulator.json``), ``manifest.csv`` (id, label, split, group,
    rgb, depth, audio, trajectory and the location columns ``loc_*``), ``clips_meta.parquet`` (the RGB-D
    summary plus ``reliance5``, the engine's state, the alarm, footsteps, SNR and location) and
    ``simulator.json``. Labels, seeds, split and RGB-D arrays equal those of ``generate_dataset`` with the
    same settings. Resumable: a clip whose files were made with the same settings is kept.
    """
    out = Path(out_dir)
    if n_clips < 1:
        raise ConfigError(f"n_clips={n_clips}", fix="ask for at least one clip")
    if not 8000 <= int(audio_rate) <= 48000:
        raise ConfigError(f"audio_rate={audio_rate} is out of range", fix="use an audio rate of 8000-48000 Hz")
    settings = {"simulator_version": SIMULATOR_VERSION, "site_version": SITE_VERSION, "seed": int(seed),
                "frames": int(frames), "size": int(size), "degrade": bool(degrade), "audio_rate": int(audio_rate),
                "depth_dtype": "float16", "duration_s": DURATION_S,
                "trajectory_channels": list(TRAJECTORY_CHANNELS)}
    check_settings(out, settings, n_clips)
    for sub in ("clips", "audio", "trajectory"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    jobs = [(i, _clip_label(seed, i), _clip_seed(seed, i), str(out), int(frames), int(size), bool(degrade),
             int(audio_rate)) for i in range(n_clips)]
    results = run_jobs(_site_job, jobs, workers=workers, progress=progress)
    labels = [r["label"] for r in results]
    ids = [f"clip_{r['index']:05d}" for r in results]
    manifest = pd.DataFrame({
        "id": ids, "label": labels, "split": _split(labels, seed), "group": ids,
        "rgb": [f"clips/{i}.npz" for i in ids], "depth": [f"clips/{i}.npz" for i in ids],
        "audio": [f"audio/{i}.wav" for i in ids], "trajectory": [f"trajectory/{i}.npy" for i in ids],
        **{c: [r[c] for r in results] for c in LOCATION_COLUMNS},
    })
    meta = pd.DataFrame(results).drop(columns=["index"])
    meta.insert(0, "id", ids)
    write_parquet(out / "clips_meta.parquet", meta)
    path = out / "manifest.csv"
    with atomic_path(path) as tmp:
        manifest.to_csv(tmp, index=False)
    return path
