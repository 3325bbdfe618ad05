"""Explaining several fused runs with and without embedding tables shared across runs, as a ratio.

    .venv/bin/python benchmarks/bench_explain_reuse.py [--per-class 40] [--n 20] [--runs 6] [--method auto]

Builds a small seeded image + two-text experiment (the tests' synthetic manifest; MultConcat, concat,
late-average and late-weighted fusions over image + title + description and image + title, every
fused run's encoders from the same three unimodal runs), then explains ``--n`` test samples of the
first ``--runs`` fused runs twice, each time on a fresh copy of the runs, in one process with one
torch thread (one core):

* **without** sharing: :func:`core.explain.explain_runs` with ``share=False`` (each run encodes
  every masked variant of every sample itself, as explaining run after run did before);
* **with** sharing: ``share=True`` (samples outermost, runs inside; a run whose encoder of a
  modality is an earlier run's reuses that encoder's embeddings of the sample's masked variants).

Prints samples per second per core (samples = runs x n, or x the test split if smaller), encoder
rows (masked variants encoded) and head rows, the ratios (with / without), and the largest difference between the two stored Shapley
values and shares (float32 rounding at most: the values are the same). The order is alternated
(``--repeat`` times) and the median taken; the load average is printed beside, since the build
machine is shared.

Measured on the shared 2-core build machine (load average 2.3), ``--per-class 60 --n 30 --runs 8
--repeat 2``: 240 explanations (8 runs x 30 samples, method auto = recombined), 27,120 encoder rows
and 19.7 s without sharing (12.2 samples/s per core) against 5,220 rows and 8.4 s with (28.6
samples/s per core): 5.2x fewer encoder rows, 2.35x the throughput; every stored value and share
identical (largest difference 0). What is left is the fusion heads' passes (218,640 head rows either
way), each run's inputs and the writes.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._explain import fused_runs, stored_values  # noqa: E402
from tests._experiments import image_text_experiment, write_experiment  # noqa: E402

#: the tests' image + two-text experiment: four fusions over two modality subsets, one encoder set
EXPERIMENT = image_text_experiment(
    "reuse", methods=["multconcat", "concat"], late=["late-average", "late-weighted"],
    subsets=[["image", "title", "description"], ["image", "title"]],
    image_kwargs={"image_size": 24, "width": 8, "out_dim": 32}, max_length=16,
    train={"unimodal": {"epochs": 2, "batch_size": 32}, "fusion": {"epochs": 4, "batch_size": 32, "dim": 32}})


def fresh_copies(runs: list[Path], prefix: str) -> list[Path]:
    """Copies of the runs (without explanations) beside them, so every timing starts from nothing."""
    out = []
    for run in runs:
        dest = run.parent / f"{prefix}-{run.name}"
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(run, dest, ignore=shutil.ignore_patterns("explanations"))
        out.append(dest)
    return out


def train_synthetic(prefix: str, experiment: dict, per_class: int) -> tuple[Path, list[Path], float]:
    """The tests' synthetic manifest (4 classes, ``per_class`` samples each) and ``experiment`` trained on it,
    offline and on one torch thread, in a fresh temporary folder: (that folder, the trained run folders,
    seconds)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ["FUSIONLENS_THREADS"] = "1"
    from core.data.synthetic import make_synthetic_manifest
    from core.experiment import load_experiment
    from core.train import train_experiment

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    make_synthetic_manifest(tmp / "data", n_classes=4, per_class=per_class)
    exp_path = write_experiment(tmp, experiment)
    t0 = time.perf_counter()
    run_dirs = train_experiment(load_experiment(exp_path), tmp / "runs", progress=False)
    return tmp, list(run_dirs), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-class", type=int, default=40, help="samples per class (4 classes)")
    ap.add_argument("--n", type=int, default=20, help="test samples explained per run")
    ap.add_argument("--runs", type=int, default=6, help="fused runs explained (at most the experiment's 8)")
    ap.add_argument("--method", default="auto", help="explain method (default: auto, the build's)")
    ap.add_argument("--repeat", type=int, default=1, help="timings of each mode, alternated; the median is shown")
    args = ap.parse_args()
    tmp, _, trained = train_synthetic("fusionlens-reuse-bench-", EXPERIMENT, args.per_class)

    import numpy as np

    from core.explain import ExplainSettings, explain_run, explain_runs

    runs = fused_runs(tmp / "runs" / "reuse")[: args.runs]
    settings = ExplainSettings(method=args.method)
    print(f"experiment trained in {trained:.1f} s; {len(runs)} fused runs "
          f"({', '.join(r.name for r in runs)}); {args.n} samples each, method {args.method}, one torch thread\n")
    explain_run(fresh_copies(runs[:1], "warm")[0], settings, n=1, progress=False)  # imports, encoder load

    timings: dict[str, list[float]] = {"without": [], "with": []}
    rows: dict[str, int] = {}
    stored: dict[str, dict] = {}
    for rep in range(args.repeat):
        for mode in (("without", "with") if rep % 2 == 0 else ("with", "without")):
            copies = fresh_copies(runs, f"{mode}{rep}")
            load = os.getloadavg()[0]
            start = time.perf_counter()
            reports = explain_runs(copies, settings, n=args.n, share=mode == "with", progress=False)
            timings[mode].append(time.perf_counter() - start)
            rows[mode] = sum(r["encoder_rows"] for r in reports)
            rows[f"{mode} load"] = load
            stored[mode] = stored_values(copies, lambda run: run.name.split("-", 1)[1])
            rows[f"{mode} samples"] = sum(r["computed"] for r in reports)  # n, or every test sample if fewer

    samples = rows["with samples"]
    assert rows["without samples"] == samples
    print(f"{'':10s} {'samples':>8s} {'seconds':>8s} {'samples/s/core':>15s} {'encoder rows':>13s} "
          f"{'head rows':>10s} {'load avg':>9s}")
    for mode in ("without", "with"):
        seconds = statistics.median(timings[mode])
        head = sum(v["head_rows"] for v in stored[mode].values())
        print(f"{mode:10s} {samples:8d} {seconds:8.2f} {samples / seconds:15.2f} {rows[mode]:13d} {head:10d} "
              f"{rows[f'{mode} load']:9.1f}")
    speed = statistics.median(timings["without"]) / statistics.median(timings["with"])
    print(f"\nwith / without: {speed:.2f}x samples/s per core, {rows['with'] / max(1, rows['without']):.3f}x "
          f"encoder rows ({rows['without'] / max(1, rows['with']):.2f}x fewer)")
    phi = max(float(np.max(np.abs(stored["with"][r]["phi"] - stored["without"][r]["phi"]))) for r in stored["with"])
    share = max(float(np.max(np.abs(stored["with"][r]["shares"] - stored["without"][r]["shares"])))
                for r in stored["with"])
    print(f"largest difference with / without: Shapley value {phi:.3g}, share {share:.3g}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
