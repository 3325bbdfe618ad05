"""Precompute: explain a run's test split (or a seeded sample of it), resumably and in shards.

``fusionlens explain <run> [--n N] [--seed S] [--shard i/n] ...`` calls
:func:`explain_run`. The sample list is the test split in the order of the
run's ``predictions.parquet`` or, with ``n``, the first ``n`` ids of a shuffle by
``numpy.random.default_rng(seed)`` (kept in prediction order; a larger ``n``
extends a smaller one's sample, so raising ``--n`` resumes); shard
``i`` of ``n`` takes every ``n``-th id from position ``i``. Samples are explained in a seeded order
(:func:`explain_order`; across runs, the samples more runs ask for first), so one stopped by a time
budget leaves a seeded random sample explained. Every sample's
values depend only on the sample and the settings, so shards and reruns give
identical rows. Samples already stored with the same settings hash (in any
part) are skipped; the shard's part is rewritten atomically every
``flush_every`` samples or ``flush_seconds`` seconds and on interruption, so
an interrupted precompute loses at most the samples in flight; a killed one
(``kill -9``, power loss) loses at most the samples since the last flush, and
every file it leaves is complete (see :mod:`core.explain._store`).

:func:`explain_runs` explains several runs (the build's plan, ``fusionlens
explain`` of an experiment) with samples outermost and runs inside, in passes
whose models stay loaded together (:func:`run_passes`: as many runs as fit in
:data:`PASS_WEIGHT_BYTES` of stored weights; every emoji run fits in one pass): the
runs whose encoder of a modality comes from the same unimodal run then encode each
masked variant of a sample once between them (:class:`~core.explain.SharedTables`),
while each run's parts are written exactly as :func:`explain_run` writes them. (With
passes of 8 runs, the 53 fused emoji runs encoded every sample's masked text 7 times.)

With more than one worker process (:func:`explain_workers`: ``workers``, else
``$FUSIONLENS_WORKERS``, else every core once there are
:data:`PARALLEL_MIN_SAMPLES` samples to explain) the samples the runs still lack
are dealt into groups (their union in the order above, every ``g``-th from
position ``i``; :data:`GROUPS_PER_WORKER` groups per worker, fewer, as many for each
worker, when a group would hold under :data:`MIN_GROUP_SAMPLES` samples), and each
group is one job of a spawned one-thread process
(:func:`core.workers.in_processes`) that explains it for every run asking for
its samples, sharing tables between those runs as one process does; a group's
rows go to part ``part<i>of<g>`` of each run. The values are the same as a
single process gives (every sample's values depend only on the sample and the
settings); only the parts they are stored in differ.
"""
from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import time
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from core.errors import ConfigError
from core.explain._engine import explain_sample
from core.explain._progress import Progress, check_progress
from core.explain._reuse import SharedTables
from core.explain._runs import _stamp, check_run_modalities, explain_threads, resolve_run
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


#: Runs explained side by side, sample by sample, have their models loaded together: a pass holds runs
#: while their ``model.safetensors`` add up to at most this many bytes (a larger run has a pass of its own).
#: A run's model in memory is about its stored weights (the emoji runs: 0.2-0.8 MB each; a frozen text
#: encoder loaded once per process is not stored with the run).
PASS_WEIGHT_BYTES = 2 * 1024 ** 3
#: sample groups per worker process: each group is one job, so progress moves group by group and a worker that
#: finishes early takes the next
GROUPS_PER_WORKER = 4
#: samples a group holds at least (when there are enough for one group per worker): a job sets up and writes a
#: part for every run of the plan (about 50 ms a run), about what explaining 3 samples for it costs
MIN_GROUP_SAMPLES = 32
#: fewer samples left to explain than this: one process (a worker's start, Python, torch and the models loaded
#: afresh, costs several seconds)
PARALLEL_MIN_SAMPLES = 64


