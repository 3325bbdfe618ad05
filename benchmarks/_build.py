"""The timed default build the build benchmarks share (``bench_emoji_build``, ``bench_rgbd_build``,
``bench_site_build``): ``fusionlens build`` of one experiment into a fresh runs folder, with every step's
wall time, what each precompute step covered, and the ratio to the experiment's time target."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def timed_build(name: str, root: Path, target_s: float, *, skip_precompute: bool = False) -> tuple[Any, float]:
    """Build experiment ``name`` into ``root`` (``run_build``, no progress bars) and print the results table,
    each step's seconds and summary, and the whole build's wall time as a ratio of ``target_s``; returns the
    build context and the wall time, and the data + training steps alone against the same target (what no
    build budget can cut). Never passes or fails on time."""
    import torch

    from core.experiment import load_experiment
    from core.pipeline import run_build
    from core.results import format_results

    exp = load_experiment(name)
    t0 = time.perf_counter()
    ctx = run_build(exp, root, skip_precompute=skip_precompute, progress=False)
    total = time.perf_counter() - t0
    print(format_results(ctx.results))
    print(f"\n{name} build, step by step:")
    for step, status, summary, seconds in ctx.log:
        print(f"  {step:11s} {seconds:7.1f} s  {summary if status == 'done' else status}")
    budget = ctx.choices.build_seconds
    print(f"{name} build wall time: {total:.1f} s on {torch.get_num_threads()} threads; target {target_s:.0f} s -> "
          f"ratio {total / target_s:.2f}" + (f" (the experiment's build budget: {budget:.0f} s)" if budget else ""))
    seconds = {step: s for step, _, _, s in ctx.log}
    trained = seconds.get("prepare", 0.0) + seconds.get("train", 0.0)
    print(f"data (fetch or render) + training alone: {trained:.1f} s -> ratio {trained / target_s:.2f}")
    return ctx, total
