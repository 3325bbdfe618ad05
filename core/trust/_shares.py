"""The two share meanings the trust checks compare, and the explained rows joined with a designed ground truth."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

#: The two share meanings the checks measure.
SHARE_KINDS = {"mmshap": "MM-SHAP share (sum of |phi|)", "exact": "exact modality share (|Shapley| of the modality)"}
#: The predictions each reliance number is computed on.
SUBSETS = ("all", "correct")


def share_values(rows: pd.DataFrame, modalities: Sequence[str], modality: str, kind: str) -> np.ndarray:
    """Per-row share of ``modality``: ``share_<m>`` (MM-SHAP) or |shapley_m| / sum |shapley| (exact;
    NaN where a value is missing or every modality's value is 0)."""
    if kind == "mmshap":
        return rows[f"share_{modality}"].to_numpy(dtype=np.float64)
    shap = np.abs(np.stack([rows[f"shapley_{m}"].to_numpy(dtype=np.float64) for m in modalities], 1))
    total = shap.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = shap[:, list(modalities).index(modality)] / total
    out[~(total > 0)] = np.nan
    return out


def join_design(rows: pd.DataFrame, design: pd.DataFrame) -> pd.DataFrame:
    """The explained ``rows`` (``sample_id``...) that have a row in the ground truth ``design`` (``id``...),
    with its columns (ids compared as text)."""
    table = design.rename(columns={"id": "sample_id"})
    table = table.assign(sample_id=table["sample_id"].astype(str))
    return rows.assign(sample_id=rows["sample_id"].astype(str)).merge(table, on="sample_id", how="inner")


def correct_mask(frame: pd.DataFrame) -> np.ndarray:
    """Which rows are correct predictions (none when the rows do not say)."""
    if "correct" not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return frame["correct"].astype("boolean").fillna(False).to_numpy(dtype=bool)