def explain_workers(n_samples: int, workers: int | None = None) -> int:
    """Processes explaining ``n_samples`` samples at once (:func:`core.workers.process_workers`): ``workers``
    when given, else ``$FUSIONLENS_WORKERS``, else every core once there are :data:`PARALLEL_MIN_SAMPLES`."""
    from core.workers import process_workers

    return process_workers(n_samples, workers, min_jobs=PARALLEL_MIN_SAMPLES)


class _RunPart:
    """One run's shard of a precompute: its sample list, what is stored, and its part, flushed as
    :func:`explain_run` documents (rows kept from an interrupted run, rewritten atomically)."""

    def __init__(self, run: Any, settings: ExplainSettings, options: PrecomputeOptions, command: str | None,
                 group: tuple[int, int, Sequence[str]] | None = None) -> None:
        self.run = resolve_run(run)
        check_run_modalities(self.run, settings)
        self.settings = settings
        i, k = options.shard_index
        self.ids = select_samples(self.run, options.n, settings.seed)[i::k]
        if group is not None:  # a worker's group of samples (module docstring): its own part
            i, k, wanted = group[0], group[1], set(group[2])
            self.ids = [s for s in self.ids if s in wanted]
        self.hash = settings.hash()
        self.label = part_label(i, k)
        remove_stale_tmp(explanations_dir(self.run.path))  # what a killed precompute was writing
        done = stored_sample_ids(self.run.path, self.hash)
        self.todo = [s for s in self.ids if s not in done]
        write_settings(self.run.path, settings)
        if command is None:
            command = precompute_command(self.run.path, settings, options)
        write_request(self.run.path, settings, self.label, self.ids,
                      {"n": options.n, "seed": settings.seed, "shard": f"{i}/{k}", "command": command})
        # rows this part already holds (from an earlier, interrupted run) are kept
        previous = read_part(self.run.path, self.hash, self.label)
        self.kept_s = [previous[0]] if previous is not None else []
        self.kept_f = [previous[1]] if previous is not None else []
        self.fresh: list[Any] = []
        self.last_flush = time.perf_counter()
        self.computed = 0
        self.encoder_rows = 0

    def add(self, explanation: Any, flush_every: int, flush_seconds: float) -> None:
        self.fresh.append(explanation)
        self.computed += 1
        self.encoder_rows += sum((explanation.settings.get("encoder_rows") or {}).values())
        if len(self.fresh) >= flush_every or time.perf_counter() - self.last_flush > flush_seconds:
            self.flush()

    def flush(self) -> None:
        if not self.fresh:
            return
        s = pd.concat([*self.kept_s, samples_frame(self.fresh, self.label)], ignore_index=True)
        f = pd.concat([*self.kept_f, features_frame(self.fresh, self.label)], ignore_index=True)
        write_part(self.run.path, self.hash, self.label, s, f)
        self.kept_s[:], self.kept_f[:] = [s], [f]
        self.fresh.clear()
        self.last_flush = time.perf_counter()

    def report(self, seconds: float) -> dict[str, Any]:
        return {"run": self.run.name, "path": str(self.run.path), "settings_hash": self.hash, "part": self.label,
                "requested": len(self.ids), "skipped": len(self.ids) - len(self.todo), "computed": self.computed,
                "remaining": len(self.todo) - self.computed, "seconds": round(seconds, 2),
                "encoder_rows": self.encoder_rows}


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
    return explain_runs([run], settings, options, progress=progress, flush_seconds=flush_seconds,
                        time_limit=time_limit, commands=None if command is None else [command], share=False,
                        **changes)[0]


