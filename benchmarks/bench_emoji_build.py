"""Time the whole emoji build on this machine, and inference per sample per fusion method.

    .venv/bin/python benchmarks/bench_emoji_build.py [--keep-cache]

Builds `experiments/emoji.toml` into a fresh runs directory with the whole
default build (`fusionlens build`: prepare, train, results and the precompute
steps: projections, explanations, blame, robustness; `--skip-precompute` stops
after results); without --keep-cache it also uses a fresh data cache, so the
npm fetch is included. Prints wall time per step and in all against the
5-minute target (as a ratio), and each run's inference time per sample as a
ratio to the unimodal image model measured in the same run (end to end:
preprocessing, encoders, head) and head-only time.
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
    ap.add_argument("--keep-cache", action="store_true", help="reuse the fetched emoji package")
    ap.add_argument("--experiment", default="emoji")
    ap.add_argument("--skip-precompute", action="store_true", help="prepare, train and results only")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fusionlens-bench-"))
    if not args.keep_cache:
        os.environ["FUSIONLENS_CACHE"] = str(tmp / "cache")
    import torch

    from core.bundle import load_run
    from core.data import load_experiment_dataset
    from core.train import encode_items

    from benchmarks._build import timed_build

    root = tmp / "runs"
    ctx, _ = timed_build(args.experiment, root, 300.0, skip_precompute=args.skip_precompute)
    exp, frame = ctx.exp, ctx.results

    ds, _ = load_experiment_dataset(root / exp.name)
    ids = ds.ids("test")[:64]
    base = None
    print("\ninference per sample (64 test samples, batch 64):")
    print(f"{'run':45s} {'end-to-end ms':>14s} {'x unimodal-image':>17s} {'head-only us':>13s}")
    for _, row in frame.iterrows():
        run = load_run(root / exp.name / row["run"])
        model = run.model()
        items = {m: ds.items(m, ids) for m in model.modalities}
        with torch.no_grad():
            model(model.prepare({m: v[:4] for m, v in items.items()}))
            t = time.perf_counter()
            embs = [encode_items(model.encoders[m], items[m]) for m in model.modalities]
            model.forward_embeddings(embs)
            e2e = (time.perf_counter() - t) * 1000 / len(ids)
            t = time.perf_counter()
            for _ in range(20):
                model.forward_embeddings(embs)
            head = (time.perf_counter() - t) * 1e6 / (20 * len(ids))
        if row["run"] == "unimodal-image":
            base = e2e
        ratio = f"{e2e / base:.2f}" if base else "-"
        print(f"{row['run']:45s} {e2e:14.2f} {ratio:>17s} {head:13.2f}")


if __name__ == "__main__":
    main()
