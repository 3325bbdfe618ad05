"""Time the default `site` build (five modalities) on this machine, and how its rendering scales with workers.

    .venv/bin/python benchmarks/bench_site_build.py [--keep-cache] [--skip-build] [--scaling-clips 48]

1. Rendering and synthesis scaling: ``--scaling-clips`` clips of the site
   (RGB-D, audio, location, trajectories) rendered into fresh folders with 1
   and with 2 worker processes; prints clips per second and the speed-up of 2
   workers over 1 measured in the same run (the RGB-D rendering alone, with
   the same clips, as the baseline of what the three new modalities add).
2. The whole default build of ``experiments/site.toml`` (render, prepare,
   train every run) into a fresh runs directory; without ``--keep-cache`` the
   clips are rendered afresh too. Prints wall time per phase against the
   8-minute target (as a ratio) and the results table.

Reports numbers; never passes or fails on wall time.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_S = 480.0


def _scaling(tmp: Path, n: int) -> None:
    from core.data.rgbd_sim import generate_dataset, generate_site_dataset

    print(f"rendering {n} clips (16 frames x 64 px; the site adds 4 s of audio, 7 location columns, a trajectory)")
    print(f"{'what':28s} {'workers':>7s} {'seconds':>8s} {'clips/s':>8s} {'speed-up':>9s}")
    for what, fn in (("RGB-D only (baseline)", generate_dataset), ("site: RGB-D + 3 modalities", generate_site_dataset)):
        base = None
        for workers in (1, 2):
            out = tmp / f"scaling-{fn.__name__}-{workers}"
            t0 = time.perf_counter()
            fn(out, n_clips=n, seed=0, workers=workers, progress=False)
            dt = time.perf_counter() - t0
            base = base or dt
            print(f"{what:28s} {workers:7d} {dt:8.1f} {n / dt:8.1f} {base / dt:9.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep-cache", action="store_true", help="reuse already rendered clips for the build")
    ap.add_argument("--skip-build", action="store_true", help="only the rendering scaling")
    ap.add_argument("--scaling-clips", type=int, default=48)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fusionlens-site-bench-"))
    if not args.keep_cache:
        os.environ["FUSIONLENS_CACHE"] = str(tmp / "cache")
    _scaling(tmp, args.scaling_clips)
    if args.skip_build:
        return
    import torch

    from core.data import prepare_dataset
    from core.experiment import load_experiment
    from core.results import format_results, save_results
    from core.train import train_experiment

    exp = load_experiment("site")
    root = tmp / "runs"
    t0 = time.perf_counter()
    prepare_dataset(exp, root, progress=False)
    t_prep = time.perf_counter() - t0
    train_experiment(exp, root, progress=False)
    total = time.perf_counter() - t0
    frame, _ = save_results(root / exp.name)
    print(format_results(frame))
    print(f"\nsite build wall time: {total:.1f} s (render/prepare {t_prep:.1f} s, training {total - t_prep:.1f} s); "
          f"target {TARGET_S:.0f} s -> ratio {total / TARGET_S:.2f} of the budget; {torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
