"""Fusion-head training time with one vs two torch threads, without and with a background CPU load.

    .venv/bin/python benchmarks/bench_threads.py [--per-class 200] [--epochs 30] [--methods multconcat concat ...]

Builds a small seeded image + two-text experiment (the synthetic manifest of
the tests, emoji-like sizes: a 128-d CNN image embedding and two 384-d MiniLM
text embeddings, about 840 training samples), trains its unimodal runs once,
then trains the same fusion heads again and again (``train --run NAME --force``)
with ``FUSIONLENS_THREADS=head=1`` and ``head=2``, alternating, first on the
machine as it is, then with one busy-looping process per core in the background.
Early stopping is off (patience = epochs), so every fit does the same work.
Prints each head's training seconds and the ratio 2 threads / 1 thread per
condition; the load average is printed with each condition (a shared machine is
never idle).

Measured on the shared 2-core build machine (load average 6-8 from other jobs),
three heads over image + title + description, 1,200 samples, 30 epochs, about
9 minutes in all: two threads took 10-18x as long as one as the machine was
(all heads 101 s vs 7.6 s) and 7-33x with two busy processes added (226 s vs
12.3 s), with the same test top-1.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

EXPERIMENT = """
name = "threads"
seed = 0
[dataset]
source = "manifest"
manifest = "data/manifest.csv"
[modalities.image]
kind = "image"
encoder = "small-cnn"
encoder_kwargs = {{ image_size = 24, width = 8, out_dim = 128 }}
[modalities.title]
kind = "text"
encoder = "minilm"
encoder_kwargs = {{ max_length = 16 }}
[modalities.description]
kind = "text"
encoder = "minilm"
encoder_kwargs = {{ max_length = 16 }}
[fusion]
methods = {methods}
late = []
subsets = [["image", "title", "description"]]
[train.unimodal]
epochs = 3
batch_size = 64
[train.fusion]
epochs = {epochs}
patience = {epochs}
batch_size = 128
dim = 128
"""


def _fit_seconds(exp, root: Path, run: str, threads: int) -> tuple[float, float]:
    """Train ``run`` again with ``threads`` head threads; (head training seconds, test top-1)."""
    from core.bundle import load_run
    from core.train import train_experiment

    os.environ["FUSIONLENS_THREADS"] = f"head={threads}"
    (run_dir,) = [d for d in train_experiment(exp, root, only=[run], force=True, progress=False) if d.name == run]
    metrics = load_run(run_dir).metrics
    return float(metrics["train_seconds"]), float(metrics["top1"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-class", type=int, default=200, help="samples per class (6 classes)")
    ap.add_argument("--epochs", type=int, default=30, help="fusion epochs (no early stopping)")
    ap.add_argument("--methods", nargs="+", default=["multconcat", "concat", "gated"])
    ap.add_argument("--load", type=int, default=None, help="background busy processes (default: one per core)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    import torch

    from core.data.synthetic import make_synthetic_manifest
    from core.experiment import load_experiment
    from core.threads import available_cores
    from core.train import train_experiment

    tmp = Path(tempfile.mkdtemp(prefix="fusionlens-threads-bench-"))
    make_synthetic_manifest(tmp / "data", n_classes=6, per_class=args.per_class)
    methods = "[" + ", ".join(f'"{m}"' for m in args.methods) + "]"
    (tmp / "threads.toml").write_text(EXPERIMENT.format(methods=methods, epochs=args.epochs))
    exp = load_experiment(tmp / "threads.toml")
    root = tmp / "runs"
    t0 = time.perf_counter()
    train_experiment(exp, root, stage="unimodal", progress=False)
    cores = available_cores()
    n_load = cores if args.load is None else args.load
    print(f"unimodal runs trained in {time.perf_counter() - t0:.1f} s; {cores} cores, torch {torch.__version__}, "
          f"{6 * args.per_class} samples, {args.epochs} fusion epochs\n")

    runs = [f"{m}-image+title+description" for m in args.methods]
    results: dict[str, dict[str, dict[int, tuple[float, float]]]] = {}
    for condition in ("as is", f"+{n_load} busy"):
        load = []
        if condition != "as is":
            load = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n_load)]
            time.sleep(2)
        try:
            print(f"[{condition}] load average before: {os.getloadavg()[0]:.1f}")
            for i, run in enumerate(runs):
                for threads in ((1, 2) if i % 2 == 0 else (2, 1)):  # alternated: drift in the load hits both
                    results.setdefault(condition, {}).setdefault(run, {})[threads] = \
                        _fit_seconds(exp, root, run, threads)
        finally:
            for p in load:
                p.kill()
                p.wait()

    print("\nfusion-head training seconds, ratio = 2 threads / 1 thread")
    header = f"{'run':34s}" + "".join(f" | {c:>23s}" for c in results)
    print(header + "\n" + f"{'':34s}" + "".join(f" | {'1 thr':>6s} {'2 thr':>7s} {'ratio':>7s}" for _ in results))
    totals = {c: [0.0, 0.0] for c in results}
    for run in runs:
        line = f"{run:34s}"
        for c in results:
            (s1, a1), (s2, a2) = results[c][run][1], results[c][run][2]
            totals[c][0] += s1
            totals[c][1] += s2
            line += f" | {s1:6.2f} {s2:7.2f} {s2 / s1:6.1f}x"
            if abs(a1 - a2) > 0.02:
                line += f" (top-1 {a1:.3f} vs {a2:.3f})"
        print(line)
    print(f"{'all heads':34s}" + "".join(f" | {t1:6.1f} {t2:7.1f} {t2 / t1:6.1f}x" for t1, t2 in totals.values()))


if __name__ == "__main__":
    main()
