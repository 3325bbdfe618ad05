"""Simulator throughput: clips per second with one process and with ``workers``.

Renders ``--clips`` clips (default 64) of ``--frames`` x ``--size`` px into a
temporary folder twice (workers=1, then workers=N), prints clips/s for each,
their ratio, and the extrapolated time for a ``--target``-clip dataset
(default 1,600). Reports numbers, never passes or fails on wall time.

    python benchmarks/bench_simulator.py [--clips 64] [--workers 2] [--frames 16] [--size 64]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data.rgbd_sim import generate_dataset  # noqa: E402


def _run(n: int, workers: int, frames: int, size: int, degrade: bool) -> float:
    with tempfile.TemporaryDirectory(prefix="fl-bench-sim-") as tmp:
        t0 = time.perf_counter()
        generate_dataset(Path(tmp) / "sim", n_clips=n, seed=0, frames=frames, size=size, degrade=degrade,
                         workers=workers, progress=False)
        return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--target", type=int, default=1600, help="dataset size to extrapolate to")
    ap.add_argument("--no-degrade", action="store_true")
    args = ap.parse_args(argv)
    degrade = not args.no_degrade
    print(f"simulator: {args.clips} clips of {args.frames}x{args.size}x{args.size} "
          f"(degraded depth: {degrade}), {os.cpu_count()} CPUs visible")
    t1 = _run(args.clips, 1, args.frames, args.size, degrade)
    r1 = args.clips / t1
    print(f"  {'workers=1':<12}: {t1:7.2f} s  {r1:6.1f} clips/s")
    tn = _run(args.clips, args.workers, args.frames, args.size, degrade)
    rn = args.clips / tn
    print(f"  {'workers=' + str(args.workers):<12}: {tn:7.2f} s  {rn:6.1f} clips/s")
    print(f"  speed-up workers={args.workers} / workers=1: {rn / r1:.2f}x")
    print(f"  extrapolated {args.target} clips: {args.target / r1 / 60:.1f} min with 1 worker, "
          f"{args.target / rn / 60:.1f} min with {args.workers}")


if __name__ == "__main__":
    main()
