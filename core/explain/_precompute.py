"""Precompute: explain a run's test split (or a seeded sample of it), resumably and in shards.

``python -m core explain <run> [--n N] [--seed S] [--shard i/n] ...`` calls
:func:`explain_run`. The sample list is the test split in the order of the
run's ``predictions.parquet`` or, with ``n``, the first ``n`` ids of a shuffle by
``numpy.random.default_rng(seed)`` (kept in prediction order; a larger ``n``
extends a smaller one's sample, so raising ``--n`` resumes); shard
``i`` of ``n`` takes every ``n``-th id from position ``i``. Every sample's
values depend only on the sample and the settings, so shards and reruns give
identical rows. Samples already stored with the same settings hash (in any
part) are skipped; the shard's part is rewritten atomically every
``flush_every`` samples or ``flush_seconds`` seconds and on interruption, so
an interrupted precompute loses at most the samples in flight.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import pandas as pd

from core.errors import ConfigError
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
    features_frame,
    part_label,
    read_part,
    samples_frame,
    stored_sample_ids,
    write_part,
    write_request,
    write_settings,
)


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
    i, k = parse_shard(shard)
    ids = select_samples(run, n, seed)[i::k]
    h = settings.hash()
    label = part_label(i, k)
    done = stored_sample_ids(run.path, h)
    todo = [s for s in ids if s not in done]
    write_settings(run.path, settings)
    if command is None:
        command = f"python -m core explain {run.path}" + (f" --n {n}" if n is not None else "") + \
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
    intermediate fusion over the most modalities; at most ``max_runs``."""
    from pathlib import Path

    from core.bundle import list_runs
    from core.io import read_json

    fused = []
    for run_dir in list_runs(Path(exp_dir)):
        try:
            cfg = read_json(run_dir / "config.json", what="run config")
            top1 = float(read_json(run_dir / "metrics.json", what="run metrics").get("top1", float("nan")))
        except Exception:  # an unreadable run is reported by the pages, not here
            continue
        if cfg.get("strategy") == "unimodal" or len(cfg.get("modalities", [])) < 2:
            continue
        fused.append((run_dir, cfg, top1))
    if not fused:
        return []
    most = max(len(c["modalities"]) for _, c, _ in fused)
    chosen = [max(fused, key=lambda r: (np.nan_to_num(r[2], nan=-1.0), -len(r[0].name)))[0]]
    for fusion in ("multconcat", "late-average"):
        for run_dir, cfg, _ in fused:
            if cfg.get("fusion") == fusion and len(cfg["modalities"]) == most and run_dir not in chosen:
                chosen.append(run_dir)
                break
    # then the best intermediate fusion over the most modalities
    rest = [r for r in fused if r[0] not in chosen and r[1].get("strategy") == "intermediate"
            and len(r[1]["modalities"]) == most]
    if rest:
        chosen.append(max(rest, key=lambda r: (np.nan_to_num(r[2], nan=-1.0), -len(r[0].name)))[0])
    return chosen[:max_runs]
