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
from typing import Any

import pandas as pd

from core.explain._engine import explain_sample
from core.explain._progress import Progress, check_progress
from core.explain._runs import check_run_modalities, explain_threads, resolve_run
from core.explain._selection import select_samples
from core.explain._settings import ExplainSettings, PrecomputeOptions, precompute_command, split_changes
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


def explain_run(
    run: Any,
    settings: ExplainSettings | None = None,
    options: PrecomputeOptions | None = None,
    *,
    progress: Any = True,
    flush_seconds: float = 30.0,
    time_limit: float | None = None,
    command: str | None = None,
    **changes: Any,
) -> dict[str, Any]:
    """Explain (a seeded sample of) a run's test split into ``<run>/explanations/``.

    ``settings`` (:class:`ExplainSettings`) decide the values; ``options``
    (:class:`PrecomputeOptions`: ``n``, ``shard``, ``flush_every``) which samples
    and how often they are stored; ``**changes`` change fields of either, for
    example ``n=100, seed=1, method="exact"``. ``seed`` draws the sample and seeds
    the estimator. ``progress``: True (tqdm over samples), False, or a callable
    ``(done, total)``. ``time_limit`` (seconds) stops after the sample in flight
    once exceeded; the rest is done by a rerun. ``command`` is recorded as the
    command that resumes this precompute (default: :func:`precompute_command`).
    Returns counts: ``requested``, ``skipped`` (already stored), ``computed``,
    ``remaining``, plus ``settings_hash``, ``part`` and ``seconds``.
    """
    t0 = time.perf_counter()
    progress = check_progress(progress)
    setting_changes, option_changes = split_changes(changes)
    options = PrecomputeOptions.build(options, **option_changes)
    settings = ExplainSettings.build(settings, **setting_changes)
    run = resolve_run(run)
    check_run_modalities(run, settings)
    i, k = options.shard_index
    ids = select_samples(run, options.n, settings.seed)[i::k]
    h = settings.hash()
    label = part_label(i, k)
    remove_stale_tmp(explanations_dir(run.path))  # what a killed precompute was writing
    done = stored_sample_ids(run.path, h)
    todo = [s for s in ids if s not in done]
    write_settings(run.path, settings)
    if command is None:
        command = precompute_command(run.path, settings, options)
    write_request(run.path, settings, label, ids,
                  {"n": options.n, "seed": settings.seed, "shard": f"{i}/{k}", "command": command})
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

    bar = Progress(progress, len(todo), desc=f"explain {run.name}") if todo else None
    computed = 0
    try:
        with explain_threads():
            for sid in todo:
                if time_limit is not None and time.perf_counter() - t0 > time_limit:
                    break
                fresh.append(explain_sample(run, sid, settings, store=False))
                computed += 1
                if bar is not None:
                    bar.update(1)
                if len(fresh) >= options.flush_every or time.perf_counter() - last_flush > flush_seconds:
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
