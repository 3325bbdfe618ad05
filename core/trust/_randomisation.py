"""Model randomisation (Adebayo et al. 2018, cascading): explanations must change with the weights.

The fusion head is re-initialised (seeded), then the head and every encoder,
on deep copies of the model; the same samples are explained again with the
same settings and the same explained class, and the |phi| map of each sample
is rank-correlated (Spearman) with the trained model's (also reported: the
mean correlation inside each modality, which leaves out how the maps split
between modalities). A frozen pretrained
encoder is re-initialised too: the test is about the explanation's dependence
on the weights, not about training. The trained model is never touched.
"""
from __future__ import annotations

import copy
import math
import time
from typing import Any, Mapping, MutableMapping

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from core.errors import ConfigError, DataError
from core.explain import ExplainSettings, Explanation, explain_inputs
from core.trust._report import CheckResult
from core.trust._stats import spearman, summary
from core.trust._thresholds import RANDOMISATION_FAIL, RANDOMISATION_PASS

#: The cascade: the head alone, then the head and the encoders (every weight of the model).
STAGES = ("head", "head+encoders")
#: The fewest samples explained before a deadline may stop the check.
RANDOMISATION_MIN_SAMPLES = 3
#: Standard deviation of a redrawn parameter whose module has no ``reset_parameters`` and whose
#: trained values have no spread (a scalar, or all equal).
FALLBACK_STD = 0.02


