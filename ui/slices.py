"""The slice finder as the Slice finder page and the report run it: one set of defaults, one search,
one caption.

:func:`default_settings` gives the search's defaults for ``n`` test samples (every column, the
smallest slice :func:`core.slices.default_min_size`, 2 conditions, q < 0.05): the page's initial
controls and the report's search. :func:`search_slices` runs :func:`core.slices.find_slices` on a
run's slice features against its predictions view; :func:`slices_caption` and
:func:`no_significant_text` are the honest words both show beside the result. Plain module: no
streamlit.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd

from core.slices import METHOD, default_min_size, find_slices

__all__ = ["ALPHAS", "CONDITIONS", "default_settings", "search_slices", "slices_caption", "no_significant_text"]

#: The significance levels offered (the default is 0.05).
ALPHAS = (0.01, 0.05, 0.1)
#: How many conditions a slice may join (the default is 2).
CONDITIONS = (1, 2, 3)


def default_settings(n: int) -> dict[str, Any]:
    """The slice search's defaults for ``n`` test samples: every column (``columns`` None), the
    smallest slice 1 % of the samples (at least 5, at most ``n``), 2 conditions, alpha 0.05."""
    return {"columns": None, "min_size": max(1, min(default_min_size(n), int(n))), "max_conditions": 2,
            "alpha": 0.05}


def search_slices(features: pd.DataFrame, view: pd.DataFrame, *, columns: Sequence[str] | None = None,
                  min_size: int | None = None, max_conditions: int | None = None,
                  alpha: float | None = None) -> pd.DataFrame:
    """The slices of a run (:func:`core.slices.find_slices`) of its slice features ``features``
    (:func:`core.slices.slice_features`) against the ``correct`` column of its predictions view
    ``view``; a setting left None takes :func:`default_settings`."""
    settings = default_settings(len(view))
    given = {"columns": columns, "min_size": min_size, "max_conditions": max_conditions, "alpha": alpha}
    settings.update({k: v for k, v in given.items() if v is not None})
    correct = view.assign(id=view["id"].astype(str)).set_index("id")["correct"]
    return find_slices(features, correct, columns=settings["columns"], min_size=int(settings["min_size"]),
                       max_conditions=int(settings["max_conditions"]), alpha=float(settings["alpha"]))


def slices_caption(summary: Mapping[str, Any]) -> str:
    """How the slices of a search (its ``table.attrs``) were found and how far to trust them: the
    slices were chosen on the same samples, so a slice is to be confirmed on new data."""
    return (f"Found by {METHOD}: up to {summary['max_conditions']} condition(s), at least {summary['min_size']} "
            "samples. p-value: one-sided exact binomial test of the slice's errors against the overall error rate; "
            "q-value: Benjamini-Hochberg over every slice the search could have returned "
            f"({summary.get('family', 0):,}), because the slices shown were picked for their high error on these "
            "same samples. That keeps chance slices out, but it is no proof: confirm a slice on new data.")


def no_significant_text(summary: Mapping[str, Any]) -> str:
    """What it means that no slice of a search is significant."""
    return (f"These are the groups with the highest error rates SliceLine found, but none is further above the "
            f"overall {summary['error_rate']:.1%} than chance would explain (q < {summary['alpha']:g}) with "
            f"{summary['n']:,} test samples.")
