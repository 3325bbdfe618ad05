"""``<run>/trust.json``: the trust checks of one run, written atomically and read back checked.

One object (``docs/TRUST.md`` has the full layout)::

    {"schema_version": 1, "run": ..., "experiment": ..., "computed_at": ISO time,
     "command": the command that recomputes it, "settings": {...}, "thresholds": {...},
     "timings": {check: seconds, ..., "total": seconds},
     "checks": {check: {"status": "pass" | "warn" | "fail" | "skip", "reason": one sentence,
                        "n": samples it rests on, "numbers": {...}, "seconds": ...}}}

Reading never imports torch (the dashboard's Trust panel reads it). NaN is
written as ``null``.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from core.errors import cli_command
from core.io import plain_json as plain, read_checked_report, write_json

#: Bumped when the layout of ``trust.json`` changes; another version is refused with the fix.
SCHEMA_VERSION = 1
TRUST_FILE = "trust.json"
#: ``skip``: the check does not apply to this run or was not run (the reason says which).
STATUSES = ("pass", "warn", "fail", "skip")
#: The checks, in the order they are shown, with their titles.
CHECKS: dict[str, str] = {
    "randomisation": "Model randomisation",
    "reliance": "Designed reliance vs measured shares",
    "controlled": "Controlled variant (one modality shuffled)",
    "estimator": "Estimator error",
    "summary": "Shares summary",
}


@dataclass
class CheckResult:
    """One check's outcome: status, a one-sentence reason, the samples it rests on, its numbers."""

    name: str
    status: str
    reason: str
    n: int | None = None
    numbers: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "n": self.n, "numbers": plain(self.numbers),
                "seconds": None if self.seconds is None else round(float(self.seconds), 3)}


def skipped(name: str, reason: str) -> CheckResult:
    return CheckResult(name, "skip", reason)


def worst(statuses: list[str]) -> str:
    """The worst of some statuses (fail > warn > pass); skip only when all are skip."""
    for status in ("fail", "warn", "pass"):
        if status in statuses:
            return status
    return "skip"


def trust_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / TRUST_FILE


def check_command(run_dir: str | Path, *, controlled: bool = False) -> str:
    """The command that (re)computes a run's trust checks."""
    return f"{cli_command()} check {shlex.quote(str(run_dir))}" + (" --controlled" if controlled else "")


def write_trust(run_dir: str | Path, report: Mapping[str, Any]) -> Path:
    """Write ``<run>/trust.json`` atomically (a crash never leaves half a file)."""
    path = trust_path(run_dir)
    write_json(path, plain(report))
    return path


def trust_problems(report: Any) -> list[str]:
    """What is wrong with the content of a ``trust.json``; empty when it can be shown."""
    if not isinstance(report, dict):
        return [f"it holds a {type(report).__name__}, not an object"]
    version = report.get("schema_version")
    if version != SCHEMA_VERSION:
        return [f"it has schema version {version!r}; this FusionLens reads version {SCHEMA_VERSION}"]
    checks = report.get("checks")
    if not isinstance(checks, dict):
        return ["it has no 'checks' object"]
    out = []
    for name, check in checks.items():
        if not isinstance(check, dict):
            out.append(f"check {name!r} is not an object")
            continue
        if check.get("status") not in STATUSES:
            out.append(f"check {name!r} has status {check.get('status')!r}, not one of {', '.join(STATUSES)}")
        if not isinstance(check.get("reason"), str):
            out.append(f"check {name!r} has no reason")
        n = check.get("n")
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
            out.append(f"check {name!r} has n = {n!r}, not a count")
        if not isinstance(check.get("numbers", {}), dict):
            out.append(f"check {name!r} has numbers that are not an object")
    return out


def load_trust(run_dir: str | Path) -> dict[str, Any] | None:
    """A run's ``trust.json``, checked; None when the checks were never run.

    A file that cannot be read, is not JSON, or does not hold a trust report of this
    version is a :class:`~core.errors.BundleError` naming the file and the fix (run the check again).
    """
    return read_checked_report(trust_path(run_dir), what="trust report", command=check_command(run_dir), problems=trust_problems)
