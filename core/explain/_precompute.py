"""Precompute: explain a run's test split (or a seeded sample of it), resumably and in shards.

``fusionlens explain <run> [--n N] [--seed S] [--shard i/n] ...`` calls
:func:`explain_run`. The sample list is the test split in the order of the
run's ``predictions.parquet`` or, with ``n``, the first ``n`` ids of a shuffle by
``numpy.random.default_rng(seed)`` (kept in prediction order; a larger ``n``
extends a smaller one's sample, so raising ``--n`` resumes); shard
``i`` of ``n`` takes every ``n``-th id from position ``i``. Every sample's
values depend only on the sample and the settings, so shards and reruns give
identical rows. Samples already stored with the same settings hash (in any
part) are skipped; the shard's part is rewritten atomically every
``flush_every`` samples or ``flush_seconds`` seconds and on interruption, so
an interrupted precompute loses at most the samples in flight; a killed one
(``kill -9``, power loss) loses at most the samples since the last flush, and
every file it leaves is complete (see :mod:`core.explain._store`).
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import pandas as pd

from core.catalog import scan_runs
from core.errors import ConfigError, cli_command
from core.explain._engine import (
    ExplainSettings,
    _Progress,
    check_progress,
    check_run_modalities,
    explain_threads,
    explain_with_settings,
    resolve_run,
    run_settings,
)
from core.explain._store import (
    explanations_dir,
    features_frame,
    part_label,
    read_part,
    samples_frame,
    stored_sample_ids,
    write_part,
    write_request,
    write_settings,
)
from core.io import remove_stale_tmp
from core.ranking import has_explanations, run_rank_key


def parse_shard(shard: Any) -> tuple[int, int]:
    """``"i/n"`` or ``(i, n)`` -> ``(i, n)`` with ``0 <= i < n``."""
    fix = "write the shard as i/n with 0 <= i < n, for example --shard 0/2 and --shard 1/2"
    if shard is None:
        return 0, 1
    if isinstance(shard, str):
        head, sep, tail = shard.partition("/")
        if not sep:
            raise ConfigError(f"shard {shard!r} is not i/n", fix=fix)
        try:
            i, n = int(head), int(tail)
        except ValueError as exc:
            raise ConfigError(f"shard {shard!r} is not i/n", fix=fix) from exc
    else:
        try:
            i, n = (int(x) for x in shard)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"shard {shard!r} is not (i, n)", fix=fix) from exc
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"shard {i}/{n} is out of range", fix=fix)
    return i, n


def select_samples(run: Any, n: int | None = None, seed: int = 0) -> list[str]:
    """The test ids to explain: all, or the first ``n`` of a ``default_rng(seed)`` shuffle
    (returned in prediction order)."""
    ids = run.predictions["id"].astype(str).tolist()
    if n is None or n >= len(ids):
        return ids
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ConfigError(f"n={n!r} is not a positive sample count", fix="pass --n N with N >= 1, or leave it out")
    # the first n of one seeded shuffle: a larger n extends a smaller one's sample
    pick = np.sort(np.random.default_rng(seed).permutation(len(ids))[: int(n)])
    return [ids[i] for i in pick]


def explain_run(
    run: Any,
    *,
    n: int | None = None,
    seed: int = 0,
    shard: Any = None,
    output: Any = "pred_prob",
    method: str = "auto",
    n_permutations: int = 10,
    grid: int | str | None = None,
    n_walks: int | None = None,
    modalities: Sequence[str] | None = None,
    progress: Any = True,
    flush_every: int = 10,
    flush_seconds: float = 30.0,
    time_limit: float | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Explain (a seeded sample of) a run's test split into ``<run>/explanations/``.

    ``progress``: True (tqdm over samples), False, or a callable ``(done, total)``.
    ``time_limit`` (seconds) stops after the sample in flight once exceeded; the
    rest is done by a rerun. ``seed`` draws the sample and seeds the estimator.
    Returns counts: ``requested``, ``skipped`` (already stored), ``computed``,
    ``remaining``, plus ``settings_hash``, ``part`` and ``seconds``.
    """
    t0 = time.perf_counter()
    progress = check_progress(progress)
    run = resolve_run(run)
    settings: ExplainSettings = run_settings(output=output, method=method, n_permutations=n_permutations, seed=seed,
                                             grid=grid, n_walks=n_walks, modalities=modalities)
    check_run_modalities(run, settings)
    if isinstance(flush_every, bool) or not isinstance(flush_every, (int, np.integer)) or flush_every < 1:
        raise ConfigError(f"flush_every={flush_every!r} is not a positive sample count",
                          fix="store every N >= 1 samples, for example --flush-every 10")
    i, k = parse_shard(shard)
    ids = select_samples(run, n, seed)[i::k]
    h = settings.hash()
    label = part_label(i, k)
    remove_stale_tmp(explanations_dir(run.path))  # what a killed precompute was writing
    done = stored_sample_ids(run.path, h)
    todo = [s for s in ids if s not in done]
    write_settings(run.path, settings)
    if command is None:
        command = f"{cli_command()} explain {run.path}" + (f" --n {n}" if n is not None else "") + \
            (f" --seed {seed}" if seed else "") + (f" --shard {i}/{k}" if k > 1 else "")
    write_request(run.path, settings, label, ids, {"n": n, "seed": seed, "shard": f"{i}/{k}", "command": command})
    # rows this part already holds (from an earlier, interrupted run) are kept
    previous = read_part(run.path, h, label)
    kept_s = [previous[0]] if previous is not None else []
    kept_f = [previous[1]] if previous is not None else []
    fresh: list[Any] = []
    last_flush = time.perf_counter()

    def flush() -> None:
        nonlocal last_flush
        if not fresh:
            return
        s = pd.concat([*kept_s, samples_frame(fresh, label)], ignore_index=True)
        f = pd.concat([*kept_f, features_frame(fresh, label)], ignore_index=True)
        write_part(run.path, h, label, s, f)
        kept_s[:], kept_f[:] = [s], [f]
        fresh.clear()
        last_flush = time.perf_counter()

    bar = _Progress(progress, len(todo), desc=f"explain {run.name}") if todo else None
    computed = 0
    try:
        with explain_threads():
            for sid in todo:
                if time_limit is not None and time.perf_counter() - t0 > time_limit:
                    break
                fresh.append(explain_with_settings(run, sid, settings))
                computed += 1
                if bar is not None:
                    bar.update(1)
                if len(fresh) >= flush_every or time.perf_counter() - last_flush > flush_seconds:
                    flush()
    finally:
        flush()
        if bar is not None:
            bar.close()
    return {
        "run": run.name, "settings_hash": h, "part": label, "requested": len(ids),
        "skipped": len(ids) - len(todo), "computed": computed, "remaining": len(todo) - computed,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def select_build_runs(exp_dir: Any, max_runs: int = 3) -> list[Any]:
    """Runs the build explains: the best fused run (top-1), then MultConcat and late-average
    over the most modalities (the reference's fusion and its simplest vote), then the best
    intermediate fusion over the most modalities; at most ``max_runs``. "Best" breaks top-1
    ties like the dashboard's Overview (:func:`core.ranking.run_rank_key`): more modalities,
    then a run with stored explanations, then the name."""
    fused = []
    for entry in scan_runs(exp_dir):
        if not entry.usable or entry.run is None:  # a damaged run is reported by `list` and the pages
            continue
        cfg, top1 = entry.run.config, float(entry.run.metrics["top1"])
        if cfg["strategy"] == "unimodal" or len(cfg["modalities"]) < 2:
            continue
        fused.append((entry.path, cfg, top1))
    if not fused:
        return []
    most = max(len(c["modalities"]) for _, c, _ in fused)

    def rank(r: tuple) -> tuple:  # the Overview's "best run" rule, so the build explains the run it shows
        return run_rank_key(r[0].name, r[2], len(r[1]["modalities"]), has_explanations(r[0]))

    chosen = [min(fused, key=rank)[0]]
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
