"""Explaining a whole experiment: throughput and share error against the reference procedure, in one run.

    .venv/bin/python benchmarks/bench_explain_throughput.py [--experiment runs/emoji] [--n 20]
        [--ref-samples 2] [--seed 0] [--skip-alone]

What users run is ``fusionlens explain <experiment>``: every fused run of an experiment, sample by sample,
the runs that share an encoder lending each other its embeddings of a sample's masked variants
(:class:`core.explain.SharedTables`). On a fresh copy of a built experiment (``--experiment``, default the
demo build ``runs/emoji``), in one process on one torch thread, CPU seconds (``time.process_time``):

* **FusionLens, every run, shared encoders**: :func:`core.explain.explain_runs` on every fused run, ``--n``
  seeded test samples each (the build's own call);
* **FusionLens, each run alone** (unless ``--skip-alone``): the same call with ``share=False``, as if each run
  were explained on its own (the values are the same);
* **reference procedure** (MM-SHAP as published: ``shap.PermutationExplainer``, function masker, 10
  permutations, ``max_evals = 10 (2n + 1)``, the whole model called on one masked variant at a time):
  timed on ``--ref-samples`` of the explained samples for one run of each modality subset (MultConcat where
  there is one), and charged to every explanation of the experiment at that subset's measured CPU cost per
  model call times the calls the reference makes for the explanation's players (the reference's cost is
  its model calls; the fusion head is a small part of one);
* **share error**: on the timed (run, sample) pairs, the modality shares of the reference and of FusionLens's
  stored explanations against exact values (factorised tables, at most ``--exact-max-features`` players) or
  a converged estimate (two seeds of 200 blocks of 10 walks), and how often FusionLens's share +- 1.96
  standard errors covers the truth.

Prints explanations per CPU second for each mode, the ratio against the reference (target: at least 100x
at no more than the reference's share error), and the errors.

Measured on the 2-core build machine, idle (``--n 20 --ref-samples 6``; emoji, 53 fused runs, 1,060
explanations per mode; the reference timed on 6 samples of MultConcat of each of the 4 modality subsets, 20-53 s
each, 10.8-20.2 ms of CPU per model call):

| mode | CPU s | explanations per CPU s | x reference |
|---|---|---|---|
| reference procedure (estimated from its measured cost per call) | 5,351 | 0.198 | 1x |
| FusionLens, every run, shared encoders | 33.3 | 31.8 | **160.6x** |
| FusionLens, each run alone | 273.9 | 3.87 | 19.5x |

Share error against the truth on the 24 timed (run, sample) pairs (54 values): reference mean 0.044 (p95 0.136),
FusionLens **0.025** (p95 0.062); FusionLens's share +- 1.96 standard errors covered the truth in 33 of its 41
sampled values (0.80; ``bench_mmshap.py``'s 30 values: 29).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._explain import (  # noqa: E402
    built_experiment,
    fresh_experiment_copy,
    fused_runs,
    reference_explain,
    reference_game,
    true_shares,
)


def _subset_runs(runs: list[Path]) -> dict[tuple[str, ...], list[Path]]:
    """Runs grouped by their modalities (in config order)."""
    out: dict[tuple[str, ...], list[Path]] = {}
    for run in runs:
        mods = tuple(json.loads((run / "config.json").read_text())["modalities"])
        out.setdefault(mods, []).append(run)
    return out


def _representative(runs: list[Path]) -> Path:
    """MultConcat where the subset has it, else its first run."""
    return next((r for r in runs if r.name.startswith("multconcat-") and "-mdrop-" not in r.name), runs[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experiment", default="runs/emoji", help="a built experiment folder (default: runs/emoji)")
    ap.add_argument("--n", type=int, default=20, help="seeded test samples explained per run")
    ap.add_argument("--ref-samples", type=int, default=2,
                    help="explained samples the reference procedure is timed on, per modality subset")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--exact-max-features", type=int, default=20)
    ap.add_argument("--skip-alone", action="store_true", help="do not time each run on its own")
    args = ap.parse_args()
    exp_dir = built_experiment(args.experiment)
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from core.explain import ExplainSettings, explain_runs, load_explanations, resolve_run, run_inputs

    tmp = Path(tempfile.mkdtemp(prefix="fusionlens-explain-throughput-"))
    names = [r.name for r in fused_runs(exp_dir)]
    print(f"{exp_dir}: {len(names)} fused runs, {args.n} seeded test samples each; one process, one torch thread, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")
    warm = fresh_experiment_copy(exp_dir, tmp / "warm" / exp_dir.name)
    explain_runs([warm / names[0]], n=1, progress=False, workers=1)  # imports, the text encoder's first load

    modes = [("FusionLens, every run, shared encoders", True)] + \
        [("FusionLens, each run alone", False)] * (not args.skip_alone)
    timed: dict[str, tuple[int, float, float]] = {}
    shared_copy = None
    for label, share in modes:
        copy = fresh_experiment_copy(exp_dir, tmp / ("shared" if share else "alone") / exp_dir.name)
        shared_copy = shared_copy or copy
        t0, w0 = time.process_time(), time.perf_counter()
        reports = explain_runs([copy / n for n in names], n=args.n, progress=False, workers=1, share=share)
        timed[label] = (sum(r["computed"] for r in reports), time.process_time() - t0, time.perf_counter() - w0)
        print(f"  {label}: {timed[label][0]} explanations, {timed[label][1]:.1f} CPU s", flush=True)

    # every stored explanation of the shared mode: its players (the reference's model calls follow from them)
    runs = [shared_copy / n for n in names]
    stored = {}
    for run in runs:
        samples, features = load_explanations(run)
        players = features.groupby("sample_id").size()
        stored[run.name] = (samples.set_index("sample_id"), players)

    settings = ExplainSettings(seed=args.seed)
    rng = np.random.default_rng(args.seed)
    ref_cost = 0.0
    e_ref, e_our, cover = [], [], []
    print(f"\n{'modality subset':32s} {'runs':>4s} {'timed on':44s} {'ref s':>7s} {'calls':>6s} {'ms/call':>7s}")
    for mods, members in _subset_runs(runs).items():
        rep = _representative(members)
        run = resolve_run(rep)
        model = run.model()
        samples, _ = stored[rep.name]
        ids = rng.choice(sorted(samples.index), size=min(args.ref_samples, len(samples)), replace=False)
        cpu = calls = 0.0
        for sid in ids:
            inputs = run_inputs(run, str(sid))
            game = reference_game(model, inputs, settings)
            ref_shares, seconds, evals = reference_explain(game, args.seed)
            cpu, calls = cpu + seconds, calls + evals
            truth, _ = true_shares(model, inputs, game, args.exact_max_features)
            row = samples.loc[sid]
            ours = np.array([row[f"share_{m}"] for m in game.players])
            se = np.array([row[f"share_stderr_{m}"] for m in game.players])
            e_ref.append(np.abs(ref_shares - truth))
            e_our.append(np.abs(ours - truth))
            if np.all(np.isfinite(se)) and row["method"] != "exact":
                cover.extend(e_our[-1] <= 1.96 * se)
        per_call = cpu / calls
        # the reference's cost of every explanation of this subset's runs: its calls at the measured cost
        for member in members:
            players = stored[member.name][1]
            ref_cost += per_call * float(np.sum(10 * (2 * players.to_numpy() + 1)))
        print(f"{'+'.join(mods):32s} {len(members):4d} {rep.name + ', ' + str(len(ids)) + ' samples':44s} "
              f"{cpu:7.1f} {calls:6.0f} {1e3 * per_call:7.2f}", flush=True)

    count = timed[modes[0][0]][0]
    print(f"\n{'mode':40s} {'explanations':>12s} {'CPU s':>8s} {'per CPU s':>10s} {'x reference':>12s}")
    print(f"{'reference procedure (estimated)':40s} {count:12d} {ref_cost:8.0f} {count / ref_cost:10.3f} "
          f"{1.0:11.1f}x")
    for label, (n_expl, cpu, _) in timed.items():
        print(f"{label:40s} {n_expl:12d} {cpu:8.1f} {n_expl / cpu:10.2f} {ref_cost / cpu * n_expl / count:11.1f}x")
    er, eo = np.concatenate(e_ref), np.concatenate(e_our)
    print(f"\nmodality-share error against the truth ({len(er)} run x sample x modality values):")
    print(f"  reference  mean {er.mean():.4f}  p95 {np.percentile(er, 95):.4f}  max {er.max():.4f}")
    print(f"  FusionLens mean {eo.mean():.4f}  p95 {np.percentile(eo, 95):.4f}  max {eo.max():.4f}")
    if cover:
        print(f"  FusionLens share +- 1.96 stderr covers the truth in {np.mean(cover):.2f} of {len(cover)} sampled "
              "values")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
