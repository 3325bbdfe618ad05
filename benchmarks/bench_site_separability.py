"""What each site modality carries: per-modality classifiers on simple features (a measurement, not a test).

Two measurements on clips of ``--frames`` x ``--size`` px (default 8 x 32):

1. four-class top-1 of each new modality alone (audio, location, trajectory),
   overall and per scenario variant, on the first ``--clips`` clips (default
   400) of ``generate_site_dataset`` (5-fold cross-validation);
2. for each variant and its nearest look-alike (``docs/SIMULATOR.md``,
   "Reliance over the five modalities"), the balanced accuracy of telling the
   two apart with each modality alone, on ``--per-variant`` clips of each
   (default 40).

Classifiers: the better of a standardised logistic regression and a random
forest. Features: audio, the mean and standard deviation over time of 32
log-mel bands; location, the ``loc_*`` columns; trajectory, each channel's
start, end, mean and standard deviation after filling the gaps, plus the
excavator's change of distance to the track and displacement, and the first
worker's displacement, path length and distance to the machine.

    python benchmarks/bench_site_separability.py [--clips 400] [--per-variant 40] [--folder DIR]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data.rgbd_sim import (LOCATION_COLUMNS, VARIANTS, clip_variant, generate_site_dataset,  # noqa: E402
                                simulate_site)

PAIRS = [("walk_under", "behind_bucket"), ("stand_under", "behind_bucket"), ("stand_under", "post_under_bucket"),
         ("arm_moving", "front_of_cabin"), ("arm_still", "front_of_cabin"), ("arm_still", "idle_near_cabin"),
         ("arm_moving", "idle_near_cabin"), ("drive_to_track", "drive_parallel_or_away"), ("arm_moving", "clear")]


def audio_features(y: np.ndarray, rate: int) -> np.ndarray:
    import librosa

    mel = librosa.feature.melspectrogram(y=np.asarray(y, np.float32), sr=rate, n_fft=1024, hop_length=256,
                                         n_mels=32, fmin=20, fmax=rate / 2)
    log = np.log(mel + 1e-8)
    return np.concatenate([log.mean(axis=1), log.std(axis=1)])


def trajectory_features(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64).copy()
    for c in range(x.shape[1]):              # fill the gaps as the timeseries kind does
        bad = np.isnan(x[:, c])
        if bad.any() and (~bad).any():
            x[bad, c] = np.interp(np.flatnonzero(bad), np.flatnonzero(~bad), x[~bad, c])
    ex, ey, w = x[:, 4], x[:, 5], x[:, 0:2]
    dist = np.hypot(w[:, 0] - ex, w[:, 1] - ey)
    extra = [np.abs(ey[-5:]).mean() - np.abs(ey[:5]).mean(),
             np.hypot(ex[-5:].mean() - ex[:5].mean(), ey[-5:].mean() - ey[:5].mean()),
             np.hypot(*(w[-5:].mean(axis=0) - w[:5].mean(axis=0))), np.abs(np.diff(w, axis=0)).sum(),
             dist.mean(), dist[-10:].mean()]
    return np.concatenate([x[:5].mean(axis=0), x[-5:].mean(axis=0), x.mean(axis=0), x.std(axis=0), extra])


def _models():
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {"logreg": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)),
            "forest": lambda: RandomForestClassifier(300, min_samples_leaf=2, random_state=0, n_jobs=1)}


def four_class(folder: Path) -> pd.DataFrame:
    import soundfile
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    df = pd.read_csv(folder / "manifest.csv").merge(pd.read_parquet(folder / "clips_meta.parquet")[["id", "variant"]],
                                                     on="id")
    feats = {"audio": np.stack([audio_features(*soundfile.read(folder / p, dtype="float32")) for p in df["audio"]]),
             "location": df[list(LOCATION_COLUMNS)].to_numpy(float),
             "trajectory": np.stack([trajectory_features(np.load(folder / p)) for p in df["trajectory"]])}
    y, variant = df["label"].to_numpy(), df["variant"].to_numpy()
    rows = {}
    for name, make in _models().items():
        for mod, x in feats.items():
            ok = cross_val_predict(make(), x, y, cv=StratifiedKFold(5, shuffle=True, random_state=0)) == y
            rows[(name, mod)] = {"top1": ok.mean(), **{v: ok[variant == v].mean() for v in sorted(set(variant))}}
    return pd.DataFrame(rows).T


def pairwise(per_variant: int, frames: int, size: int) -> pd.DataFrame:
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    rows = []
    for label, variants in VARIANTS.items():
        for v in variants:
            seed, got = 1000, 0
            while got < per_variant:
                if clip_variant(label, seed) == v:
                    c = simulate_site(label, seed, frames=frames, size=size)
                    rows.append((v, audio_features(c.audio, c.audio_rate),
                                 np.array([c.location[k] for k in LOCATION_COLUMNS]),
                                 trajectory_features(c.trajectory)))
                    got += 1
                seed += 1
    variant = np.array([r[0] for r in rows])
    feats = {"audio": np.stack([r[1] for r in rows]), "location": np.stack([r[2] for r in rows]),
             "trajectory": np.stack([r[3] for r in rows])}
    out = {}
    for a, b in PAIRS:
        m = (variant == a) | (variant == b)
        for mod, x in feats.items():
            out[(f"{a} vs {b}", mod)] = max(
                balanced_accuracy_score(variant[m], cross_val_predict(
                    make(), x[m], variant[m], cv=StratifiedKFold(5, shuffle=True, random_state=0)))
                for make in _models().values())
    return pd.Series(out).unstack()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=400)
    ap.add_argument("--per-variant", type=int, default=40)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--folder", type=Path, default=None, help="render into (or reuse) this folder")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    with tempfile.TemporaryDirectory(prefix="fl-bench-site-") as tmp:
        folder = args.folder or Path(tmp) / "site"
        t0 = time.perf_counter()
        generate_site_dataset(folder, n_clips=args.clips, seed=0, frames=args.frames, size=args.size, workers=1,
                              progress=False)
        print(f"{args.clips} clips of {args.frames}x{args.size}px rendered in {time.perf_counter() - t0:.1f} s")
        print("four-class top-1 of each modality alone (5-fold CV), overall and per variant:")
        print(four_class(folder).round(2).to_string())
    print(f"\nvariant vs its look-alike, balanced accuracy ({args.per_variant} clips per variant, 5-fold CV, "
          "best of logreg/forest; 0.5 is chance):")
    print(pairwise(args.per_variant, args.frames, args.size).round(2).to_string())


if __name__ == "__main__":
    main()
