"""The Misclassifications page's blame table: per class, how often each modality misled the model.

:func:`blame_display_table` is pure (a :func:`core.explain.blame_table` in, a frame of readable cells
out), so the page stays thin and the table is testable. Every count is shown with the n it rests on.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd

from core.explain import ALL_CLASSES
from ui.labels import pretty_modality

__all__ = ["blame_caption", "blame_display_table"]


def _count(k: int, n: int) -> str:
    return f"{int(k)} of {int(n)} ({k / n:.0%})" if n else "-"


def _mean(mean: float, low: float, high: float) -> str:
    if not np.isfinite(mean):
        return "-"
    return f"{mean:+.2f} [{low:+.2f}, {high:+.2f}]" if np.isfinite(low) else f"{mean:+.2f}"


def blame_display_table(table: pd.DataFrame, modalities: Sequence[str], classes: Sequence[str] | None = None
                        ) -> pd.DataFrame:
    """One row per class of ``table`` (those of ``classes`` when given, in its order; the overall row
    always): the errors out of the predictions, and per modality "misled k of n (share)", "culprit k of
    n", and the mean push over the errors and over the correct predictions with their 95 % intervals
    (logit units; + toward the wrong class)."""
    rows = table
    if classes is not None:
        keep = set(map(str, classes))
        rows = table[[c in keep or c == ALL_CLASSES for c in table["class"].astype(str)]]
    out = []
    for _, r in rows.iterrows():
        n_err = int(r["n_errors"])
        cells = {"True class": str(r["class"]), "Errors": f"{n_err} of {int(r['n'])}"}
        for m in modalities:
            name, col = pretty_modality(m), f"blame_{m}"
            cells[f"{name}: misled"] = _count(r[f"misled_{m}"], n_err)
            cells[f"{name}: culprit"] = _count(r[f"culprit_{m}"], n_err)
            cells[f"{name}: mean push, errors"] = _mean(r[f"{col}_errors"], r[f"{col}_errors_low"],
                                                        r[f"{col}_errors_high"])
            cells[f"{name}: mean push, correct"] = _mean(r[f"{col}_correct"], r[f"{col}_correct_low"],
                                                         r[f"{col}_correct_high"])
        out.append(cells)
    return pd.DataFrame(out)


def blame_caption(bold: Callable[[str], str] = lambda word: f"**{word}**") -> str:
    """How to read the blame figure and table (the Misclassifications page and the report);
    ``bold`` marks a defined word (Markdown by default)."""
    return ("For each prediction, each modality's exact Shapley value of the logit margin "
            "(logit of the wrong class - logit of the true class; each modality present or wholly masked as "
            "in the MM-SHAP modality game; the values add up to the margin with every modality minus the "
            f"margin with none). {bold('Misled')}: the modality pushed toward the wrong class (value > 0); "
            f"{bold('culprit')}: it pushed hardest. Mean push in logits with a 95 % interval; for correct "
            "predictions the margin is taken against the runner-up class, so a negative mean there says "
            "the modality supported the right answer. Classes with the most errors first.")
