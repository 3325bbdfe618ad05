"""A run's stored explanations as the trust checks read them: one settings hash, one row per sample.

The checks judge the explanations the dashboard shows: those of the settings
most samples of the run were explained with
(:func:`core.explain.main_settings_hash`), rebuilt into
:class:`~core.explain.ExplainSettings` so a re-explanation uses exactly them.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from core.explain import (ExplainSettings, Explanation, flat_mask, load_explanations, main_settings_hash,
                          preferred_rows)


@dataclass
class StoredExplanations:
    """The rows (one per sample) and feature rows of one settings hash of a run."""

    rows: pd.DataFrame
    features: pd.DataFrame
    settings_hash: str | None

    @property
    def empty(self) -> bool:
        return self.rows is None or self.rows.empty

    def ids(self) -> list[str]:
        return [] if self.empty else sorted(self.rows["sample_id"].astype(str).unique())

    def explanation(self, sample_id: str) -> Explanation:
        row = self.rows[self.rows["sample_id"].astype(str) == str(sample_id)].iloc[0]
        feats = self.features[self.features["sample_id"].astype(str) == str(sample_id)]
        return Explanation.from_rows(row.to_dict(), feats)

    def settings(self) -> ExplainSettings | None:
        """The :class:`ExplainSettings` these explanations were computed with (None when empty)."""
        if self.empty:
            return None
        return settings_from_record(json.loads(self.rows["settings"].iloc[0]).get("explain_settings") or {})

    def sum_abs_phi(self) -> pd.Series:
        """sum |phi| of each sample, indexed by sample id."""
        if self.empty:
            return pd.Series(dtype=float)
        phi = self.features.assign(sample_id=self.features["sample_id"].astype(str), a=self.features["phi"].abs())
        return phi.groupby("sample_id")["a"].sum()


    def flat(self) -> np.ndarray:
        """Per row, whether the prediction barely depends on its inputs (``core.explain.flat_mask``: sum |phi|
        or |f(x) - base| below the engine's threshold)."""
        if self.empty:
            return np.zeros(0, dtype=bool)
        rows = self.rows
        if "sum_abs_phi" not in rows.columns:
            rows = rows.assign(sum_abs_phi=self.sum_abs_phi().reindex(rows["sample_id"].astype(str)).to_numpy())
        return np.asarray(flat_mask(rows), dtype=bool)


def stored_explanations(run_dir: str | Path) -> StoredExplanations:
    """The explanations of a run stored with its main settings (empty frames when there are none)."""
    samples, features = load_explanations(run_dir)
    if samples.empty:
        return StoredExplanations(samples, features, None)
    h = main_settings_hash(samples)
    rows = preferred_rows(samples)
    rows = rows.assign(sample_id=rows["sample_id"].astype(str))
    return StoredExplanations(rows, features[features["settings_hash"] == h].reset_index(drop=True), h)


def settings_from_record(record: dict[str, Any]) -> ExplainSettings:
    """:class:`ExplainSettings` from its stored ``as_dict()`` (engine keys left out)."""
    names = {f.name for f in dataclasses.fields(ExplainSettings)}
    values = {k: v for k, v in record.items() if k in names}
    if values.get("modalities") is not None:
        values["modalities"] = tuple(values["modalities"])
    return ExplainSettings(**values)


def pick(ids: Sequence[str], n: int, seed: int) -> list[str]:
    """A seeded choice of ``n`` of ``ids`` (all of them when there are fewer), in sorted order."""
    ids = sorted(dict.fromkeys(str(i) for i in ids))
    if len(ids) <= n:
        return ids
    rng = np.random.default_rng([int(seed), 0x7257])
    return sorted(ids[i] for i in rng.choice(len(ids), size=n, replace=False))
