"""Aggregates of stored explanations in the reference's table shape.

:func:`class_share_table`: one row per true class (and one ``ALL_CLASSES``
row), for each modality its mean share over all, correctly and incorrectly
predicted samples of the class, with the sample counts:

``class, n_all, n_correct, n_incorrect, share_<m>_all, share_<m>_correct, share_<m>_incorrect ..., n_flat``,
then for each mean ``share_<m>_<subset>_low`` / ``_high``: its 95 % Student-t interval over the class's
samples, clipped to [0, 1] (NaN with fewer than 2 samples), so a mean over a handful of samples says so.

``share="mmshap"`` (default) averages the MM-SHAP shares (``share_<m>``),
``share="exact"`` the exact modality shares (``exact_share_<m>``), in the same
columns. A prediction that barely depends on its inputs (``flat``,
:func:`core.explain.is_flat`) has no share in either meaning: it is counted in
``n_<subset>`` and ``n_flat`` but left out of the means.

:func:`class_interaction_table`: the same rows, for each pair of modalities the
mean pairwise Shapley interaction index with its sample count and a 95 %
Student-t interval (flat predictions and samples without coalition values left
out).

A mean over no samples is NaN. Rows of one settings hash only (the given one,
else :func:`core.explain.main_settings_hash`), so results of different settings
never mix.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from core.errors import ConfigError, cli_command
from core.io import atomic_path
from core.explain._interactions import (
    add_modality_game_columns,
    flat_mask,
    interaction_columns,
)
from core.explain._store import (
    run_modalities,
    check_modalities,
    explanations_dir,
    load_explanations,
    preferred_rows,
)
from core.metrics import mean_interval

ALL_CLASSES = "(all classes)"
SUBSETS = ("all", "correct", "incorrect")
#: confidence of the intervals of :func:`class_interaction_table`
INTERACTION_CONFIDENCE = 0.95
#: confidence of the intervals of the class means of :func:`class_share_table`
SHARE_CONFIDENCE = 0.95
#: the two meanings of a modality's share: per-sample column prefix and saved file name
SHARE_MEANINGS = {"mmshap": ("share_", "class_shares"), "exact": ("exact_share_", "class_exact_shares")}


def _share_modalities(samples: pd.DataFrame) -> list[str]:
    """The modalities of a samples frame: those its ``modalities`` JSON cells name, else every
    ``share_<m>`` column's (other per-modality columns such as ``share_stderr_<m>`` aside), else every
    ``exact_share_<m>`` column's (the modality game of every prediction, ``load_modality_game``)."""
    named: dict[str, None] = {}
    if "modalities" in samples.columns:
        for cell in samples["modalities"].dropna().unique():
            try:
                named.update(dict.fromkeys(str(m) for m in json.loads(cell)))
            except (TypeError, ValueError):
                continue
    if named:
        return list(named)
    found = [c[len("share_"):] for c in samples.columns if c.startswith("share_")
             and not c.startswith(("share_stderr_", "share_se_"))]
    exact = SHARE_MEANINGS["exact"][0]
    return found or [c[len(exact):] for c in samples.columns if c.startswith(exact)]


def _source_rows(source: Any, settings_hash: str | None) -> tuple[pd.DataFrame, list[str], Path | None]:
    """(per-sample rows with the modality game's columns, known modalities, run folder or None)."""
    if isinstance(source, pd.DataFrame):
        samples = source
        known = _share_modalities(samples)
    else:
        run_dir = Path(getattr(source, "path", source))
        samples, _ = load_explanations(run_dir, settings_hash=settings_hash)
        return samples, run_modalities(run_dir) or _share_modalities(samples), run_dir
    return samples, known, None


