"""Scale out with Ray: ``explain``, ``project`` and ``robustness`` as Ray tasks that write what a local run writes.

``fusionlens explain|project|robustness ... --ray [ADDRESS]`` builds a list of
:class:`ShardTask` (plain data: a step, a run folder, its settings as JSON-able
values; never a model) and :func:`run_sharded` runs each as one Ray task that
calls the same local function a local command calls for that run or shard
(:func:`run_task`): :func:`core.explain.explain_run` with ``--shard i/n``,
:func:`core.projection.project_runs` of one run, one run's robustness table.
So the files are the local ones, in the same places (a Ray explain writes the
parts ``--shard i/n`` processes would write), and a Ray run resumes a local
one and the other way round. Work already stored is left out before anything
is submitted (:func:`explain_tasks`, :func:`project_tasks`,
:func:`robustness_tasks`); a task cut short (a worker lost, Ctrl+C) leaves what
its local twin leaves, and the same command finishes it.

Each task asks for one CPU and runs its torch jobs on one thread (``--threads``
of the driver, where given, travels with the task). Without an address Ray
starts a local instance on 127.0.0.1 for the command; with one
(``HEAD:6379``, ``auto``) it joins that cluster, whose nodes must have
FusionLens installed and see the runs folder at the same path (a shared
filesystem). Ray is optional (``requirements-extra.txt``): it is imported only
here and only when ``--ray`` is given.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from core.errors import ConfigError, FusionLensError, choices
from core.threads import ENV as THREADS_ENV

#: ``--ray`` without an address: a Ray instance on this machine, started for the command.
LOCAL = "local"
INSTALL_FIX = "install Ray (an optional dependency): pip install -r requirements-extra.txt"


def require_ray() -> Any:
    """The ``ray`` module, or a ConfigError that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"--ray needs the Ray package, which is not installed ({exc})", fix=INSTALL_FIX) from None
    return ray


@dataclass
class ShardTask:
    """One Ray task: ``step`` (explain, project, robustness) on one run folder; ``args`` are plain values
    (settings as dicts, numbers, strings) that :func:`run_task` turns back into the step's objects."""

    step: str
    run_dir: str
    args: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    #: the driver's ``--threads`` (``$FUSIONLENS_THREADS``), else one thread for every torch job
    threads: str = "1"


# --------------------------------------------------------------------------- the steps (run in a worker)


