"""Progress reporting of the explain functions: a tqdm bar, nothing, or a callable ``(done, total)``."""
from __future__ import annotations

from typing import Any, Callable

from core.errors import ConfigError

ProgressFn = Callable[[int, int], None]


class Progress:
    """``progress``: True (tqdm), False/None (silent) or a callable ``(done, total)``."""

    def __init__(self, progress: Any, total: int, desc: str) -> None:
        self.total = max(1, int(total))
        self.done = 0
        self.fn: ProgressFn | None = None
        self.bar = None
        if callable(progress):
            self.fn = progress
        elif progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, desc=desc, leave=False)

    def update(self, n: int) -> None:
        new = min(self.total, self.done + int(n))
        step, self.done = new - self.done, new
        if self.fn is not None:
            self.fn(self.done, self.total)
        if self.bar is not None and step:
            self.bar.update(step)

    def close(self, fill: bool = True) -> None:
        """End the bar. ``fill``: report it complete (its total was an estimate, like an explanation's count of
        model evaluations); without, report what was done (a count of explanations a deadline may have cut)."""
        if self.fn is not None:
            self.fn(self.total if fill else self.done, self.total)
        if self.bar is not None:
            if fill:
                self.bar.update(self.total - self.done)
            self.bar.close()


def check_progress(progress: Any) -> Any:
    if progress is None or isinstance(progress, bool) or callable(progress):
        return progress
    raise ConfigError(f"progress={progress!r} is not understood",
                      fix="pass True (progress bar), False, or a callable(done, total)")
