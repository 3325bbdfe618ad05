"""Cost of the site's other modalities (audio, tag location, trajectories) per clip, next to its RGB-D.

For ``--clips`` clips (default 24, the four classes in turn) of ``--frames`` x
``--size`` px, times ``simulate`` (the RGB-D clip) and ``simulate_site`` (the
same clip plus audio, location and trajectory), each the best of ``--repeat``
runs in one process, and prints the medians: the RGB-D clip, the added
modalities (the difference) and their ratio. Reports numbers, never passes or
fails on wall time.

    python benchmarks/bench_site_sim.py [--clips 24] [--frames 16] [--size 64] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data.rgbd_sim import CLASSES, simulate, simulate_site  # noqa: E402


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    kw = {"frames": args.frames, "size": args.size}
    rgbd, site = [], []
    for i in range(args.clips):
        label = CLASSES[i % len(CLASSES)]
        rgbd.append(_best(lambda: simulate(label, i, **kw), args.repeat))
        site.append(_best(lambda: simulate_site(label, i, **kw), args.repeat))
    rgbd_ms, site_ms = np.median(rgbd) * 1e3, np.median(site) * 1e3
    extra = np.median(np.array(site) - np.array(rgbd)) * 1e3
    print(f"site simulator: {args.clips} clips of {args.frames}x{args.size}x{args.size}, CPU time, best of "
          f"{args.repeat}, {os.cpu_count()} CPUs visible, load average {os.getloadavg()[0]:.1f}")
    print(f"  RGB-D clip (simulate)              : {rgbd_ms:7.1f} ms")
    print(f"  five modalities (simulate_site)    : {site_ms:7.1f} ms")
    print(f"  audio + location + trajectory      : {extra:7.1f} ms  ({extra / rgbd_ms:.2f}x the RGB-D clip)")


if __name__ == "__main__":
    main()
