"""The Robustness page's table: runs x conditions, from the runs' ``robustness.json``.

:func:`robustness_table` is pure (plain dicts in, a frame out) so the page stays thin and the
table is testable; :func:`best_rows` names the best run of each column (the page highlights it).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ui.labels import pretty_modality

__all__ = ["CLEAN", "robustness_table", "condition_columns", "best_rows", "pick_runs"]

CLEAN = "Clean"


def _missing_label(m: str) -> str:
    return f"Without {pretty_modality(m)}"


def _random_label(rate: float) -> str:
    return f"Missing at random {rate:.0%}"


def _noise_label(m: str, noise: str, summary: str) -> str:
    return f"{pretty_modality(m)} {noise}: {summary}"


def robustness_table(reports: Mapping[str, Mapping[str, Any]], modalities: Sequence[str] | None = None
                     ) -> pd.DataFrame:
    """One row per run: n, the rule, clean accuracy, accuracy without each modality, missing at random,
    and MultiBench's relative and effective robustness of each (modality, noise); NaN where a run has
    no such condition (a modality it does not use)."""
    mods = list(modalities) if modalities is not None else list(dict.fromkeys(
        m for r in reports.values() for m in (r.get("missing") or {})))
    rows = []
    for run, r in reports.items():
        row: dict[str, Any] = {"run": run, "n": r.get("n"), "missing rule": r.get("rule") or "none",
                               CLEAN: r.get("clean")}
        for m in mods:
            row[_missing_label(m)] = (r.get("missing") or {}).get(m, np.nan)
        for entry in r.get("random_missing") or []:
            row[_random_label(float(entry.get("rate", 0)))] = entry.get("accuracy")
        for m in mods:
            for noise, curve in ((r.get("noise") or {}).get(m) or {}).items():
                row[_noise_label(m, noise, "relative")] = curve.get("relative")
                row[_noise_label(m, noise, "effective")] = curve.get("effective")
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    numeric = [c for c in frame.columns if c not in ("run", "missing rule")]
    frame[numeric] = frame[numeric].apply(pd.to_numeric, errors="coerce")
    return frame.sort_values(CLEAN, ascending=False, kind="stable").reset_index(drop=True)


def condition_columns(frame: pd.DataFrame) -> list[str]:
    """The columns holding a score (higher is better): everything but run, n and the rule."""
    return [c for c in frame.columns if c not in ("run", "n", "missing rule")]


def best_rows(frame: pd.DataFrame) -> dict[str, list[int]]:
    """Column -> the rows holding its best value (ties kept); columns with no value are left out."""
    out = {}
    for c in condition_columns(frame):
        values = frame[c]
        if values.notna().any():
            best = values.max()
            out[c] = [int(i) for i in np.flatnonzero(np.isclose(values.to_numpy(dtype=float), best))]
    return out


def pick_runs(reports: Mapping[str, Mapping[str, Any]], selected: str | None, limit: int = 3) -> list[str]:
    """The runs whose curves are shown first: the sidebar's run, then the run(s) with modality dropout
    and the late-fusion baselines its curves are compared with, at most ``limit``."""
    out = [selected] if selected in reports else []
    r = reports.get(selected or "") or {}
    baselines = [c.get("baseline") for per in (r.get("noise") or {}).values() for c in per.values()]
    for name in [*baselines, *[n for n in reports if "-mdrop-" in n]]:
        if name and name in reports and name not in out:
            out.append(name)
    if not out and reports:
        out.append(next(iter(reports)))
    return out[:limit]
