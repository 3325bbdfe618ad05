"""Share vs noise: the MM-SHAP modality shares of a few samples of one run, recomputed on perturbed inputs.

For each swept modality, its kind's first noise (:func:`core.robustness.noises_for`) at
``share_levels``: the first ``share_samples`` samples of the robustness subsample are
explained (:func:`core.explain.explain_inputs`, default settings, seeded) with that modality
perturbed and the others clean. A prediction that barely depends on its inputs has no share
(``Explanation.flat``) and is left out; ``n`` counts the samples each mean rests on.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from core.explain import ExplainSettings, explain_inputs
from core.robustness._noise import noises_for
from core.robustness._settings import RobustnessSettings
from core.threads import torch_threads


def share_curves(run: Any, model: Any, bank: Any, settings: RobustnessSettings, modalities: Sequence[str], *,
                 progress: bool = False) -> dict[str, Any]:
    """``{modality: {noise: {"levels": [...], "n": [...], "shares": {modality: [...]}}}}``."""
    k = min(settings.share_samples, len(bank.ids))
    ids = bank.ids[:k]
    labels = bank.labels[:k]
    explain = ExplainSettings(seed=settings.seed)
    clean = {m: bank.raw(m)[:k] for m in model.modalities}
    out: dict[str, Any] = {}
    if k == 0:
        return out
    import torch

    for m in modalities:
        noise = noises_for(bank.kind(m))[0]
        levels = list(settings.share_levels)
        n_used: list[int] = []
        means: dict[str, list[float | None]] = {mm: [] for mm in model.modalities}
        for level in levels:
            items = dict(clean)
            items[m] = bank.perturbed(m, noise, level, n=k)
            rows = []
            for j, sid in enumerate(ids):
                with torch.inference_mode():
                    inputs = model.prepare({mm: [items[mm][j]] for mm in model.modalities})
                with torch_threads("explain"):
                    ex = explain_inputs(model, inputs, sample_id=sid, label=labels[j], settings=explain)
                if not ex.flat:
                    rows.append([ex.shares[mm] for mm in model.modalities])
            n_used.append(len(rows))
            mean = np.mean(rows, axis=0) if rows else [None] * len(model.modalities)
            for mm, v in zip(model.modalities, mean):
                means[mm].append(None if v is None else float(v))
        out[m] = {noise: {"levels": levels, "n": n_used, "shares": means}}
    return out