def _explained_rows(source: Any, modalities: Sequence[str] | None,
                    settings_hash: str | None) -> tuple[pd.DataFrame, list[str], Path | None]:
    """The rows a per-class table averages: one preferred row per explained sample (of ``settings_hash``
    when given), with the modality game's columns; the checked modalities; the run folder or None."""
    samples, known, run_dir = _source_rows(source, settings_hash)
    modalities = [str(m) for m in (known if modalities is None else modalities)]
    check_modalities(modalities, known, "the run" if run_dir is not None else "the samples frame")
    if settings_hash is not None and "settings_hash" in samples.columns:
        samples = samples[samples["settings_hash"] == settings_hash]
    samples = preferred_rows(samples)
    if len(samples) and "label" not in samples.columns:
        raise ConfigError("the samples frame has no 'label' column", fix="pass load_explanations(run)[0]")
    if len(samples):
        samples = add_modality_game_columns(samples, modalities)
    return samples, modalities, run_dir


def _class_groups(samples: pd.DataFrame, classes: Sequence[str] | None,
                  overall: bool) -> list[tuple[str, np.ndarray, dict[str, np.ndarray]]]:
    """(class, its rows, rows per subset ``all`` / ``correct`` / ``incorrect``) for every class of ``classes``
    (default: the classes with samples, sorted), then :data:`ALL_CLASSES` when ``overall``."""
    correct = _correct(samples)
    labels = samples["label"].astype(str).to_numpy()
    names = sorted(set(labels)) if classes is None else [str(c) for c in classes]
    groups = [(c, labels == c) for c in names]
    if overall:
        groups.append((ALL_CLASSES, np.ones(len(samples), dtype=bool)))
    return [(name, rows, {"all": rows, "correct": rows & correct, "incorrect": rows & ~correct})
            for name, rows in groups]


def class_share_table(
    source: Any,
    modalities: Sequence[str] | None = None,
    *,
    settings_hash: str | None = None,
    classes: Sequence[str] | None = None,
    overall: bool = True,
    save: bool = True,
    share: str = "mmshap",
) -> pd.DataFrame:
    """Per class, each modality's mean share over all, correct and incorrect predictions.

    Args:
        source: a run folder (its stored explanations are read) or a samples
            frame (``load_explanations(run)[0]`` or any frame with ``label``,
            ``correct`` or ``pred``, and ``share_<modality>`` columns).
        modalities: the modalities to report (default: the run's, or every
            ``share_`` column of the frame); one without shares is an error.
        settings_hash: use only explanations with these settings.
        classes: one row per class of this list, in its order (a class without
            samples gets counts 0 and NaN shares); default: every class with
            samples, sorted.
        overall: append the ``(all classes)`` row.
        save: for a run folder, write ``explanations/class_shares-<hash>.csv``
            (``class_exact_shares-<hash>.csv`` for the exact shares; ``attrs["path"]``
            names it).
        share: ``"mmshap"`` (the MM-SHAP shares, ``share_<m>``) or ``"exact"`` (the exact
            modality shares, ``exact_share_<m>``, derived from ``shapley_<m>`` where a frame
            lacks them); either way in the ``share_<m>_<subset>`` columns
            (``attrs["share"]`` says which). Flat predictions are left out of the means
            (``n_flat`` counts them).
    """
    if share not in SHARE_MEANINGS:
        raise ConfigError(f"unknown share meaning {share!r}", fix=f"use one of: {', '.join(SHARE_MEANINGS)}")
    samples, modalities, run_dir = _explained_rows(source, modalities, settings_hash)
    prefix, file_stem = SHARE_MEANINGS[share]
    flat = flat_mask(samples)
    columns = ["class", "n_all", "n_correct", "n_incorrect",
               *(f"share_{m}_{s}" for m in modalities for s in SUBSETS), "n_flat",
               *(f"share_{m}_{s}_{bound}" for m in modalities for s in SUBSETS for bound in ("low", "high"))]
    rows = []
    if len(samples):
        shares = {m: np.where(flat, np.nan, pd.to_numeric(samples.get(f"{prefix}{m}"), errors="coerce")
                              .to_numpy(dtype=float)) for m in modalities}
        for name, in_class, masks in _class_groups(samples, classes, overall):
            row: dict[str, Any] = {"class": name}
            for s in SUBSETS:
                row[f"n_{s}"] = int(masks[s].sum())
            for m in modalities:
                for s in SUBSETS:
                    mean, low, high, _ = mean_interval(shares[m][masks[s]], SHARE_CONFIDENCE)
                    row[f"share_{m}_{s}"] = mean
                    # a share lies in [0, 1]: so does its interval
                    row[f"share_{m}_{s}_low"] = float(np.clip(low, 0.0, 1.0))  # NaN stays NaN
                    row[f"share_{m}_{s}_high"] = float(np.clip(high, 0.0, 1.0))
            row["n_flat"] = int((in_class & flat).sum())
            rows.append(row)
    table = pd.DataFrame(rows, columns=columns)
    table.attrs["share"] = share
    _save(table, samples, run_dir, save, file_stem)
    return table


