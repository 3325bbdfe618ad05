"""Two-stage training, as in the reference work.

Stage 1 trains one unimodal model per modality (encoder + classifier; a frozen
pretrained text encoder only gets its classifier trained) and caches every
sample's embedding. Stage 2 trains one head per (fusion method x modality
subset) on those cached embeddings, so comparing every method costs seconds
per method instead of retraining encoders. Each finished model is written as a
run bundle; a bundle whose fingerprint matches the experiment is not redone.
"""
from __future__ import annotations

import copy
import functools
import inspect
import json
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from core.bundle import is_complete, load_run, save_run
from core.adaptive import (cached_segment_embeddings, check_segmentable, decisions_frame, fit_adaptive,
                           reproduce_decisions, segment_cache_path, selection_rates)
from core.compute import COUNT_SAMPLES, count_gflops, expected_gflops, gflops_metrics
from core.data import Dataset, has_dataset, load_experiment_dataset, prepare_dataset
from core.errors import BundleError, ConfigError, cli_command
from core.encoders import ENCODERS
from core.experiment import EncoderSet, Experiment, early_fusable
from core.io import read_tensors, stable_hash, write_tensors
from core.kinds import get_kind
from core.kinds.video import clip_channels
from core.metrics import classification_metrics, predictions_frame
from core.fusion import is_classical, segment_bounds, segment_summary
from core.model import AdaptiveClassifier, ClassicalHead, MultimodalClassifier, build_encoder, build_head
from core.threads import torch_threads
from core.workers import in_processes

EMBED_BATCH = 64


def is_up_to_date(run_dir: Path, fingerprint: str) -> bool:
    """A complete, readable bundle trained with exactly these settings (so it is not redone)."""
    if not is_complete(run_dir):
        return False
    try:
        return load_run(run_dir).config.get("fingerprint") == fingerprint
    except BundleError:
        return False


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


# --------------------------------------------------------------------------- helpers

