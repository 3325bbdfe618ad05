"""The MM-SHAP engine: explain one sample of a multimodal classifier.

:func:`explain_inputs` explains one sample of any model from its prepared
inputs; :func:`explain_sample` one sample of a run (and stores it). Each call
builds the players (:func:`~core.explain.build_maskers`, one masker per
explained modality), plays the sample as a factorised game
(:class:`~core.explain.SampleGame`), resolves the method to an estimator
(:func:`~core.explain.choose_estimator`: ``"exact"``, ``"permutation"`` (the
reference MM-SHAP estimator), ``"kernel"``, ``"recombined"``, or ``"auto"``:
``"exact"`` where it evaluates no more than ``"recombined"``'s plan, else
``"recombined"`` with the budget of the explained modalities' kinds; the same
rule, by the game's shape only, for factorised and unfactorised (early-fusion)
games, so every run of an experiment is explained alike), and returns one
:class:`~core.explain.Explanation` with each value's and each share's
standard error.

Also computed for every explanation: the modality game (each explained modality
one player, ``2^M`` coalitions, nearly free from the cache), whose values are
kept: exact modality-level Shapley values, exact shares and pairwise
interactions (:mod:`core.explain._interactions`). What is explained, and every setting, is one
:class:`~core.explain.ExplainSettings` (``docs/EXPLAIN.md``).
"""
from __future__ import annotations

import time
from typing import Any, Hashable, Mapping, Sequence

import numpy as np
import torch

from core.errors import ConfigError, DataError
from core.explain._estimators import EXACT_MAX_FEATURES, choose_estimator
from core.explain._game import HEAD_BATCH, SampleGame, is_factorisable, output_function
from core.explain._players import build_maskers, fill_values, modality_kind, resolve_players
from core.explain._progress import Progress, check_progress
from core.explain._result import Explanation
from core.explain._reuse import SharedTables, encoder_identity, table_key
from core.explain._runs import (
    check_run_modalities,
    explain_threads,
    resolve_run,
    run_inputs,
    sample_record,
)
from core.explain._settings import ADAPTIVE_EXPLAINED, ExplainSettings
from core.explain._interactions import coalition_shapley, coalition_values
from core.explain._store import explanation_for, store_explanation


def explain_inputs(
    model: Any,
    inputs: Mapping[str, dict[str, torch.Tensor]],
    *,
    sample_id: str = "sample",
    label: str | int | None = None,
    settings: ExplainSettings | None = None,
    progress: Any = None,
    factorise: bool | None = None,
    extra: Mapping[str, Any] | None = None,
    shared: SharedTables | None = None,
    encoder_ids: Mapping[str, Hashable | None] | None = None,
) -> Explanation:
    """Explain one sample given the model inputs of each modality (batch dimension 1).

    ``label`` (class name or index) is needed for ``output="true_prob"``;
    ``factorise`` None uses the factorised game whenever the model allows it;
    ``extra`` is merged into the explanation's settings (for example label and
    prediction). ``shared`` lends embedding tables between the games of models
    whose modality ``m`` has the same ``encoder_ids[m]`` (:func:`encoder_identity`;
    a modality without one keeps its own table): the values are the same, only
    encoder rows are saved. Returns one :class:`Explanation`.
    """
    settings = ExplainSettings.build(settings)
    progress = check_progress(progress)
    t0 = time.perf_counter()
    players = resolve_players(model, settings.modalities)
    classes = [str(c) for c in getattr(model, "classes", [])]
    for m in model.modalities:
        if m not in inputs:
            raise DataError(f"no inputs for modality {m!r}",
                            fix=f"pass inputs for every modality: {', '.join(model.modalities)}")
    maskers, grid_info = build_maskers(model, inputs, players, settings)
    narrow = getattr(model, "narrow_maskers", None)
    if callable(narrow):  # a model that ignores part of an input (an adaptive run's skipped segments): no players there
        maskers = narrow(maskers, inputs)
    can_factorise = is_factorisable(model)
    if factorise and not can_factorise:
        raise ConfigError("this model cannot be factorised (no per-modality encode / forward_embeddings)",
                          fix="pass factorise=None or False")
    factorised = can_factorise if factorise is None else bool(factorise)
    keys = None
    if shared is not None and factorised and encoder_ids:
        keys = {m: table_key(encoder_ids[m], m, str(sample_id), maskers.get(m) if m in players else None, inputs[m])
                for m in model.modalities if encoder_ids.get(m) is not None}
    game = SampleGame(model, inputs, maskers, players, factorised=factorised, shared=shared, table_keys=keys)
    n = game.n_features
    if n == 0:
        raise DataError(f"sample {sample_id!r} has no features to explain (every token is special?)",
                        fix="explain another sample or other modalities")

    # what is explained
    full_logits = game.logits(np.ones((1, n), dtype=bool))[0]
    spec = settings.output_spec
    if spec.kind == "pred_prob" or (spec.kind == "logit" and spec.class_name is None):
        class_index = int(torch.argmax(full_logits))
    elif spec.kind == "true_prob":
        if label is None:
            raise ConfigError("output 'true_prob' needs the sample's label", fix="pass label=, or explain 'pred_prob'")
        class_index = _class_index(label, classes)
    else:
        class_index = _class_index(spec.class_name, classes)
    explained_class = classes[class_index] if class_index < len(classes) else str(class_index)
    game.set_output(output_function(spec.kind, class_index))

    # which estimator: by the game's shape and kinds only, so every run of an experiment gets the same
    kinds = {m: modality_kind(model, m) for m in players}
    choice = choose_estimator(game, settings.method, n_permutations=settings.n_permutations, seed=settings.seed,
                              kinds=list(kinds.values()), n_blocks=settings.n_orders, n_walks=settings.n_walks)
    if choice.estimator.name == "exact" and n > EXACT_MAX_FEATURES:
        sizes = ", ".join(f"{m}: {s}" for m, s in zip(players, game.sizes))
        raise ConfigError(
            f"exact Shapley values of sample {sample_id!r} need 2^{n} coalitions ({sizes} features), "
            f"more than the limit of 2^{EXACT_MAX_FEATURES}",
            fix="use method='auto' or 'recombined' (or 'permutation'), or a smaller grid (grid=2)",
        )
    bar = Progress(progress, choice.estimator.evaluations(n) + 2 ** len(players), desc=f"explain {sample_id}")
    game.on_rows = bar.update
    try:
        batch_size = HEAD_BATCH if factorised else game.encoder_batch
        sv = choice.estimator.estimate(game, n, batch_size=batch_size).recorded_as(choice.record_as)
        # the modality game: its 2^M values are kept (exact shares, interactions); one head pass each
        coalitions = coalition_values(game, game.group_indices(), n, batch_size=batch_size)
    finally:
        bar.close()
        game.on_rows = None

    feature_info: list[dict[str, Any]] = []
    feature_modality: list[int] = []
    for i, m in enumerate(players):
        feature_info.extend(game.maskers[m].describe())
        feature_modality.extend([i] * game.sizes[i])
    meta: dict[str, Any] = {
        "settings_hash": settings.hash(),
        "explain_settings": settings.as_dict(),
        "output": spec.key,
        "class_index": class_index,
        "n_features": {m: int(s) for m, s in zip(players, game.sizes)},
        "engine": "factorised" if factorised else "unfactorised",
        "encoder_rows": game.encoder_rows if factorised else None,
        "shared_tables": game.shared_tables if factorised else None,
        "head_rows": game.head_rows if factorised else None,
        "model_rows": None if factorised else game.model_rows,
        "cost_flops": choice.costs,
        "seconds": round(time.perf_counter() - t0, 4),
        "modality_kinds": kinds,
        "fill": fill_values(),
        **grid_info,
    }
    meta.update(extra or {})
    return Explanation.from_shapley(
        sv,
        sample_id=str(sample_id),
        modalities=players,
        feature_modality=feature_modality,
        feature_info=feature_info,
        output_kind=spec.kind,
        explained_class=explained_class,
        modality_shapley={m: float(v) for m, v in zip(players, coalition_shapley(coalitions))},
        coalition_values=coalitions,
        settings=meta,
    )


