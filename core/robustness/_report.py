"""``<run>/robustness.json``: a run's robustness table, written atomically and read back checked.

One object (``docs/ROBUSTNESS.md`` has the full layout)::

    {"schema_version": 1, "run": ..., "experiment": ..., "run_fingerprint": ..., "computed_at": ISO time,
     "command": the command that recomputes it, "settings": {...}, "settings_hash": ...,
     "n": test samples used, "rule": how a missing modality is filled,
     "clean": accuracy, "missing": {modality: accuracy},
     "random_missing": [{"rate": r, "accuracy": a, "n_missing": samples that lost a modality}],
     "noise": {modality: {noise: {"levels": [...], "accuracy": [...], "relative": area,
                                  "effective": float or null, "baseline": run or null}}},
     "shares": {modality: {noise: {"levels": [...], "n": [...], "shares": {modality: [...]}}}} (optional),
     "seconds": time spent on this run}

Reading never imports torch (the dashboard's Robustness page reads it).
"""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Mapping

from core.errors import cli_command
from core.io import plain_json as plain, read_checked_report, write_json

#: Bumped when the layout of ``robustness.json`` changes; another version is refused with the fix.
SCHEMA_VERSION = 1
ROBUSTNESS_FILE = "robustness.json"


def robustness_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / ROBUSTNESS_FILE


def robustness_command(run_dir: str | Path, settings: Any = None) -> str:
    """The command that (re)computes one run's robustness table (with ``settings``, a
    :class:`~core.robustness.RobustnessSettings`, when they are not the defaults)."""
    from core.robustness._settings import settings_argv

    flags = "".join(f" {shlex.quote(a)}" for a in settings_argv(settings))
    return f"{cli_command()} robustness {shlex.quote(str(run_dir))}{flags}"


def write_robustness(run_dir: str | Path, report: Mapping[str, Any]) -> Path:
    """Write ``<run>/robustness.json`` atomically (a crash never leaves half a file)."""
    path = robustness_path(run_dir)
    write_json(path, plain(report))
    return path


def _number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def robustness_problems(report: Any) -> list[str]:
    """What is wrong with the content of a ``robustness.json``; empty when it can be shown."""
    if not isinstance(report, dict):
        return [f"it holds a {type(report).__name__}, not an object"]
    version = report.get("schema_version")
    if version != SCHEMA_VERSION:
        return [f"it has schema version {version!r}; this FusionLens reads version {SCHEMA_VERSION}"]
    out = []
    if not isinstance(report.get("run"), str):
        out.append("it names no run")
    n = report.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        out.append(f"n = {n!r} is not a count")
    if not _number(report.get("clean")):
        out.append("its clean accuracy is not a number")
    missing = report.get("missing")
    if not isinstance(missing, dict) or not all(_number(v) for v in missing.values()):
        out.append("'missing' is not an object of accuracies")
    if not isinstance(report.get("random_missing", []), list):
        out.append("'random_missing' is not a list")
    noise = report.get("noise")
    if not isinstance(noise, dict):
        out.append("it has no 'noise' object")
    else:
        for m, per in noise.items():
            if not isinstance(per, dict):
                out.append(f"noise of {m!r} is not an object")
                continue
            for name, curve in per.items():
                if not isinstance(curve, dict) or not isinstance(curve.get("levels"), list) \
                        or not isinstance(curve.get("accuracy"), list) \
                        or len(curve["levels"]) != len(curve["accuracy"]):
                    out.append(f"the {name} curve of {m!r} has no levels and accuracies of one length")
    shares = report.get("shares")
    if shares is not None and not isinstance(shares, dict):
        out.append("'shares' is not an object")
    return out


def load_robustness(run_dir: str | Path) -> dict[str, Any] | None:
    """A run's ``robustness.json``, checked; None when it was never computed.

    A file that cannot be read, is not JSON, or does not hold a robustness table of this
    version is a :class:`~core.errors.BundleError` naming the file and the fix (compute it again).
    """
    return read_checked_report(robustness_path(run_dir), what="robustness table", command=robustness_command(run_dir), problems=robustness_problems)
