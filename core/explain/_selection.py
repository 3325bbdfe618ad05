"""What a precompute explains: the runs the build picks and the samples of a run's test split.

The sample list is the test split in the order of the run's
``predictions.parquet`` or, with ``n``, the first ``n`` ids of a shuffle by
``numpy.random.default_rng(seed)`` (kept in prediction order; a larger ``n``
extends a smaller one's sample, so raising ``--n`` resumes). Neither function
loads a model or imports torch, so the dashboard can show the plan.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from core.adaptive import idle_samples
from core.catalog import scan_runs
from core.errors import ConfigError
from core.ranking import has_explanations, run_rank_key


def select_samples(run: Any, n: int | None = None, seed: int = 0) -> list[str]:
    """The test ids to explain: all, or the first ``n`` of a ``default_rng(seed)`` shuffle
    (returned in prediction order); an adaptive run's items for which its policy ran nothing are left out."""
    idle = idle_samples(run)  # an adaptive run's items for which its policy ran nothing: nothing to explain
    ids = [i for i in run.predictions["id"].astype(str).tolist() if i not in idle]
    if n is None or n >= len(ids):
        return ids
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ConfigError(f"n={n!r} is not a positive sample count", fix="pass --n N with N >= 1, or leave it out")
    # the first n of one seeded shuffle: a larger n extends a smaller one's sample
    pick = np.sort(np.random.default_rng(seed).permutation(len(ids))[: int(n)])
    return [ids[i] for i in pick]


def _fused(exp_dir: Any) -> list[tuple[Any, dict, float]]:
    """(folder, config, top-1) of every usable fused run (more than one modality), in name order."""
    fused = []
    for entry in scan_runs(exp_dir):
        if not entry.usable or entry.run is None:  # a damaged run is reported by `list` and the pages
            continue
        cfg = entry.run.config
        if cfg["strategy"] == "unimodal" or len(cfg["modalities"]) < 2:
            continue
        fused.append((entry.path, cfg, float(entry.run.metrics["top1"])))
    return fused


def fused_run_dirs(exp_dir: Any) -> list[Any]:
    """Every usable fused run of an experiment (more than one modality), in name order."""
    return [path for path, _, _ in _fused(exp_dir)]


def select_build_runs(exp_dir: Any, max_runs: int = 3) -> list[Any]:
    """Runs the build explains: the best fused run over the most modalities (top-1; the run the
    dashboard's Overview shows, :func:`core.ranking.best_full_run`), then MultConcat and
    late-average over the most modalities (the reference's fusion and its simplest vote), then
    the best intermediate fusion over the most modalities; at most ``max_runs``. "Best" breaks
    top-1 ties like the Overview (:func:`core.ranking.run_rank_key`): a run with stored
    explanations, then the name."""
    fused = _fused(exp_dir)
    if not fused:
        return []
    most = max(len(c["modalities"]) for _, c, _ in fused)

    def rank(r: tuple) -> tuple:  # the Overview's "best run" rule, so the build explains the run it shows
        return run_rank_key(r[0].name, r[2], len(r[1]["modalities"]), has_explanations(r[0]))

    chosen = [min((r for r in fused if len(r[1]["modalities"]) == most), key=rank)[0]]
    for fusion in ("multconcat", "late-average"):
        for run_dir, cfg, _ in fused:
            if cfg.get("fusion") == fusion and len(cfg["modalities"]) == most and run_dir not in chosen:
                chosen.append(run_dir)
                break
    # then the best intermediate fusion over the most modalities
    rest = [r for r in fused if r[0] not in chosen and r[1].get("strategy") == "intermediate"
            and len(r[1]["modalities"]) == most]
    if rest:
        chosen.append(min(rest, key=rank)[0])
    return chosen[:max_runs]