def _batches(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _index_inputs(inputs: dict[str, torch.Tensor], idx: Any) -> dict[str, torch.Tensor]:
    return {k: v[idx] for k, v in inputs.items()}


@torch.no_grad()
def encode_items(encoder: Any, items: Sequence[Any], batch_size: int = EMBED_BATCH,
                 encode: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None) -> torch.Tensor:
    """Embed raw items in fixed batches (the same batching at build and at reload); ``encode``: the model's
    encoding of the prepared inputs when it is not the encoder's (an adaptive run's segments)."""
    encoder.eval()
    run = encode or encoder
    out = [run(encoder.prepare(items[s])) for s in _batches(len(items), batch_size)]
    return torch.cat(out).float() if out else torch.zeros(0, encoder.out_dim)


def _fit_head(head: torch.nn.Module, params: list[torch.nn.Parameter], forward: Callable[[Any], torch.Tensor],
              train_idx: np.ndarray, y_train: torch.Tensor, val_eval: Callable[[], float], cfg: dict[str, Any],
              desc: str, progress: bool, extra_modules: Sequence[torch.nn.Module] = ()) -> tuple[int, float]:
    """Minibatch AdamW with early stopping on validation top-1; restores the best weights."""
    modules = [head, *extra_modules]
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    max_batches = cfg.get("max_train_batches")
    per_epoch = len(_batches(len(train_idx), cfg["batch_size"]))
    per_epoch = min(per_epoch, max_batches) if max_batches else per_epoch
    sched = None
    if cfg.get("schedule", "constant") == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=max(1, cfg["epochs"] * per_epoch),
                                                    pct_start=0.15)
    best, best_state, best_epoch, since = -1.0, None, 0, 0
    gen = torch.Generator().manual_seed(0)
    bar = tqdm(range(cfg["epochs"]), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        for m in modules:
            m.train()
        perm = train_idx[torch.randperm(len(train_idx), generator=gen).numpy()]
        for b, s in enumerate(_batches(len(perm), cfg["batch_size"])):
            if max_batches and b >= max_batches:
                break
            idx = perm[s]
            loss = F.cross_entropy(forward(idx), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
        for m in modules:
            m.eval()
        acc = val_eval()
        bar.set_postfix(val_top1=f"{acc:.3f}")
        if acc > best:
            best, best_epoch, since = acc, epoch, 0
            best_state = [copy.deepcopy(m.state_dict()) for m in modules]
        else:
            since += 1
            if since >= cfg["patience"]:
                break
    if best_state is not None:
        for m, s in zip(modules, best_state):
            m.load_state_dict(s)
    for m in modules:
        m.eval()
    return best_epoch, best


#: Inference timing: passes over the fixed batch (at least 2, at most ``TIMING_REPEATS``, until
#: ``TIMING_SECONDS`` are spent), on one torch thread, in CPU time.
TIMING_REPEATS = 5
TIMING_SECONDS = 2.0


def _timing_ms(model: MultimodalClassifier, items: dict[str, list[Any]], repeats: int = TIMING_REPEATS) -> float:
    """End-to-end inference (preprocessing + encoders + head) per sample: CPU milliseconds of
    the fastest of several passes over the fixed batch ``items``, on one thread, after a warm-up.

    Indicative only (it depends on the machine), but as stable as a timing on a shared machine
    gets: with the default threads and wall-clock time, other processes' load made the same
    encoders time 3-10x apart between runs. One thread does not spin waiting for busy cores;
    the process's CPU time does not count the time it waited for a core; the minimum of the
    repeats drops the passes that caches or the allocator slowed down.
    """
    n = len(next(iter(items.values())))
    best = float("inf")
    with torch_threads("encoder", threads=1), torch.no_grad():  # the same single thread for every run
        model(model.prepare({m: v[:4] for m, v in items.items()}))  # warm-up: lazy init, allocator
        start = time.perf_counter()
        for i in range(max(2, repeats)):
            t0 = time.process_time()  # every thread of the process (a tokenizer may use its own)
            model(model.prepare(items))
            best = min(best, time.process_time() - t0)
            if i >= 1 and time.perf_counter() - start > TIMING_SECONDS:
                break
    return 1000.0 * best / max(n, 1)


# --------------------------------------------------------------------------- stage 1

def fit_end_to_end(encoder: Any, head: torch.nn.Module, items_train: Sequence[Any], y_train: torch.Tensor,
                   items_val: Sequence[Any], y_val: torch.Tensor, cfg: dict[str, Any], desc: str,
                   progress: bool) -> None:
    """Train a trainable encoder and its classifier together (preprocessing statistics from ``items_train``): the
    stage-1 recipe of ``[train.unimodal]`` (``cfg``), the best validation epoch kept."""
    encoder.fit_preprocessing(items_train)
    x_train = encoder.training_inputs(encoder.prepare(items_train))
    x_val = encoder.training_inputs(encoder.prepare(items_val))

    def val_eval() -> float:
        with torch.no_grad():
            logits = torch.cat([head([encoder(_index_inputs(x_val, s))]) for s in _batches(len(y_val), EMBED_BATCH)])
        return float((logits.argmax(1) == y_val).float().mean())

    def forward(idx: Any) -> torch.Tensor:
        batch = _index_inputs(x_train, torch.as_tensor(idx))
        return head([encoder(encoder.augment(batch) if cfg.get("augment", False) else batch)])

    _fit_head(head, [*encoder.parameters(), *head.parameters()], forward, np.arange(len(y_train)), y_train,
              val_eval, cfg, desc, progress, [encoder])


def fold_assignment(ds: Dataset, ids: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """Fold (0..folds-1) of each training id: stratified by label, a group never split across folds (an emoji
    and its skin-tone variants share a fold, so none is embedded by an encoder that trained on its twin)."""
    from sklearn.model_selection import StratifiedGroupKFold

    rows = ds.rows(list(ids))
    labels, groups = rows["label"].to_numpy(), rows["group"].astype(str).to_numpy()
    if len(np.unique(groups)) < folds:
        raise ConfigError(f"oof_folds = {folds} needs at least {folds} groups in the train split",
                          fix="lower [train.unimodal] oof_folds (0 turns out-of-fold stage 2 off)")
    out = np.empty(len(ids), dtype=np.int64)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed % (2**32))
    with warnings.catch_warnings():  # "the least populated class has only n members": expected on small classes
        warnings.simplefilter("ignore", UserWarning)
        for j, (_, held) in enumerate(splitter.split(np.zeros(len(ids)), labels, groups)):
            out[held] = j
    return out


def affine_map(src: torch.Tensor, dst: torch.Tensor, ridge: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares affine map ``src -> dst`` (ridge ``ridge`` x the mean eigenvalue), in float64."""
    x, t = src.double(), dst.double()
    mx, mt = x.mean(0), t.mean(0)
    xc = x - mx
    gram = xc.T @ xc
    lam = ridge * float(gram.diagonal().mean().clamp_min(1e-12))
    w = torch.linalg.solve(gram + lam * torch.eye(gram.shape[0], dtype=gram.dtype), xc.T @ (t - mt))
    return w, mt - mx @ w


def apply_affine_map(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (x.double() @ w + b).float()


def out_of_fold_embeddings(spec: dict[str, Any], head_cfg: dict[str, Any], ds: Dataset, train_ids: Sequence[str],
                           items_train: Sequence[Any], y_train: torch.Tensor, items_val: Sequence[Any],
                           y_val: torch.Tensor, emb_train: torch.Tensor, emb_val: torch.Tensor, cfg: dict[str, Any],
                           folds: int, seed: int, name: str, progress: bool) -> tuple[torch.Tensor, dict[str, Any]]:
    """Out-of-fold train embeddings for stage 2, in the final encoder's embedding space.

    The final encoder trained on every training sample, so its train embeddings are in-sample (over-confident) and
    a fusion head fitted on them learns to trust whichever encoder overfits most. Here each fold's samples are
    embedded by an encoder trained with the same recipe on the other folds. Two encoders trained apart do not share
    an embedding space, so each fold encoder's embeddings are mapped into the final encoder's space by an affine
    least-squares (ridge) map fitted on the samples both trained on; how well the map carries over to unseen
    samples is measured on the validation split (R^2 against the final encoder's own validation embeddings), which
    neither encoder trained on. Returns the mapped out-of-fold train embeddings and a record for the run config.
    """
    fold = fold_assignment(ds, train_ids, folds, seed)
    out = torch.empty_like(emb_train)
    correct, r2 = 0, []
    sse_total = ((emb_val.double() - emb_val.double().mean(0)) ** 2).sum()
    for j in range(folds):
        held, keep = np.flatnonzero(fold == j), np.flatnonzero(fold != j)
        seed_everything(seed + 7919 * (j + 1) + int(stable_hash(name)[:6], 16))
        encoder, head = build_encoder(spec), build_head(head_cfg)
        fit_end_to_end(encoder, head, [items_train[i] for i in keep], y_train[keep], items_val, y_val, cfg,
                        f"{name} fold {j + 1}/{folds}", progress)
        encoder.eval()
        held_emb = encode_items(encoder, [items_train[i] for i in held])
        with torch.no_grad():
            correct += int((head([held_emb]).argmax(1) == y_train[held]).sum())
        w, b = affine_map(encode_items(encoder, [items_train[i] for i in keep]), emb_train[keep])
        out[held] = apply_affine_map(held_emb, w, b)
        sse = ((apply_affine_map(encode_items(encoder, items_val), w, b).double() - emb_val.double()) ** 2).sum()
        r2.append(float(1.0 - sse / sse_total.clamp_min(1e-12)))
    record = {"folds": int(folds), "top1": correct / max(1, len(train_ids)),
              "alignment_r2_val": [round(v, 4) for v in r2], "method": "k-fold encoders, ridge-aligned"}
    return out, record



def unimodal_run_name(enc_set: EncoderSet, modality: str) -> str:
    return f"{enc_set.tag + '-' if enc_set.tag else ''}unimodal-{modality}"


def fusion_run_name(enc_set: EncoderSet, fusion: str, subset: Sequence[str]) -> str:
    return f"{enc_set.tag + '-' if enc_set.tag else ''}{fusion}-{'+'.join(subset)}"


#: ``<method>-mdrop``: the twin of an intermediate fusion run trained with modality dropout (``[fusion]
#: dropout_runs``, probability ``[fusion] dropout_probability``); its run is ``<method>-mdrop-<subset>``.
MDROP_SUFFIX = "-mdrop"


def modality_dropout_probs(value: Any, subset: Sequence[str]) -> list[float] | None:
    """One modality-dropout probability per modality of ``subset`` from a number or a ``{modality: p}``
    table (a modality it does not name gets 0); None when every probability is 0 (no dropout)."""
    if value is None:
        return None
    probs = [float(value.get(m, 0.0)) for m in subset] if isinstance(value, dict) else [float(value)] * len(subset)
    return probs if any(p > 0 for p in probs) else None


def cache_path(exp_dir: Path, run_name: str) -> Path:
    return exp_dir / "_cache" / f"{run_name}.safetensors"


def load_cached_embeddings(exp_dir: Path, run_name: str) -> tuple[list[str], torch.Tensor]:
    path = cache_path(exp_dir, run_name)
    tensors = read_tensors(path, what="embedding cache")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        ids = json.loads(fh.metadata()["ids"])
    return ids, tensors["embeddings"]


def resolve_spec(spec: dict[str, Any], ds: Dataset, modality: str) -> dict[str, Any]:
    """Fill in the encoder arguments the data decides, as the modality's kind says (a video
    encoder's ``in_channels``: 3 for RGB, 1 for depth; a tabular encoder's ``in_features`` and
    column names), unless the experiment file gives them or the encoder does not take them."""
    given = dict(spec.get("kwargs", {}))
    first = ds.items(modality, ds.ids("train")[:1])[0]
    decided = get_kind(ds.modalities[modality]).encoder_kwargs(first, modality, ds.options.get(modality, {}))
    params = inspect.signature(ENCODERS.get(spec["name"])).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    extra = {k: v for k, v in decided.items() if k not in given and (takes_any or k in params)}
    return {"name": spec["name"], "kwargs": {**given, **extra}} if extra else spec


@torch_threads("encoder")
def train_unimodal(exp: Experiment, ds: Dataset, ds_info: dict[str, Any], enc_set: EncoderSet, modality: str,
                   root: Path, *, force: bool = False, progress: bool = True) -> Path:
    name = unimodal_run_name(enc_set, modality)
    exp_dir = root / exp.name
    run_dir = exp_dir / name
    cfg = exp.train["unimodal"]
    spec = resolve_spec(enc_set.specs[modality], ds, modality)
    fingerprint = stable_hash({"spec": spec, "train": cfg, "data": ds_info["fingerprint"], "seed": exp.seed,
                         "modality": modality})
    if not force and cache_path(exp_dir, name).is_file() and is_up_to_date(run_dir, fingerprint):
        return run_dir
    seed_everything(exp.seed + int(stable_hash(name)[:6], 16))
    t0 = time.perf_counter()
    encoder = build_encoder(spec)
    splits = ("train", "val", "test")
    ids = {s: ds.ids(s) for s in splits}
    y = {s: torch.as_tensor(ds.label_indices(ids[s])) for s in splits}
    items = {s: ds.items(modality, ids[s]) for s in splits}  # read every file once
    end_to_end = encoder.trainable and encoder.saves_weights
    hidden = 0 if end_to_end else int(cfg["hidden"])  # a frozen encoder gets an MLP on its embeddings
    head_cfg = {"type": "unimodal", "in_dims": [encoder.out_dim], "n_classes": len(ds.classes), "hidden": hidden,
                "dropout": cfg["dropout"]}
    head = build_head(head_cfg)
    if end_to_end:
        fit_end_to_end(encoder, head, items["train"], y["train"], items["val"], y["val"], cfg, name, progress)
    encoder.eval()
    # every sample's embedding, split by split in fixed batches (the stage-2 cache)
    emb = {s: encode_items(encoder, items[s]) for s in splits}
    oof: dict[str, Any] = {}
    folds = int(cfg.get("oof_folds", 0) or 0)
    if end_to_end and folds >= 2:  # stage 2 then trains on embeddings of encoders that never saw the sample
        emb["train"], oof = out_of_fold_embeddings(
            spec, head_cfg, ds, ids["train"], items["train"], y["train"], items["val"], y["val"], emb["train"],
            emb["val"], cfg, folds, exp.seed, name, progress)
    del items
    if not end_to_end:

        def val_eval() -> float:
            with torch.no_grad():
                return float((head([emb["val"]]).argmax(1) == y["val"]).float().mean())

        with torch_threads("head"):  # a small MLP on cached embeddings
            _fit_head(head, list(head.parameters()), lambda idx: head([emb["train"][idx]]),
                      np.arange(len(y["train"])), y["train"], val_eval, cfg, name, progress)
    train_seconds = time.perf_counter() - t0
    write_tensors(cache_path(exp_dir, name), {"embeddings": torch.cat([emb[s] for s in splits])},
                  metadata={"ids": json.dumps([i for s in splits for i in ids[s]])})
    model = MultimodalClassifier([modality], {modality: encoder}, head, ds.classes).eval()
    config = {
        "out_of_fold": oof or None,
        "experiment": exp.name, "run": name, "strategy": "unimodal", "fusion": "unimodal",
        "modalities": [modality], "encoders": {modality: encoder.spec()}, "head": head_cfg,
        "classes": ds.classes, "seed": exp.seed, "encoder_set": enc_set.tag, "fingerprint": fingerprint,
        "train": cfg, "dataset": {"name": ds.name, "fingerprint": ds_info["fingerprint"]},
    }
    return _finish_run(run_dir, config, model, ds, {modality: emb["test"]}, ids["test"], y["test"],
                       train_seconds, head_params=sum(p.numel() for p in head.parameters()))


def _finish_run(run_dir: Path, config: dict[str, Any], model: MultimodalClassifier, ds: Dataset,
                test_emb: dict[str, torch.Tensor], test_ids: list[str], y_test: torch.Tensor,
                train_seconds: float, head_params: int, selection_rates: dict[str, float] | None = None,
                tables: dict[str, Any] | None = None) -> Path:
    """Predict the test split from its embeddings, time and count the model, write the bundle. An adaptive
    run passes its parts' ``selection_rates`` (its GFLOPs are then the expected cost, core.compute) and
    its ``decisions.parquet`` in ``tables``."""
    with torch.no_grad():
        embs = [test_emb[m] for m in model.modalities] if model.factorizable else [test_emb["joint"]]
        logits = model.forward_embeddings(embs)
        fused = model.fuse(embs)
    probs = torch.softmax(logits.float(), -1).numpy()
    y = y_test.numpy()
    preds = predictions_frame(test_ids, y, probs, ds.classes)
    metrics = classification_metrics(y, probs, ds.classes)
    sample_ids = test_ids[:COUNT_SAMPLES]  # timed and counted on the same samples
    items = {m: ds.items(m, sample_ids) for m in model.modalities}
    metrics.update({
        "n_params": model.n_params(), "n_params_head": int(head_params), "train_seconds": float(train_seconds),
        "inference_ms_per_sample": _timing_ms(model, items),
    })
    if sample_ids:  # FLOPs per sample, by part, on the timed samples (core.compute)
        count = count_gflops(model, items)
        metrics.update(gflops_metrics(count) if selection_rates is None else
                       expected_gflops(count["gflops_by_part"], selection_rates, count.get("uncounted", [])))
    embeddings = {m: test_emb[m] for m in model.modalities if m in test_emb}
    embeddings["fused"] = fused
    return save_run(run_dir, config, model.owned_state_dict(), preds, embeddings, metrics, tables=tables)


# --------------------------------------------------------------------------- stage 2

def _fit_classical_head(fusion: str, subset: Sequence[str], uni: dict[str, Any],
                        emb: dict[str, dict[str, torch.Tensor]], y: dict[str, torch.Tensor], in_dims: list[int],
                        n_classes: int, cfg: dict[str, Any], seed: int) -> ClassicalHead:
    """A classical head fitted by scikit-learn (core.fusion.ClassicalClassifier).

    ``early`` and ``intermediate`` fit on the training split's cached embeddings (out of fold where stage 1 made
    them so), an SVM's temperature on the validation split. ``late`` (stacking) fits on the validation split's
    unimodal probabilities, as ``late-weighted`` fits its weights: the unimodal classifiers never trained on it
    (stage 1 only stopped early on it), whereas their training-split probabilities are in-sample (a frozen
    encoder's classifier trained on exactly those embeddings) and would teach the stacker to trust whichever
    modality overfits most; an SVM's temperature then comes from 5-fold cross-fitted decisions on that split.
    """
    hidden = [uni[m].config["head"].get("hidden", 0) for m in subset]
    head = build_head({"type": "classical", "in_dims": in_dims, "n_classes": n_classes, "fusion": fusion,
                       "settings": dict(cfg), "hidden": hidden})
    if head.aggregation == "late":
        for voter, m in zip(head.voters, subset):
            voter.load_state_dict(uni[m].model().head.classifier.state_dict())
        head.fit([emb["val"][m] for m in subset], y["val"], seed=seed)
    else:
        head.fit([emb["train"][m] for m in subset], y["train"], [emb["val"][m] for m in subset], y["val"],
                 seed=seed)
    return head.eval()


def _fusion_settings(exp: Experiment, enc_set: EncoderSet, fusion: str, subset: Sequence[str], root: Path
                     ) -> tuple[str, dict[str, Any], dict[str, Any], str]:
    """(method, training settings, unimodal runs, fingerprint) of a stage-2 run."""
    exp_dir = root / exp.name
    method = fusion[:-len(MDROP_SUFFIX)] if fusion.endswith(MDROP_SUFFIX) else fusion
    cfg = exp.train["classical"] if is_classical(method) else exp.train["fusion"]
    if method != fusion:  # the modality-dropout twin of an intermediate run
        cfg = {**cfg, "modality_dropout": exp.dropout_probability}
    uni = {m: load_run(exp_dir / unimodal_run_name(enc_set, m)) for m in subset}
    fingerprint = stable_hash({"fusion": fusion, "subset": list(subset), "train": cfg, "seed": exp.seed,
                               "unimodal": {m: uni[m].config["fingerprint"] for m in subset}})
    return method, cfg, uni, fingerprint


@torch_threads("head")
def train_fusion(exp: Experiment, ds: Dataset, ds_info: dict[str, Any], enc_set: EncoderSet, fusion: str,
                 subset: Sequence[str], root: Path, *, force: bool = False, progress: bool = True) -> Path:
    name = fusion_run_name(enc_set, fusion, subset)
    exp_dir = root / exp.name
    run_dir = exp_dir / name
    method, cfg, uni, fingerprint = _fusion_settings(exp, enc_set, fusion, subset, root)
    if not force and is_up_to_date(run_dir, fingerprint):
        return run_dir
    seed_everything(exp.seed + int(stable_hash(name)[:6], 16))
    t0 = time.perf_counter()
    ids = {s: ds.ids(s) for s in ("train", "val", "test")}
    y = {s: torch.as_tensor(ds.label_indices(ids[s])) for s in ids}
    emb: dict[str, dict[str, torch.Tensor]] = {s: {} for s in ids}
    for m in subset:
        cached_ids, cached = load_cached_embeddings(exp_dir, unimodal_run_name(enc_set, m))
        pos = {i: k for k, i in enumerate(cached_ids)}
        for s in ids:
            try:
                emb[s][m] = cached[[pos[i] for i in ids[s]]]
            except KeyError as exc:
                raise BundleError(f"embedding cache of {m!r} lacks sample {exc}",
                                  fix=f"rebuild with `{cli_command()} build {exp.name} --force`") from exc
    in_dims = [emb["train"][m].shape[1] for m in subset]
    n_classes = len(ds.classes)
    strategy = "classical" if is_classical(method) else "late" if method.startswith("late-") else "intermediate"
    drop_probs = modality_dropout_probs(cfg.get("modality_dropout"), subset) if strategy == "intermediate" else None
    if strategy == "classical":
        head = _fit_classical_head(method, subset, uni, emb, y, in_dims, n_classes, cfg,
                                   seed=exp.seed + int(stable_hash(name)[:6], 16))
        head_cfg = head.config()
    elif strategy == "late":
        hidden = [uni[m].config["head"].get("hidden", 0) for m in subset]
        head_cfg = {"type": "late", "in_dims": in_dims, "n_classes": n_classes, "fusion": method, "hidden": hidden}
        head = build_head(head_cfg)
        for voter, m in zip(head.voters, subset):
            voter.load_state_dict(uni[m].model().head.classifier.state_dict())
            voter.requires_grad_(False)
        if head.learn_weights:  # vote weights are fitted on validation data the voters never trained on
            xs_val = [emb["val"][m] for m in subset]
            opt = torch.optim.Adam([head.weight_logits], lr=0.05)
            for _ in range(200):
                loss = F.cross_entropy(head(xs_val), y["val"])
                opt.zero_grad()
                loss.backward()
                opt.step()
        head.eval()
    else:
        head_cfg = {"type": "intermediate", "in_dims": in_dims, "n_classes": n_classes, "fusion": method,
                    "dim": int(cfg["dim"]), "dropout": float(cfg["dropout"])}
        if drop_probs:  # learned missing-modality embeddings, started at the training means
            head_cfg["modality_dropout"] = drop_probs
        head = build_head(head_cfg)
        head.init_missing([emb["train"][m].mean(0) for m in subset])
        xs_train = [emb["train"][m] for m in subset]
        xs_val = [emb["val"][m] for m in subset]

        def val_eval() -> float:
            with torch.no_grad():
                return float((head(xs_val).argmax(1) == y["val"]).float().mean())

        _fit_head(head, list(head.parameters()), lambda idx: head([x[idx] for x in xs_train]),
                  np.arange(len(y["train"])), y["train"], val_eval, cfg, name, progress)
    train_seconds = time.perf_counter() - t0
    encoders = {m: uni[m].model().encoders[m] for m in subset}
    model = MultimodalClassifier(list(subset), encoders, head, ds.classes).eval()
    config = {
        "experiment": exp.name, "run": name, "strategy": strategy, "fusion": method, "modalities": list(subset),
        "encoders": {m: uni[m].config["encoders"][m] for m in subset}, "head": head_cfg, "classes": ds.classes,
        "seed": exp.seed, "encoder_set": enc_set.tag, "fingerprint": fingerprint, "train": cfg,
        "dataset": {"name": ds.name, "fingerprint": ds_info["fingerprint"]},
        "unimodal_runs": {m: uni[m].name for m in subset},
    }
    if drop_probs:
        config["modality_dropout"] = dict(zip(subset, drop_probs))
    return _finish_run(run_dir, config, model, ds, emb["test"], ids["test"], y["test"], train_seconds,
                       head_params=sum(p.numel() for p in head.parameters()))


def early_run_name(enc_set: EncoderSet, subset: Sequence[str]) -> str:
    return f"{enc_set.tag + '-' if enc_set.tag else ''}early-{'+'.join(subset)}"


def _early_depth_kwargs(enc_set: EncoderSet, subset: Sequence[str], channels: dict[str, int]) -> dict[str, Any]:
    """The stacked clip's ``depth_input``/``depth_channel``: those of the first modality whose encoder reads its
    depth channel other than as metres, moved to where that modality's channels sit in the stack (RGB then
    depth: channel 3). Empty when every modality reads metres."""
    offset = 0
    for m in subset:
        kwargs = enc_set.specs[m].get("kwargs", {})
        mode = kwargs.get("depth_input", "metres")
        if mode != "metres":
            return {"depth_input": mode, "depth_channel": offset + int(kwargs.get("depth_channel", -1)) % channels[m]}
        offset += channels[m]
    return {}


@torch_threads("encoder")
def train_early(exp: Experiment, ds: Dataset, ds_info: dict[str, Any], enc_set: EncoderSet, subset: Sequence[str],
                root: Path, *, force: bool = False, progress: bool = True) -> Path:
    """Early fusion of video modalities: clips stacked on the channel axis into one encoder."""
    from core.model import EarlyFusionClassifier, stack_channels

    name = early_run_name(enc_set, subset)
    run_dir = root / exp.name / name
    cfg = exp.train["unimodal"]
    base = enc_set.specs[subset[0]]
    fingerprint = stable_hash({"early": base, "subset": list(subset), "train": cfg, "data": ds_info["fingerprint"],
                         "seed": exp.seed, "depth": {m: enc_set.specs[m].get("kwargs", {}).get("depth_input", "metres")
                                                   for m in subset}})
    if not force and is_up_to_date(run_dir, fingerprint):
        return run_dir
    seed_everything(exp.seed + int(stable_hash(name)[:6], 16))
    t0 = time.perf_counter()
    ids = {s: ds.ids(s) for s in ("train", "val", "test")}
    y = {s: torch.as_tensor(ds.label_indices(ids[s])) for s in ids}
    raw = {s: {m: ds.items(m, ids[s]) for m in subset} for s in ("train", "val")}
    channels = {m: clip_channels(raw["train"][m][0]) for m in subset}  # early fusion stacks video clips
    joint_spec = {"name": base["name"], "kwargs": {**base["kwargs"], "in_channels": int(sum(channels.values())),
                                                   **_early_depth_kwargs(enc_set, subset, channels)}}
    joint = build_encoder(joint_spec)
    train_items = stack_channels([raw["train"][m] for m in subset])
    joint.fit_preprocessing(train_items)
    head_cfg = {"type": "unimodal", "in_dims": [joint.out_dim], "n_classes": len(ds.classes), "hidden": 0,
                "dropout": cfg["dropout"]}
    head = build_head(head_cfg)
    x_train = joint.training_inputs(joint.prepare(train_items))
    x_val = joint.training_inputs(joint.prepare(stack_channels([raw["val"][m] for m in subset])))
    del train_items, raw

    def val_eval() -> float:
        with torch.no_grad():
            logits = torch.cat([head([joint(_index_inputs(x_val, s))]) for s in _batches(len(y["val"]), EMBED_BATCH)])
        return float((logits.argmax(1) == y["val"]).float().mean())

    _fit_head(head, [*joint.parameters(), *head.parameters()],
              lambda idx: head([joint(_index_inputs(x_train, torch.as_tensor(idx)))]),
              np.arange(len(y["train"])), y["train"], val_eval, cfg, name, progress, [joint])
    del x_train, x_val
    model = EarlyFusionClassifier(list(subset), joint, head, ds.classes, channels).eval()
    model.sync_views()
    test_joint = _predict_joint(model, ds, ids["test"])
    config = {
        "experiment": exp.name, "run": name, "strategy": "early", "fusion": "early", "modalities": list(subset),
        "encoders": {m: {"name": base["name"], "kwargs": {**base["kwargs"], "in_channels": channels[m]}}
                     for m in subset},
        "early": {"joint": joint.spec(), "channels": channels}, "head": head_cfg, "classes": ds.classes,
        "seed": exp.seed, "encoder_set": enc_set.tag, "fingerprint": fingerprint, "train": cfg,
        "dataset": {"name": ds.name, "fingerprint": ds_info["fingerprint"]},
    }
    return _finish_run(run_dir, config, model, ds, {"joint": test_joint}, ids["test"], y["test"],
                       time.perf_counter() - t0, head_params=sum(p.numel() for p in head.parameters()))


@torch.no_grad()
def _predict_joint(model: Any, ds: Dataset, ids: Sequence[str], batch_size: int = EMBED_BATCH) -> torch.Tensor:
    out = []
    for s in _batches(len(ids), batch_size):
        chunk = list(ids[s])
        out.append(model.joint_embedding(model.prepare({m: ds.items(m, chunk) for m in model.modalities})))
    return torch.cat(out).float()


# --------------------------------------------------------------------------- adaptive runs

#: the fusion label of adaptive runs (core.fusion.AdaptiveHead); ``adaptive-x<f>`` scales every cost weight by f
ADAPTIVE = "adaptive"


def adaptive_label(scale: float) -> str:
    """``adaptive`` for the cost weights as given, ``adaptive-x<scale>`` for them scaled (``[fusion.adaptive]
    cost_scales``)."""
    return ADAPTIVE if float(scale) == 1.0 else f"{ADAPTIVE}-x{float(scale):g}"


def adaptive_scale(label: str) -> float:
    return 1.0 if label == ADAPTIVE else float(label[len(ADAPTIVE) + 2:])


@torch_threads("head")
def train_adaptive(exp: Experiment, ds: Dataset, ds_info: dict[str, Any], enc_set: EncoderSet, fusion: str,
                   root: Path, *, force: bool = False, progress: bool = True) -> Path:
    """An adaptive run (``[fusion.adaptive]``, :class:`core.model.AdaptiveClassifier`): the unimodal runs'
    encoders, frozen, on each temporal segment; the policy and the segment classifiers (initialised from the
    unimodal classifiers) trained on cached segment embeddings (:mod:`core.adaptive`)."""
    settings = exp.adaptive or {}
    modalities, policy = list(settings["modalities"]), list(settings["policy"])
    name = fusion_run_name(enc_set, fusion, modalities)
    exp_dir = root / exp.name
    run_dir = exp_dir / name
    cfg, scale, segments = exp.train["adaptive"], adaptive_scale(fusion), int(settings["segments"])
    uni = {m: load_run(exp_dir / unimodal_run_name(enc_set, m)) for m in modalities}
    adaptive_cfg = {"policy": policy, "always_on": list(settings["always_on"]), "segments": segments,
                    "cost": {m: float(settings["cost"][m]) * scale for m in policy}, "cost_scale": scale,
                    "penalty": float(settings["penalty"]), "tau_start": float(settings["tau_start"]),
                    "tau_end": float(settings["tau_end"])}
    # One segment is the whole item, so its embedding is the unimodal run's: train on that run's out-of-fold
    # training embeddings, as every other fusion head does (in-sample ones teach the policy and the classifiers
    # to trust whichever encoder overfits most).
    oof = {m: segments == 1 and bool(uni[m].config.get("out_of_fold")) for m in policy}
    fingerprint = stable_hash({"adaptive": adaptive_cfg, "train": cfg, "seed": exp.seed,
                               "unimodal": {m: uni[m].config["fingerprint"] for m in modalities},
                               "out_of_fold": oof})
    if not force and is_up_to_date(run_dir, fingerprint):
        return run_dir
    seed = exp.seed + int(stable_hash(name)[:6], 16)
    seed_everything(seed)
    t0 = time.perf_counter()
    ids = {s: ds.ids(s) for s in ("train", "val", "test")}
    y = {s: torch.as_tensor(ds.label_indices(ids[s])) for s in ids}
    encoders = {m: uni[m].model().encoders[m] for m in modalities}
    kinds = {m: get_kind(ds.modalities[m]) for m in policy}
    segment_inputs = {m: {"key": kinds[m].input_keys[0], "axis": int(kinds[m].segment_axis)} for m in policy}
    first = {m: ds.items(m, ids["train"][:1]) for m in policy}
    summary_dims = {}
    for m in policy:  # the summary's size: the same for every segment (segment_bounds refuses too many segments)
        x = encoders[m].prepare(first[m])[segment_inputs[m]["key"]]
        axis = segment_inputs[m]["axis"]
        start, end = segment_bounds(int(x.shape[axis]), segments)[0]
        summary_dims[m] = int(segment_summary(x.narrow(axis, start, end - start), axis).shape[1])
    hidden = [uni[m].config["head"].get("hidden", 0) for m in modalities]
    head = build_head({"type": ADAPTIVE, "in_dims": [encoders[m].out_dim for m in modalities], "dim": int(cfg["dim"]),
                       "n_classes": len(ds.classes), "modalities": modalities, "policy": policy, "segments": segments,
                       "summary_dims": summary_dims, "hidden": hidden, "dropout": float(cfg["dropout"])})
    for m in modalities:  # recognition classifiers start as the unimodal runs'
        head.classifiers[m].load_state_dict(uni[m].model().head.classifier.state_dict())
    model = AdaptiveClassifier(modalities, encoders, head, ds.classes, segment_inputs).eval()
    for m in policy:
        check_segmentable(model, m, first[m][0])
    every = [i for s in ("train", "val", "test") for i in ids[s]]
    emb: dict[str, dict[str, torch.Tensor]] = {s: {} for s in ids}
    for m in modalities:
        if m in policy:
            key = stable_hash({"unimodal": uni[m].config["fingerprint"], "segments": segments})
            cached = cached_segment_embeddings(model, m, lambda chunk, m=m: ds.items(m, chunk), every,
                                               segment_cache_path(exp_dir, uni[m].name, segments), key, progress)
            cached_ids = every
            if oof[m]:
                cached = _out_of_fold_segments(cached, *load_cached_embeddings(exp_dir, uni[m].name), every,
                                               ids["train"], m, exp.name)
        else:  # always on: the unimodal run's cached (out-of-fold) embeddings
            cached_ids, cached = load_cached_embeddings(exp_dir, uni[m].name)
        pos = {i: k for k, i in enumerate(cached_ids)}
        for s in ids:
            try:
                emb[s][m] = cached[[pos[i] for i in ids[s]]]
            except KeyError as exc:
                raise BundleError(f"embedding cache of {m!r} lacks sample {exc}",
                                  fix=f"rebuild with `{cli_command()} build {exp.name} --force`") from exc
    xs = {s: [emb[s][m] for m in modalities] for s in ids}
    training = fit_adaptive(head, xs, y, [adaptive_cfg["cost"][m] for m in policy], adaptive_cfg["penalty"],
                            (adaptive_cfg["tau_start"], adaptive_cfg["tau_end"]), cfg, seed=seed, desc=name,
                            progress=progress)
    with torch.no_grad():
        _, decisions = head.forward_parts(xs["test"])
    rates = selection_rates(decisions, policy)
    config = {
        "experiment": exp.name, "run": name, "strategy": ADAPTIVE, "fusion": ADAPTIVE, "modalities": modalities,
        "encoders": {m: uni[m].config["encoders"][m] for m in modalities}, "head": head.config(),
        "classes": ds.classes, "seed": exp.seed, "encoder_set": enc_set.tag, "fingerprint": fingerprint, "train": cfg,
        "dataset": {"name": ds.name, "fingerprint": ds_info["fingerprint"]},
        "unimodal_runs": {m: uni[m].name for m in modalities},
        "adaptive": {**adaptive_cfg, "segment_inputs": segment_inputs, "training": training,
                     "train_embeddings": {m: "out-of-fold" if oof[m] else "in-sample" for m in policy}},
    }
    return _finish_run(run_dir, config, model, ds, emb["test"], ids["test"], y["test"], time.perf_counter() - t0,
                       head_params=sum(p.numel() for p in head.parameters()), selection_rates=rates,
                       tables={"decisions.parquet": decisions_frame(ids["test"], decisions, policy)})


def _out_of_fold_segments(segment_table: torch.Tensor, stage2_ids: Sequence[str], stage2: torch.Tensor,
                          table_ids: Sequence[str], train_ids: Sequence[str], modality: str,
                          experiment: str) -> torch.Tensor:
    """A one-segment table ``[embedding, summary]`` whose training rows' embeddings are replaced by the unimodal
    run's stage-2 (out-of-fold) ones; validation and test rows, and every summary, are kept."""
    out = segment_table.clone()
    pos = {i: k for k, i in enumerate(stage2_ids)}
    row = {i: k for k, i in enumerate(table_ids)}
    dim = stage2.shape[1]
    try:
        out[[row[i] for i in train_ids], :dim] = stage2[[pos[i] for i in train_ids]].to(out.dtype)
    except KeyError as exc:
        raise BundleError(f"embedding cache of {modality!r} lacks sample {exc}",
                          fix=f"rebuild with `{cli_command()} build {experiment} --force`") from exc
    return out


# --------------------------------------------------------------------------- whole experiment

def planned_runs(exp: Experiment, full: bool = False) -> list[tuple[str, EncoderSet, str, list[str]]]:
    """(run name, encoder set, fusion or 'unimodal'/'early', modalities) in build order."""
    plan = []
    for es in exp.selected_sets(full):
        for m in exp.modalities:
            plan.append((unimodal_run_name(es, m), es, "unimodal", [m]))
        for i, subset in enumerate(exp.subsets):
            if exp.early and all(early_fusable(exp.modalities[m]) for m in subset):
                plan.append((early_run_name(es, subset), es, "early", subset))
            methods = [*exp.fusion_methods, *exp.late_methods, *exp.classical]
            if i and exp.subset_methods is not None:
                methods = [f for f in methods if f in exp.subset_methods]
            for f in methods:
                plan.append((fusion_run_name(es, f, subset), es, f, subset))
                if i == 0 and f in exp.dropout_runs:  # its modality-dropout twin, over the first subset
                    twin = f + MDROP_SUFFIX
                    plan.append((fusion_run_name(es, twin, subset), es, twin, subset))
        if exp.adaptive:  # one adaptive run per factor on the cost weights
            mods = list(exp.adaptive["modalities"])
            for scale in exp.adaptive["cost_scales"]:
                plan.append((fusion_run_name(es, adaptive_label(scale), mods), es, adaptive_label(scale), mods))
    return plan


def train_experiment(exp: Experiment, root: Path, *, force: bool = False, progress: bool = True,
                     only: Sequence[str] | None = None, stage: str | None = None, full: bool = False,
                     force_deps: bool = False, workers: int | None = None) -> list[Path]:
    """Train every planned run that is missing or out of date; returns the run directories.

    Stage-2 heads (intermediate, late, classical) train in ``workers`` processes after the encoders
    (:func:`head_workers`: every core when there are enough of them).

    ``only`` names runs to train, together with the unimodal runs they depend on. ``force``
    retrains the named runs (every planned run when ``only`` is not given) even if up to date;
    their dependencies are still trained only when missing or out of date, unless
    ``force_deps`` (which implies ``force``).
    """
    exp_dir = root / exp.name
    if not has_dataset(exp_dir):
        prepare_dataset(exp, root, progress=progress)
    ds, info = load_experiment_dataset(exp_dir)
    plan = planned_runs(exp, full=full or bool(only))
    if only:
        unknown = [o for o in only if o not in {p[0] for p in plan}]
        if unknown:
            raise ConfigError(f"unknown run(s) {unknown}", fix=f"use names from: {', '.join(p[0] for p in plan)}")
    if only:
        needed = set(only)
        for name, es, fusion, subset in plan:
            if name in only and fusion not in ("unimodal", "early"):
                needed |= {unimodal_run_name(es, m) for m in subset}
        plan = [p for p in plan if p[0] in needed]
    if stage:
        plan = [p for p in plan if (p[2] == "unimodal") == (stage == "unimodal")]
    force = force or force_deps
    forced = {p[0] for p in plan} if force and (not only or force_deps) else set(only or ()) if force else set()
    done: dict[str, Path] = {}
    bar = tqdm(total=len(plan), desc=f"training {exp.name}", disable=not progress)
    heads = [p for p in plan if p[2] not in ("unimodal", "early") and not p[2].startswith(ADAPTIVE)]
    n_workers = head_workers(len(heads), workers)
    try:
        for name, es, fusion, subset in plan:
            again = name in forced
            if n_workers > 1 and (name, es, fusion, subset) in heads:
                continue  # stage-2 heads: in worker processes once every encoder is trained (below)
            bar.set_postfix(run=name)
            if fusion == "unimodal":
                done[name] = train_unimodal(exp, ds, info, es, subset[0], root, force=again, progress=progress)
            elif fusion == "early":
                done[name] = train_early(exp, ds, info, es, subset, root, force=again, progress=progress)
            elif fusion.startswith(ADAPTIVE):
                done[name] = train_adaptive(exp, ds, info, es, fusion, root, force=again, progress=progress)
            else:
                done[name] = train_fusion(exp, ds, info, es, fusion, subset, root, force=again, progress=progress)
            bar.update(1)
        if n_workers > 1:
            jobs = []
            for name, es, fusion, subset in heads:  # those up to date are not sent to a worker
                if name not in forced and is_up_to_date(root / exp.name / name,
                                                        _fusion_settings(exp, es, fusion, subset, root)[3]):
                    done[name] = root / exp.name / name
                    bar.update(1)
                else:
                    jobs.append((name, (exp, ds, info, es, fusion, subset, root, name in forced)))
            for name, run_dir in in_processes(_train_fusion_job, jobs, head_workers(len(jobs), workers)):
                bar.set_postfix(run=name)
                done[name] = run_dir
                bar.update(1)
    finally:
        bar.close()
    return [done[p[0]] for p in plan]


#: at least this many stage-2 heads to train before worker processes pay for their start-up (seconds each)
PARALLEL_MIN_HEADS = 8


def head_workers(n_heads: int, workers: int | None = None) -> int:
    """Processes training ``n_heads`` stage-2 heads at once (:func:`core.workers.process_workers`): by default
    every core when heads train on one torch thread (the ``head`` job's default) and there are at least
    :data:`PARALLEL_MIN_HEADS` of them, so the other cores do not idle; else 1."""
    from core.threads import job_threads
    from core.workers import process_workers

    if workers is None and job_threads("head") != 1:
        return 1
    return process_workers(n_heads, workers, min_jobs=PARALLEL_MIN_HEADS)


def _train_fusion_job(exp: Experiment, ds: Dataset, info: dict[str, Any], es: EncoderSet, fusion: str,
                      subset: Sequence[str], root: Path, force: bool) -> Path:
    return train_fusion(exp, ds, info, es, fusion, subset, root, force=force, progress=False)


@torch.no_grad()
def reproduce_predictions(run_dir: Path, batch_size: int = EMBED_BATCH) -> dict[str, Any]:
    """Rebuild a bundle's model from its files, predict its test samples from raw data, compare."""
    run = load_run(run_dir)
    model = run.model()
    ds, _ = load_experiment_dataset(run_dir.parent)
    ids = run.predictions["id"].astype(str).tolist()
    if model.factorizable:
        embs = [encode_items(model.encoders[m], ds.items(m, ids), batch_size, encode=functools.partial(model.encode, m))
                for m in model.modalities]
    else:
        embs = [_predict_joint(model, ds, ids, batch_size)]
    probs = torch.softmax(model.forward_embeddings(embs).float(), -1).numpy()
    stored = run.predictions
    k = len([c for c in stored.columns if c.startswith("top") and c.endswith("_label")])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    cls = np.asarray(run.classes, dtype=object)
    same_topk = all((cls[order[:, j]] == stored[f"top{j + 1}_label"].to_numpy()).all() for j in range(k))
    stored_probs = np.stack([stored[f"top{j + 1}_prob"].to_numpy() for j in range(k)], 1)
    new_probs = np.take_along_axis(probs, order, 1)
    report = {"run": run.name, "n": len(ids), "same_topk_labels": bool(same_topk),
              "max_abs_prob_diff": float(np.abs(new_probs - stored_probs).max()) if len(ids) else 0.0,
              "top1": float((order[:, 0] == ds.label_indices(ids)).mean()) if len(ids) else float("nan")}
    if run.config.get("strategy") == ADAPTIVE:  # and the policy's decisions, from the raw items again
        report.update(reproduce_decisions(run, ds.items, batch_size))
    return report
