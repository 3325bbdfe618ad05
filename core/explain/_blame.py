"""Modality blame for errors: which modality pushed a prediction toward the wrong class.

For a test sample with true class ``t`` and rival class ``r`` (the prediction when it is wrong, the
runner-up, the second-highest logit, when it is right) the **margin game** of its modalities is::

    v(S) = logit_r(S) - logit_t(S)

with ``S`` the modalities present and the others masked exactly as the MM-SHAP modality game masks a
whole modality (every player of the modality off, :func:`~core.explain.build_maskers`; what a masked
player becomes is its kind's ``fill``). Each modality's exact Shapley value ``Phi_m`` over the ``2^M``
coalitions (:func:`~core.explain.coalition_shapley`) is efficient:
``sum_m Phi_m = v(all) - v(none)``. ``Phi_m > 0``: the modality pushed toward the rival class (for an
error: it misled the model); ``< 0``: toward the true class. The run's logits are used (the output
``"logit"``), not probabilities: a margin of logits is the log-odds of the two classes.

:func:`blame_frame` computes it for every test prediction of a run, batched: each modality's inputs
are encoded once present and once wholly masked (``2M`` encoder passes over the split, shared by the
runs of an experiment whose encoder comes from the same unimodal run), then the fusion head runs once
per coalition on those embeddings. A run that cannot be factorised (an early fusion) runs its whole
model on the masked inputs once per coalition; an adaptive run is played as the explain engine plays
it, given the policy's decisions on the unmasked sample (masking never changes which segments run).
:func:`blame_inputs` does the same for a batch of any model's prepared inputs; :func:`blame_sample` is
the direct per-sample evaluation through the explain engine's :class:`~core.explain.SampleGame`.
:func:`blame_runs` stores each run's table (``<run>/blame.parquet``, :mod:`core.explain._blame_store`)
within a time budget.
"""
from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from core.bundle import Run, experiment_arg, load_run
from core.errors import BundleError, DataError, cli_command
from core.explain._blame_store import (
    BLAME_VERSION,
    MODALITY_GAME_FILE,
    blame_column,
    blame_columns,
    blame_command,
    blame_is_current,
    load_blame,
    modality_game_columns,
    model_digest,
    write_blame,
)
from core.explain._game import HEAD_BATCH, SampleGame, is_factorisable
from core.explain._interactions import (
    FLAT_PROB_THRESHOLD,
    coalition_json,
    coalition_shapley,
    coalition_values,
    exact_share_column,
    interaction_column,
    interaction_pairs,
    pairwise_interactions,
)
from core.explain._players import build_maskers, fill_values
from core.explain._progress import Progress, check_progress
from core.explain._runs import resolve_run, run_dataset, run_inputs, sample_record
from core.explain._settings import ExplainSettings
from core.model import GivenDecisions
from core.robustness import encoder_source
from core.threads import torch_threads
from core.train import EMBED_BATCH

#: The players of a wholly masked modality: the coarsest grids. Masking every player of a modality
#: masks the same inputs whatever the grid (every pixel, frame, bin or step is in exactly one player),
#: so this is the MM-SHAP modality game's masking, and no grid rule can refuse a small input.
WHOLE_MODALITY = ExplainSettings(grid=1, video_grid=1, video_segments=1, series_segments=1, audio_bands=1,
                                 audio_segments=1)
#: What is played, in words (stored in ``blame.json``).
GAME_TEXT = ("v(S) = logit of the rival class - logit of the true class, S the modalities present (the others "
             "wholly masked as in the MM-SHAP modality game); rival = the prediction when wrong, the runner-up "
             "when right")
#: The modality game stored beside the blame, in words (``blame.json``'s ``modality_game``).
MODALITY_GAME_TEXT = ("v(S) = softmax probability of the predicted class, S the modalities present (the others "
                      "wholly masked as in the MM-SHAP modality game); exact Shapley values, shares |Phi_m| / sum "
                      "|Phi| and pairwise interaction indices over the 2^M coalitions")


