"""Worker processes for work that runs on one thread per job: stage-2 fusion heads, projections of small splits.

A fusion head trains on one torch thread (``core.threads``: more threads only cost there) and openTSNE and
UMAP project a few thousand points on one thread, so running such jobs one after another leaves every other
core idle. :func:`in_processes` runs them in spawned processes instead (spawned, not forked: a forked child of
a process that has started OpenMP threads can deadlock), each limited to one thread, and yields the results as
they finish. Each job seeds itself, so its result is the one a serial run on one thread gives.

How many: :func:`process_workers` -- the caller's ``workers``, else ``$FUSIONLENS_WORKERS``, else every core
this process may run on once there are enough jobs to pay for the workers' start-up (about 3 s each: Python,
torch and FusionLens imported afresh).
"""
from __future__ import annotations

import contextlib
import os
import sys
import types
from typing import Any, Callable, Iterator, Sequence

from core.errors import ConfigError

ENV = "FUSIONLENS_WORKERS"
#: thread settings every worker starts with (read by the libraries when they load)
ONE_THREAD = {"FUSIONLENS_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "NUMBA_NUM_THREADS": "1"}


def process_workers(n_jobs: int, workers: int | None = None, min_jobs: int = 2) -> int:
    """Processes for ``n_jobs`` one-thread jobs: ``workers`` when given, else ``$FUSIONLENS_WORKERS``, else every
    available core when there are at least ``min_jobs`` jobs (never more processes than jobs), else 1."""
    from core.threads import available_cores

    given: Any = workers if workers is not None else (os.environ.get(ENV, "").strip() or None)
    if given is not None:
        try:
            n = int(given)
        except (TypeError, ValueError):
            n = 0
        if n < 1:
            raise ConfigError(f"{given!r} worker processes asked for",
                              fix=f"use a whole number of at least 1 (--workers or ${ENV}; 1 runs everything here)")
        return max(1, min(n, n_jobs))
    return max(1, min(available_cores(), n_jobs)) if n_jobs >= min_jobs else 1


@contextlib.contextmanager
def _child_environment() -> Iterator[None]:
    """:data:`ONE_THREAD` in ``os.environ`` while workers are spawned (they inherit it), then restored."""
    saved = {k: os.environ.get(k) for k in ONE_THREAD}
    os.environ.update(ONE_THREAD)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _no_main_in_children() -> Iterator[None]:
    """A spawned child re-runs the parent's ``__main__`` script before its job (``multiprocessing.spawn``), and
    under Streamlit (the dashboard, its AppTests) ``__main__`` is ``app.py``: while workers are spawned,
    ``__main__`` is an empty module, so children import only what their jobs name (jobs are module-level
    functions of importable modules)."""
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


class ProgressSteps:
    """A worker's side of :func:`in_processes`'s ``progress``: each call ``(n)`` sends ``n`` steps to the parent
    process (a manager queue; the call returns once the queue holds them)."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def __call__(self, n: int) -> None:
        self.queue.put(int(n))


def in_processes(fn: Callable[..., Any], jobs: Sequence[tuple[Any, tuple]], workers: int,
                 progress: Callable[[int], None] | None = None) -> Iterator[tuple[Any, Any]]:
    """``(key, fn(*args))`` of each ``(key, args)`` job, in completion order: here when ``workers`` is 1 (or there
    is one job), else in ``workers`` spawned one-thread processes. ``fn`` must be importable (a module-level
    function) and its arguments picklable. The first error cancels the jobs not started and is raised here (a
    FusionLens error keeps its problem and fix).

    ``progress``: a callable ``(n)`` told of ``n`` more steps done, which the jobs report as they go: each job is
    called as ``fn(*args, progress=...)`` and calls that with its steps (here, ``progress`` itself; in worker
    processes, a :class:`ProgressSteps` whose steps this process passes to ``progress`` a few times a second, on
    the caller's thread, a job's steps before its result), so a bar moves within jobs, not only when one ends."""
    if workers <= 1 or len(jobs) < 2:
        for key, args in jobs:
            yield key, (fn(*args) if progress is None else fn(*args, progress=progress))
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    spawn = multiprocessing.get_context("spawn")
    manager = None
    try:
        extra: dict[str, Any] = {}
        if progress is not None:
            with _no_main_in_children():
                manager = spawn.Manager()
            extra["progress"] = ProgressSteps(manager.Queue())
        with _child_environment(), ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=spawn) as pool:
            with _no_main_in_children():  # the pool starts its processes as jobs are submitted
                futures = {pool.submit(fn, *args, **extra): key for key, args in jobs}
            try:
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, timeout=0.25 if extra else None, return_when=FIRST_COMPLETED)
                    if extra:
                        _pass_steps(extra["progress"].queue, progress)
                    for future in done:
                        yield futures[future], future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    finally:
        if manager is not None:
            manager.shutdown()


def _pass_steps(queue: Any, progress: Callable[[int], None]) -> None:
    """Every step the queue holds now, to ``progress``."""
    import queue as queues

    while True:
        try:
            n = queue.get_nowait()
        except queues.Empty:
            return
        progress(n)