def _class_index(label: str | int, classes: Sequence[str]) -> int:
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        if classes and not 0 <= int(label) < len(classes):
            raise ConfigError(f"class index {label} is out of range", fix=f"use 0..{len(classes) - 1}")
        return int(label)
    name = str(label)
    if name not in classes:
        preview = ", ".join(classes[:8]) + (", ..." if len(classes) > 8 else "")
        raise ConfigError(f"unknown class {name!r}", fix=f"use a class of the run: {preview}")
    return classes.index(name)


def explain_sample(
    run: Any,
    sample_id: str,
    settings: ExplainSettings | None = None,
    *,
    store: bool = True,
    progress: Any = None,
    tables: SharedTables | None = None,
    **changes: Any,
) -> Explanation:
    """Explain one sample of a run on demand (the dashboard's "explain now").

    Args:
        run: a run folder or a loaded :class:`core.bundle.Run` (folders are loaded once per process).
        sample_id: an id of the run's dataset (usually of its test predictions).
        settings: an :class:`ExplainSettings` (default: the defaults, which the
            precompute and the dashboard use too).
        store: also write the result under ``<run>/explanations/`` (read back by
            :func:`explanation_for`); an identical stored result is not recomputed.
        progress: True (tqdm), False, or a callable ``(done, total)``.
        tables: a :class:`SharedTables` lent between the runs explained in turn (the
            precompute's): a run whose encoder of a modality is another's reuses that
            encoder's embeddings of this sample's masked variants.
        **changes: fields of :class:`ExplainSettings` to change, for example
            ``method="exact"``, ``output=("class", NAME)``, ``grid=2``.
    """
    run = resolve_run(run)
    settings = ExplainSettings.build(settings, **changes)
    check_run_modalities(run, settings)
    if store:
        stored = explanation_for(run.path, str(sample_id), settings_hash=settings.hash())
        if stored is not None:
            if callable(progress):
                progress(1, 1)
            return stored
    record = sample_record(run, str(sample_id))
    model = run.model()
    inputs = run_inputs(run, str(sample_id))
    factorise = None if run.config.get("strategy") != "early" else False
    extra = {"label": record["label"], "pred": record["pred"], "correct": record["correct"], "run": run.name}
    given = getattr(model, "given_decisions", None)
    if callable(given):  # an adaptive run: its prediction given the policy's decisions for this sample
        model = given(inputs)
        if not any(model.used(m) for m in model.modalities):
            raise DataError(f"the policy of run {run.name!r} ran no modality for sample {sample_id!r}: its prediction "
                            "uses no input, so there is nothing to explain",
                            fix="explain another sample (its decisions are on the Efficiency page)")
        extra.update(decisions=model.record(), explained=ADAPTIVE_EXPLAINED)
    encoder_ids = None
    if tables is not None and factorise is None:
        encoder_ids = {m: encoder_identity(run, model, m) for m in model.modalities}
    with explain_threads():
        exp = explain_inputs(
            model, inputs, sample_id=str(sample_id), label=record["label"], settings=settings, progress=progress,
            factorise=factorise, extra=extra, shared=tables, encoder_ids=encoder_ids,
        )
    if store:
        store_explanation(run.path, exp, settings)
    return exp
