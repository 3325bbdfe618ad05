"""MM-SHAP: the reference procedure against FusionLens's default engine, side by side.

    .venv/bin/python benchmarks/bench_mmshap.py [--run multconcat-image+title+description]
        [--samples 10] [--min-tokens 8] [--max-tokens 16] [--seed 0] [--threads 1]

On one emoji run bundle and the same test samples (seeded pick of those with
``--min-tokens``..``--max-tokens`` maskable text tokens in all), in one process:

* reference: ``shap.PermutationExplainer`` with a function masker over the raw
  model, 10 permutations (``max_evals = 10 (2n + 1)``), the model called on one
  masked variant at a time (as the MM-SHAP code does);
* batched: the same estimator and seed, every masked variant evaluated in
  batches through the whole model (unfactorised) -- what batching alone gives;
* FusionLens: ``explain_inputs`` with default settings (method ``"auto"``:
  exact by factorised tables where that is cheaper, else ``"recombined"``).

Times are CPU seconds of this process (``time.process_time``, one torch
thread by default), which other processes on a shared machine barely disturb;
wall seconds are printed beside them. Errors are absolute differences in
modality share against exact Shapley values (factorised tables) where the game
has at most ``--exact-max-features`` players, else against a converged estimate
(recombined, two seeds of ``--truth-blocks`` independent blocks of 10 walks;
flagged ``~``; its own spread is about 0.003 in share). Prints per-sample
seconds, speed-up ratios, mean and 95th-percentile share errors, and the
extrapolated time to explain the whole test split (timed on a seeded random
sample of it).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs-dir", default=os.environ.get("FUSIONLENS_RUNS", "runs"))
    ap.add_argument("--experiment", default="emoji")
    ap.add_argument("--run", default="multconcat-image+title+description")
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--min-tokens", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--exact-max-features", type=int, default=20)
    ap.add_argument("--truth-blocks", type=int, default=200)
    ap.add_argument("--extrapolate", type=int, default=20,
                    help="random test samples timed for the whole-split estimate")
    ap.add_argument("--no-batched", action="store_true", help="skip the batched-only column")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import shap

    from benchmarks._explain import reference_explain, reference_game, true_shares
    from core.explain import (ExplainSettings, explain_inputs, modality_kind, resolve_run, run_dataset, run_inputs,
                              shapley_values)
    from core.kinds import get_kind

    run_dir = Path(args.runs_dir) / args.experiment / args.run
    if not (run_dir / "config.json").is_file():
        sys.exit(f"run {run_dir} is not built: python -m core build {args.experiment}")
    run = resolve_run(run_dir)
    model = run.model()
    test_ids = run.predictions["id"].astype(str).tolist()
    ds = run_dataset(run)
    kinds = {m: get_kind(modality_kind(model, m)) for m in model.modalities}

    def counts_tokens(m: str) -> bool:
        """Whether the modality's kind counts tokens for the grid rule (text): its players are tokens."""
        one = model.encoders[m].prepare(ds.items(m, test_ids[:1]))
        return kinds[m].token_count(kinds[m].build_masker(one, encoder=model.encoders[m])) is not None

    # token counts of every test sample (maskable tokens, the players, over all token modalities)
    counts = np.zeros(len(test_ids), dtype=int)
    for m in [m for m in model.modalities if counts_tokens(m)]:
        enc = model.encoders[m]
        x = enc.prepare(ds.items(m, test_ids))
        for i in range(len(test_ids)):
            counts[i] += kinds[m].build_masker({k: v[i:i + 1] for k, v in x.items()}, encoder=enc).n_features
    pool = [i for i, c in enumerate(counts) if args.min_tokens <= c <= args.max_tokens]
    rng = np.random.default_rng(args.seed)
    chosen = sorted(rng.choice(pool, size=min(args.samples, len(pool)), replace=False).tolist())
    settings = ExplainSettings(seed=args.seed)

    def raw_game(inputs):
        return reference_game(model, inputs, settings)

    # warm-up (not timed): shap's numba kernels, model, tokenizer
    warm = raw_game(run_inputs(run, test_ids[chosen[0]]))
    shap.PermutationExplainer(lambda X: warm(X > 0.5), lambda mask, x: (x * mask).reshape(1, -1), seed=0)(
        np.ones((1, warm.n_features)), max_evals=2 * warm.n_features + 1, silent=True)
    explain_inputs(model, run_inputs(run, test_ids[chosen[0]]), settings=settings)

    print(f"run {run.name}: {len(test_ids)} test samples; {len(pool)} with {args.min_tokens}-{args.max_tokens} "
          f"text tokens, {len(chosen)} picked (seed {args.seed}); torch threads {torch.get_num_threads()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")
    head = (f"{'sample (CPU s)':14s} {'tok':>3s} {'n':>3s} {'ref s':>7s} "
            + ("" if args.no_batched else f"{'batch s':>7s} ")
            + f"{'ours s':>7s} {'method':>10s} {'x ref':>6s} " + ("" if args.no_batched else f"{'x bat':>6s} ")
            + f"{'ref err':>7s} {'our err':>7s} truth")
    print(head)
    t_ref, t_bat, t_our, e_ref, e_our, ratios, ref_evals = [], [], [], [], [], [], []
    cover = []  # |share - truth| <= 1.96 share stderr, for FusionLens's sampled (not exact) results
    w_ref, w_our = [], []
    for idx in chosen:
        sid = test_ids[idx]
        inputs = run_inputs(run, sid)
        game = raw_game(inputs)
        n = game.n_features
        w0 = time.perf_counter()
        ref_shares, cpu, evals = reference_explain(game, args.seed)
        t_ref.append(cpu)
        w_ref.append(time.perf_counter() - w0)
        ref_evals.append(evals)

        if not args.no_batched:
            batched = raw_game(inputs)
            batched.encoder_batch = 64
            t0 = time.process_time()
            shapley_values(batched, n, method="permutation", n_permutations=10, seed=args.seed, batch_size=64)
            t_bat.append(time.process_time() - t0)

        t0, w0 = time.process_time(), time.perf_counter()
        ours = explain_inputs(model, inputs, settings=settings)
        t_our.append(time.process_time() - t0)
        w_our.append(time.perf_counter() - w0)
        our_shares = np.array([ours.shares[m] for m in ours.modalities])

        if ours.method == "exact":
            truth, tag = our_shares, "exact"
        else:
            truth, tag = true_shares(model, inputs, game, args.exact_max_features, args.truth_blocks)
        e_ref.append(np.abs(ref_shares - truth))
        e_our.append(np.abs(our_shares - truth))
        if ours.method != "exact":
            cover.extend(e_our[-1] <= 1.96 * np.array([ours.share_stderr[m] for m in ours.modalities]))
        ratios.append(t_ref[-1] / t_our[-1])
        line = f"{sid[:14]:14s} {counts[idx]:3d} {n:3d} {t_ref[-1]:7.2f} "
        if not args.no_batched:
            line += f"{t_bat[-1]:7.2f} "
        line += f"{t_our[-1]:7.3f} {ours.method:>10s} {ratios[-1]:6.1f} "
        if not args.no_batched:
            line += f"{t_bat[-1] / t_our[-1]:6.1f} "
        line += f"{e_ref[-1].max():7.4f} {e_our[-1].max():7.4f} {tag}"
        print(line, flush=True)

    er, eo = np.concatenate(e_ref), np.concatenate(e_our)
    print(f"\nCPU s per sample: reference {np.mean(t_ref):.2f}, "
          + ("" if args.no_batched else f"batched only {np.mean(t_bat):.2f} ({np.sum(t_ref) / np.sum(t_bat):.1f}x), ")
          + f"FusionLens {np.mean(t_our):.3f}")
    print(f"speed-up FusionLens vs reference: {np.sum(t_ref) / np.sum(t_our):.1f}x (total CPU time), "
          f"median per sample {np.median(ratios):.1f}x, min {np.min(ratios):.1f}x (target >= 30x); "
          f"wall clock {np.sum(w_ref) / np.sum(w_our):.1f}x ({np.mean(w_ref):.2f} s vs {np.mean(w_our):.3f} s)")
    print(f"modality-share error vs truth (|share - truth| over {len(er)} sample x modality pairs):")
    print(f"  reference  mean {er.mean():.4f}  p95 {np.percentile(er, 95):.4f}  max {er.max():.4f}")
    print(f"  FusionLens mean {eo.mean():.4f}  p95 {np.percentile(eo, 95):.4f}  max {eo.max():.4f}")
    if cover:
        print(f"  FusionLens share +- 1.96 stderr covers the truth in {np.mean(cover):.2f} of {len(cover)} sampled "
              "sample x modality pairs")

    # whole test split: ours timed on a seeded random sample of it, the reference extrapolated
    # from its per-evaluation cost
    pick = np.random.default_rng(args.seed + 1).choice(len(test_ids), size=min(args.extrapolate, len(test_ids)),
                                                      replace=False)
    times, evals = [], []
    for i in pick:
        inputs = run_inputs(run, test_ids[i])
        t0 = time.process_time()
        e = explain_inputs(model, inputs, settings=settings)
        times.append(time.process_time() - t0)
        evals.append(10 * (2 * e.n_features + 1))
    ref_per_eval = np.sum(t_ref) / np.sum(ref_evals)
    whole_ours = np.mean(times) * len(test_ids)
    whole_ref = ref_per_eval * np.mean(evals) * len(test_ids)
    print(f"\nwhole test split ({len(test_ids)} samples), from {len(pick)} random test samples: FusionLens "
          f"{whole_ours:.0f} CPU s ({whole_ours / 60:.1f} min, {np.mean(times):.3f} s/sample); reference about "
          f"{whole_ref:.0f} CPU s ({whole_ref / 3600:.1f} h, at its measured {1e3 * ref_per_eval:.1f} ms per "
          "evaluation)")


if __name__ == "__main__":
    main()