def reinitialise(model: nn.Module, stage: str, seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` with the weights of ``stage`` (:data:`STAGES`) drawn afresh, seeded.

    Every module with ``reset_parameters`` (or ``_reset_parameters``) is reset; the direct
    parameters of other modules are drawn from N(0, s^2), s their trained spread
    (:data:`FALLBACK_STD` when it is 0). Buffers (input statistics) stay: they are not weights.
    """
    if stage not in STAGES:
        raise ConfigError(f"unknown randomisation stage {stage!r}", fix=f"use one of: {', '.join(STAGES)}")
    fresh = copy.deepcopy(model)
    if stage == "head":
        head = getattr(fresh, "head", None)
        if not isinstance(head, nn.Module):
            raise ConfigError("the model has no fusion head (a .head module) to re-initialise",
                              fix="give the model its head as .head, or test the stage 'head+encoders' only")
        roots = [head]
    else:
        roots = [fresh]
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(int(seed))
        for root in roots:
            for module in root.modules():
                reset = getattr(module, "reset_parameters", None) or getattr(module, "_reset_parameters", None)
                if callable(reset):
                    reset()
                    continue
                for p in module.parameters(recurse=False):
                    spread = float(p.float().std()) if p.numel() > 1 else 0.0
                    p.normal_(0.0, spread if spread > 0 and math.isfinite(spread) else FALLBACK_STD)
    return fresh.eval()


def _same_class(settings: ExplainSettings, trained: Explanation) -> ExplainSettings:
    """The settings that explain the class the trained explanation explained (not the one a
    randomised model happens to predict), so that only the weights differ."""
    kind = "logit" if settings.output_spec.kind == "logit" else "class"
    return ExplainSettings.build(settings, output=(kind, trained.explained_class))


def map_correlation(trained: Explanation, other: Explanation) -> float:
    """Spearman correlation of the two |phi| maps (NaN when either has no variation)."""
    if trained.n_features != other.n_features:
        raise DataError(f"the explanation of {trained.sample_id!r} has {trained.n_features} features, the model's "
                        f"game now has {other.n_features}",
                        fix="recompute the run's explanations (delete its explanations/ folder, then explain again)")
    return spearman(np.abs(trained.values), np.abs(other.values))


def within_modality_correlation(trained: Explanation, other: Explanation) -> float:
    """Mean over modalities (with 3 or more features) of the Spearman correlation of their |phi|
    maps: the ranking inside each modality, whatever the split between modalities."""
    rs = [spearman(np.abs(trained.modality_values(m)), np.abs(other.modality_values(m)))
          for m in trained.modalities if len(trained.feature_indices(m)) >= 3]
    rs = [r for r in rs if not math.isnan(r)]
    return float(np.mean(rs)) if rs else math.nan


def randomisation_check(
    model: nn.Module,
    inputs: Mapping[str, Any],
    settings: ExplainSettings | None = None,
    *,
    reference: MutableMapping[str, Explanation] | None = None,
    labels: Mapping[str, Any] | None = None,
    seed: int = 0,
    factorise: bool | None = None,
    deadline: float | None = None,
    progress: bool = False,
) -> CheckResult:
    """Cascading randomisation of ``model`` on the samples ``inputs`` (id -> prepared inputs).

    ``reference``: the trained model's explanations by id; those missing are explained here
    and added to it. ``labels``: id -> label, needed for ``output="true_prob"``.
    ``deadline`` (a ``time.perf_counter()`` value): no new sample is started after it once
    :data:`RANDOMISATION_MIN_SAMPLES` are done (``n`` says how many the result rests on).
    A map with no variation (every |phi| equal, for example all zero) has no ranking to
    keep: its correlation counts as 0 and the number of such maps is reported. The status
    comes from the last stage (:data:`RANDOMISATION_PASS`, :data:`RANDOMISATION_FAIL`).
    """
    settings = ExplainSettings.build(settings)
    ids = [str(i) for i in inputs]
    if not ids:
        return CheckResult("randomisation", "skip", "No sample to explain.")
    labels = dict(labels or {})
    ref = reference if reference is not None else {}
    fresh = {stage: reinitialise(model, stage, seed + k) for k, stage in enumerate(STAGES)}
    per_sample: dict[str, dict[str, float]] = {stage: {} for stage in STAGES}
    within: dict[str, list[float]] = {stage: [] for stage in STAGES}
    undefined = 0
    done: list[str] = []
    for sid in tqdm(ids, desc="trust: randomisation", disable=not progress, leave=False):
        if deadline is not None and len(done) >= RANDOMISATION_MIN_SAMPLES and time.perf_counter() > deadline:
            break
        if sid not in ref:
            ref[sid] = explain_inputs(model, inputs[sid], sample_id=sid, label=labels.get(sid), settings=settings,
                                      factorise=factorise)
        for stage in STAGES:
            other = explain_inputs(fresh[stage], inputs[sid], sample_id=sid, label=labels.get(sid),
                                   settings=_same_class(settings, ref[sid]), factorise=factorise)
            r = map_correlation(ref[sid], other)
            if math.isnan(r):
                undefined += 1
                r = 0.0
            per_sample[stage][sid] = r
            within[stage].append(within_modality_correlation(ref[sid], other))
        done.append(sid)
    del fresh
    stages = {stage: {**summary(list(per_sample[stage].values())), "per_sample": per_sample[stage],
                      "within_modality": summary(within[stage])} for stage in STAGES}
    last, first = stages[STAGES[-1]]["median"], stages[STAGES[0]]["median"]
    inside = stages[STAGES[-1]]["within_modality"]["median"]
    n = len(done)
    # what stays when the whole map stays: the ranking inside each modality, or only the split between them
    where = "" if math.isnan(inside) else (
        f" Inside each modality they correlate {inside:.2f}: "
        + ("what stays is how the maps split between modalities." if inside < RANDOMISATION_PASS
           else "the ranking of each modality's features stays too."))
    if last >= RANDOMISATION_FAIL:
        status = "fail"
        reason = (f"With every weight re-initialised the |phi| maps still correlate {last:.2f} (median of {n}) "
                  "with the trained model's: the explanations barely depend on what the model learned." + where)
    elif last >= RANDOMISATION_PASS:
        status = "warn"
        reason = (f"With every weight re-initialised the |phi| maps still correlate {last:.2f} (median of {n}) "
                  f"with the trained model's (pass below {RANDOMISATION_PASS})." + where)
    elif first >= RANDOMISATION_FAIL:
        status = "warn"
        reason = (f"Re-initialising the fusion head alone leaves the |phi| maps correlated {first:.2f} (median of "
                  f"{n}); with the encoders too they drop to {last:.2f}.")
    else:
        status = "pass"
        reason = (f"The explanations change with the weights: |phi| maps correlate {first:.2f} with the head "
                  f"re-initialised and {last:.2f} with every weight re-initialised (medians of {n}).")
    numbers = {"stages": stages, "undefined_maps": undefined, "seed": int(seed),
               "explained_class": "the trained explanation's class"}
    return CheckResult("randomisation", status, reason, n=n, numbers=numbers)