def shapley_matrix(m: int) -> np.ndarray:
    """The ``(M, 2^M)`` matrix ``W`` with ``Phi = W @ v`` for the ``2^M`` coalition values ``v`` (entry ``k``:
    the coalition of ``k``'s bits): Shapley values are linear in the game, so ``W``'s columns are the
    values of the unit games."""
    eye = np.eye(2 ** m)
    return np.stack([coalition_shapley(eye[k]) for k in range(2 ** m)], axis=1)


def interaction_matrix(m: int) -> np.ndarray:
    """The ``(P, 2^M)`` matrix ``I`` with ``I @ v`` the pairwise interaction index of every pair of
    :func:`~core.explain.interaction_pairs` order (``(0, 1), (0, 2), (1, 2)``...): linear in the game, like
    :func:`shapley_matrix`."""
    eye = np.eye(2 ** m)
    pairs = [(i, j) for i in range(m) for j in range(i + 1, m)]
    units = [pairwise_interactions(eye[k]) for k in range(2 ** m)]
    return np.array([[u[i, j] for u in units] for i, j in pairs]).reshape(len(pairs), 2 ** m)


def modality_game_table(ids: Sequence[str], labels: Sequence[str], preds: Sequence[str], correct: np.ndarray,
                        classes: Sequence[str], mods: Sequence[str], logits: np.ndarray) -> pd.DataFrame:
    """The ``modality_game.parquet`` table (:mod:`core.explain._blame_store`) from the coalition logits
    ``(2^M, n, C)`` of :func:`coalition_logits`: each sample's game is the softmax probability of its
    predicted class, the output the explanations' modality game plays (``pred_prob``)."""
    n, mods = len(ids), [str(m) for m in mods]
    index = {c: i for i, c in enumerate(classes)}
    p = np.array([index[str(c)] for c in preds], dtype=np.int64)
    if n:
        z = logits - logits.max(axis=2, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(axis=2, keepdims=True)
        values = probs[:, np.arange(n), p]                                   # (2^M, n)
    else:
        values = np.zeros((2 ** len(mods), 0))
    phi = (shapley_matrix(len(mods)) @ values).T                             # (n, M)
    inter = (interaction_matrix(len(mods)) @ values).T if len(mods) > 1 else np.zeros((n, 0))
    absphi = np.abs(phi)
    total = absphi.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(total > 0, absphi / total, np.nan)
    full_minus_base = values[-1] - values[0]
    flat = (np.abs(full_minus_base) < FLAT_PROB_THRESHOLD) | (total[:, 0] < FLAT_PROB_THRESHOLD)
    frame = pd.DataFrame({
        "id": np.asarray(ids, dtype=object).astype(str), "label": np.asarray(labels, dtype=object),
        "pred": np.asarray(preds, dtype=object), "correct": np.asarray(correct, dtype=bool),
        "explained_class": np.asarray(preds, dtype=object), "output_kind": np.full(n, "pred_prob", dtype=object),
        "base_value": values[0].astype(np.float64), "full_value": values[-1].astype(np.float64)})
    for i, m in enumerate(mods):
        frame[f"shapley_{m}"] = phi[:, i].astype(np.float64)
    for i, m in enumerate(mods):
        frame[exact_share_column(m)] = shares[:, i].astype(np.float64)
    for j, (a, b) in enumerate(interaction_pairs(mods)):
        frame[interaction_column(a, b)] = inter[:, j].astype(np.float64)
    frame["coalition_values"] = pd.Series([coalition_json(values[:, i], mods) for i in range(n)], dtype=object)
    frame["flat"] = flat.astype(bool)
    return frame[modality_game_columns(mods)]


def _engine(model: Any, strategy: Any) -> str:
    if callable(getattr(model, "given_decisions", None)):
        return "factorised, given the policy's decisions"
    return "factorised" if is_factorisable(model) and strategy != "early" else "unfactorised"


def _batch_size(inputs: dict[str, Any]) -> int:
    return int(next(v.shape[0] for v in inputs.values() if isinstance(v, torch.Tensor) and v.ndim >= 1))


def _row(inputs: dict[str, Any], i: int, n: int) -> dict[str, Any]:
    return {k: v[i:i + 1] if isinstance(v, torch.Tensor) and v.ndim >= 1 and v.shape[0] == n else v
            for k, v in inputs.items()}


def _stack(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {k: torch.cat([r[k] for r in rows]) if isinstance(v, torch.Tensor) and v.ndim >= 1 else v
            for k, v in rows[0].items()}


def mask_modality(model: Any, modality: str, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A batch of one modality's prepared inputs wholly masked, sample by sample (each sample's own players:
    its tokens, patches, tubes, columns, built by the modality's kind), as the MM-SHAP modality game masks it."""
    n = _batch_size(inputs)
    rows = []
    for i in range(n):
        one = _row(inputs, i, n)
        masker = build_maskers(model, {modality: one}, [modality], WHOLE_MODALITY)[0][modality]
        k = masker.n_features
        rows.append(masker.apply(one, np.zeros((1, k), dtype=bool)) if k else one)
    return _stack(rows)


def masked_inputs(model: Any, inputs: dict[str, dict[str, torch.Tensor]]) -> dict[str, dict[str, torch.Tensor]]:
    """A batch of prepared inputs with every modality wholly masked (:func:`mask_modality`)."""
    return {m: mask_modality(model, m, inputs[m]) for m in model.modalities}


#: (encoder source, modality, test ids) -> (present, wholly masked) embeddings of the test split
EmbeddingCache = dict


def _split_embeddings(run: Run, model: Any, ds: Any, ids: list[str], batch_size: int, bar: Progress,
                      cache: EmbeddingCache | None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Each modality's embeddings of the test split present and wholly masked: two encoder passes per
    modality, shared through ``cache`` by the runs whose encoder comes from the same unimodal run
    (:func:`core.robustness.encoder_source`, the rule the robustness tables share embeddings by)."""
    key_ids = hash(tuple(ids))
    clean, gone = [], []
    for m in model.modalities:
        key = (encoder_source(run.config, m), m, key_ids)
        if cache is None or key not in cache:
            encoder = model.encoders[m]
            parts: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
            for start in range(0, len(ids), batch_size):
                chunk = ids[start:start + batch_size]
                with torch.inference_mode(), torch_threads("encoder"):
                    inputs = encoder.prepare(ds.items(m, chunk))
                    parts[0].append(model.encode(m, inputs))
                    parts[1].append(model.encode(m, mask_modality(model, m, inputs)))
                bar.update(len(chunk))
            found = (torch.cat(parts[0]), torch.cat(parts[1]))
            if cache is not None:
                cache[key] = found
        else:
            found = cache[key]
            bar.update(len(ids))
        clean.append(found[0])
        gone.append(found[1])
    return clean, gone


def _chunk_logits(model: Any, engine: str, inputs: dict[str, dict[str, torch.Tensor]]
                  ) -> Callable[[Sequence[bool]], torch.Tensor]:
    """``present (M,) -> logits (B, C)`` of one batch: the head on each modality's embedding present or
    wholly masked (an adaptive run's given the policy's decisions on the unmasked sample, as the explain
    engine plays it); a model that cannot be factorised runs whole on the masked inputs."""
    mods = list(model.modalities)
    masked = masked_inputs(model, inputs)
    if engine == "unfactorised":
        def whole(present: Sequence[bool]) -> torch.Tensor:
            with torch_threads("encoder"):
                return model({m: inputs[m] if p else masked[m] for m, p in zip(mods, present)})
        return whole
    with torch_threads("encoder"):
        clean = [model.encode(m, inputs[m]) for m in mods]
        gone = [model.encode(m, masked[m]) for m in mods]
        head = GivenDecisions(model, model.decisions(inputs)) if engine.endswith("decisions") else model

    def embedded(present: Sequence[bool]) -> torch.Tensor:
        with torch_threads("head"):
            return head.forward_embeddings([c if p else g for c, g, p in zip(clean, gone, present)])
    return embedded


def _blame_table(ids: Sequence[str], labels: Sequence[str], preds: Sequence[str], correct: np.ndarray,
                 classes: Sequence[str], mods: Sequence[str], values: np.ndarray, against: np.ndarray) -> pd.DataFrame:
    """The ``blame.parquet`` table from the margin values ``(2^M, n)`` and the rival classes ``(n,)``."""
    n, mods = len(ids), list(mods)
    phi = (shapley_matrix(len(mods)) @ values).T if n else np.zeros((0, len(mods)))
    frame = pd.DataFrame({"id": np.asarray(ids, dtype=object).astype(str), "label": np.asarray(labels, dtype=object),
                          "pred": np.asarray(preds, dtype=object), "correct": np.asarray(correct, dtype=bool),
                          "against": np.asarray(classes, dtype=object)[against] if n else np.zeros(0, dtype=object),
                          "margin_full": values[-1], "margin_empty": values[0]})
    for i, m in enumerate(mods):
        frame[blame_column(m)] = phi[:, i].astype(np.float64)
    best = phi.argmax(1) if n else np.zeros(0, dtype=np.int64)
    blamed = ~frame["correct"].to_numpy() & (phi.max(1) > 0 if n else np.zeros(0, dtype=bool))
    frame["culprit"] = pd.Series([mods[b] if hit else None for b, hit in zip(best, blamed)], dtype=object)
    frame = frame[blame_columns(mods)]
    frame.attrs["modalities"] = mods
    return frame


def blame_inputs(model: Any, inputs: dict[str, dict[str, torch.Tensor]], labels: Sequence[Any],
                 preds: Sequence[Any] | None = None, *, ids: Sequence[str] | None = None,
                 strategy: str | None = None) -> pd.DataFrame:
    """The blame table of a batch of prepared inputs of any model (``model.prepare(items)``): ``labels``
    and ``preds`` are class names or indices (``preds`` default: the model's argmax on the unmasked
    inputs); ``strategy="early"`` plays the whole model per coalition. Same columns as ``blame.parquet``."""
    classes = [str(c) for c in getattr(model, "classes", [])]
    engine = _engine(model, strategy)
    mods = list(model.modalities)
    coalitions = [[bool((k >> i) & 1) for i in range(len(mods))] for k in range(2 ** len(mods))]
    with torch.inference_mode():
        logits_of = _chunk_logits(model, engine, inputs)
        full = logits_of(coalitions[-1])
        names = classes or [str(i) for i in range(int(full.shape[1]))]

        def index(values: Sequence[Any]) -> np.ndarray:
            return np.array([int(v) if isinstance(v, (int, np.integer)) else names.index(str(v)) for v in values],
                            dtype=np.int64)

        t = index(labels)
        p = full.argmax(1).numpy().astype(np.int64) if preds is None else index(preds)
        values, against = _margins(logits_of, coalitions, t, p, p == t)
    ids = [str(i) for i in range(len(t))] if ids is None else list(ids)
    return _blame_table(ids, [names[i] for i in t], [names[i] for i in p], p == t, names, mods, values, against)


def _class_indices(run: Run, column: str) -> np.ndarray:
    classes = list(run.classes)
    index = {c: i for i, c in enumerate(classes)}
    values = run.predictions[column].astype(str)
    unknown = sorted(set(values) - set(index))
    if unknown:
        rebuild = f"{cli_command()} build {experiment_arg(Path(run.path).parent)} --force"
        raise BundleError(f"predictions.parquet of run {run.name} names class(es) {unknown[:5]} that its config lacks",
                          fix=f"rebuild the run: `{rebuild}`")
    return np.array(values.map(index), dtype=np.int64)


def _margins(logits_of: Callable[[Sequence[bool]], torch.Tensor], coalitions: list[list[bool]], t: np.ndarray,
             pred: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values (2^M, B), rival class (B,)) of one batch: the margin game at every coalition."""
    rows = np.arange(len(t))
    full = logits_of(coalitions[-1]).double()
    true = torch.from_numpy(t.copy())
    rival = full.clone()
    rival[rows, true] = -math.inf
    # the rival class: the prediction when wrong, the runner-up when right
    against = np.where(correct, rival.argmax(1).numpy(), pred).astype(np.int64)
    a = torch.from_numpy(against.copy())
    values = np.empty((len(coalitions), len(t)))
    for k, present in enumerate(coalitions):
        logits = full if k == len(coalitions) - 1 else logits_of(present).double()
        values[k] = (logits[rows, a] - logits[rows, true]).numpy()
    return values, against


def coalition_logits(run: Any, *, progress: Any = None, batch_size: int = EMBED_BATCH,
                     cache: EmbeddingCache | None = None, desc: str | None = None) -> dict[str, Any]:
    """The logits of every test sample of a run at every coalition of its modalities, batched: entry ``k``
    of ``logits`` ``(2^M, n, C)`` (float64) has present the modalities whose bit is set in ``k``, the others
    wholly masked as in the MM-SHAP modality game. A factorised run encodes each modality's split twice
    (present, masked; shared through ``cache`` by the runs of one experiment) and runs its head per
    coalition; an early fusion runs whole per coalition; an adaptive run is played given the policy's
    decisions on the unmasked sample. :func:`blame_frame` reads its margin game from it.

    Returns ``{"modalities", "ids", "logits", "engine"}``.
    """
    progress = check_progress(progress)
    run = resolve_run(run)
    model = run.model()
    mods = list(model.modalities)
    ds = run_dataset(run)
    lacking = [m for m in mods if m not in ds.modalities]
    if lacking:
        raise DataError(f"the dataset of run {run.name!r} lacks modality {', '.join(lacking)}",
                        fix=f"rebuild the experiment (`{cli_command()} build {experiment_arg(Path(run.path).parent)} "
                            "--force`)")
    ids = run.predictions["id"].astype(str).tolist()
    n, k_all = len(ids), 2 ** len(mods)
    coalitions = [[bool((k >> i) & 1) for i in range(len(mods))] for k in range(k_all)]
    logits: np.ndarray | None = None
    engine = _engine(model, run.config.get("strategy"))
    step = max(1, int(batch_size))
    bar = Progress(progress, n * len(mods), desc=desc or f"modality game {run.name}")

    def store(part: slice, logits_of: Callable[[Sequence[bool]], torch.Tensor]) -> None:
        nonlocal logits
        for k, present in enumerate(coalitions):
            block = logits_of(present).double().numpy()
            if logits is None:
                logits = np.empty((k_all, n, block.shape[1]))
            logits[k, part] = block

    try:
        if engine == "factorised":  # the encoders once per modality (present, masked), the head per coalition
            clean, gone = _split_embeddings(run, model, ds, ids, step, bar, cache)
            for start in range(0, n, HEAD_BATCH):
                part = slice(start, min(n, start + HEAD_BATCH))

                def head(present: Sequence[bool], part: slice = part) -> torch.Tensor:
                    embs = [(c if p else g)[part] for c, g, p in zip(clean, gone, present)]
                    with torch.inference_mode(), torch_threads("head"):
                        return model.forward_embeddings(embs)
                store(part, head)
        else:
            for start in range(0, n, step):
                part = slice(start, min(n, start + step))
                with torch.inference_mode():
                    inputs = model.prepare({m: ds.items(m, ids[part]) for m in mods})
                    store(part, _chunk_logits(model, engine, inputs))
                bar.update((part.stop - part.start) * len(mods))
    finally:
        bar.close()
    if logits is None:
        logits = np.zeros((k_all, 0, len(run.classes)))
    return {"modalities": mods, "ids": ids, "logits": logits, "engine": engine}


def blame_frame(run: Any, *, progress: Any = None, batch_size: int = EMBED_BATCH,
                cache: EmbeddingCache | None = None, game: dict[str, Any] | None = None) -> pd.DataFrame:
    """Every test prediction's modality blame (the ``blame.parquet`` table, module docstring), batched
    (:func:`coalition_logits`, or its output ``game`` when given).

    ``run``: a run folder or a loaded :class:`core.bundle.Run`; ``progress``: True (tqdm), False or a
    callable ``(done, total)``; ``cache``: a dict shared by the runs of one experiment, so an encoder
    several runs share encodes the split once. ``frame.attrs``: ``modalities``, ``engine``, ``seconds``.
    """
    t0 = time.perf_counter()
    run = resolve_run(run)
    y, pred = _class_indices(run, "label"), _class_indices(run, "pred")  # checked before any encoding
    if game is None:
        game = coalition_logits(run, progress=progress, batch_size=batch_size, cache=cache,
                                desc=f"blame {run.name}")
    mods, logits = game["modalities"], game["logits"]
    preds = run.predictions
    correct = preds["correct"].astype(bool).to_numpy()
    coalitions = [[bool((k >> i) & 1) for i in range(len(mods))] for k in range(2 ** len(mods))]

    def stored(present: Sequence[bool]) -> torch.Tensor:
        return torch.from_numpy(logits[sum(1 << i for i, p in enumerate(present) if p)])
    if len(y):
        values, against = _margins(stored, coalitions, y, pred, correct)
    else:
        values, against = np.zeros((len(coalitions), 0)), np.zeros(0, dtype=np.int64)
    frame = _blame_table(game["ids"], preds["label"].astype(str).tolist(), preds["pred"].astype(str).tolist(),
                         correct, run.classes, mods, values, against)
    frame.attrs.update(engine=game["engine"], seconds=round(time.perf_counter() - t0, 3))
    return frame


def modality_game_frame(run: Any, *, progress: Any = None, batch_size: int = EMBED_BATCH,
                        cache: EmbeddingCache | None = None, game: dict[str, Any] | None = None) -> pd.DataFrame:
    """Every test prediction's modality game of its predicted class's probability (the
    ``modality_game.parquet`` table: exact modality Shapley values, shares and pairwise interactions), from
    :func:`coalition_logits` (or its output ``game``), as :func:`blame_frame` computes the blame."""
    run = resolve_run(run)
    _class_indices(run, "pred")  # the predictions name classes of the run: checked before any encoding
    if game is None:
        game = coalition_logits(run, progress=progress, batch_size=batch_size, cache=cache,
                                desc=f"modality game {run.name}")
    preds = run.predictions
    return modality_game_table(game["ids"], preds["label"].astype(str).tolist(), preds["pred"].astype(str).tolist(),
                               preds["correct"].astype(bool).to_numpy(), run.classes, game["modalities"],
                               game["logits"])


def blame_sample(run: Any, sample_id: str) -> dict[str, Any]:
    """One sample's blame evaluated directly: its own inputs played as the explain engine plays them
    (:class:`~core.explain.SampleGame`, the run's adaptive decisions fixed), the ``2^M`` margin values from
    :func:`~core.explain.coalition_values`. Returns the sample's ``blame.parquet`` row as a dict, with
    ``values`` (the ``2^M`` coalition values) added."""
    run = resolve_run(run)
    record = sample_record(run, str(sample_id))
    if record["pred"] is None:
        raise DataError(f"sample {sample_id!r} has no prediction in run {run.name!r} (it is not a test sample)",
                        fix="blame a sample of the run's predictions.parquet")
    classes = list(run.classes)
    model = run.model()
    inputs = run_inputs(run, str(sample_id))
    given = getattr(model, "given_decisions", None)
    if callable(given):
        model = given(inputs)
    mods = list(model.modalities)
    maskers, _ = build_maskers(model, inputs, mods, ExplainSettings())
    narrow = getattr(model, "narrow_maskers", None)
    if callable(narrow):  # an adaptive run's skipped segments are no players
        maskers = narrow(maskers, inputs)
    factorised = is_factorisable(model) and run.config.get("strategy") != "early"
    game = SampleGame(model, inputs, maskers, mods, factorised=factorised)
    full = game.logits(np.ones((1, game.n_features), dtype=bool))[0].double()
    t = classes.index(record["label"])
    wrong = not record["correct"]
    if wrong:
        a = classes.index(record["pred"])
    else:
        rival = full.clone()
        rival[t] = -math.inf
        a = int(rival.argmax())
    game.set_output(lambda logits: logits[:, a].double() - logits[:, t].double())
    values = coalition_values(game, game.group_indices(), game.n_features,
                              batch_size=HEAD_BATCH if factorised else game.encoder_batch)
    phi = coalition_shapley(values)
    best = int(np.argmax(phi))
    return {"id": str(sample_id), "label": record["label"], "pred": record["pred"], "correct": record["correct"],
            "against": classes[a], "margin_full": float(values[-1]), "margin_empty": float(values[0]),
            **{blame_column(m): float(v) for m, v in zip(mods, phi)},
            "culprit": mods[best] if wrong and phi[best] > 0 else None, "values": values}


def blame_run(run: Any, *, force: bool = False, progress: Any = None,
              cache: EmbeddingCache | None = None) -> pd.DataFrame:
    """A run's blame table: the stored one when current (:func:`blame_is_current`) unless ``force``, else
    computed (:func:`blame_frame`) and stored as ``<run>/blame.parquet`` + ``blame.json``, with the modality
    game of every test prediction from the same coalition logits (:func:`modality_game_frame`,
    ``<run>/modality_game.parquet``). ``run``: a run folder or a loaded :class:`core.bundle.Run` (the
    dashboard passes its shared one)."""
    run = run if isinstance(run, Run) else load_run(run)
    if not force and blame_is_current(run.path, run.config):
        stored = load_blame(run.path)
        if stored is not None:
            return stored
    t0 = time.perf_counter()
    _class_indices(run, "label")  # both columns name classes of the run: checked before any encoding
    _class_indices(run, "pred")
    game = coalition_logits(run, progress=progress, cache=cache, desc=f"blame {run.name}")
    frame = blame_frame(run, game=game)
    shares = modality_game_frame(run, game=game)
    frame.attrs["seconds"] = round(time.perf_counter() - t0, 3)
    meta = {
        "engine_version": BLAME_VERSION, "run": run.name, "experiment": run.experiment,
        "run_fingerprint": run.config.get("fingerprint"), "model_sha256": model_digest(run.path),
        "computed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": blame_command(run.path), "output": "logit", "game": GAME_TEXT,
        "engine": frame.attrs["engine"], "fill": fill_values(), "modalities": frame.attrs["modalities"],
        "n": len(frame), "n_errors": int((~frame["correct"]).sum()), "seconds": frame.attrs["seconds"],
        "modality_game": {"file": MODALITY_GAME_FILE, "output": "pred_prob", "game": MODALITY_GAME_TEXT},
    }
    write_blame(run.path, frame, meta, game=shares)
    return load_blame(run.path)


def blame_runs(run_dirs: Sequence[str | Path], *, force: bool = False, time_limit: float | None = None,
               progress: bool = False) -> dict[str, Any]:
    """Each run's blame table (:func:`blame_run`); runs whose table is current are kept unless ``force``.
    Past ``time_limit`` seconds no new run is started: those are returned in ``left``. Runs of one
    experiment share their encoders' embeddings of the split (:func:`blame_frame`'s ``cache``).

    Returns ``{"computed": [names], "kept": [names], "left": [paths], "seconds": s, "per_run": {name: s}}``.
    """
    start = time.perf_counter()
    out: dict[str, Any] = {"computed": [], "kept": [], "left": [], "per_run": {}}
    caches: dict[Path, EmbeddingCache] = {}
    for r in run_dirs:
        path = Path(r)
        run = load_run(path)
        if not force and blame_is_current(path, run.config):
            out["kept"].append(run.name)
            continue
        if time_limit is not None and time.perf_counter() - start > time_limit:
            out["left"].append(path)
            continue
        t0 = time.perf_counter()
        blame_run(path, force=True, progress=progress, cache=caches.setdefault(path.resolve().parent, {}))
        out["computed"].append(run.name)
        out["per_run"][run.name] = round(time.perf_counter() - t0, 3)
    out["seconds"] = round(time.perf_counter() - start, 3)
    return out
