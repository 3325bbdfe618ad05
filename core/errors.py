"""Errors that name the problem and the fix.

Every error FusionLens raises on bad input is a ``FusionLensError`` whose
message reads ``<problem>. Fix: <what to do>``, so the CLI and the dashboard
can show it as is.
"""
from __future__ import annotations


class FusionLensError(Exception):
    """Base error: ``problem`` says what is wrong, ``fix`` what to do about it."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(problem if not fix else f"{problem}. Fix: {fix}")


class ConfigError(FusionLensError, ValueError):
    """An experiment file, CLI argument or registry name is wrong."""


class DataError(FusionLensError, ValueError):
    """A manifest, data file or sample is missing or malformed."""


class BundleError(FusionLensError):
    """A run bundle is missing, incomplete, corrupted or from another format version."""