def _explain(run_dir: str, settings: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    from core.explain import ExplainSettings, PrecomputeOptions, explain_run

    return explain_run(run_dir, ExplainSettings(**settings), PrecomputeOptions(**options), progress=False)


def _project(run_dir: str, methods: Sequence[str], seed: int) -> dict[str, Any]:
    from core.projection import project_runs

    return {"run": Path(run_dir).name, **project_runs([run_dir], methods=list(methods), seed=seed, progress=False,
                                                     workers=1)}  # Ray gives the task one CPU


def _robustness(run_dir: str, settings: Mapping[str, Any], force: bool, share_run: str | None) -> dict[str, Any]:
    """One run of :func:`core.robustness.robustness_runs`' loop: its own embedding bank, the experiment's
    late-fusion runs as baselines (the bank and the scores are seeded, so the table is the local one)."""
    from core.bundle import load_run
    from core.catalog import scan_runs
    from core.robustness import EmbeddingBank, RobustnessSettings, compute_table, is_current, write_robustness

    rs = RobustnessSettings.from_dict(settings)
    run = load_run(run_dir)
    if not force and is_current(run, rs):
        return {"run": run.name, "computed": False, "seconds": 0.0, "encodings": 0, "encode_seconds": 0.0}
    exp_dir = Path(run_dir).parent
    late = [e.run for e in scan_runs(exp_dir) if e.usable and e.run is not None
            and e.run.config.get("strategy") == "late"]
    bank = EmbeddingBank(exp_dir, rs)
    report = compute_table(run, bank, rs, {}, late, shares=run.name == share_run)
    write_robustness(run.path, report)
    return {"run": run.name, "computed": True, "seconds": report["seconds"], "encodings": bank.encodings,
            "encode_seconds": bank.encode_seconds}


#: step -> the local function one task runs
STEPS: dict[str, Callable[..., dict[str, Any]]] = {"explain": _explain, "project": _project,
                                                     "robustness": _robustness}


def run_task(task: ShardTask) -> dict[str, Any]:
    """Run one task here, with its torch thread setting (what a Ray worker does; also usable locally)."""
    if task.step not in STEPS:
        raise ConfigError(f"unknown step {task.step!r}", fix=f"use one of: {choices(STEPS)}")
    saved = os.environ.get(THREADS_ENV)
    os.environ[THREADS_ENV] = task.threads
    try:
        return STEPS[task.step](task.run_dir, **task.args)
    finally:
        if saved is None:
            os.environ.pop(THREADS_ENV, None)
        else:
            os.environ[THREADS_ENV] = saved


# --------------------------------------------------------------------------- Ray


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[int]:
    """Connect to Ray for the block and yield the cluster's CPU count.

    An instance already initialised in this process (a test fixture, a notebook) is used as it is.
    Otherwise ``address`` None or ``"local"`` starts a local instance bound to 127.0.0.1 (``num_cpus``:
    its CPUs, default all) that is shut down after the block; any other address (``HEAD:6379``,
    ``auto``) joins that cluster, and the block's end disconnects.
    """
    ray = require_ray()
    started = False
    if not ray.is_initialized():
        if address in (None, LOCAL):
            ray.init(address=LOCAL, num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1")
        else:
            if num_cpus is not None:
                raise ConfigError("num_cpus is set by the cluster, not by a driver that joins it",
                                  fix="leave num_cpus out, or start workers with `ray start --num-cpus N`")
            try:
                ray.init(address=address)
            except ConnectionError as exc:
                raise ConfigError(f"no Ray cluster answers at {address!r} ({exc})",
                                  fix="start one with `ray start --head --port=6379` and pass --ray HEAD:6379, "
                                      "or leave the address out for a local instance") from None
        started = True
    try:
        yield max(1, int(ray.cluster_resources().get("CPU", 1)))
    finally:
        if started:
            ray.shutdown()


_REMOTE: dict[str, Any] = {}


def _remote_task() -> Any:
    if "task" not in _REMOTE:
        ray = require_ray()
        _REMOTE["task"] = ray.remote(num_cpus=1)(run_task)
    return _REMOTE["task"]


def run_sharded(tasks: Sequence[ShardTask], *, address: str | None = None, num_cpus: int | None = None,
                progress: bool = True) -> list[dict[str, Any]]:
    """Run ``tasks`` as Ray tasks (one CPU each) and return their reports in the order of ``tasks``.

    ``address``/``num_cpus``: as :func:`ray_session`. ``progress``: a tqdm bar over finished tasks.
    Every task runs to its end even when another fails (each stores its work); then the first failure
    is raised (a FusionLens error as itself, with its fix).
    """
    tasks = list(tasks)
    if not tasks:
        return []
    with ray_session(address, num_cpus=num_cpus):
        ray = require_ray()
        remote = _remote_task()
        refs = [remote.remote(t) for t in tasks]
        index = {ref.hex(): k for k, ref in enumerate(refs)}
        reports: list[dict[str, Any] | None] = [None] * len(tasks)
        failures: list[tuple[ShardTask, BaseException]] = []
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(tasks), desc=f"ray {tasks[0].step}", unit="task")
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    k = index[ref.hex()]
                    try:
                        reports[k] = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # the task raised, or its worker was lost
                        cause = getattr(exc, "cause", None)
                        failures.append((tasks[k], cause if isinstance(cause, BaseException) else exc))
                    if bar is not None:
                        bar.set_postfix_str(tasks[k].label or Path(tasks[k].run_dir).name)
                        bar.update(1)
        except BaseException:
            for ref in pending:  # Ctrl+C: the tasks in flight stop; what they stored is kept
                with contextlib.suppress(Exception):
                    ray.cancel(ref)
            raise
        finally:
            if bar is not None:
                bar.close()
    if failures:
        task, exc = failures[0]
        more = f" ({len(failures) - 1} other task(s) failed too)" if len(failures) > 1 else ""
        if isinstance(exc, FusionLensError):
            try:
                named = type(exc)(f"{exc.problem} [Ray task {task.label or task.run_dir}]{more}", fix=exc.fix)
            except TypeError:  # a subclass with another signature: raise it as it came
                raise exc from None
            raise named from exc
        raise RuntimeError(f"Ray task {task.label or task.run_dir} failed{more}: {exc}") from exc
    return [r if r is not None else {} for r in reports]


# --------------------------------------------------------------------------- what to submit


def _threads() -> str:
    return os.environ.get(THREADS_ENV, "").strip() or "1"


def explain_tasks(run_dirs: Sequence[str | Path], settings: Any, options: Any,
                  shards: int) -> tuple[list[ShardTask], int]:
    """One task per shard ``i/shards`` of each run that still has samples to explain; also the count
    of shards left out because every sample of theirs is stored with these settings."""
    import dataclasses
    import warnings

    from core.explain import load_explanations, resolve_run, select_samples

    if options.shard != "0/1":
        raise ConfigError(f"--shard {options.shard} picks one shard for one process; --ray runs every shard",
                          fix="leave --shard out (--ray-shards N sets how many shards, default one per Ray CPU)")
    if isinstance(shards, bool) or int(shards) < 1:
        raise ConfigError(f"{shards!r} shards asked for", fix="pass --ray-shards N with N >= 1")
    shards = int(shards)
    plain = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    plain["modalities"] = None if settings.modalities is None else list(settings.modalities)
    tasks, kept = [], 0
    for run_dir in run_dirs:
        run_dir = Path(run_dir).resolve()
        run = resolve_run(run_dir)
        ids = select_samples(run, options.n, settings.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            stored, _ = load_explanations(run_dir, settings_hash=settings.hash())
        done = set(stored["sample_id"].astype(str))
        for i in range(shards):
            if all(s in done for s in ids[i::shards]):
                kept += 1
                continue
            opts = {"n": options.n, "shard": f"{i}/{shards}", "flush_every": options.flush_every}
            tasks.append(ShardTask("explain", str(run_dir), {"settings": plain, "options": opts},
                                   label=f"{run_dir.name} {i}/{shards}", threads=_threads()))
    return tasks, kept


def _projections_current(run_dir: Path, methods: Sequence[str], seed: int) -> bool:
    """Every requested projection of the run stored, readable and of its current embeddings (what
    :func:`core.projection.ensure_projections` would keep); when unsure, False (the task decides)."""
    from core.errors import BundleError
    from core.projection import data_fingerprint, load_projection, load_run_embeddings

    try:
        ids, embeddings = load_run_embeddings(run_dir)
        ids_list = [str(i) for i in ids]
        for name, arr in embeddings.items():
            fingerprint = data_fingerprint(arr)
            for method in methods:
                stored = load_projection(run_dir, name, method, None, seed)
                if stored is None or list(stored[0]) != ids_list:
                    return False
                if stored[1].meta.get("data_sha256") not in (None, fingerprint):
                    return False
    except (BundleError, KeyError, TypeError, ValueError):
        return False
    return True


def project_tasks(run_dirs: Sequence[str | Path], methods: Sequence[str], seed: int) -> tuple[list[ShardTask], int]:
    """One task per run with a projection to compute; also the count of runs whose every one is stored."""
    from core.projection import check_method

    methods = [check_method(m) for m in methods]
    tasks, kept = [], 0
    for run_dir in run_dirs:
        run_dir = Path(run_dir).resolve()
        if _projections_current(run_dir, methods, int(seed)):
            kept += 1
            continue
        tasks.append(ShardTask("project", str(run_dir), {"methods": methods, "seed": int(seed)},
                               label=run_dir.name, threads=_threads()))
    return tasks, kept


def robustness_tasks(run_dirs: Sequence[str | Path], settings: Any, *, force: bool = False,
                     share_run: str | None = "auto") -> tuple[list[ShardTask], int]:
    """One task per run whose table is missing or stale (every run with ``force``); also the count kept.

    As :func:`core.robustness.robustness_runs`: the named modalities must belong to some run of each
    experiment, and ``share_run="auto"`` is the build's first explained run of each experiment."""
    from core.bundle import load_run
    from core.explain import select_build_runs
    from core.robustness import is_current

    by_exp: dict[Path, list[Path]] = {}
    for r in run_dirs:
        path = Path(r).resolve()
        by_exp.setdefault(path.parent, []).append(path)
    tasks, kept = [], 0
    for exp_dir, paths in by_exp.items():
        runs = [load_run(p) for p in paths]
        if settings.modalities is not None:
            have = sorted({m for r in runs for m in r.modalities})
            unknown = [m for m in settings.modalities if m not in have]
            if unknown:
                named = ", ".join(r.name for r in runs[:3]) + (" ..." if len(runs) > 3 else "")
                raise ConfigError(f"run(s) {named} have no modality {', '.join(map(repr, unknown))}",
                                  fix=f"use some of their modalities: {choices(have)}")
        sharer = share_run
        if share_run == "auto":
            picked = select_build_runs(exp_dir, max_runs=1) if settings.share_samples else []
            sharer = Path(picked[0]).name if picked else None
        for run in runs:
            if not force and is_current(run, settings):
                kept += 1
                continue
            tasks.append(ShardTask("robustness", str(Path(run.path).resolve()),
                                   {"settings": settings.as_dict(), "force": bool(force), "share_run": sharer},
                                   label=run.name, threads=_threads()))
    return tasks, kept


# --------------------------------------------------------------------------- the CLI's form


def add_ray_arguments(parser: argparse.ArgumentParser, *, shards: bool = False) -> None:
    """``--ray [ADDRESS]`` (and, for explain, ``--ray-shards N``) on a subcommand."""
    parser.add_argument("--ray", nargs="?", const=LOCAL, default=None, metavar="ADDRESS",
                        help="run one Ray task per run" + (" shard" if shards else "") + " and write the same "
                             "files: a local Ray instance, or the cluster at ADDRESS (HEAD:6379); give it after "
                             "the target, or as --ray=ADDRESS (needs pip install -r requirements-extra.txt)")
    if shards:
        parser.add_argument("--ray-shards", type=int, default=None, metavar="N",
                            help="with --ray: shards per run (default: one per CPU of the Ray cluster)")


def explain_on_ray(run_dirs: Sequence[str | Path], settings: Any, options: Any, *, address: str | None = None,
                   shards: int | None = None, num_cpus: int | None = None, progress: bool = True) -> dict[str, Any]:
    """``fusionlens explain --ray``: every shard of each run as a Ray task. Returns ``submitted``,
    ``kept`` (shards already stored; None when every sample was, and Ray was not started), ``computed``
    (samples), ``remaining``, ``shards``, ``reports``, ``seconds``."""
    t0 = time.perf_counter()
    require_ray()
    if not explain_tasks(run_dirs, settings, options, 1)[0]:  # every sample stored: no Ray to start
        return {"submitted": 0, "kept": None, "shards": shards, "reports": [], "computed": 0, "remaining": 0,
                "seconds": round(time.perf_counter() - t0, 2)}
    with ray_session(address, num_cpus=num_cpus) as cpus:
        n = cpus if shards is None else shards
        tasks, kept = explain_tasks(run_dirs, settings, options, n)
        reports = run_sharded(tasks, progress=progress)
    return {"submitted": len(tasks), "kept": kept, "shards": n, "reports": reports,
            "computed": sum(int(r.get("computed", 0)) for r in reports),
            "remaining": sum(int(r.get("remaining", 0)) for r in reports),
            "seconds": round(time.perf_counter() - t0, 2)}


def project_on_ray(run_dirs: Sequence[str | Path], methods: Sequence[str], seed: int, *, address: str | None = None,
                   num_cpus: int | None = None, progress: bool = True) -> dict[str, Any]:
    """``fusionlens project --ray``: one Ray task per run with a projection to compute."""
    require_ray()  # before any work, also when nothing is left to submit
    t0 = time.perf_counter()
    tasks, kept = project_tasks(run_dirs, methods, seed)
    reports = run_sharded(tasks, address=address, num_cpus=num_cpus, progress=progress)
    counts = {k: sum(int(r.get(k, 0)) for r in reports) for k in ("computed", "reused", "kept")}
    return {"submitted": len(tasks), "kept_runs": kept, **counts, "reports": reports,
            "seconds": round(time.perf_counter() - t0, 2)}


def robustness_on_ray(run_dirs: Sequence[str | Path], settings: Any, *, force: bool = False,
                      share_run: str | None = "auto", address: str | None = None, num_cpus: int | None = None,
                      progress: bool = True) -> dict[str, Any]:
    """``fusionlens robustness --ray``: one Ray task per run whose table is to compute."""
    require_ray()  # before any work, also when nothing is left to submit
    t0 = time.perf_counter()
    tasks, kept = robustness_tasks(run_dirs, settings, force=force, share_run=share_run)
    reports = run_sharded(tasks, address=address, num_cpus=num_cpus, progress=progress)
    return {"submitted": len(tasks), "kept": kept, "computed": [r["run"] for r in reports if r.get("computed")],
            "reports": reports, "seconds": round(time.perf_counter() - t0, 2)}


def format_ray_summary(step: str, out: Mapping[str, Any]) -> str:
    """The line ``fusionlens <step> --ray`` prints."""
    if step == "explain" and out["kept"] is None:
        return f"explain on Ray: every sample already stored, nothing submitted ({out['seconds']:.1f} s)"
    if step == "explain":
        return (f"explain on Ray: {out['submitted']} shard task(s) of {out['shards']} per run, {out['kept']} shard(s) "
                f"already stored; {out['computed']} sample(s) explained, {out['remaining']} left "
                f"({out['seconds']:.1f} s)")
    if step == "project":
        return (f"projections on Ray: {out['submitted']} run task(s), {out['kept_runs']} run(s) already complete; "
                f"{out['computed']} computed, {out['reused']} reused, {out['kept']} kept ({out['seconds']:.1f} s)")
    return (f"robustness on Ray: {out['submitted']} run task(s), {len(out['computed'])} computed, {out['kept']} "
            f"already stored ({out['seconds']:.1f} s)")
