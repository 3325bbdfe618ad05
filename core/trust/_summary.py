"""The shares summary: a run's mean shares, in both meanings, and the predictions that barely
depend on their inputs (a share of almost nothing means nothing)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from core.explain import FLAT_PROB_THRESHOLD

from core.trust._shares import SHARE_KINDS, share_values
from core.trust._report import CheckResult
from core.trust._stats import summary
from core.trust._stored import StoredExplanations
from core.trust._thresholds import LOW_DEPENDENCE_WARN_FRACTION


def shares_summary(stored: StoredExplanations, modalities: Sequence[str]) -> CheckResult:
    """Mean MM-SHAP and exact share per modality over the explained predictions that depend on
    their inputs (:meth:`StoredExplanations.flat`: the engine's flag, ``core.explain.flat_mask``), and how
    many do not; warn when more than
    :data:`LOW_DEPENDENCE_WARN_FRACTION` of them do not."""
    if stored.empty:
        return CheckResult("summary", "skip", "No stored explanations to summarise.")
    rows = stored.rows.reset_index(drop=True)
    sums = stored.sum_abs_phi().reindex(rows["sample_id"].astype(str)).to_numpy(dtype=np.float64)
    low = stored.flat()
    kept = rows[~low].reset_index(drop=True)
    means: dict[str, dict[str, float]] = {kind: {} for kind in SHARE_KINDS}
    for kind in SHARE_KINDS:
        for m in modalities:
            values = share_values(kept, modalities, m, kind) if len(kept) else np.array([])
            means[kind][m] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    n, n_low = len(rows), int(low.sum())
    rule = f"sum |phi| or |f(x) - base| < {FLAT_PROB_THRESHOLD} (probability output)"
    numbers = {"mean_share": means, "share_kinds": SHARE_KINDS, "n_explained": n, "n_low_dependence": n_low,
               "low_dependence_rule": rule, "n_shared": int(len(kept)), "sum_abs_phi": summary(sums)}
    shown = ", ".join(f"{m} {means['mmshap'][m]:.2f} / {means['exact'][m]:.2f}" for m in modalities)
    low_text = f"{n_low} of {n} predictions barely depend on their inputs ({rule}) and get no share"
    if not len(kept):
        return CheckResult("summary", "warn", f"All {n} explained predictions barely depend on their inputs ({rule}): "
                           "there is no share to report.", n=n, numbers=numbers)
    if n and n_low / n > LOW_DEPENDENCE_WARN_FRACTION:
        return CheckResult("summary", "warn", f"Mean shares (MM-SHAP / exact): {shown}; but {low_text}.", n=n,
                           numbers=numbers)
    return CheckResult("summary", "pass", f"Mean shares (MM-SHAP / exact): {shown}; {low_text}.", n=n,
                       numbers=numbers)
