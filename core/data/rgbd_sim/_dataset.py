"""A simulated dataset on disk: balanced clips, their files, the manifest, resumable and parallel.

:func:`generate_dataset` renders clip ``i`` from a seed derived from
``(seed, i)`` with a label from seeded blocks of four, so the arrays do not
depend on how many worker processes render them, and any prefix of the clips
is balanced. The output is the same manifest format as a user's own RGB-D data.
"""
from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from core.data.rgbd_sim._clip import run_simulation
from core.data.rgbd_sim._site import CLASSES, DURATION_S, SIMULATOR_VERSION
from core.errors import ConfigError, DataError, FusionLensError
from core.io import atomic_path, read_json, write_json, write_parquet


def _clip_label(seed: int, i: int) -> str:
    """Labels come in seeded blocks of four (one per class), so any prefix of the
    clip list is balanced to within one clip per class, whatever ``n_clips``."""
    perm = np.random.default_rng(np.random.SeedSequence([int(seed), i // len(CLASSES), 7])).permutation(len(CLASSES))
    return CLASSES[int(perm[i % len(CLASSES)])]


def _clip_seed(seed: int, i: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(i), 11]).generate_state(1, np.uint32)[0])


def _split(labels: Sequence[str], seed: int) -> list[str]:
    """Seeded stratified 70/15/15 split (val and test get one clip each from any
    class with at least three)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 13]))
    out = ["train"] * len(labels)
    by_class: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by_class.setdefault(lab, []).append(i)
    for lab in sorted(by_class):
        idx = np.array(by_class[lab])
        rng.shuffle(idx)
        m = len(idx)
        n_test = int(round(0.15 * m))
        n_val = int(round(0.15 * m))
        if m >= 3:
            n_test, n_val = max(1, n_test), max(1, n_val)
        for j in idx[:n_test]:
            out[j] = "test"
        for j in idx[n_test:n_test + n_val]:
            out[j] = "val"
    return out


def read_clip_meta(path: Path, label: str, clip_seed: int, frames: int, size: int,
                   degrade: bool) -> dict[str, Any] | None:
    """The ``meta`` of the clip file at ``path`` when it was made with these settings by this simulator
    version, else None (and a file that is there but is not such a clip is deleted, to be rendered again)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
        same = (meta["seed"] == clip_seed and meta["label"] == label and meta["frames"] == frames
                and meta["size"] == size and (meta["degrade"] is not None) == degrade
                and meta["simulator_version"] == SIMULATOR_VERSION)
        if same:
            return meta
    except Exception:       # a file we cannot read back is rendered again
        pass
    path.unlink(missing_ok=True)
    return None


def write_clip(path: Path, rgb: np.ndarray, depth: np.ndarray, parts: np.ndarray, meta: dict[str, Any]) -> None:
    """One clip's ``.npz`` (depth stored as float16), written atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, rgb=rgb, depth=depth.astype(np.float16), parts=parts,
                                meta=np.array(json.dumps(meta)))


def _clip_job(job: tuple) -> dict[str, Any]:
    """Render one clip into its file (kept when one made with the same settings is there)."""
    i, label, clip_seed, path, frames, size, degrade = job
    path = Path(path)
    meta = read_clip_meta(path, label, clip_seed, frames, size, degrade)
    if meta is not None:
        return _summary(i, meta)
    clip = run_simulation(label, clip_seed, frames, size, degrade)
    meta = clip.meta
    meta["clip_index"] = i
    write_clip(path, clip.rgb, clip.depth, clip.parts, meta)
    return _summary(i, meta)


def _summary(i: int, meta: dict[str, Any]) -> dict[str, Any]:
    """The clip's row of ``clips_meta.parquet``."""
    kw = meta.get("key_worker") or {}
    return {"index": i, "label": meta["label"], "variant": meta["variant"], "reliance": meta["reliance"],
            "clip_seed": meta["seed"], "operating": meta["excavator"]["operating"],
            "arm_mode": meta["excavator"]["arm_mode"], "driving": meta["excavator"]["driving"],
            "n_workers": (1 if kw else 0) + len(meta["other_workers"]),
            "min_key_bucket_m": min(kw["bucket_dist_m"]) if kw else float("nan"),
            "min_key_cabin_m": min(kw["cabin_dist_m"]) if kw else float("nan")}


def check_settings(out: Path, settings: dict[str, Any], n_clips: int) -> None:
    """Refuse a folder rendered with other ``settings`` (``simulator.json``); record them for a new one."""
    cfg_path = out / "simulator.json"
    if cfg_path.is_file():
        old = read_json(cfg_path, what="simulator settings")
        old_cmp = {k: old.get(k) for k in settings}
        if old_cmp != settings:
            diff = ", ".join(f"{k}: {old_cmp[k]} -> {settings[k]}" for k in settings if old_cmp[k] != settings[k])
            raise DataError(f"{out} holds clips rendered with other settings ({diff})",
                            fix="pass another out_dir, or delete that folder to render it again")
    write_json(cfg_path, {**settings, "n_clips": int(n_clips)})


def recorded_duration(folder: str | os.PathLike) -> float | None:
    """The seconds every clip of a rendered folder spans (its ``simulator.json``), or None when the
    folder holds no simulator's clips (a user's own data) or the record does not say."""
    path = Path(folder) / "simulator.json"
    if not path.is_file():
        return None
    try:
        record = read_json(path, what="simulator settings")
    except (FusionLensError, OSError):  # unreadable: the duration is unknown, frame numbers are shown
        return None
    seconds = record.get("duration_s") if isinstance(record, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not np.isfinite(seconds) or seconds <= 0:
        return None
    return float(seconds)


def run_jobs(fn: Callable[[tuple], dict[str, Any]], jobs: list[tuple], *, workers: int,
             progress: bool) -> list[dict[str, Any]]:
    """``fn`` over ``jobs`` in ``workers`` processes with a tqdm bar; the results sorted by ``"index"``."""
    results: list[dict[str, Any]] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(jobs), desc="rendering clips", unit="clip")
    workers = max(1, int(workers))
    try:
        if workers == 1:
            for job in jobs:
                results.append(fn(job))
                if bar is not None:
                    bar.update(1)
        else:
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            with ctx.Pool(workers) as pool:
                for res in pool.imap_unordered(fn, jobs, chunksize=4):
                    results.append(res)
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    results.sort(key=lambda r: r["index"])
    return results


def generate_dataset(out_dir: str | os.PathLike, *, n_clips: int = 1600, seed: int = 0, frames: int = 16,
                     size: int = 64, degrade: bool = True, workers: int = 2, progress: bool = True) -> Path:
    """Render ``n_clips`` balanced clips into ``out_dir`` and return its ``manifest.csv``.

    Layout: ``clips/clip_00000.npz`` (arrays ``rgb`` T,H,W,3 uint8; ``depth``
    T,H,W float16 metres; ``parts`` T,H,W uint8 segmentation; ``meta`` JSON
    string), ``manifest.csv`` (id, label, split, group, rgb, depth; paths
    relative to the manifest), ``simulator.json`` (the generation settings) and
    ``clips_meta.parquet`` (variant, reliance and actor summary per clip).
    Resumable: clip files already present are kept; the manifest is written
    atomically once every clip exists. Deterministic: the same settings give
    identical arrays whatever ``workers``.
    """
    out = Path(out_dir)
    if n_clips < 1:
        raise ConfigError(f"n_clips={n_clips}", fix="ask for at least one clip")
    settings = {"simulator_version": SIMULATOR_VERSION, "seed": int(seed), "frames": int(frames), "size": int(size),
                "degrade": bool(degrade), "depth_dtype": "float16", "duration_s": DURATION_S}
    check_settings(out, settings, n_clips)
    clip_dir = out / "clips"
    clip_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for i in range(n_clips):
        jobs.append((i, _clip_label(seed, i), _clip_seed(seed, i), str(clip_dir / f"clip_{i:05d}.npz"),
                     int(frames), int(size), bool(degrade)))
    results = run_jobs(_clip_job, jobs, workers=workers, progress=progress)
    labels = [r["label"] for r in results]
    ids = [f"clip_{r['index']:05d}" for r in results]
    manifest = pd.DataFrame({
        "id": ids, "label": labels, "split": _split(labels, seed), "group": ids,
        "rgb": [f"clips/{i}.npz" for i in ids], "depth": [f"clips/{i}.npz" for i in ids],
    })
    meta = pd.DataFrame(results).drop(columns=["index"])
    meta.insert(0, "id", ids)
    write_parquet(out / "clips_meta.parquet", meta)
    path = out / "manifest.csv"
    with atomic_path(path) as tmp:
        manifest.to_csv(tmp, index=False)
    return path
