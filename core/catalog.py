"""The run catalog: the one way every reader finds experiments and runs under a runs root.

It owns three decisions, so that the CLI, the results table, projections,
explanations and the dashboard make them the same way:

* **what is a run**: a folder of an experiment holding at least one bundle file;
  staging folders (``<run>.partial``, ``<run>.old``), hidden folders and
  ``_cache`` are not runs and are skipped;
* **what is refused**: a name with separators or ``..`` (:func:`safe_join`), an
  experiment or run folder that resolves (symlinks followed) outside the runs
  root, and a run with a file (or a file of its ``projections/`` or
  ``explanations/``) that links outside it. A refused run is listed as such and
  never read;
* **what state a run is in**: ``complete``, ``incomplete`` (bundle files
  missing), ``broken`` (a file is corrupted, lacks a key or has a wrong type:
  the :class:`~core.errors.BundleError` problem and fix) or ``refused``.

:func:`scan_runs` returns a :class:`RunEntry` per run with its state;
:func:`list_runs` the complete ones only; :func:`list_experiments` and
:func:`list_run_names` the names the dashboard offers; :func:`resolve_runs` the
runs a command names (a run folder, or an experiment and ``--run`` names).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from core.bundle import REQUIRED_FILES, Run, experiment_arg, load_run
from core.errors import BundleError, ConfigError, FusionLensError, cli_command
from core.experiment import load_experiment

__all__ = [
    "BROKEN",
    "COMPLETE",
    "INCOMPLETE",
    "REFUSED",
    "ExperimentEntry",
    "PathRefused",
    "RunEntry",
    "check_name",
    "check_run_dir",
    "inspect_run",
    "is_inside",
    "list_experiments",
    "list_run_names",
    "list_runs",
    "resolve_runs",
    "run_entry",
    "safe_join",
    "scan_experiments",
    "scan_runs",
]

COMPLETE, INCOMPLETE, BROKEN, REFUSED = "complete", "incomplete", "broken", "refused"
#: Files whose presence makes a folder a run (complete or not).
_BUNDLE_MARKERS = ("config.json", "predictions.parquet", "metrics.json", "model.safetensors")
#: Folders inside an experiment that are never runs.
_NOT_RUNS = ("_cache",)
_STAGING_SUFFIXES = (".partial", ".old")
_MAX_NAME = 200
_REFUSED_FIX = "replace the link with the folder or files themselves (inside the runs directory), or rebuild the run"


class PathRefused(ConfigError):
    """A name or a link would reach outside the runs directory."""


# --------------------------------------------------------------------------- safe paths


def check_name(name: Any, what: str = "name") -> str:
    """``name`` if it is a plain file name (no separators, not ``.``/``..``, not hidden); else PathRefused."""
    if not isinstance(name, str) or not name:
        raise PathRefused(f"empty {what}", fix="pick one from the sidebar")
    bad = (
        len(name) > _MAX_NAME
        or name in (".", "..")
        or name.startswith(".")
        or any(sep in name for sep in ("/", "\\", "\x00"))
        or os.path.isabs(name)
        or ".." in Path(name).parts
    )
    if bad:
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise PathRefused(
            f"refused {what} {shown!r}: it is not a plain name inside the runs directory",
            fix="pick an experiment and a run from the sidebar",
        )
    return name


def is_inside(path: str | Path, root: str | Path) -> bool:
    """Whether ``path`` resolves (symlinks followed) to ``root`` or below it."""
    try:
        return Path(path).resolve().is_relative_to(Path(root).resolve())
    except (OSError, RuntimeError):  # symlink loops
        return False


def safe_join(root: str | Path, *names: str, what: Sequence[str] = ("experiment", "run")) -> Path:
    """``root / name / ...`` after checking every name and where the result really points.

    Raises :class:`PathRefused` for separators, ``..``, absolute paths, hidden
    names, or a symlink that leads outside ``root``.
    """
    root = Path(root).resolve()
    path = root
    for i, name in enumerate(names):
        label = what[i] if i < len(what) else "name"
        path = path / check_name(name, label)
    if not is_inside(path, root):
        raise PathRefused(
            f"refused {'/'.join(names)!r}: it points outside the runs directory {root}",
            fix="only runs inside the runs directory can be opened",
        )
    return path


def _escapes(run_dir: Path, root: Path) -> list[str]:
    """Entries of a run (and of its projection/explanation folders) that resolve outside ``root``."""
    bad = []
    for folder in (run_dir, run_dir / "projections", run_dir / "explanations"):
        try:
            if not folder.is_dir():
                continue
            entries = list(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.is_symlink() and not is_inside(entry, root):
                bad.append(entry.name if folder == run_dir else f"{folder.name}/{entry.name}")
    return bad


def check_run_dir(root: str | Path, experiment: str, run: str) -> Path:
    """The run folder, refused if a name, the folder or any file in it points outside the root."""
    run_dir = safe_join(root, experiment, run)
    bad = _escapes(run_dir, Path(root).resolve())
    if bad:
        raise PathRefused(
            f"refused run {run!r}: {', '.join(bad)} link(s) outside the runs directory", fix=_REFUSED_FIX)
    return run_dir


# --------------------------------------------------------------------------- entries


@dataclass(frozen=True)
class RunEntry:
    """One run of an experiment as the catalog sees it.

    ``state`` is one of ``complete``, ``incomplete``, ``broken``, ``refused``;
    ``problem`` and ``fix`` say what is wrong and what to do (None when complete).
    ``run`` is the loaded bundle when the scan verified it.
    """

    name: str
    path: Path
    state: str
    problem: str | None = None
    fix: str | None = None
    run: Run | None = field(default=None, repr=False, compare=False)

    @property
    def usable(self) -> bool:
        return self.state == COMPLETE

    @property
    def message(self) -> str:
        """``problem. Fix: fix`` without a leading ``run <name>:`` (empty for a complete run)."""
        if self.problem is None:
            return ""
        problem = self.problem.removeprefix(f"run {self.name}: ")
        return problem if not self.fix else f"{problem}. Fix: {self.fix}"

    def error(self) -> FusionLensError:
        """The entry's problem as an error (for readers that must stop here): PathRefused or BundleError."""
        cls = PathRefused if self.state == REFUSED else BundleError
        return cls(self.problem or f"run {self.name} is {self.state}", fix=self.fix)