def explain_runs(
    runs: Sequence[Any],
    settings: ExplainSettings | None = None,
    options: PrecomputeOptions | None = None,
    *,
    progress: Any = True,
    flush_seconds: float = 30.0,
    time_limit: float | None = None,
    commands: Sequence[str | None] | None = None,
    share: bool = True,
    workers: int | None = None,
    group: tuple[int, int, Sequence[str]] | None = None,
    steps: Any = None,
    **changes: Any,
) -> list[dict[str, Any]]:
    """Explain several runs as :func:`explain_run` explains each, sample by sample across the runs.

    ``runs``: run folders or loaded runs, or ``(run, n)`` pairs giving a run its own sample count
    (the build's plan); the others take ``options.n``. Each run's files, rows and resumption are
    :func:`explain_run`'s. Runs are taken in passes (:func:`run_passes`), in order; within a
    pass the samples of all its runs are explained in turn (in :func:`explain_order`), each by
    every run that asks for it, so that with ``share`` the runs whose encoder of a modality is the
    same reuse that encoder's embeddings of the sample's masked variants
    (:class:`~core.explain.SharedTables`; the values do not change). ``time_limit`` (seconds) is
    one budget for all the runs; ``commands[i]`` is recorded as run ``i``'s resume command.
    Returns :func:`explain_run`'s counts for every run, in order (``seconds``: since the call
    began), each with ``encoder_rows`` (rows its encoders ran on) and, for the whole call,
    ``shared_tables`` (tables lent between runs). A run named twice is refused. ``workers``: processes
    (:func:`explain_workers`; the module docstring says how they share the work; one shard of ``--shard i/n``
    runs in this process); ``group`` ``(i, g, ids)`` is the job of one of them; ``steps`` (a callable ``(n)``)
    is told of every explanation as it is made (a worker's way of moving the parent's bar).
    """
    t0 = time.perf_counter()
    progress = check_progress(progress)
    setting_changes, option_changes = split_changes(changes)
    options = PrecomputeOptions.build(options, **option_changes)
    settings = ExplainSettings.build(settings, **setting_changes)
    plan = [(r[0], r[1]) if isinstance(r, tuple) else (r, options.n) for r in runs]
    if commands is not None and len(commands) != len(plan):
        raise ConfigError(f"{len(commands)} resume command(s) for {len(plan)} run(s)",
                          fix="pass one command per run (or None for the default), in the runs' order")
    paths = [str(Path(getattr(r, "path", r)).resolve()) for r, _ in plan]
    twice = sorted({Path(x).name for x in paths if paths.count(x) > 1})
    if twice:
        raise ConfigError(f"run(s) {', '.join(map(repr, twice))} named more than once",
                          fix="name each run once (its shard's part would be written twice)")
    if group is None and options.shard == "0/1" and explain_workers(PARALLEL_MIN_SAMPLES, workers) > 1:
        left = _samples_left(plan, settings)
        k = explain_workers(len({s for ids in left.values() for s in ids}), workers)
        if k > 1:
            return _explain_in_workers(plan, settings, options, left, k, progress=progress,
                                       flush_seconds=flush_seconds, time_limit=time_limit, commands=commands, t0=t0)
    reports: list[dict[str, Any]] = []
    shared = SharedTables() if share and len(plan) > 1 else None
    deadline = None if time_limit is None else t0 + time_limit
    for start, stop in run_passes([r for r, _ in plan]):
        parts = [_RunPart(run, settings, dataclasses.replace(options, n=n),
                          None if commands is None else commands[start + j], group)
                 for j, (run, n) in enumerate(plan[start:stop])]
        _explain_pass(parts, settings, options, shared, progress, flush_seconds, deadline, steps)
        reports.extend(p.report(time.perf_counter() - t0) for p in parts)
    for r in reports:
        r["shared_tables"] = 0 if shared is None else shared.hits
    return reports


def run_passes(runs: Sequence[Any], budget: int = PASS_WEIGHT_BYTES) -> list[tuple[int, int]]:
    """``(start, stop)`` of each pass over ``runs`` (folders or loaded runs), in order: consecutive runs while
    their stored weights (``model.safetensors``) add up to at most ``budget`` bytes; a run alone over it
    has a pass of its own."""
    passes: list[tuple[int, int]] = []
    start, used = 0, 0
    for i, run in enumerate(runs):
        try:
            size = (Path(getattr(run, "path", run)) / "model.safetensors").stat().st_size
        except OSError:
            size = 0  # loading the run will say what is wrong with it
        if i > start and used + size > budget:
            passes.append((start, i))
            start, used = i, 0
        used += size
    if start < len(runs):
        passes.append((start, len(runs)))
    return passes


