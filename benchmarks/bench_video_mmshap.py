"""MM-SHAP on video games: the default estimator against a high-budget reference and the old default.

    .venv/bin/python benchmarks/bench_video_mmshap.py [--runs-dir runs] [--experiment rgbd]
        [--runs slowfast-multconcat-rgb+depth,...] [--samples 3] [--ref-blocks 160] [--seed 0]
    .venv/bin/python benchmarks/bench_video_mmshap.py --synthetic     # a tiny C3D RGB-D build first

On the runs of a video experiment (default: its MultConcat, late-average and
early-fusion runs; all runs of the experiment share the explained players:
two modalities of 3 x 3 x 2 tubes, 36 in all) and the same seeded test
samples, in one process, per sample:

* default: ``explain_inputs`` with the default settings (``"auto"``: recombined,
  the video budget of ``RECOMBINED_BUDGET_BY_KIND``; the early-fusion run
  unfactorised, the same plan);
* old default (engine version 1): 2 orders per modality recombined into 50
  walks taken as independent on a factorised game; kernel SHAP (10
  permutations' budget) on the early-fusion run;
* reference: recombined with ``--ref-blocks`` independent blocks (4 walks each
  on factorised games, 1 on the early-fusion run), another seed.

Prints per run: the mean absolute modality-share error of both against the
reference (and the reference's own share standard error, the floor of what
can be measured), the Pearson correlation of their ``|phi|`` maps with the
reference's, their ``sum |phi|`` over the reference's, the median
``|phi| / stderr`` and the share of 95 % intervals (share +- 1.96 stderr) that
cover the reference share, and CPU seconds per sample (``time.process_time``,
one torch thread) with the ratio of cost against the old default.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests._experiments import experiment, video_modality, write_experiment  # noqa: E402

#: a tiny RGB-D experiment (the simulator, C3D encoders) for --synthetic
SYNTHETIC = experiment(
    "tiny-rgbd",
    dataset={"source": "rgbd-sim", "n_clips": 96, "frames": 8, "size": 32},
    modalities={m: video_modality(size=32, out_dim=16, width=8) for m in ("rgb", "depth")},
    fusion={"methods": ["multconcat"], "late": ["late-average"], "early": True, "subsets": [["rgb", "depth"]]},
    train={"unimodal": {"epochs": 8, "batch_size": 16}, "fusion": {"epochs": 20, "dim": 16}},
    grid_default=["c3d"], encoder_grid={"c3d": {"video": "c3d"}})


def v1_walks(sizes: list[int], n_orders: int, n_walks: int, seed: int) -> np.ndarray:
    """The walks of engine version 1's recombined estimator: ``n_orders`` orders per modality,
    cycled through in shuffled sequence, crossed over ``n_walks`` random interleavings."""
    rng = np.random.default_rng([seed, 0x5EED])
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    base = [np.stack([rng.permutation(s) for _ in range(n_orders)]) for s in sizes]
    picks = [np.concatenate([rng.permutation(n_orders) for _ in range(-(-n_walks // n_orders))])[:n_walks]
             for _ in sizes]
    out = np.empty((n_walks, int(offsets[-1])), dtype=np.int64)
    for w in range(n_walks):
        slots = rng.permutation(labels)
        for m, s in enumerate(sizes):
            out[w, slots == m] = offsets[m] + base[m][picks[m][w]]
    return out


def build_synthetic(folder: Path) -> Path:
    from core.experiment import load_experiment
    from core.train import train_experiment

    os.environ.setdefault("FUSIONLENS_CACHE", str(folder / "cache"))
    path = write_experiment(folder, SYNTHETIC)
    root = folder / "runs"
    t0 = time.perf_counter()
    train_experiment(load_experiment(path), root, progress=False)
    print(f"built the synthetic experiment in {time.perf_counter() - t0:.0f} s: {root / 'tiny-rgbd'}")
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs-dir", default=os.environ.get("FUSIONLENS_RUNS", "runs"))
    ap.add_argument("--experiment", default="rgbd")
    ap.add_argument("--runs", default=None, help="comma-separated run names (default: multconcat, late-average, "
                                                  "early of the experiment's first encoder)")
    ap.add_argument("--synthetic", action="store_true", help="build and measure a tiny C3D RGB-D experiment")
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--ref-blocks", type=int, default=160)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from core.explain import (ExplainSettings, KernelEstimator, PermutationEstimator, RecombinedEstimator,
                              SampleGame, build_maskers, explain_inputs, modality_shares, output_function,
                              plan_recombined, resolve_run, run_inputs, share_stderr)

    tmp = None
    if args.synthetic:
        tmp = tempfile.TemporaryDirectory(prefix="bench-video-")
        root, experiment = build_synthetic(Path(tmp.name)), "tiny-rgbd"
    else:
        root, experiment = Path(args.runs_dir), args.experiment
    exp_dir = root / experiment
    if args.runs:
        names = args.runs.split(",")
    else:
        all_runs = sorted(p.name for p in exp_dir.iterdir() if (p / "config.json").is_file())
        names = [r for r in all_runs if any(f"-{k}-" in r for k in ("multconcat", "late-average", "early"))]
    if not names:
        sys.exit(f"no runs under {exp_dir}: python -m core build {experiment}, or pass --synthetic")
    settings = ExplainSettings(seed=args.seed)
    print(f"{exp_dir}: runs {', '.join(names)}; {args.samples} seeded test samples each; reference "
          f"{args.ref_blocks} blocks; torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print(f"{'run':34s} {'est':>4s} {'share err':>9s} {'|phi| r':>7s} {'sum|phi|':>8s} {'|phi|/se':>8s} "
          f"{'cover':>5s} {'CPU s':>7s} {'x old':>6s}")
    summary = []
    for name in names:
        run = resolve_run(exp_dir / name)
        model = run.model()
        early = run.config.get("strategy") == "early"
        ids = run.predictions["id"].astype(str).tolist()
        pick = np.random.default_rng(args.seed).choice(len(ids), size=min(args.samples, len(ids)), replace=False)
        rows: dict[str, list] = {"new": [], "old": []}
        ref_se = []
        for i in pick:
            inputs = run_inputs(run, ids[i])

            def fresh_game():
                maskers, _ = build_maskers(model, inputs, list(model.modalities), settings)
                game = SampleGame(model, inputs, maskers, list(model.modalities), factorised=not early)
                c = int(game.logits(np.ones((1, game.n_features), dtype=bool))[0].argmax())
                game.set_output(output_function("pred_prob", c))
                return game

            batch = lambda g: g.encoder_batch if early else 4096  # noqa: E731
            t0 = time.process_time()
            new = explain_inputs(model, inputs, settings=settings, factorise=False if early else None)
            t_new = time.process_time() - t0
            game = fresh_game()
            groups = game.group_indices()
            n = game.n_features
            t0 = time.process_time()
            if early:
                old = KernelEstimator(n_permutations=10, seed=args.seed).estimate(game, n, batch_size=batch(game))
            else:
                old = PermutationEstimator(permutations=v1_walks(game.sizes, 2, 50, args.seed)).estimate(
                    game, n, batch_size=batch(game))
            t_old = time.process_time() - t0
            game = fresh_game()
            ref = RecombinedEstimator(plan=plan_recombined(game.sizes, args.ref_blocks, 1 if early else 4),
                                      seed=1000 + args.seed).estimate(game, n, batch_size=batch(game))
            ref_shares = modality_shares(ref.values, groups)
            ref_se.append(share_stderr(ref, groups)[0])
            for key, values, stderr, sse, t in (
                    ("new", new.values, new.stderr, np.array([new.share_stderr[m] for m in new.modalities]), t_new),
                    ("old", old.values, old.stderr, share_stderr(old, groups), t_old)):
                shares = modality_shares(values, groups)
                rows[key].append(dict(
                    err=float(np.abs(shares - ref_shares).mean()),
                    r=float(np.corrcoef(np.abs(values), np.abs(ref.values))[0, 1]),
                    sumabs=float(np.abs(values).sum() / np.abs(ref.values).sum()),
                    ratio=float(np.median(np.abs(values) / np.where(stderr > 0, stderr, np.nan))),
                    cover=float(np.mean(np.abs(shares - ref_shares) <= 1.96 * sse)), t=t))
            print(f"  {ids[i]}: share err new {rows['new'][-1]['err']:.4f} old {rows['old'][-1]['err']:.4f}; "
                  f"CPU s new {t_new:.2f} old {t_old:.2f}; reference share stderr {ref_se[-1]:.4f}", flush=True)
        for key, label in (("new", "default"), ("old", "old default")):
            r = rows[key]
            mean = {k: float(np.mean([x[k] for x in r])) for k in r[0]}
            cost = mean["t"] / float(np.mean([x["t"] for x in rows["old"]]))
            print(f"{name[:34]:34s} {'new' if key == 'new' else 'old':>4s} {mean['err']:9.4f} {mean['r']:7.3f} "
                  f"{mean['sumabs']:8.3f} {mean['ratio']:8.1f} {mean['cover']:5.2f} {mean['t']:7.2f} {cost:6.2f}"
                  + ("" if key == "old" else f"   ({label}; reference share stderr {np.mean(ref_se):.4f})"))
            summary.append((name, key, mean))
    errs = {k: np.mean([m["err"] for _, key, m in summary if key == k]) for k in ("new", "old")}
    cost = {k: np.mean([m["t"] for _, key, m in summary if key == k]) for k in ("new", "old")}
    print(f"\nmean share error against the reference: default {errs['new']:.4f}, old default {errs['old']:.4f}; "
          f"CPU s per sample {cost['new']:.2f} vs {cost['old']:.2f} ({cost['new'] / cost['old']:.1f}x)")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
