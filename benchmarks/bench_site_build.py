"""Time the default `site` build (five modalities) on this machine, and how its rendering scales with workers.

    .venv/bin/python benchmarks/bench_site_build.py [--keep-cache] [--skip-build] [--scaling-clips 48]

1. Rendering and synthesis scaling: ``--scaling-clips`` clips of the site
   (RGB-D, audio, location, trajectories) rendered into fresh folders with 1
   and with 2 worker processes; prints clips per second and the speed-up of 2
   workers over 1 measured in the same run (the RGB-D rendering alone, with
   the same clips, as the baseline of what the three new modalities add).
2. The whole default build of ``experiments/site.toml`` (``fusionlens build``:
   render, prepare, train every run, results, then the precompute steps:
   projections, explanations, blame, robustness, each within its
   ``[precompute]`` budget; ``--skip-precompute`` stops after results) into a
   fresh runs directory; without ``--keep-cache`` the clips are rendered afresh
   too. Prints wall time per step, the ratio of render + training and of the
   whole build to the 8-minute target, and the results table.

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
    ap.add_argument("--skip-precompute", action="store_true", help="prepare, train and results only")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fusionlens-site-bench-"))
    if not args.keep_cache:
        os.environ["FUSIONLENS_CACHE"] = str(tmp / "cache")
    _scaling(tmp, args.scaling_clips)
    if args.skip_build:
        return
    from benchmarks._build import timed_build

    timed_build("site", tmp / "runs", TARGET_S, skip_precompute=args.skip_precompute)


if __name__ == "__main__":
    main()
