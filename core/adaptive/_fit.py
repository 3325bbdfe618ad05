"""Training an adaptive run's head on cached segment embeddings, and what the run stores about its decisions.

The recognition sub-networks are the unimodal runs' encoders, frozen: each
policy modality's segments are encoded once (:func:`segment_embeddings`, cached
in ``<experiment>/_cache/<unimodal run>-segments<S>.safetensors`` and redone
when the unimodal run changes), and only the policy and the segment
classifiers train (:func:`fit_adaptive`): first the classifiers alone with every
modality on (``warmup_epochs``), then AdamW on ``CE + sum_k lambda_k C_k`` with
straight-through Gumbel-softmax decisions at a temperature annealed from
``tau_start`` to ``tau_end`` (:func:`core.fusion.annealed_tau`), the cost
weights growing from 0 over ``cost_ramp_epochs``, keeping the epoch with the
lowest validation loss (the same loss at the whole weights, with the test-time
argmax decisions). Measured on a synthetic task (one segment in four carries
the costly modality's cue, and its summary says which): without the ramp the
cost removed the costly modality almost everywhere before the policy had
learned where it helps (top-1 0.80-0.95 against 0.97 with every modality on);
with it the policy ran it in 25 % of the segments, the ones with the cue, at
0.98 (README, "Adaptive fusion"; ``tests/core/adaptive/test_fit.py``). With
several segments the training split's segment embeddings are in-sample (the
encoders trained on those clips; no fold encoders exist per segment), which is
why the epoch is chosen on the validation split; with one segment,
``core.train.train_adaptive`` puts the unimodal runs' out-of-fold embeddings in
the training rows.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from core.errors import ConfigError, DataError
from core.fusion import AdaptiveHead, adaptive_cost, annealed_tau
from core.io import write_tensors
from core.model import AdaptiveClassifier

#: clips prepared and encoded at a time when segment embeddings are cached
SEGMENT_BATCH = 32


def segment_cache_path(exp_dir: Path, unimodal_run: str, segments: int) -> Path:
    return Path(exp_dir) / "_cache" / f"{unimodal_run}-segments{int(segments)}.safetensors"


def check_segmentable(model: AdaptiveClassifier, modality: str, item: Any) -> None:
    """Run the modality's encoder on the segments of one item; an encoder that cannot take a segment (a
    TimeSformer built for a fixed frame count) is refused before anything trains."""
    try:
        with torch.no_grad():
            model.encode(modality, model.encoders[modality].prepare([item]))
    except (DataError, RuntimeError, ValueError) as exc:
        encoder = getattr(model.encoders[modality], "registry_name", type(model.encoders[modality]).__name__)
        message = getattr(exc, "problem", str(exc))
        raise ConfigError(f"the {encoder!r} encoder of {modality!r} cannot encode one of {model.segments} temporal "
                          f"segments of an item ({message})",
                          fix="give the modality an encoder that takes shorter inputs (video: c3d or slowfast; "
                              "audio-cnn; gru or tcn), or fewer [fusion.adaptive] segments") from exc


@torch.no_grad()
def segment_embeddings(model: AdaptiveClassifier, modality: str, items_of: Any, ids: Sequence[str],
                       progress: bool = False) -> torch.Tensor:
    """(N, S * (D + F)): every segment's embedding and summary of ``ids`` (``items_of(ids)`` -> raw items)."""
    encoder = model.encoders[modality]
    encoder.eval()
    out = []
    starts = range(0, len(ids), SEGMENT_BATCH)
    for start in tqdm(starts, desc=f"segments of {modality}", disable=not progress, leave=False):
        chunk = list(ids[start:start + SEGMENT_BATCH])
        out.append(model.encode(modality, encoder.prepare(items_of(chunk))).float())
    return torch.cat(out) if out else torch.zeros(0, model.head.input_dim(modality))


def cached_segment_embeddings(model: AdaptiveClassifier, modality: str, items_of: Any, ids: Sequence[str],
                              path: Path, key: str, progress: bool = False) -> torch.Tensor:
    """:func:`segment_embeddings`, read from ``path`` when it holds these ids under ``key`` (the unimodal
    run's fingerprint and the segment count), else computed and written there."""
    from safetensors import safe_open

    ids = [str(i) for i in ids]
    if path.is_file():
        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
                if meta.get("key") == key and json.loads(meta.get("ids", "[]")) == ids:
                    return fh.get_tensor("embeddings")
        except (OSError, ValueError, KeyError):  # unreadable or stale: recomputed below
            pass
    emb = segment_embeddings(model, modality, items_of, ids, progress)
    write_tensors(path, {"embeddings": emb}, metadata={"key": key, "ids": json.dumps(ids)})
    return emb