def _save(table: pd.DataFrame, samples: pd.DataFrame, run_dir: Path | None, save: bool, stem: str) -> None:
    if run_dir is None or not save or not len(table):
        return
    hashes = sorted(set(samples["settings_hash"].astype(str))) if "settings_hash" in samples.columns else []
    tag = hashes[0] if len(hashes) == 1 else "mixed"
    path = explanations_dir(run_dir) / f"{stem}-{tag}.csv"
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    table.attrs["path"] = str(path)


def class_interaction_table(
    source: Any,
    modalities: Sequence[str] | None = None,
    *,
    settings_hash: str | None = None,
    classes: Sequence[str] | None = None,
    overall: bool = True,
    save: bool = True,
    confidence: float = INTERACTION_CONFIDENCE,
) -> pd.DataFrame:
    """Per class, the mean pairwise interaction of each modality pair over all, correct and
    incorrect predictions, with its count and a Student-t interval.

    Columns: ``class``, ``n_all``, ``n_correct``, ``n_incorrect``, ``n_flat`` (as in
    :func:`class_share_table`), then per pair column ``c`` (``interaction_<a>__<b>``,
    :func:`core.explain.interaction_column`) and subset ``s``: ``<c>_<s>`` (mean),
    ``<c>_<s>_n`` (the samples it rests on: explained with coalition values and not
    flat), ``<c>_<s>_low`` and ``<c>_<s>_high`` (the ``confidence`` interval of the mean,
    ``mean +- t_{n-1} sd / sqrt(n)``; NaN with fewer than 2 samples). Values are in the
    explained output's units (probability points for the default output). Same
    arguments as :func:`class_share_table`; a run folder's table is saved as
    ``explanations/class_interactions-<hash>.csv``.
    """
    if not 0 < float(confidence) < 1:
        raise ConfigError(f"confidence must lie in (0, 1), got {confidence!r}", fix="pass for example 0.95")
    samples, modalities, run_dir = _explained_rows(source, modalities, settings_hash)
    pairs = interaction_columns(modalities)
    columns = ["class", "n_all", "n_correct", "n_incorrect", "n_flat",
               *(f"{c}_{s}{suffix}" for c in pairs.values() for s in SUBSETS for suffix in ("", "_n", "_low", "_high"))]
    rows = []
    if len(samples):
        flat = flat_mask(samples)
        values = {c: np.where(flat, np.nan, pd.to_numeric(samples[c], errors="coerce").to_numpy(dtype=float))
                  for c in pairs.values()}
        for name, in_class, masks in _class_groups(samples, classes, overall):
            row: dict[str, Any] = {"class": name, **{f"n_{s}": int(masks[s].sum()) for s in SUBSETS},
                                   "n_flat": int((in_class & flat).sum())}
            for c in pairs.values():
                for s in SUBSETS:
                    vals = values[c][masks[s]]
                    vals = vals[np.isfinite(vals)]
                    mean, low, high, _ = mean_interval(vals, float(confidence))
                    row.update({f"{c}_{s}": mean, f"{c}_{s}_n": len(vals), f"{c}_{s}_low": low,
                                f"{c}_{s}_high": high})
            rows.append(row)
    table = pd.DataFrame(rows, columns=columns)
    table.attrs["confidence"] = float(confidence)
    _save(table, samples, run_dir, save, "class_interactions")
    return table


