"""Wall time per clip of adaptive runs against the best all-modality fusion, on the same clips and machine.

    .venv/bin/python benchmarks/bench_adaptive.py                      # build a small RGB-D experiment, then time
    .venv/bin/python benchmarks/bench_adaptive.py --experiment site --runs-dir runs   # time an existing build

Without ``--experiment`` it builds a small RGB-D experiment (simulated clips,
C3D encoders, a concat and a late-average fusion, adaptive runs at a few cost
scales) into a temporary folder. Either way it prints the efficiency table
(``fusionlens efficiency``: accuracy, selection rates, GFLOPs and the saving),
then times every adaptive run and the best all-modality fusion on the same
test clips, one torch thread, best of ``--repeats`` passes:

- ``end to end``: preparing the raw clips (resampling, resizing, normalising)
  plus the model, as ``inference_ms_per_sample`` counts it;
- ``model``: the model on prepared inputs: the adaptive run's policy first,
  then only the segments it keeps;

and the first adaptive run again with its decisions forced to 100 %, 50 % and
25 % of the segments (a seeded random choice), so time can be read against
the selection rate whatever the policy learned.

It reports each as milliseconds per clip and as a ratio to the fusion, beside
the counted GFLOPs ratio: a saving of counted FLOPs should show up as a
saving of time (ratios, not pass/fail: the times depend on the machine).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SMALL_RGBD = """
name = "bench-adaptive"
seed = 0
[dataset]
source = "rgbd-sim"
n_clips = {clips}
frames = 16
size = 32
[modalities.rgb]
kind = "video"
encoder = "c3d"
encoder_kwargs = {{ num_frames = 16, image_size = 32, out_dim = 32, width = 8, pool = "meanmax" }}
[modalities.depth]
kind = "video"
encoder = "c3d"
encoder_kwargs = {{ num_frames = 16, image_size = 32, out_dim = 32, width = 8, pool = "meanmax" }}
[fusion]
methods = ["concat"]
late = ["late-average"]
subsets = [["rgb", "depth"]]
[fusion.adaptive]
policy = ["rgb", "depth"]
segments = 4
cost = {{ rgb = 0.5, depth = 0.35 }}
cost_scales = [0.25, 1.0, 4.0]
[train.unimodal]
epochs = {epochs}
batch_size = 16
oof_folds = 0
augment = true
[train.fusion]
epochs = 40
dim = 32
[train.adaptive]
batch_size = 16
"""


def _time(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` calls (after one warm-up), in seconds."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--experiment", help="an experiment already built under --runs-dir (default: build a small one)")
    ap.add_argument("--runs-dir", help="runs root of --experiment (default: runs/)")
    ap.add_argument("--clips", type=int, default=160, help="clips of the small experiment (default 160)")
    ap.add_argument("--epochs", type=int, default=8, help="unimodal epochs of the small experiment (default 8)")
    ap.add_argument("--n", type=int, default=32, help="test clips timed (default 32)")
    ap.add_argument("--repeats", type=int, default=5, help="timed passes, the best counts (default 5)")
    args = ap.parse_args()

    import torch

    from core.adaptive import efficiency_table, format_efficiency_table
    from core.bundle import load_run
    from core.catalog import list_runs
    from core.data import load_experiment_dataset
    from core.experiment import load_experiment, runs_root
    from core.train import train_experiment

    if args.experiment:
        exp = load_experiment(args.experiment)
        root = runs_root(args.runs_dir)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="fusionlens-adaptive-bench-"))
        os.environ.setdefault("FUSIONLENS_CACHE", str(tmp / "cache"))
        path = tmp / "bench-adaptive.toml"
        path.write_text(SMALL_RGBD.format(clips=args.clips, epochs=args.epochs))
        exp, root = load_experiment(path), tmp / "runs"
        t0 = time.perf_counter()
        train_experiment(exp, root, progress=False)
        print(f"built {exp.name} ({args.clips} clips) in {time.perf_counter() - t0:.1f} s")
    exp_dir = root / exp.name
    runs = [load_run(p) for p in list_runs(exp_dir)]
    table = efficiency_table(runs)
    if table.empty:
        raise SystemExit(f"{exp.name} has no adaptive run: add a [fusion.adaptive] table and train it")
    print(format_efficiency_table(table))
    fusion_name = next(r for r, m in zip(table["run"], table["method"]) if m.startswith("All-modality"))
    adaptive_names = [r for r, m in zip(table["run"], table["method"]) if m.startswith("Adaptive")]

    ds, _ = load_experiment_dataset(exp_dir)
    fusion = load_run(exp_dir / fusion_name)
    ids = fusion.predictions["id"].astype(str).tolist()[:args.n]
    torch.set_num_threads(1)
    rows = []
    for name in [fusion_name, *adaptive_names]:
        run = load_run(exp_dir / name)
        model = run.model()
        items = {m: ds.items(m, ids) for m in model.modalities}
        with torch.no_grad():
            inputs = model.prepare(items)
            end_to_end = _time(lambda: model(model.prepare(items)), args.repeats)
            model_only = _time(lambda: model(inputs), args.repeats)
        rows.append((name, float(run.metrics["gflops_per_sample"]), 1000 * end_to_end / len(ids),
                     1000 * model_only / len(ids)))
    # the first adaptive run with its decisions forced to a selection rate (a seeded random choice of segments
    # per modality): time against the rate, whatever the policy learned
    run = load_run(exp_dir / adaptive_names[0])
    model = run.model()
    items = {m: ds.items(m, ids) for m in model.modalities}
    max_gflops = float(run.metrics.get("gflops_max_per_sample", run.metrics["gflops_per_sample"]))
    head_g = float(run.metrics["gflops_by_part"].get("head", 0.0))
    always_g = sum(float(run.metrics["gflops_by_part"].get(m, 0.0)) for m in model.head.always_on)
    with torch.no_grad():
        inputs = model.prepare(items)
        for rate in (1.0, 0.5, 0.25):
            forced = torch.rand(len(ids), model.segments, len(model.policy),
                                generator=torch.Generator().manual_seed(0)) < rate
            end_to_end = _time(lambda: model.predict(model.prepare(items), decisions=forced), args.repeats)
            model_only = _time(lambda: model.predict(inputs, decisions=forced), args.repeats)
            g = head_g + always_g + rate * (max_gflops - head_g - always_g)
            rows.append((f"{run.name} @ {rate:.0%} forced", g, 1000 * end_to_end / len(ids),
                         1000 * model_only / len(ids)))
    base = rows[0]
    print(f"\nwall time per clip on {len(ids)} test clips, 1 thread, best of {args.repeats} "
          f"(ratio: this run / {fusion_name}; '@ r forced': the policy's decisions replaced by a random r of "
          "the segments)")
    print(f"{'run':48s} {'GFLOPs':>9s} {'ratio':>6s} {'end-to-end ms':>14s} {'ratio':>6s} {'model ms':>9s} "
          f"{'ratio':>6s}")
    for name, g, e2e, only in rows:
        print(f"{name:48s} {g:9.4g} {g / base[1]:6.2f} {e2e:14.2f} {e2e / base[2]:6.2f} {only:9.2f} "
              f"{only / base[3]:6.2f}")


if __name__ == "__main__":
    main()
