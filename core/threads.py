"""Torch thread counts per job: one thread for small heads, every core for encoders.

A fusion head or an MM-SHAP embedding table is many small matrix products: with
more than one OpenMP thread most of the time goes to waking and synchronising
threads, and on a loaded machine (other processes on the cores) the spinning
threads make it several times slower than one thread
(``benchmarks/bench_threads.py`` measures it). Encoder training and encoding
are large products that do use every core. So each job says what it is::

    with torch_threads("head"):
        fit_fusion_head(...)

Jobs and their default thread counts are in :data:`JOBS` (``None``: every core
this process may run on). Override with ``$FUSIONLENS_THREADS`` (or the CLI's
``--threads``): ``N`` for every job, or per job, e.g. ``head=1,encoder=4``.
``$FUSIONLENS_EXPLAIN_THREADS`` still sets the ``explain`` job.
"""
from __future__ import annotations

import contextlib
import os
import threading
from typing import Iterator

from core.errors import ConfigError

ENV = "FUSIONLENS_THREADS"
#: job -> default torch threads (None = every available core).
JOBS: dict[str, int | None] = {
    "head": 1,        # fusion heads, classifier heads on cached embeddings, late-fusion vote weights
    "encoder": None,  # training encoders end to end, encoding every sample, inference timing
    "explain": 1,     # MM-SHAP: many small head passes over per-modality embedding tables
}

_LOCK = threading.Lock()
_STATE: dict[str, int] = {"depth": 0, "saved": 0}
_LOCAL = threading.local()


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def parse_threads(value: str) -> dict[str, int]:
    """``"2"`` -> every job 2; ``"head=1,encoder=4"`` -> those jobs. Empty -> no override."""
    value = value.strip()
    if not value:
        return {}
    fix = f"use a positive integer or job=N pairs, e.g. {ENV}=1 or {ENV}=head=1,encoder=4 (jobs: {', '.join(JOBS)})"
    pairs = [("*", value)] if "=" not in value else [part.partition("=")[::2] for part in value.split(",")]
    counts: dict[str, int] = {}
    for job, n in pairs:
        job = job.strip()
        if job != "*" and job not in JOBS:
            raise ConfigError(f"unknown thread job {job!r} in {value!r}", fix=fix)
        try:
            count = int(n)
        except ValueError:
            raise ConfigError(f"thread setting {value!r} is not understood", fix=fix) from None
        counts.update(dict.fromkeys(JOBS, count) if job == "*" else {job: count})
    if any(n < 1 for n in counts.values()):
        raise ConfigError(f"thread setting {value!r} asks for fewer than one thread", fix=fix)
    return counts


def job_threads(job: str) -> int:
    """Torch threads for ``job``: the override from the environment, else :data:`JOBS`."""
    if job not in JOBS:
        raise ConfigError(f"unknown thread job {job!r}", fix=f"use one of: {', '.join(JOBS)}")
    override = parse_threads(os.environ.get(ENV, ""))
    if job in override:
        return override[job]
    if job == "explain" and os.environ.get("FUSIONLENS_EXPLAIN_THREADS", "").strip():
        return parse_threads(os.environ["FUSIONLENS_EXPLAIN_THREADS"])["explain"]
    default = JOBS[job]
    return available_cores() if default is None else default


@contextlib.contextmanager
def torch_threads(job: str, threads: int | None = None) -> Iterator[int]:
    """Run the block with the torch thread count of ``job`` (or ``threads``), restored afterwards.

    Nested blocks restore the count of the block around them. Blocks entered concurrently from
    several threads (the dashboard serves sessions in threads) share one saved value: the last
    block to leave restores what was set before the first one entered.
    """
    import torch

    n = job_threads(job) if threads is None else int(threads)
    if n < 1:
        raise ConfigError(f"{n} torch threads asked for job {job!r}", fix="use one thread or more")
    stack: list[int] = _LOCAL.__dict__.setdefault("stack", [])
    with _LOCK:
        if _STATE["depth"] == 0:
            _STATE["saved"] = torch.get_num_threads()
        _STATE["depth"] += 1
        stack.append(torch.get_num_threads())
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    try:
        yield n
    finally:
        with _LOCK:
            previous = stack.pop()
            _STATE["depth"] -= 1
            if _STATE["depth"] == 0:
                torch.set_num_threads(_STATE["saved"])
            elif stack:  # nested in this thread: back to the enclosing block's count
                torch.set_num_threads(previous)
