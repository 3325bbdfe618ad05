"""Estimator error: the explanations against a 10x-budget estimate of the same values.

A few explained samples are explained again with the same method and ten times
its budget (``n_permutations`` and, for ``recombined``, its walks), with
another seed so the two estimates' errors are independent. Reported: the mean
|share - reference share|, the median rank correlation of the two |phi| maps,
how often |phi - phi_ref| lies within 1.96 standard errors (the combined
standard error of the two estimates; ideal 0.95) and the median |phi| / stderr
of the stored values. Exact values have no estimator error.
"""
from __future__ import annotations

import math
import time
from typing import Any, Mapping

import numpy as np
from tqdm.auto import tqdm

from core.explain import (ENGINE_MAX_PERMUTATIONS, MAX_BLOCKS, MAX_WALKS, ExplainSettings, Explanation,
                          explain_inputs)
from core.trust._report import CheckResult
from core.trust._stats import spearman, summary
from core.trust._thresholds import (
    ESTIMATOR_BUDGET_FACTOR,
    ESTIMATOR_COVERAGE_FAIL,
    ESTIMATOR_COVERAGE_PASS,
    ESTIMATOR_SHARE_ERROR_FAIL,
    ESTIMATOR_SHARE_ERROR_PASS,
)

#: |phi - phi_ref| within this many combined standard errors counts as covered (a 95 % interval).
Z_95 = 1.96


def reference_settings(settings: ExplainSettings, explanation: Explanation,
                       factor: int = ESTIMATOR_BUDGET_FACTOR) -> ExplainSettings | None:
    """The settings of the high-budget reference of ``explanation`` (None for exact values): its
    method, ``factor`` times the independent units (permutations; the recombined estimator's
    blocks, each with the same walks per block), the next seed."""
    method = explanation.method
    if method == "exact":
        return None
    changes: dict[str, Any] = {"method": method, "seed": settings.seed + 1,
                               "n_permutations": min(ENGINE_MAX_PERMUTATIONS, factor * settings.n_permutations)}
    if method == "recombined":
        blocks = explanation.settings.get("n_blocks") or settings.n_orders
        per_block = explanation.settings.get("walks_per_block") or 1
        if blocks:
            n_orders = min(MAX_BLOCKS, factor * int(blocks))
            changes["n_orders"] = n_orders
            changes["n_walks"] = min(MAX_WALKS, n_orders * int(per_block))
    return ExplainSettings.build(settings, **changes)


def estimator_check(
    model: Any,
    inputs: Mapping[str, Any],
    explanations: Mapping[str, Explanation],
    settings: ExplainSettings,
    *,
    labels: Mapping[str, Any] | None = None,
    factorise: bool | None = None,
    deadline: float | None = None,
    progress: bool = False,
) -> CheckResult:
    """Compare ``explanations`` (id -> the stored or trained explanation, computed with ``settings``)
    with high-budget references on the same ``inputs``; after ``deadline`` (a ``time.perf_counter()``
    value) no new sample is started once one is done."""
    ids = [str(i) for i in inputs if str(i) in explanations]
    if not ids:
        return CheckResult("estimator", "skip", "No explained sample to re-explain.")
    sampled = [i for i in ids if explanations[i].method != "exact"]
    if not sampled:
        return CheckResult("estimator", "pass", "The values are exact: no estimator error.", n=len(ids),
                           numbers={"method": "exact", "share_error_mean": 0.0})
    labels = dict(labels or {})
    share_err, within, ratios, ranks, per_sample = [], [], [], [], {}
    n_features = 0
    ref_settings = None
    done: list[str] = []
    for sid in tqdm(sampled, desc="trust: estimator", disable=not progress, leave=False):
        if deadline is not None and done and time.perf_counter() > deadline:
            break
        done.append(sid)
        e = explanations[sid]
        ref_settings = reference_settings(settings, e)
        ref = explain_inputs(model, inputs[sid], sample_id=sid, label=labels.get(sid), settings=ref_settings,
                             factorise=factorise)
        errs = [abs(e.shares[m] - ref.shares.get(m, math.nan)) for m in e.modalities]
        share_err += errs
        diff = np.abs(e.values - ref.values)
        se = e.stderr if e.stderr is not None else np.full(len(diff), np.nan)
        se_ref = ref.stderr if ref.stderr is not None else np.zeros(len(diff))
        combined = np.sqrt(se ** 2 + np.nan_to_num(se_ref) ** 2)
        known = np.isfinite(combined)
        hits = diff[known] <= Z_95 * combined[known] + 1e-12
        within += hits.tolist()
        positive = known & (se > 0)
        ratios += (np.abs(e.values[positive]) / se[positive]).tolist()
        rank = spearman(np.abs(e.values), np.abs(ref.values))
        ranks.append(rank)
        n_features += len(diff)
        per_sample[sid] = {"share_error": float(np.mean(errs)), "rank": rank,
                           "coverage": float(np.mean(hits)) if len(hits) else math.nan}
    err = float(np.mean(share_err))
    coverage = float(np.mean(within)) if within else math.nan
    ratio = float(np.median(ratios)) if ratios else math.nan
    n = len(done)
    numbers = {
        "method": explanations[sampled[0]].method, "share_error_mean": err, "share_error_max": float(np.max(share_err)),
        "coverage": coverage, "coverage_ideal": 0.95, "n_features": n_features, "median_abs_phi_over_stderr": ratio,
        "map_rank": summary(ranks),
        "reference": {k: getattr(ref_settings, k) for k in ("method", "n_permutations", "n_walks", "seed")},
        "per_sample": per_sample,
    }
    statuses = ["pass" if err <= ESTIMATOR_SHARE_ERROR_PASS else "fail" if err > ESTIMATOR_SHARE_ERROR_FAIL
                else "warn"]
    if math.isnan(coverage):
        statuses.append("warn")
        cover_text = "the estimator stores no standard errors"
    else:
        statuses.append("pass" if coverage >= ESTIMATOR_COVERAGE_PASS else "fail"
                        if coverage < ESTIMATOR_COVERAGE_FAIL else "warn")
        cover_text = (f"{coverage:.0%} of the {n_features} values lie within 1.96 standard errors of the reference "
                      f"(ideal 95 %; median |phi|/stderr {ratio:.1f})")
    status = "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"
    verdict = {"pass": "the shares are precise and the standard errors honest",
               "warn": "treat small share differences with care",
               "fail": "the shares or their standard errors are not to be trusted at this budget"}[status]
    reason = (f"Against a {ESTIMATOR_BUDGET_FACTOR}x-budget estimate of {n} sample{'s' if n != 1 else ''} the shares "
              f"are off by "
              f"{err:.3f} on average and {cover_text}: {verdict}.")
    return CheckResult("estimator", status, reason, n=n, numbers=numbers)
