"""Share vs noise: the MM-SHAP modality shares of a few samples of one run, recomputed on perturbed inputs.

For each swept modality, its kind's first noise (:func:`core.robustness.noises_for`) at
``share_levels``: the first ``share_samples`` samples of the robustness subsample are
explained (:func:`core.explain.explain_inputs`, default settings, seeded) with that modality
perturbed and the others clean. A prediction that barely depends on its inputs has no share
(``Explanation.flat``) and is left out; ``n`` counts the samples each mean rests on.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from core.explain import ExplainSettings, explain_inputs
from core.robustness._noise import noises_for
from core.robustness._settings import RobustnessSettings
from core.threads import torch_threads


def share_curves(run: Any, model: Any, bank: Any, settings: RobustnessSettings, modalities: Sequence[str], *,
                 deadline: float | None = None, progress: bool = False) -> tuple[dict[str, Any], dict[str, int]]:
    """``({modality: {noise: {"levels": [...], "n": [...], "shares": {modality: [...]}}}}, status)``.

    Samples are the outer loop: each one is explained at every level of every swept modality before the
    next starts, so every point of every curve rests on the same samples. Past ``deadline``
    (``time.perf_counter()``) no explanation is started and a sample not finished is dropped, so the
    overshoot is at most one explanation (an explanation of a video run takes seconds, one sample of five
    modalities at three levels minutes, and a build's robustness budget covers every run); ``status`` says how
    many samples were done of how many.
    """
    k = min(settings.share_samples, len(bank.ids))
    ids = bank.ids[:k]
    labels = bank.labels[:k]
    explain = ExplainSettings(seed=settings.seed)
    clean = {m: bank.raw(m)[:k] for m in model.modalities}
    status = {"samples": 0, "planned": int(k)}
    if k == 0:
        return {}, status
    import torch

    levels = list(settings.share_levels)
    noises = {m: noises_for(bank.kind(m))[0] for m in modalities}
    perturbed = {(m, level): bank.perturbed(m, noises[m], level, n=k) for m in modalities for level in levels}
    rows: dict[tuple[str, float], list[list[float]]] = {key: [] for key in perturbed}
    for j, sid in enumerate(ids):
        sample: dict[tuple[str, float], list[float]] = {}
        for key in perturbed:  # every (modality, level) of this sample, or none of them
            if deadline is not None and time.perf_counter() > deadline:
                break
            m, level = key
            items = {mm: clean[mm][j] for mm in model.modalities}
            items[m] = perturbed[key][j]
            with torch.inference_mode():
                inputs = model.prepare({mm: [items[mm]] for mm in model.modalities})
            with torch_threads("explain"):
                ex = explain_inputs(model, inputs, sample_id=sid, label=labels[j], settings=explain)
            sample[key] = None if ex.flat else [ex.shares[mm] for mm in model.modalities]
        if len(sample) < len(perturbed):  # the deadline came first: this sample is dropped, none is started
            break
        for key, shares in sample.items():
            if shares is not None:
                rows[key].append(shares)
        status["samples"] = j + 1
    out: dict[str, Any] = {}
    for m in modalities:
        means: dict[str, list[float | None]] = {mm: [] for mm in model.modalities}
        for level in levels:
            got = rows[(m, level)]
            mean = np.mean(got, axis=0) if got else [None] * len(model.modalities)
            for mm, v in zip(model.modalities, mean):
                means[mm].append(None if v is None else float(v))
        out[m] = {noises[m]: {"levels": levels, "n": [len(rows[(m, level)]) for level in levels], "shares": means}}
    return out, status