def _samples_left(plan: Sequence[tuple[Any, int | None]], settings: ExplainSettings) -> dict[str, list[str]]:
    """Per run of the plan (its folder), the selected samples not stored with ``settings`` yet, in order;
    the runs' modalities are checked here, before any worker starts."""
    h = settings.hash()
    left: dict[str, list[str]] = {}
    for run, n in plan:
        loaded = resolve_run(run)
        check_run_modalities(loaded, settings)
        done = stored_sample_ids(loaded.path, h)
        left[str(Path(loaded.path).resolve())] = [s for s in select_samples(loaded, n, settings.seed) if s not in done]
    return left


def _explain_group(plan: list[tuple[str, int | None]], settings: ExplainSettings, options: PrecomputeOptions,
                   group: tuple[int, int, list[str]], commands: Sequence[str | None] | None, flush_seconds: float,
                   deadline: float | None, progress: Any = None) -> list[dict[str, Any]]:
    """One worker's job: the samples of ``group`` for every run of ``plan`` asking for them, within the
    wall-clock ``deadline`` (a job that starts after it does nothing); ``progress`` (a callable ``(n)``,
    :func:`core.workers.in_processes`) is told of each explanation as it is made."""
    limit = None if deadline is None else deadline - time.time()
    if limit is not None and limit <= 0:
        return []
    # in a worker process, whose next jobs need the same runs: keep them loaded (while they fit in one pass)
    if multiprocessing.parent_process() is not None and len(run_passes([path for path, _ in plan])) == 1:
        plan = [(_worker_run(path), n) for path, n in plan]
    return explain_runs(plan, settings, options, progress=False, flush_seconds=flush_seconds, time_limit=limit,
                        commands=commands, group=group, steps=progress)


#: a worker process's runs, loaded by its first job and kept for the next (the per-process cache of
#: :func:`core.explain.resolve_run` holds 8 runs; an emoji plan names 53)
_WORKER_RUNS: dict[tuple[str, int], Any] = {}


def _worker_run(path: str) -> Any:
    """The run at ``path``, reloaded when its ``config.json`` changes (:func:`core.explain.resolve_run`'s rule)."""
    folder = Path(path).resolve()
    key = (str(folder), _stamp(folder / "config.json"))
    if key not in _WORKER_RUNS:
        _WORKER_RUNS[key] = resolve_run(folder)
    return _WORKER_RUNS[key]


