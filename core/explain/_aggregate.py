"""Aggregates of stored explanations in the reference's table shape.

:func:`class_share_table`: one row per true class (and one ``ALL_CLASSES``
row), for each modality its mean MM-SHAP share over all, correctly and
incorrectly predicted samples of the class, with the sample counts:

``class, n_all, n_correct, n_incorrect, share_<m>_all, share_<m>_correct, share_<m>_incorrect ...``

A mean over no samples is NaN. Rows of one settings hash only (the given one,
else :func:`core.explain.main_settings_hash`), so results of different settings
never mix.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from core.errors import ConfigError, cli_command
from core.io import atomic_path
from core.explain._store import (
    run_modalities,
    check_modalities,
    explanations_dir,
    load_explanations,
    preferred_rows,
)

ALL_CLASSES = "(all classes)"
SUBSETS = ("all", "correct", "incorrect")


def _share_modalities(samples: pd.DataFrame) -> list[str]:
    return [c[len("share_"):] for c in samples.columns if c.startswith("share_")]


def class_share_table(
    source: Any,
    modalities: Sequence[str] | None = None,
    *,
    settings_hash: str | None = None,
    classes: Sequence[str] | None = None,
    overall: bool = True,
    save: bool = True,
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
            (``attrs["path"]`` names it).
    """
    run_dir: Path | None = None
    if isinstance(source, pd.DataFrame):
        samples = source
        known = _share_modalities(samples)
    else:
        run_dir = Path(getattr(source, "path", source))
        samples, _ = load_explanations(run_dir, settings_hash=settings_hash)
        known = run_modalities(run_dir) or _share_modalities(samples)
    if modalities is None:
        modalities = known
    modalities = [str(m) for m in modalities]
    check_modalities(modalities, known, "the run" if run_dir is not None else "the samples frame")
    if settings_hash is not None and "settings_hash" in samples.columns:
        samples = samples[samples["settings_hash"] == settings_hash]
    samples = preferred_rows(samples)
    if len(samples) and "label" not in samples.columns:
        raise ConfigError("the samples frame has no 'label' column", fix="pass load_explanations(run)[0]")
    correct = _correct(samples)
    columns = ["class", "n_all", "n_correct", "n_incorrect",
               *(f"share_{m}_{s}" for m in modalities for s in SUBSETS)]
    rows = []
    if len(samples):
        labels = samples["label"].astype(str).to_numpy()
        names = sorted(set(labels)) if classes is None else [str(c) for c in classes]
        groups = [(c, labels == c) for c in names]
        if overall:
            groups.append((ALL_CLASSES, np.ones(len(samples), dtype=bool)))
        shares = {m: pd.to_numeric(samples.get(f"share_{m}"), errors="coerce").to_numpy(dtype=float)
                  for m in modalities}
        for name, in_class in groups:
            masks = {"all": in_class, "correct": in_class & correct, "incorrect": in_class & ~correct}
            row: dict[str, Any] = {"class": name}
            for s in SUBSETS:
                row[f"n_{s}"] = int(masks[s].sum())
            for m in modalities:
                for s in SUBSETS:
                    vals = shares[m][masks[s]]
                    vals = vals[np.isfinite(vals)]
                    row[f"share_{m}_{s}"] = float(vals.mean()) if len(vals) else float("nan")
            rows.append(row)
    table = pd.DataFrame(rows, columns=columns)
    if run_dir is not None and save and len(table):
        hashes = sorted(set(samples["settings_hash"].astype(str))) if "settings_hash" in samples.columns else []
        tag = hashes[0] if len(hashes) == 1 else "mixed"
        path = explanations_dir(run_dir) / f"class_shares-{tag}.csv"
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)
        table.attrs["path"] = str(path)
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
    """The table as text: one line per class, shares in percent, counts in brackets."""
    if table.empty:
        return f"no explanations stored yet: run `{cli_command()} explain <run>`"
    if modalities is None:
        modalities = list(dict.fromkeys(c[len("share_"):].rsplit("_", 1)[0] for c in table.columns
                                        if c.startswith("share_")))
    header = ["class"]
    for s in SUBSETS:
        header += [f"{s}: n", *(f"{s}: {m}" for m in modalities)]
    lines = []
    for _, r in table.iterrows():
        cells = [str(r["class"])]
        for s in SUBSETS:
            cells.append(str(int(r[f"n_{s}"])))
            for m in modalities:
                v = r[f"share_{m}_{s}"]
                cells.append("-" if not np.isfinite(v) else f"{100 * v:.1f}%")
        lines.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in lines)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(header), *(fmt(c) for c in lines)])
