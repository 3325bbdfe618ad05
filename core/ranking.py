"""Which run is "best": one rule for the dashboard's Overview and the runs the build explains.

The Overview's best run is chosen among the runs that use every modality of the
experiment (:func:`best_full_run`), so its first screen shows every modality; the
best run overall (:func:`best_run`, perhaps a text-only run tied at top-1) is
shown beside it. Within either set the highest top-1 wins. A tie (common on
small test splits, where several runs get the same number of samples right)
goes to the run that uses more
modalities, then to a run that has stored explanations (so the Overview points
at a run whose contributions it can show), then to the first name in
alphabetical order. :func:`best_full_run` (the Overview and the dashboard
sidebar's default run, over a results table), :func:`best_run` and
:func:`core.explain.select_build_runs` (whose first run is the best over the most
modalities: what the build explains first) all sort by :func:`run_rank_key`, so the
build explains the run the Overview shows.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

__all__ = ["run_rank_key", "has_explanations", "best_run", "run_modalities", "full_runs", "best_full_run"]

# top-1 values closer than this are a tie (the same count of correct samples, computed twice)
_TIE_DECIMALS = 9


def run_rank_key(name: str, top1: Any, n_modalities: int, explained: bool) -> tuple:
    """Sort key of a run: ``min(runs, key=...)`` (or ``sorted``) puts the best run first.

    A missing or non-numeric ``top1`` ranks below every number.
    """
    try:
        value = float(top1)
    except (TypeError, ValueError):
        value = math.nan
    score = round(value, _TIE_DECIMALS) if math.isfinite(value) else -math.inf
    return (-score, -int(n_modalities), not bool(explained), str(name))


def has_explanations(run_dir: str | Path) -> bool:
    """Whether a run has stored per-sample explanations (``explanations/samples-*.parquet``,
    the layout of docs/FORMATS.md), without reading them."""
    folder = Path(run_dir) / "explanations"
    return folder.is_dir() and any(folder.glob("samples-*.parquet"))


def best_run(results: pd.DataFrame | None, metric: str = "top1", explained: Iterable[str] = ()) -> str | None:
    """Name of the run of a results table (:func:`core.results.results_table`) with the highest
    ``metric``, ties broken by :func:`run_rank_key` (``explained``: the runs with stored
    explanations); None when no row has a number in ``metric``."""
    if results is None or results.empty or metric not in results.columns:
        return None
    values = pd.to_numeric(results[metric], errors="coerce")
    if values.notna().sum() == 0:
        return None
    explained = set(explained)
    n_mods = (results["modalities"].astype(str).str.split("+").str.len() if "modalities" in results.columns
              else pd.Series(1, index=results.index))
    keys = {i: run_rank_key(str(results.at[i, "run"]), values[i], int(n_mods[i]), str(results.at[i, "run"]) in explained)
            for i in results.index}
    return str(results.at[min(keys, key=keys.get), "run"])


def run_modalities(results: pd.DataFrame) -> pd.Series:
    """Each row's modalities as a list (the results table's ``modalities`` column, ``a+b``)."""
    if "modalities" not in results.columns:
        return pd.Series([[] for _ in range(len(results))], index=results.index, dtype=object)
    return results["modalities"].astype(str).map(lambda text: [m for m in text.split("+") if m])


def full_runs(results: pd.DataFrame | None, modalities: Iterable[str] | None = None) -> pd.DataFrame:
    """The rows of a results table whose run uses every one of ``modalities`` (default: every
    modality any run of the table uses)."""
    if results is None or results.empty:
        return pd.DataFrame(columns=[] if results is None else results.columns)
    used = run_modalities(results)
    wanted = set(modalities) if modalities is not None else {m for mods in used for m in mods}
    return results[used.map(lambda mods: wanted <= set(mods)).to_numpy(dtype=bool)]


def best_full_run(results: pd.DataFrame | None, modalities: Iterable[str] | None = None, metric: str = "top1",
                  explained: Iterable[str] = ()) -> str | None:
    """:func:`best_run` among the runs that use every one of ``modalities`` (default: every modality
    of the table), ties broken the same way; None when no such run has a number in ``metric``."""
    return best_run(full_runs(results, modalities), metric, explained)