def _explain_in_workers(plan: Sequence[tuple[Any, int | None]], settings: ExplainSettings,
                        options: PrecomputeOptions, left: dict[str, list[str]], workers: int, *, progress: Any,
                        flush_seconds: float, time_limit: float | None, commands: Sequence[str | None] | None,
                        t0: float) -> list[dict[str, Any]]:
    """:func:`explain_runs` in ``workers`` processes, one job per group of samples (module docstring); the
    reports are summed per run (``part``: how many groups)."""
    from core.workers import in_processes

    asked = Counter(s for ids in left.values() for s in ids)
    union = explain_order(list(asked), settings.seed, asked)
    per_worker = max(1, min(GROUPS_PER_WORKER, len(union) // (MIN_GROUP_SAMPLES * workers)))  # the same for each
    n_groups = min(len(union), workers * per_worker)
    paths = [(path, n) for path, (_, n) in zip(left, plan)]  # left: one resolved folder per run, in order
    cmds = None if commands is None else list(commands)
    deadline = None if time_limit is None else time.time() + time_limit - (time.perf_counter() - t0)
    jobs = [(g, (paths, settings, options, (g, n_groups, union[g::n_groups]), cmds, flush_seconds, deadline))
            for g in range(n_groups)]
    total = sum(len(ids) for ids in left.values())
    bar = Progress(progress, total, desc=f"explain {len(plan)} run(s), {workers} processes") if total else None
    done: dict[str, list[dict[str, Any]]] = {}
    try:  # the bar moves with every explanation the workers make
        steps = bar.update if progress and bar is not None else None
        for _, reports in in_processes(_explain_group, jobs, workers, progress=steps):
            for r in reports:
                done.setdefault(str(Path(r["path"]).resolve()), []).append(r)
    finally:
        if bar is not None:
            bar.close(fill=False)  # a deadline may have left explanations undone: the bar says how many
    out = []
    h = settings.hash()
    for (path, n), (run, _) in zip(paths, plan):
        loaded = resolve_run(run)
        mine = done.get(path, [])
        requested = select_samples(loaded, n, settings.seed)
        stored = stored_sample_ids(path, h)
        out.append({"run": loaded.name, "path": path, "settings_hash": h, "part": f"{n_groups} groups",
                    "requested": len(requested), "skipped": len(requested) - len(left[path]),
                    "computed": sum(r["computed"] for r in mine),
                    "remaining": sum(1 for s in requested if s not in stored),
                    "seconds": round(time.perf_counter() - t0, 2),
                    "encoder_rows": sum(r["encoder_rows"] for r in mine),
                    "shared_tables": sum(r.get("shared_tables", 0) for r in mine), "workers": workers})
    return out


def explain_order(ids: Sequence[str], seed: int, wanted_by: Mapping[str, int] | None = None) -> list[str]:
    """The distinct ``ids`` in the order a precompute explains them: by a digest of (seed, id), a seeded
    shuffle that does not depend on which other ids are listed, so a precompute stopped by its time budget
    has explained a seeded random sample of every run's list (not, say, the first classes of a split
    sorted by id), and its rerun continues in the same order.

    ``wanted_by`` (id -> how many runs ask for it) puts the ids more runs ask for first: one sample's
    encoders serve every run that explains it, so those explanations are the cheapest (the build's
    shared sample of every fused run, ``[precompute] explain_every_run``); ties keep the digest order."""
    def key(sid: str) -> tuple[int, bytes]:
        count = 1 if wanted_by is None else int(wanted_by.get(sid, 1))
        return -count, hashlib.blake2b(f"{int(seed)}\0{sid}".encode(), digest_size=8).digest()
    return sorted(dict.fromkeys(ids), key=key)


def _explain_pass(parts: list[_RunPart], settings: ExplainSettings, options: PrecomputeOptions,
                  shared: SharedTables | None, progress: Any, flush_seconds: float, deadline: float | None,
                  steps: Any = None) -> None:
    """Explain the samples of ``parts``, samples outermost (in :func:`explain_order`); every part is flushed
    however it ends."""
    wanting: dict[str, list[_RunPart]] = {}
    for part in parts:
        for sid in part.todo:
            wanting.setdefault(sid, []).append(part)
    order = {sid: wanting[sid] for sid in explain_order(list(wanting), settings.seed,
                                                         {sid: len(p) for sid, p in wanting.items()})}
    total = sum(len(p.todo) for p in parts)
    desc = f"explain {parts[0].run.name}" if len(parts) == 1 else f"explain {len(parts)} runs"
    bar = Progress(progress, total, desc=desc) if total else None
    try:
        with explain_threads():
            for sid, wanting in order.items():
                for part in wanting:
                    if deadline is not None and time.perf_counter() > deadline:
                        return
                    part.add(explain_sample(part.run, sid, settings, store=False, tables=shared),
                             options.flush_every, flush_seconds)
                    if bar is not None:
                        bar.update(1)
                    if steps is not None:
                        steps(1)
    finally:
        for part in parts:
            part.flush()
        if bar is not None:
            bar.close(fill=False)  # a deadline may have left explanations undone: the bar says how many
