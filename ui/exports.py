"""A selection of samples as a table and as CSV a spreadsheet opens safely (plain Python, no streamlit).

A selection is any set of rows of a run's predictions view (``ui.queries.predictions_view``):
the explorer's filtered table, a lasso on the Embeddings page, a confusion cell, a slice.
:func:`selection_frame` puts its columns in a fixed order and adds the dataset's manifest
columns; :func:`selection_csv` writes it with every text cell that a spreadsheet would read
as a formula quoted (CSV injection, OWASP).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import pandas as pd

__all__ = ["LEADING_COLUMNS", "FORMULA_STARTS", "selection_frame", "spreadsheet_safe", "selection_csv"]

#: the first columns of an exported selection, in order (those present)
LEADING_COLUMNS = ("id", "label", "pred", "confidence", "correct", "dominant")
#: a text cell starting with one of these is read as a formula by spreadsheets (tab and carriage
#: return too: some strip them and read what follows)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def selection_frame(rows: pd.DataFrame, manifest: pd.DataFrame | None = None,
                    ids: Iterable[str] | None = None) -> pd.DataFrame:
    """The rows to export: ``id, label, pred, confidence, correct, dominant, share_<m>...``, the
    other columns of ``rows`` (texts), then ``manifest``'s columns that ``rows`` lacks, joined on
    ``id``; only ``ids`` (in the order of ``rows``) when given."""
    frame = rows.copy()
    if "id" in frame.columns:
        frame["id"] = frame["id"].astype(str)
        if ids is not None:
            wanted = {str(i) for i in ids}
            frame = frame[frame["id"].isin(wanted)]
    lead = [c for c in LEADING_COLUMNS if c in frame.columns]
    shares = [c for c in frame.columns if str(c).startswith("share_")]
    rest = [c for c in frame.columns if c not in lead and c not in shares]
    frame = frame[[*lead, *shares, *rest]]
    if manifest is not None and "id" in frame.columns and "id" in manifest.columns:
        extra = [c for c in manifest.columns if c != "id" and c not in frame.columns]
        if extra:
            m = manifest[["id", *extra]].copy()
            m["id"] = m["id"].astype(str)
            frame = frame.merge(m.drop_duplicates("id"), on="id", how="left")
    return frame.reset_index(drop=True)


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell that starts like a formula prefixed with ``'`` (numbers stay
    numbers: a negative number is no formula)."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        out[column] = values.map(lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v)
    safe_columns: Sequence[str] = [("'" + c if isinstance(c, str) and c.startswith(FORMULA_STARTS) else c)
                                   for c in out.columns]
    out.columns = list(safe_columns)
    return out


def selection_csv(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV of ``frame`` (no index), safe to open in a spreadsheet (:func:`spreadsheet_safe`)."""
    return spreadsheet_safe(frame).to_csv(index=False).encode("utf-8")
