"""Robustness tables: time per run and per experiment, shared embeddings against re-encoding per run.

    .venv/bin/python benchmarks/bench_robustness.py [--runs-dir runs --experiment emoji]
        [--samples 500] [--levels 11] [--threads 2]

Without ``--experiment`` it builds the tiny synthetic image + title + description experiment of
the tests (``--per-class`` samples per class, 4 classes) in a temporary folder and measures that.
In one process, on the same runs and settings (no explanations of perturbed inputs, so only the
tables are timed):

* shared: ``robustness_runs`` over every run at once, as ``fusionlens robustness`` and the build do:
  one embedding bank per experiment, a perturbed modality encoded once per (unimodal encoder,
  noise, level) and reused by every head sharing that encoder;
* per run: the same tables with one bank per run, i.e. every run encodes its own perturbed inputs
  (the baseline without reuse).

Prints wall seconds per run and for the experiment, the encodings each made, and the ratio
(per run / shared). Wall time on a shared machine varies; the ratio and the encoding counts are
what to compare.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _tiny(folder: Path, per_class: int) -> tuple[Path, str]:
    from core.experiment import load_experiment
    from core.train import train_experiment
    from tests._experiments import write_tiny_experiment

    exp_path = write_tiny_experiment(folder, per_class=per_class, changes={"fusion": {"dropout_runs": ["multconcat"]}})
    train_experiment(load_experiment(exp_path), folder / "runs", progress=False)
    return folder / "runs", "tiny"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs-dir", default=os.environ.get("FUSIONLENS_RUNS", "runs"))
    ap.add_argument("--experiment", help="a built experiment under --runs-dir (default: build the tiny one)")
    ap.add_argument("--per-class", type=int, default=30,
                    help="samples per class of the tiny experiment (4 classes; 900 gives an emoji-sized test split)")
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--levels", type=int, default=11)
    ap.add_argument("--no-baseline", action="store_true", help="only the shared bank (the baseline is slow on a "
                                                               "large test split)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the encoders and heads (on a busy "
                                                          "2-core machine one thread is fastest)")
    args = ap.parse_args()
    os.environ["FUSIONLENS_THREADS"] = str(args.threads)

    import torch

    torch.set_num_threads(args.threads)
    from core.catalog import list_runs
    from core.robustness import RobustnessSettings, robustness_runs

    tmp = None
    if args.experiment:
        root, name = Path(args.runs_dir), args.experiment
    else:
        tmp = tempfile.TemporaryDirectory()
        t0 = time.perf_counter()
        root, name = _tiny(Path(tmp.name), args.per_class)
        print(f"built the tiny experiment in {time.perf_counter() - t0:.1f} s")
    runs = list_runs(root / name, root)
    settings = RobustnessSettings(samples=args.samples, levels=args.levels, share_samples=0)

    t0 = time.perf_counter()
    shared = robustness_runs(runs, settings, force=True, share_run=None)
    shared_s = time.perf_counter() - t0
    per_run, encodings, per_s = {r.name: float("nan") for r in runs}, 0, 0.0
    for run in [] if args.no_baseline else runs:
        t1 = time.perf_counter()
        out = robustness_runs([run], settings, force=True, share_run=None)
        per_run[run.name] = time.perf_counter() - t1
        encodings += out["encodings"]
    per_s = sum(per_run.values())
    import json

    n = json.loads((runs[0] / "robustness.json").read_text())["n"]
    print(f"experiment {name}: {len(runs)} runs, n = {n} test samples, {args.levels} levels, "
          f"{args.threads} thread(s)")
    print(f"{'run':45s} {'shared s':>9s} {'per-run s':>10s}")
    for run in runs:
        print(f"{run.name:45s} {shared['per_run'][run.name]:9.3f} {per_run[run.name]:10.3f}")
    print(f"whole experiment, shared bank: {shared_s:.2f} s ({shared['encodings']} encodings, "
          f"{shared['encode_seconds']:.2f} s encoding)")
    if not args.no_baseline:
        print(f"whole experiment, a bank per run: {per_s:.2f} s ({encodings} encodings)")
        print(f"ratio per run / shared: {per_s / max(shared_s, 1e-9):.2f}x time, "
              f"{encodings / max(shared['encodings'], 1):.2f}x encodings")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