@dataclass(frozen=True)
class ExperimentEntry:
    """An experiment folder under the runs root: ``ok`` or ``refused`` (with the problem)."""

    name: str
    path: Path
    state: str
    problem: str | None = None


def _is_candidate(p: Path) -> bool:
    return not (p.name.startswith((".", "_")) or p.name in _NOT_RUNS or p.name.endswith(_STAGING_SUFFIXES))


def _is_dir(p: Path) -> bool:
    try:
        return p.is_dir()
    except OSError:
        return False


def _safetensors_problem(path: Path) -> str | None:
    """Why a safetensors file is damaged, from its header alone (no tensor read, no torch import):
    the 8-byte header length, the JSON header, and tensor offsets that fill the file exactly."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            if n < 2 or 8 + n > size:
                return f"its header length {n} does not fit the file ({size} bytes)"
            header = json.loads(fh.read(n))
    except (OSError, ValueError) as exc:
        return f"its header is unreadable ({type(exc).__name__}: {exc})"
    if not isinstance(header, dict):
        return "its header is not an object"
    try:
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (KeyError, TypeError, ValueError, IndexError):
        return "its header lists a tensor without data offsets"
    if max(ends, default=0) != size - 8 - n:
        return f"its tensors need {max(ends, default=0)} bytes but the file holds {size - 8 - n} (truncated?)"
    return None


def _check_headers(run_dir: Path) -> None:
    """A truncated or garbled weights or embeddings file makes the run broken (headers only)."""
    for fname, what in (("model.safetensors", "model weights"), ("embeddings.safetensors", "embeddings")):
        problem = _safetensors_problem(run_dir / fname)
        if problem is not None:
            raise BundleError(f"{what} {run_dir / fname} are corrupted: {problem}",
                              fix=f"rebuild the run: rerun `{cli_command()} build {experiment_arg(run_dir.parent)} --force`")


def _inspect(path: Path, root: Path, verify: bool) -> RunEntry:
    name = path.name
    if not is_inside(path, root):
        return RunEntry(name, path, REFUSED, f"run {name} points outside the runs directory {root}", _REFUSED_FIX)
    bad = _escapes(path, root)
    if bad:
        return RunEntry(name, path, REFUSED, f"run {name} has {', '.join(bad)} linking outside the runs directory",
                        _REFUSED_FIX)
    missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
    if missing:
        return RunEntry(name, path, INCOMPLETE, f"run {name} is incomplete: missing {', '.join(missing)}",
                        f"rerun `{cli_command()} build {experiment_arg(path.parent)}` (finished runs are kept, "
                        "this one is redone)")
    if not verify:
        return RunEntry(name, path, COMPLETE)
    try:
        run = load_run(path)
        _check_headers(path)
    except BundleError as exc:
        return RunEntry(name, path, BROKEN, exc.problem, exc.fix)
    return RunEntry(name, path, COMPLETE, run=run)


def scan_runs(exp_dir: str | Path, root: str | Path | None = None, *, verify: bool = True) -> list[RunEntry]:
    """Every run of an experiment folder with its state, sorted by name.

    ``root`` is the runs root that nothing may leave (default: the experiment
    folder's parent). ``verify`` loads each complete-looking run (JSON keys and
    types, the predictions table, the safetensors headers) so that damage shows
    as ``broken``; without it the state comes from the files present only.
    Staging folders, hidden folders and ``_cache`` are skipped.
    """
    exp_dir = Path(exp_dir)
    root = Path(root).resolve() if root is not None else exp_dir.resolve().parent
    if not _is_dir(exp_dir):
        return []
    if not is_inside(exp_dir, root):
        return [RunEntry(p.name, p, REFUSED, f"experiment {exp_dir.name} points outside the runs directory {root}",
                         _REFUSED_FIX) for p in sorted(exp_dir.iterdir()) if _is_candidate(p)]
    out = []
    for p in sorted(exp_dir.iterdir()):
        if not _is_candidate(p):
            continue
        if p.is_symlink() and not is_inside(p, root):
            out.append(_inspect(p, root, verify))  # refused without looking inside
            continue
        if not _is_dir(p) or not any((p / f).exists() for f in _BUNDLE_MARKERS):
            continue  # not a run (e.g. a folder of notes)
        out.append(_inspect(p, root, verify))
    return out


def list_runs(exp_dir: str | Path, root: str | Path | None = None) -> list[Path]:
    """Folders of the complete, readable runs of an experiment (refused and broken ones left out)."""
    return [e.path for e in scan_runs(exp_dir, root) if e.usable]


def inspect_run(run_dir: str | Path, root: str | Path | None = None, *, verify: bool = True) -> RunEntry:
    """The entry of a run folder given as a path (``root``: default its experiment's parent)."""
    run_dir = Path(run_dir)
    root = Path(root).resolve() if root is not None else run_dir.resolve().parent.parent
    return _inspect(run_dir, root, verify)


def run_entry(root: str | Path, experiment: str, run: str, *, verify: bool = True) -> RunEntry:
    """The entry of one named run (names checked by :func:`safe_join`; a bad name is refused)."""
    try:
        exp_dir = safe_join(root, experiment)
    except PathRefused as exc:
        return RunEntry(str(run), Path(root) / str(experiment) / str(run), REFUSED, exc.problem, exc.fix)
    try:
        check_name(run, "run")
    except PathRefused as exc:
        return RunEntry(str(run), exp_dir / str(run), REFUSED, exc.problem, exc.fix)
    path = exp_dir / run
    if not (path.is_symlink() or _is_dir(path)):
        return RunEntry(run, path, INCOMPLETE, f"run {run} does not exist in {exp_dir}",
                        f"list runs with `{cli_command()} list`")
    return _inspect(path, Path(root).resolve(), verify)


def scan_experiments(root: str | Path) -> list[ExperimentEntry]:
    """Experiment folders under the root (hidden and ``_`` folders skipped); links outside are refused."""
    root = Path(root)
    if not _is_dir(root):
        return []
    out = []
    for p in sorted(root.iterdir()):
        if p.name.startswith((".", "_")) or not _is_dir(p):
            continue
        if not is_inside(p, root):
            out.append(ExperimentEntry(p.name, p, REFUSED, f"experiment {p.name} points outside the runs "
                                                            f"directory {root.resolve()}"))
        else:
            out.append(ExperimentEntry(p.name, p, "ok"))
    return out


def list_experiments(root: str | Path) -> list[str]:
    """Experiments under the runs root that can be opened: inside it, with a dataset or at least one run."""
    return [e.name for e in scan_experiments(root)
            if e.state == "ok" and ((e.path / "dataset.json").is_file() or list_run_names(root, e.name))]


def list_run_names(root: str | Path, experiment: str) -> list[str]:
    """Names of the runs of an experiment the dashboard offers: every run but the refused ones
    (a broken or incomplete run is offered and shows its problem)."""
    exp_dir = safe_join(root, experiment)
    return [e.name for e in scan_runs(exp_dir, root, verify=False) if e.state != REFUSED]


def resolve_runs(target: str | Path, root: str | Path, runs: Sequence[str] | None = None,
                 skipped: list[str] | None = None) -> list[Path]:
    """The run folders a command names: a run folder, or an experiment (a name, a ``.toml``, or a
    folder under the runs root) with optionally the names of some of its runs.

    A named run (a folder, or one of ``runs``) that is broken, incomplete or refused is an
    error; of a whole experiment the usable runs are returned and the others are added to
    ``skipped`` as ``run X (state): problem. Fix: ...`` lines. An experiment with no usable
    run is a ConfigError naming the build command.
    """
    root = Path(root)
    path = Path(target)
    if path.is_dir() and (path / "config.json").is_file():
        entry = inspect_run(path)
        if not entry.usable:
            raise entry.error()
        return [path]
    name = str(target)
    exp_dir = root / name if "/" not in name and (root / name).is_dir() else root / load_experiment(target).name
    entries = scan_runs(exp_dir, root)
    if runs:
        by_name = {e.name: e for e in entries}
        unknown = [r for r in runs if r not in by_name]
        if unknown:
            raise ConfigError(f"unknown run(s) {unknown} in {exp_dir}",
                              fix=f"use names from: {', '.join(by_name) or '(none built yet)'}")
        for r in runs:
            if not by_name[r].usable:
                raise by_name[r].error()
        return [by_name[r].path for r in runs]
    found = [e.path for e in entries if e.usable]
    if skipped is not None:
        skipped += [f"run {e.name} ({e.state}): {e.message}" for e in entries if not e.usable]
    if not found:
        raise ConfigError(f"no usable runs under {exp_dir}" + (f" ({len(entries)} damaged or refused)" if entries
                                                             else ""),
                          fix=f"build them first: {cli_command()} build {target}" + (" --force" if entries else ""))
    return found
