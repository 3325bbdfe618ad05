"""Explaining several fused runs in one process against W worker processes, as a ratio.

    .venv/bin/python benchmarks/bench_explain_workers.py [--per-class 60] [--n 60] [--runs 6] [--workers 2]
        [--repeat 1]

Builds the small seeded image + two-text experiment of ``bench_explain_reuse.py`` (four fusions over
two modality subsets, one encoder set), then explains ``--n`` test samples of its first ``--runs``
fused runs twice, each time on a fresh copy of the runs, with the tables shared between runs either
way (:func:`core.explain.explain_runs`):

* **one process** (``workers=1``, one torch thread): samples outermost, runs inside;
* **W processes** (``workers=W``): the samples dealt into ``4 W`` groups, each group explained for
  every run by one spawned one-thread process (worker start, imports and model loading included in
  the time).

Prints wall seconds, explanations per second, the ratio (W processes / one; W is perfect) and the
largest difference between the stored values (the values do not depend on the process), with the
load average beside, since a shared machine is never idle.

Measured on the 2-core build machine, idle (load average 0.6), ``--per-class 250 --n 150``: 900
explanations (6 runs x 150 samples) in 24.2 s in one process (37.2/s) and 19.4 s in two (46.4/s):
1.25x, the same stored values (largest difference 0). These games are cheap (a 16-token text encoder,
24-px images), so each worker's start (about 7 s: Python, torch, the text encoder) weighs; on the
emoji experiment (MiniLM over two texts, 14 fused runs over all modalities, 90 s) one process made
15.4 explanations/s and two 29.4/s (1.91x).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_explain_reuse import EXPERIMENT, fresh_copies, fused_runs, stored_values, train_synthetic  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-class", type=int, default=60, help="samples per class (4 classes)")
    ap.add_argument("--n", type=int, default=60, help="test samples explained per run")
    ap.add_argument("--runs", type=int, default=6, help="fused runs explained (at most the experiment's 8)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes of the parallel mode")
    ap.add_argument("--repeat", type=int, default=1, help="timings of each mode, alternated; the median is shown")
    args = ap.parse_args()
    tmp, _, trained = train_synthetic("fusionlens-workers-bench-", EXPERIMENT, args.per_class)

    import numpy as np

    from core.explain import explain_run, explain_runs

    runs = fused_runs(tmp / "runs" / "reuse")[: args.runs]
    print(f"experiment trained in {trained:.1f} s; {len(runs)} fused runs; {args.n} samples "
          f"each; one process vs {args.workers} worker processes, one torch thread each\n")
    explain_run(fresh_copies(runs[:1], "warm")[0], n=1, progress=False, workers=1)  # imports, encoder load here

    modes = {"one process": 1, f"{args.workers} processes": args.workers}
    timings: dict[str, list[float]] = {m: [] for m in modes}
    counts: dict[str, int] = {}
    loads: dict[str, float] = {}
    stored: dict[str, dict] = {}
    for rep in range(args.repeat):
        for mode in (list(modes) if rep % 2 == 0 else list(modes)[::-1]):
            copies = fresh_copies(runs, f"w{modes[mode]}r{rep}")
            loads[mode] = os.getloadavg()[0]
            start = time.perf_counter()
            reports = explain_runs(copies, n=args.n, progress=False, workers=modes[mode])
            timings[mode].append(time.perf_counter() - start)
            counts[mode] = sum(r["computed"] for r in reports)
            stored[mode] = stored_values(copies, lambda run: run.name.split("-", 1)[1])  # less the copy's prefix

    one, many = list(modes)
    assert counts[one] == counts[many], counts
    print(f"{'':14s} {'explanations':>13s} {'seconds':>8s} {'per second':>11s} {'load avg':>9s}")
    for mode in modes:
        seconds = statistics.median(timings[mode])
        print(f"{mode:14s} {counts[mode]:13d} {seconds:8.2f} {counts[mode] / seconds:11.2f} {loads[mode]:9.1f}")
    ratio = statistics.median(timings[one]) / statistics.median(timings[many])
    print(f"\n{many} / one process: {ratio:.2f}x explanations per second ({args.workers:.0f}x is perfect)")
    phi = max(float(np.max(np.abs(stored[many][r]["phi"] - stored[one][r]["phi"]))) for r in stored[one])
    share = max(float(np.max(np.abs(stored[many][r]["shares"] - stored[one][r]["shares"]))) for r in stored[one])
    print(f"largest difference between the modes: Shapley value {phi:.3g}, share {share:.3g}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