def _correct(samples: pd.DataFrame) -> np.ndarray:
    if len(samples) == 0:
        return np.zeros(0, dtype=bool)
    if "correct" in samples.columns and samples["correct"].notna().any():
        return samples["correct"].fillna(False).astype(bool).to_numpy()
    if "pred" in samples.columns:
        return (samples["pred"].astype(str) == samples["label"].astype(str)).to_numpy()
    raise ConfigError("the samples frame has neither 'correct' nor 'pred'", fix="pass load_explanations(run)[0]")


def format_class_share_table(table: pd.DataFrame, modalities: Sequence[str] | None = None) -> str:
    """The table as text: one line per class, shares in percent with their 95 % interval in brackets (where
    the table has one), counts in their own columns."""
    if table.empty:
        return f"no explanations stored yet: run `{cli_command()} explain <run>`"
    if modalities is None:
        ends = tuple(f"_{s}" for s in SUBSETS)
        modalities = list(dict.fromkeys(c[len("share_"):].rsplit("_", 1)[0] for c in table.columns
                                        if c.startswith("share_") and c.endswith(ends)))
    header = ["class"]
    for s in SUBSETS:
        header += [f"{s}: n", *(f"{s}: {m}" for m in modalities)]
    lines = []
    for _, r in table.iterrows():
        cells = [str(r["class"])]
        for s in SUBSETS:
            cells.append(str(int(r[f"n_{s}"])))
            for m in modalities:
                col = f"share_{m}_{s}"
                cells.append(share_text(r[col], r.get(f"{col}_low", np.nan), r.get(f"{col}_high", np.nan)))
        lines.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in lines)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(header), *(fmt(c) for c in lines)])


def share_text(mean: float, low: float = float("nan"), high: float = float("nan"), *, empty: str = "-") -> str:
    """One cell of the per-class share table: ``53.2% [48%, 58%]``; without an interval (one sample)
    ``53.2%``; without a mean ``empty``."""
    if not np.isfinite(mean):
        return empty
    return f"{mean:.1%} [{low:.0%}, {high:.0%}]" if np.isfinite(low) else f"{mean:.1%}"


def interval_text(mean: float, low: float, high: float, n: int, *, digits: int = 4, empty: str = "-") -> str:
    """One cell of the interaction table: ``+mean [+low, +high] (n)``; without an interval (fewer than
    2 samples) ``+mean (n)``; without a mean ``empty``."""
    if not np.isfinite(mean):
        return empty
    if np.isfinite(low):
        return f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}] ({int(n)})"
    return f"{mean:+.{digits}f} ({int(n)})"


def format_class_interaction_table(table: pd.DataFrame, modalities: Sequence[str]) -> str:
    """The interaction table as text: per class and pair, the mean with its interval and count
    for all / correct / incorrect predictions."""
    pairs = interaction_columns(modalities)
    if table.empty or not pairs:
        return "no interactions: explain at least two modalities (with this version) first"
    header = ["class", "pair", *(f"{s} (n)" for s in SUBSETS)]
    lines = []
    for _, r in table.iterrows():
        for (a, b), c in pairs.items():
            cells = [str(r["class"]), f"{a} x {b}"]
            for s in SUBSETS:
                cells.append(interval_text(r[f"{c}_{s}"], r[f"{c}_{s}_low"], r[f"{c}_{s}_high"], r[f"{c}_{s}_n"]))
            lines.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in lines)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(header), *(fmt(c) for c in lines)])
