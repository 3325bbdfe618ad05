"""Errors that name the problem and the fix.

Every error FusionLens raises on bad input is a ``FusionLensError`` whose
message reads ``<problem>. Fix: <what to do>``, so the CLI and the dashboard
can show it as is.
"""
from __future__ import annotations

import difflib
import shutil
import sys
from pathlib import Path
from typing import Iterable

#: The console command ``pip install -e .`` (``scripts/setup.sh``) installs.
CLI_NAME = "fusionlens"


def cli_command() -> str:
    """How a user runs FusionLens's CLI from a shell here, for commands shown in messages.

    ``fusionlens`` when it is on ``PATH``; the installed script's path when it sits next to
    this Python but its folder is not on ``PATH`` (a virtual environment that is not
    activated), relative to the current folder when inside it; else ``python -m core``
    (which works from the repository root).
    """
    if shutil.which(CLI_NAME):
        return CLI_NAME
    script = Path(sys.executable).parent / CLI_NAME
    if script.is_file():
        try:
            return str(script.absolute().relative_to(Path.cwd()))
        except ValueError:
            return str(script.absolute())
    return "python -m core"


class FusionLensError(Exception):
    """Base error: ``problem`` says what is wrong, ``fix`` what to do about it."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(problem if not fix else f"{problem}. Fix: {fix}")

    def __reduce__(self) -> tuple:
        """Problem and fix survive pickling (an error raised in a worker process reaches the caller whole)."""
        return type(self), (self.problem, self.fix)


class ConfigError(FusionLensError, ValueError):
    """An experiment file, CLI argument or registry name is wrong."""


class DataError(FusionLensError, ValueError):
    """A manifest, data file or sample is missing or malformed."""


class BundleError(FusionLensError):
    """A run bundle is missing, incomplete, corrupted or from another format version."""


def choices(names: Iterable[object], none: str = "(none registered)") -> str:
    """``a, b, c`` for a fix message; ``none`` when there is nothing to list, never an empty string."""
    listed = [str(n) for n in names]
    return ", ".join(listed) if listed else none


def did_you_mean(name: object, known: Iterable[object]) -> str:
    """``"did you mean 'x'? "`` for the closest known name (difflib), or ``""`` when none is close."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""
