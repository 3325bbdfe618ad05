"""Time the default RGB-D build on this machine, and each video encoder's inference per clip.

    .venv/bin/python benchmarks/bench_rgbd_build.py [--keep-cache] [--skip-build] [--skip-precompute]

Builds `experiments/rgbd.toml` (``fusionlens build``: default encoder set, every
fusion method, then the precompute steps within the experiment's build budget)
into a fresh runs directory; without --keep-cache the simulated clips are
rendered afresh too. Prints wall time per step against the 8-minute target
(the whole build, and simulation + training alone), the results table, and
the inference time per clip of every registered video encoder (the
experiment's input size, batch 8, RGB and depth) as a ratio to SlowFast
measured in the same run.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep-cache", action="store_true", help="reuse already rendered clips")
    ap.add_argument("--skip-build", action="store_true", help="only the per-encoder inference timings")
    ap.add_argument("--skip-precompute", action="store_true", help="prepare, train and results only")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fusionlens-rgbd-bench-"))
    if not args.keep_cache:
        os.environ["FUSIONLENS_CACHE"] = str(tmp / "cache")
    import numpy as np
    import torch

    from core.encoders import create_encoder, list_encoders
    from core.experiment import load_experiment

    exp = load_experiment("rgbd")
    if not args.skip_build:
        from benchmarks._build import timed_build

        timed_build("rgbd", tmp / "runs", 480.0, skip_precompute=args.skip_precompute)

    kw = exp.encoder_sets[0].specs["rgb"]["kwargs"]
    rng = np.random.default_rng(0)
    clips = {3: [rng.integers(0, 256, (16, 64, 64, 3), dtype=np.uint8) for _ in range(8)],
             1: [rng.uniform(1, 40, (16, 64, 64)).astype(np.float32) for _ in range(8)]}
    times = {}
    for name in list_encoders("video"):
        for ch in (3, 1):
            torch.manual_seed(0)
            enc = create_encoder(name, **{**kw, "in_channels": ch}).eval()
            inputs = enc.prepare(clips[ch])
            with torch.no_grad():
                enc(inputs)
                best = float("inf")
                for _ in range(3):
                    t = time.perf_counter()
                    enc(inputs)
                    best = min(best, time.perf_counter() - t)
            times[(name, ch)] = 1000 * best / len(clips[ch])
    print(f"\ninference per clip ({kw['num_frames']} frames x {kw['image_size']} px, batch 8, best of 3):")
    print(f"{'encoder':12s} {'RGB ms':>8s} {'depth ms':>9s} {'x slowfast (RGB)':>17s}")
    for name in list_encoders("video"):
        print(f"{name:12s} {times[(name, 3)]:8.2f} {times[(name, 1)]:9.2f} "
              f"{times[(name, 3)] / times[('slowfast', 3)]:17.2f}")


if __name__ == "__main__":
    main()
