"""Explaining every fused run of a built experiment: passes of 8 runs (before) against one pass, as a ratio.

    .venv/bin/python benchmarks/bench_explain_experiment.py [--experiment runs/emoji] [--n 30] [--workers 2]

``fusionlens explain <experiment>`` explains its runs sample by sample, and runs whose encoder of a
modality is the same lend each other that encoder's embeddings of a sample's masked variants
(:class:`core.explain.SharedTables`). Until this benchmark's change the runs were taken in passes of 8, so
an experiment of 53 fused runs (emoji) encoded every sample's masked texts 7 times. Now a pass holds every
run whose stored weights fit in ``core.explain.PASS_WEIGHT_BYTES`` (all of emoji's), and a sample's raw
items are loaded once for all the runs.

On a fresh copy of the experiment (``--experiment``, default the demo build ``runs/emoji``: build it with
``python -m core build emoji``) this explains ``--n`` seeded test samples of every fused run:

* **passes of 8**: :func:`core.explain.explain_runs` called on consecutive groups of 8 runs (what one call
  did before);
* **one pass**: one call on every fused run;
* **one pass, W processes** (``--workers W`` > 1): the same call with ``workers=W``.

Each mode starts from a fresh copy, on one torch thread per process. Prints explanations per second, the
ratios against passes of 8 and the largest difference between the stored values of the modes (they are the
same: every sample's values depend only on the sample and the settings).

Measured on the 2-core build machine, idle, emoji (53 fused runs):

* ``--n 30 --workers 2``: passes of 8, 1,590 explanations in 143.4 s (11.1 /s); one pass 43.2 s (36.8 /s,
  **3.32x**); one pass in 2 processes 72.6 s (21.9 /s, 1.97x: with 8 groups of about 4 samples, each job's
  set-up and writes for 53 runs outweighed the work; a group now holds at least 32 samples);
* ``--n 120 --workers 2 --skip-passes``: one pass 6,360 explanations in 183.7 s (34.6 /s); 2 processes
  134.5 s (47.3 /s, 1.37x, with 3 groups for 2 workers; now as many groups for each worker).

The stored values were the same in every mode (largest difference 0).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._explain import built_experiment, fresh_experiment_copy, fused_runs, stored_values  # noqa: E402

#: runs per call in the "passes of 8" mode: the pass size before this benchmark's change
OLD_PASS = 8


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experiment", default="runs/emoji", help="a built experiment folder (default: runs/emoji)")
    ap.add_argument("--n", type=int, default=30, help="seeded test samples explained per run")
    ap.add_argument("--workers", type=int, default=1, help="also time one pass in this many processes (> 1)")
    ap.add_argument("--skip-passes", action="store_true",
                    help="do not time passes of 8 (the slow baseline): ratios are then against one pass")
    args = ap.parse_args()
    exp_dir = built_experiment(args.experiment)
    import numpy as np

    from core.explain import explain_runs

    tmp = Path(tempfile.mkdtemp(prefix="fusionlens-explain-experiment-"))
    names = [r.name for r in fused_runs(exp_dir)]
    print(f"{exp_dir}: {len(names)} fused runs, {args.n} seeded test samples each, one torch thread per process\n")
    warm = fresh_experiment_copy(exp_dir, tmp / "warm" / exp_dir.name)
    explain_runs([warm / names[0]], n=1, progress=False, workers=1)  # imports, the text encoder's first load

    modes = [("passes of 8", 1, OLD_PASS)] * (not args.skip_passes) + [("one pass", 1, None)]
    if args.workers > 1:
        modes.append((f"one pass, {args.workers} processes", args.workers, None))
    results = {}
    for label, workers, per_call in modes:
        copy = fresh_experiment_copy(exp_dir, tmp / label.replace(" ", "-").replace(",", "") / exp_dir.name)
        runs = [copy / n for n in names]
        load = os.getloadavg()[0]
        start = time.perf_counter()
        reports = []
        for i in range(0, len(runs), per_call or len(runs)):
            reports += explain_runs(runs[i:i + (per_call or len(runs))], n=args.n, progress=False, workers=workers)
        seconds = time.perf_counter() - start
        results[label] = (sum(r["computed"] for r in reports), seconds, load, stored_values(runs))

    first = next(iter(results))
    base = results[first][1]
    print(f"{'mode':28s} {'explanations':>12s} {'seconds':>8s} {'per second':>10s} {'vs ' + first:>15s} "
          f"{'load avg':>9s}")
    for label, (count, seconds, load, _) in results.items():
        print(f"{label:28s} {count:12d} {seconds:8.1f} {count / seconds:10.1f} {base / seconds:14.2f}x {load:9.1f}")
    ref = results[first][3]
    for label, (*_, values) in results.items():
        if label == first:
            continue
        phi = max(float(np.max(np.abs(values[r]["phi"] - ref[r]["phi"]), initial=0.0)) for r in ref)
        share = max(float(np.max(np.abs(values[r]["shares"] - ref[r]["shares"]), initial=0.0)) for r in ref)
        print(f"largest difference, {label} vs {first}: Shapley value {phi:.3g}, share {share:.3g}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