def _batches(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def adaptive_loss(logits: torch.Tensor, usage: torch.Tensor, y: torch.Tensor, weights: Sequence[float],
                  penalty: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean of CE + cost term, correct) of a batch (:func:`core.fusion.adaptive_cost`)."""
    correct = logits.argmax(1) == y
    cost = adaptive_cost(usage.float(), correct, weights, penalty)
    return F.cross_entropy(logits, y) + cost.mean(), correct


def warm_up_classifiers(head: AdaptiveHead, xs: list[torch.Tensor], y: torch.Tensor, cfg: dict[str, Any],
                        generator: torch.Generator) -> None:
    """``cfg["warmup_epochs"]`` epochs of cross-entropy with every modality running in every segment, training
    the classifiers only: they start from whole-item unimodal classifiers and first adapt to segment
    embeddings, so the policy then learns what the prediction can spare from a working recognition part."""
    epochs = int(cfg.get("warmup_epochs", 0) or 0)
    if epochs <= 0:
        return
    opt = torch.optim.AdamW(head.classifiers.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    n = len(y)
    head.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=generator)
        for b, s in enumerate(_batches(n, cfg["batch_size"])):
            if cfg.get("max_train_batches") and b >= cfg["max_train_batches"]:
                break
            idx = perm[s]
            seg, _, always = head.split([x[idx] for x in xs])
            every = torch.ones(len(idx), head.segments, len(head.policy))
            loss = F.cross_entropy(head.combine(seg, always, every), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    head.eval()


def fit_adaptive(head: AdaptiveHead, xs: dict[str, list[torch.Tensor]], y: dict[str, torch.Tensor],
                 weights: Sequence[float], penalty: float, tau: tuple[float, float], cfg: dict[str, Any], *,
                 seed: int = 0, desc: str = "adaptive", progress: bool = False) -> dict[str, Any]:
    """Train ``head`` (policy and classifiers) on ``xs["train"]``; restore the epoch of lowest validation loss.

    ``xs[split]``: the head's inputs per modality; ``weights``: lambda_k in policy order; ``penalty``: gamma;
    ``tau``: (start, end) temperatures; ``cfg``: ``[train.adaptive]`` (epochs, lr, batch_size, weight_decay,
    patience, max_train_batches, schedule, warmup_epochs: :func:`warm_up_classifiers` first, cost_ramp_epochs:
    the cost weights grow linearly from 0 over these first epochs). Returns the training record for the run's
    config.
    """
    n = len(y["train"])
    if n == 0 or len(y["val"]) == 0:
        raise DataError("an adaptive run needs training and validation samples",
                        fix="give the experiment a train and a val split")
    opt = torch.optim.AdamW(head.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    max_batches = cfg.get("max_train_batches")
    per_epoch = len(_batches(n, cfg["batch_size"]))
    per_epoch = min(per_epoch, max_batches) if max_batches else per_epoch
    sched = None
    if cfg.get("schedule", "constant") == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], pct_start=0.15,
                                                    total_steps=max(1, cfg["epochs"] * per_epoch))
    gen = torch.Generator().manual_seed(int(seed) % (2**63))
    warm_up_classifiers(head, xs["train"], y["train"], cfg, gen)
    best: tuple[float, int, Any, dict[str, float]] | None = None
    since, history = 0, []
    bar = tqdm(range(cfg["epochs"]), desc=desc, disable=not progress, leave=False)
    ramp = int(cfg.get("cost_ramp_epochs", 0) or 0)
    for epoch in bar:
        t = annealed_tau(epoch, cfg["epochs"], *tau)
        # the cost weights grow from 0 over the first ``ramp`` epochs: the policy first learns which segments
        # help the prediction, then the cost removes the ones it can spare
        scale = min(1.0, epoch / ramp) if ramp > 0 else 1.0
        train_weights = [w * scale for w in weights]
        head.train()
        perm = torch.randperm(n, generator=gen)
        for b, s in enumerate(_batches(n, cfg["batch_size"])):
            if max_batches and b >= max_batches:
                break
            idx = perm[s]
            logits, usage = head.sample([x[idx] for x in xs["train"]], t, gen)
            loss, _ = adaptive_loss(logits, usage, y["train"][idx], train_weights, penalty)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
        head.eval()
        with torch.no_grad():
            logits, decisions = head.forward_parts(xs["val"])
            val_loss, correct = adaptive_loss(logits, decisions, y["val"], weights, penalty)
        record = {"epoch": epoch, "tau": round(t, 4), "val_loss": round(float(val_loss), 5),
                  "val_top1": round(float(correct.float().mean()), 5),
                  "val_selection": {m: round(float(decisions[..., k].float().mean()), 5)
                                    for k, m in enumerate(head.policy)}}
        history.append(record)
        bar.set_postfix(val_top1=f"{record['val_top1']:.3f}", tau=f"{t:.2f}")
        if best is None or float(val_loss) < best[0]:
            best, since = (float(val_loss), epoch, copy.deepcopy(head.state_dict()), record), 0
        elif epoch >= ramp:  # patience counts once the cost weights are whole
            since += 1
            if since >= cfg["patience"]:
                break
    assert best is not None
    head.load_state_dict(best[2])
    head.eval()
    return {"best_epoch": best[1], "best": best[3], "epochs_run": len(history), "history": history}


def decisions_frame(ids: Sequence[str], decisions: torch.Tensor, policy: Sequence[str]) -> pd.DataFrame:
    """``decisions.parquet``: one row per item, segment and policy modality: ``id``, ``segment``,
    ``modality``, ``used`` (bool)."""
    d = decisions.to(torch.bool).cpu().numpy()
    n, s, k = d.shape
    if n != len(ids) or k != len(policy):
        raise ConfigError(f"decisions of shape {d.shape} for {len(ids)} ids and {len(policy)} policy modalities",
                          fix="pass one (segments x modalities) block per id")
    return pd.DataFrame({
        "id": np.repeat(np.asarray([str(i) for i in ids], dtype=object), s * k),
        "segment": np.tile(np.repeat(np.arange(s, dtype=np.int64), k), n),
        "modality": np.tile(np.asarray(list(policy), dtype=object), n * s),
        "used": d.reshape(-1),
    })


def selection_rates(decisions: torch.Tensor, policy: Sequence[str]) -> dict[str, float]:
    """The fraction of (item, segment) pairs in which each policy modality runs."""
    d = decisions.to(torch.float64)
    return {m: float(d[..., k].mean()) if d.numel() else 0.0 for k, m in enumerate(policy)}
