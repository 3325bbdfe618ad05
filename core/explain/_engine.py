"""The MM-SHAP engine: one sample of a multimodal classifier as a factorised game.

Players are the features of every explained modality (``docs/EXPLAIN.md``):

* text: every non-special token of each text modality (special tokens count
  towards the grid rule but never change, as in :class:`TextTokenMasker`);
* image: a ``p x p`` patch grid per image modality. ``grid=None`` (default,
  ``"mean"``) applies the reference rule ``p = ceil(sqrt(n_tokens))`` to the
  *mean* token count (special tokens included) of the text modalities, so every
  modality gets about as many players as one text; ``grid="total"`` applies it
  to the summed count of all texts (identical to the reference with one text);
  an integer fixes ``p``. Without text the grid is :data:`DEFAULT_IMAGE_GRID`;
* video: a ``video_grid x video_grid`` x ``video_segments`` tube grid, the same
  for every video modality (RGB and depth shares stay comparable);
* features: every entry of the vector.

Masked tokens become the pad id, masked patches and tubes 0 (the dataset mean
in normalised pixel space), masked feature entries 0.

The game is factorised: a coalition mask splits into one sub-mask per
modality; each modality's distinct sub-masks are encoded once (batched, cached
by the sub-mask's bytes) and every coalition then costs one pass of the cheap
fusion head (``model.forward_embeddings``) over cached embeddings. A model that
cannot be factorised (no ``encode``/``forward_embeddings``, ``factorisable`` or
``factorizable = False``, or an ``early`` run) is played unfactorised: every coalition runs the
whole model on the masked inputs, in batches.

Methods (``method=``), on top of :func:`core.explain.shapley_values`:

``"exact"``
    All ``2^n`` coalitions. Factorised this is "exact by tables": every
    modality's ``2^{n_m}`` sub-masks are encoded once and the head runs over the
    product, ``sum_m 2^{n_m}`` encoder rows and ``2^n`` head rows.
``"permutation"``
    The reference MM-SHAP estimator (``n_permutations`` antithetic walks,
    seeded exactly as ``shap.PermutationExplainer(..., seed=seed)``). The
    factorised cache changes its cost, never its values.
``"kernel"``
    Paired KernelSHAP with leverage sampling (see ``_shapley``).
``"recombined"``
    Permutation walks recombined from a few cached orders per modality. Each
    modality ``m`` gets ``P_m`` random orders of its features (their prefixes
    and suffixes are all its encoder ever sees) or, when that would visit as
    many sub-masks as it has, is tabulated whole and walked in fresh orders.
    Each walk picks one order per modality and a uniformly random interleaving
    of the modalities, so it is a uniformly random permutation: the estimate is
    unbiased, antithetic (forward and backward walk) and exactly efficient,
    while the encoders cost what ``P_m`` walks cost and every further walk only
    one head pass per step. The budget is the reference's counted FLOPs
    (``n_permutations (2n + 1)`` whole-model passes) divided by
    :data:`RECOMBINED_BUDGET_DIVISOR`, split between orders and walks in
    inverse proportion to the square root of their costs, so cheap encoders get
    more orders (:func:`plan_recombined`).
    Measured on the emoji MultConcat run against exact values: about half the
    reference's share error on games of up to 20 players, about equal on 31-33
    players, at 30-70x less time (``benchmarks/bench_mmshap.py``).
``"auto"`` (default)
    Factorised: ``"exact"`` when its cost is at most ``"recombined"``'s, else
    ``"recombined"``. Costs are floating-point operations counted once per
    architecture and input shape with ``torch.utils.flop_counter`` (one
    encoder row per modality, one head row plus :data:`HEAD_ROW_OVERHEAD_FLOPS`),
    never timed, so the choice is deterministic and the same on any machine.
    Unfactorised: ``shapley_values``'s own ``"auto"``.

Also computed for every explanation: the exact modality-level Shapley values
(each explained modality one player, ``2^M`` coalitions, nearly free from the
cache).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from core.bundle import experiment_arg
from core.errors import ConfigError, DataError, cli_command
from core.explain._maskers import Masker, create_masker, patch_grid_for_tokens
from core.explain._result import OUTPUT_KINDS, Explanation
from core.explain._shapley import (
    EXACT_MAX_FEATURES,
    MAX_PERMUTATIONS,
    group_shapley_values,
    shapley_values,
)
from core.threads import torch_threads

#: Bumped when a change alters stored values; part of the settings hash.
ENGINE_VERSION = 1
#: Image grid when no text modality is explained.
DEFAULT_IMAGE_GRID = 3
DEFAULT_VIDEO_GRID = 3
DEFAULT_VIDEO_SEGMENTS = 2
#: Encoder calls take at most ENCODER_BATCH rows and about ENCODER_BATCH_ELEMENTS input
#: elements (measured: the small CNN on 48 px images runs fastest per row at batch 4 on CPU,
#: MiniLM on short texts at the largest batches); head calls take HEAD_BATCH rows.
ENCODER_BATCH = 256
ENCODER_BATCH_ELEMENTS = 32_768
HEAD_BATCH = 4096
#: More permutations than this is refused by the engine: sampling error shrinks as
#: 1/sqrt(P), so use "exact" or "recombined" instead.
ENGINE_MAX_PERMUTATIONS = 1000
#: "recombined" spends the reference's FLOPs divided by this (batched encoders then make the
#: wall-clock ratio larger still; see docs/EXPLAIN.md for the measurement).
RECOMBINED_BUDGET_DIVISOR = 12
#: "recombined": weight of the walks against the orders in its error model, and bounds on
#: walks and orders per modality.
WALK_WEIGHT = 2.0
MIN_WALKS, MAX_WALKS = 50, 1000
MIN_ORDERS, MAX_ORDERS = 2, 100
#: "auto" picks "exact" when its counted cost is at most this times "recombined"'s.
AUTO_EXACT_COST_RATIO = 1.0
#: Per-row overhead of a head pass, in FLOPs (indexing, softmax, Python), added to the counted FLOPs.
HEAD_ROW_OVERHEAD_FLOPS = 200_000

ENGINE_METHODS = ("auto", "exact", "permutation", "kernel", "recombined")
GRID_RULES = ("mean", "total")

ProgressFn = Callable[[int, int], None]


# --------------------------------------------------------------------------- output


@dataclass(frozen=True)
class OutputSpec:
    """What scalar is explained: ``kind`` in :data:`OUTPUT_KINDS`, ``class_name`` for a chosen class."""

    kind: str = "pred_prob"
    class_name: str | None = None

    @classmethod
    def parse(cls, output: Any) -> "OutputSpec":
        """Accepts ``"pred_prob"``, ``"true_prob"``, ``"logit"``, ``("class", name)``,
        ``"class:name"``, ``("logit", name)`` / ``"logit:name"`` or an ``OutputSpec``."""
        if isinstance(output, OutputSpec):
            return output
        fix = ("use 'pred_prob', 'true_prob', 'logit', ('class', NAME) / 'class:NAME' "
               "or ('logit', NAME) / 'logit:NAME'")
        if isinstance(output, (tuple, list)):
            if len(output) != 2 or not isinstance(output[1], str):
                raise ConfigError(f"output {output!r} is not (kind, class name)", fix=fix)
            kind, name = str(output[0]), output[1]
        elif isinstance(output, str):
            kind, sep, name = output.partition(":")
            name = name if sep else None
        else:
            raise ConfigError(f"output {output!r} is not understood", fix=fix)
        kind = {"class": "class_prob", "prob": "class_prob"}.get(kind, kind)
        if kind not in OUTPUT_KINDS:
            raise ConfigError(f"unknown output {output!r}", fix=fix)
        if kind == "class_prob" and not name:
            raise ConfigError("output 'class' needs a class name", fix="pass ('class', NAME) or 'class:NAME'")
        if kind in ("pred_prob", "true_prob") and name:
            raise ConfigError(f"output {kind!r} takes no class name", fix=fix)
        return cls(kind, name or None)

    @property
    def key(self) -> str:
        return self.kind if self.class_name is None else f"{self.kind}:{self.class_name}"


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ExplainSettings:
    """Everything that decides an explanation's values; :meth:`hash` names stored results.

    ``modalities`` (None = all of the model's) are the explained modalities; the
    others stay present in every coalition (the reference's pair-wise MM-SHAP).
    """

    method: str = "auto"
    n_permutations: int = 10
    seed: int = 0
    output: str = "pred_prob"
    grid: int | str | None = None
    video_grid: int = DEFAULT_VIDEO_GRID
    video_segments: int = DEFAULT_VIDEO_SEGMENTS
    n_walks: int | None = None
    modalities: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.method not in ENGINE_METHODS:
            raise ConfigError(f"unknown method {self.method!r}", fix=f"use one of: {', '.join(ENGINE_METHODS)}")
        for name in ("n_permutations", "seed", "video_grid", "video_segments"):
            value = getattr(self, name)
            low = 0 if name == "seed" else 1
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ConfigError(f"{name}={value!r} is not valid", fix=f"pass an integer {name} >= {low}")
            object.__setattr__(self, name, int(value))
        if self.n_permutations > ENGINE_MAX_PERMUTATIONS:
            raise ConfigError(
                f"n_permutations={self.n_permutations} is more than sensible (limit {ENGINE_MAX_PERMUTATIONS}): "
                "the sampling error only shrinks as 1/sqrt(permutations)",
                fix="use method='exact' for zero sampling error (small games), method='recombined' "
                    f"(many cheap walks from few encoder passes), or n_permutations <= {ENGINE_MAX_PERMUTATIONS}",
            )
        if self.n_walks is not None:
            if isinstance(self.n_walks, bool) or not isinstance(self.n_walks, (int, np.integer)) \
                    or not 1 <= self.n_walks <= MAX_PERMUTATIONS:
                raise ConfigError(f"n_walks={self.n_walks!r} is out of range",
                                  fix=f"use an integer between 1 and {MAX_PERMUTATIONS}, or None")
            object.__setattr__(self, "n_walks", int(self.n_walks))
        grid = self.grid
        if grid is not None and not (isinstance(grid, str) and grid in GRID_RULES):
            if isinstance(grid, str) and grid.isdigit():
                grid = int(grid)
            if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 1:
                raise ConfigError(f"grid={self.grid!r} is not understood",
                                  fix="use None / 'mean' (reference rule on the mean text length), "
                                      "'total' (rule on all text tokens) or a positive integer p")
            object.__setattr__(self, "grid", int(grid))
        if self.grid == "mean":
            object.__setattr__(self, "grid", None)
        object.__setattr__(self, "output", OutputSpec.parse(self.output).key)
        if self.modalities is not None:
            mods = tuple(str(m) for m in self.modalities)
            if not mods or len(set(mods)) != len(mods):
                raise ConfigError(f"modalities={self.modalities!r} must be distinct names",
                                  fix="list each explained modality once, or pass None for all")
            object.__setattr__(self, "modalities", mods)

    @property
    def output_spec(self) -> OutputSpec:
        return OutputSpec.parse(self.output)

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["modalities"] = None if self.modalities is None else list(self.modalities)
        d["engine_version"] = ENGINE_VERSION
        # the constants that shape sampled values and the auto choice: changing one changes the hash
        d["engine"] = {
            "budget_divisor": RECOMBINED_BUDGET_DIVISOR, "walk_weight": WALK_WEIGHT,
            "walks": [MIN_WALKS, MAX_WALKS], "orders": [MIN_ORDERS, MAX_ORDERS],
            "head_row_overhead_flops": HEAD_ROW_OVERHEAD_FLOPS, "auto_exact_cost_ratio": AUTO_EXACT_COST_RATIO,
            "image_grid_without_text": DEFAULT_IMAGE_GRID,
        }
        return d

    def hash(self) -> str:
        """12 hex digits of the settings (and engine version); stored file names carry it."""
        blob = json.dumps(self.as_dict(), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- progress


class _Progress:
    """``progress``: True (tqdm), False/None (silent) or a callable ``(done, total)``."""

    def __init__(self, progress: Any, total: int, desc: str) -> None:
        self.total = max(1, int(total))
        self.done = 0
        self.fn: ProgressFn | None = None
        self.bar = None
        if callable(progress):
            self.fn = progress
        elif progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, desc=desc, leave=False)

    def update(self, n: int) -> None:
        new = min(self.total, self.done + int(n))
        step, self.done = new - self.done, new
        if self.fn is not None:
            self.fn(self.done, self.total)
        if self.bar is not None and step:
            self.bar.update(step)

    def close(self) -> None:
        if self.fn is not None:
            self.fn(self.total, self.total)
        if self.bar is not None:
            self.bar.update(self.total - self.done)
            self.bar.close()


def check_progress(progress: Any) -> Any:
    if progress is None or isinstance(progress, bool) or callable(progress):
        return progress
    raise ConfigError(f"progress={progress!r} is not understood",
                      fix="pass True (progress bar), False, or a callable(done, total)")


# --------------------------------------------------------------------------- maskers


def modality_kind(model: Any, modality: str) -> str:
    """The kind (text/image/video/features) of one of the model's modalities."""
    kinds = getattr(model, "modality_kinds", None)
    if isinstance(kinds, Mapping) and modality in kinds:
        return str(kinds[modality])
    encoders = getattr(model, "encoders", None)
    try:
        return str(encoders[modality].kind)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"cannot tell the kind of modality {modality!r}",
                          fix="give the model encoders with a .kind, or a modality_kinds dict") from exc


def _text_tokens(encoder: Any, inputs: dict[str, torch.Tensor]) -> list[str] | None:
    tokens = getattr(encoder, "tokens", None)
    if callable(tokens):
        try:
            return list(tokens(inputs, 0))
        except Exception:  # token strings are cosmetic: ids are shown instead
            return None
    return None


def resolve_players(model: Any, modalities: Sequence[str] | None) -> list[str]:
    """The explained modalities in the model's order; unknown names fail with the known ones."""
    known = list(model.modalities)
    if modalities is None:
        return known
    unknown = [m for m in modalities if m not in known]
    if unknown:
        raise ConfigError(f"the model has no modality {', '.join(map(repr, unknown))}",
                          fix=f"explain some of: {', '.join(known)}")
    return [m for m in known if m in modalities]


def build_maskers(
    model: Any, inputs: Mapping[str, dict[str, torch.Tensor]], players: Sequence[str], settings: ExplainSettings
) -> tuple[dict[str, Masker], dict[str, Any]]:
    """One masker per explained modality, and how the grids were chosen."""
    maskers: dict[str, Masker] = {}
    kinds = {m: modality_kind(model, m) for m in players}
    for m in players:
        if m not in inputs:
            raise DataError(f"no inputs for modality {m!r}", fix=f"pass inputs for: {', '.join(players)}")
        if kinds[m] == "text":
            enc = model.encoders[m] if hasattr(model, "encoders") else None
            pad = getattr(enc, "pad_token_id", 0)
            maskers[m] = create_masker("text", inputs[m], pad_token_id=pad, tokens=_text_tokens(enc, inputs[m]))
    token_counts = [maskers[m].n_tokens for m in players if kinds[m] == "text"]
    info: dict[str, Any] = {"text_tokens": {m: maskers[m].n_tokens for m in players if kinds[m] == "text"}}
    if isinstance(settings.grid, int):
        p, rule = settings.grid, "fixed"
    elif not token_counts:
        p, rule = DEFAULT_IMAGE_GRID, "default (no text)"
    elif settings.grid == "total":
        p, rule = patch_grid_for_tokens(sum(token_counts)), "ceil(sqrt(total text tokens))"
    else:
        p, rule = patch_grid_for_tokens(math.ceil(sum(token_counts) / len(token_counts))), \
            "ceil(sqrt(mean text tokens))"
    grids: dict[str, int] = {}
    for m in players:
        kind = kinds[m]
        if kind == "image":
            pixels = inputs[m]["pixels"]
            side = int(min(pixels.shape[-2:]))
            grids[m] = min(p, side)
            maskers[m] = create_masker("image", inputs[m], grid=grids[m])
        elif kind == "video":
            maskers[m] = create_masker("video", inputs[m], grid=settings.video_grid, segments=settings.video_segments)
        elif kind == "features":
            maskers[m] = create_masker("features", inputs[m])
        elif kind != "text":
            raise ConfigError(f"no masker for modality {m!r} of kind {kind!r}",
                              fix="register one in core.explain.MASKERS")
    info.update(image_grid=grids, grid_rule=rule)
    if any(kinds[m] == "video" for m in players):
        info.update(video_grid=settings.video_grid, video_segments=settings.video_segments)
    return maskers, info


# --------------------------------------------------------------------------- the game


def is_factorisable(model: Any) -> bool:
    """Whether the model exposes per-modality ``encode`` and a head ``forward_embeddings``."""
    if getattr(model, "factorisable", True) is False or getattr(model, "factorizable", True) is False:
        return False
    return callable(getattr(model, "encode", None)) and callable(getattr(model, "forward_embeddings", None))


def _repeat_inputs(inputs: dict[str, torch.Tensor], batch: int) -> dict[str, torch.Tensor]:
    return Masker._repeat(inputs, batch, skip=())


def encoder_batch_size(inputs: Mapping[str, Any], limit: int = ENCODER_BATCH) -> int:
    """Rows per encoder call for one sample's inputs: about ENCODER_BATCH_ELEMENTS input elements."""
    per_row = sum(int(v[0].numel()) for v in inputs.values() if isinstance(v, torch.Tensor) and v.ndim >= 1)
    return int(max(1, min(limit, ENCODER_BATCH_ELEMENTS // max(1, per_row))))


_FLOP_CACHE: dict[tuple, float] = {}


def _shape_key(tensors: Any) -> tuple:
    if isinstance(tensors, Mapping):
        return tuple(sorted((k, tuple(v.shape[1:]), str(v.dtype)) for k, v in tensors.items()
                            if isinstance(v, torch.Tensor)))
    return tuple((tuple(t.shape[1:]), str(t.dtype)) for t in tensors)


def _architecture_key(module: Any) -> str:
    spec = getattr(module, "spec", None)
    if callable(spec):
        try:
            return f"{type(module).__qualname__}:{json.dumps(spec(), sort_keys=True, default=str)}"
        except Exception:  # a spec that cannot be serialised: fall back on the module's repr
            pass
    return f"{type(module).__qualname__}:{module!r}"


def counted_flops(module: Any, fn: Callable[[Any], torch.Tensor], inputs: Any) -> tuple[torch.Tensor, float]:
    """``fn(inputs)`` and its FLOPs per row, counted once per architecture and input shape
    (``torch.utils.flop_counter``; matrix products and convolutions)."""
    key = (_architecture_key(module), _shape_key(inputs))
    if key in _FLOP_CACHE:
        return fn(inputs), _FLOP_CACHE[key]
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        out = fn(inputs)
    per_row = float(counter.get_total_flops()) / max(1, int(out.shape[0]))
    if len(_FLOP_CACHE) > 4096:
        _FLOP_CACHE.clear()
    _FLOP_CACHE[key] = per_row
    return out, per_row


class _EmbeddingTable:
    """One modality's embeddings, one row per distinct sub-mask, encoded on first use."""

    def __init__(self, encode: Callable[[dict[str, torch.Tensor]], torch.Tensor], masker: Masker | None,
                 inputs: dict[str, torch.Tensor], batch: int, module: Any = None) -> None:
        self.encode, self.masker, self.inputs, self.batch = encode, masker, inputs, batch
        self.module = module
        self.n = 0 if masker is None else masker.n_features
        self.index: dict[bytes, int] = {}
        self.table: torch.Tensor | None = None
        self.size = 0
        self.encoded = 0  # rows the encoder ran on
        self.flops_per_row = 0.0
        if self.n == 0:
            full = self._run(inputs, count_flops=True)
            self._append(full)

    def _run(self, inputs: dict[str, torch.Tensor], count_flops: bool = False) -> torch.Tensor:
        if count_flops:
            out, self.flops_per_row = counted_flops(self.module, self.encode, inputs)
        else:
            out = self.encode(inputs)
        self.encoded += int(out.shape[0])
        return out.detach()

    def _append(self, rows: torch.Tensor) -> None:
        need = self.size + rows.shape[0]
        if self.table is None or need > self.table.shape[0]:
            cap = max(need, 2 * (0 if self.table is None else self.table.shape[0]), 16)
            grown = rows.new_empty((cap, *rows.shape[1:]))
            if self.table is not None:
                grown[: self.size] = self.table[: self.size]
            self.table = grown
        self.table[self.size: need] = rows
        self.size = need

    def rows(self, sub: np.ndarray) -> torch.Tensor:
        """Row indices of the sub-masks ``sub`` (B, n), encoding the ones not seen yet."""
        if self.n == 0:
            return torch.zeros(len(sub), dtype=torch.long)
        packed = np.ascontiguousarray(np.packbits(sub, axis=1))
        keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
        uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        ids = np.empty(len(uniq), dtype=np.int64)
        missing: list[int] = []
        for u, key in enumerate(uniq):
            row = self.index.get(key.tobytes())
            if row is None:
                missing.append(u)
            else:
                ids[u] = row
        for start in range(0, len(missing), self.batch):
            block = missing[start:start + self.batch]
            masks = sub[first[block]]
            emb = self._run(self.masker.apply(self.inputs, masks), count_flops=self.flops_per_row == 0.0)
            base = self.size
            self._append(emb)
            for j, u in enumerate(block):
                ids[u] = base + j
                self.index[uniq[u].tobytes()] = base + j
        return torch.as_tensor(ids[inverse.ravel()])

    def gather(self, sub: np.ndarray) -> torch.Tensor:
        """Embeddings of the sub-masks ``sub`` (B, n), one row each."""
        idx = self.rows(sub)
        assert self.table is not None  # rows() filled it
        return self.table.index_select(0, idx.to(self.table.device))


class SampleGame:
    """``value_fn`` of one sample: boolean masks (B, n_features) -> explained output (B,).

    Features are the players of ``players`` (model order), modality by modality;
    the model's other modalities stay present. ``factorised`` uses per-modality
    embedding tables (see the module docstring); otherwise every coalition runs
    the whole model on masked inputs.
    """

    def __init__(self, model: Any, inputs: Mapping[str, dict[str, torch.Tensor]], maskers: Mapping[str, Masker],
                 players: Sequence[str], *, factorised: bool, encoder_batch: int | None = None,
                 head_batch: int = HEAD_BATCH) -> None:
        self.model = model
        self.modalities = list(model.modalities)
        self.players = list(players)
        self.inputs = {m: inputs[m] for m in self.modalities}
        self.maskers = dict(maskers)
        self.sizes = [self.maskers[m].n_features for m in self.players]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        self.n_features = int(self.offsets[-1])
        self.slices = {m: slice(int(self.offsets[i]), int(self.offsets[i + 1])) for i, m in enumerate(self.players)}
        self.factorised = bool(factorised)
        batches = {m: encoder_batch_size(self.inputs[m]) if encoder_batch is None else int(encoder_batch)
                   for m in self.modalities}
        self.encoder_batch = min(batches.values())
        self.head_batch = int(head_batch)
        self.output: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.head_rows = 0
        self.model_rows = 0  # unfactorised: rows of whole-model passes
        self.on_rows: Callable[[int], None] | None = None
        self.head_flops_per_row = 0.0
        self.tables: dict[str, _EmbeddingTable] = {}
        if self.factorised:
            for m in self.modalities:
                encode = functools.partial(model.encode, m)
                module = model.encoders[m] if hasattr(model, "encoders") else model
                self.tables[m] = _EmbeddingTable(encode, self.maskers.get(m) if m in self.players else None,
                                                 self.inputs[m], batches[m], module=module)

    # -- evaluation ---------------------------------------------------------------------

    def logits(self, masks: np.ndarray) -> torch.Tensor:
        masks = np.ascontiguousarray(np.asarray(masks, dtype=bool))
        if masks.ndim != 2 or masks.shape[1] != self.n_features:
            raise ConfigError(f"masks must have shape (B, {self.n_features}), got {masks.shape}",
                              fix="pass one boolean row per coalition, one column per feature")
        parts = []
        with torch.inference_mode():
            if self.factorised:
                for start in range(0, len(masks), self.head_batch):
                    chunk = masks[start:start + self.head_batch]
                    embs = []
                    for m in self.modalities:
                        table = self.tables[m]
                        if m in self.slices:
                            embs.append(table.gather(chunk[:, self.slices[m]]))
                        else:
                            embs.append(table.table[:1].expand(len(chunk), -1))
                    if self.head_flops_per_row == 0.0:
                        head = getattr(self.model, "head", self.model)
                        out, self.head_flops_per_row = counted_flops(head, self.model.forward_embeddings, embs)
                    else:
                        out = self.model.forward_embeddings(embs)
                    parts.append(out)
                    self.head_rows += len(chunk)
            else:
                for start in range(0, len(masks), self.encoder_batch):
                    chunk = masks[start:start + self.encoder_batch]
                    batch = {}
                    for m in self.modalities:
                        if m in self.slices:
                            batch[m] = self.maskers[m].apply(self.inputs[m], chunk[:, self.slices[m]])
                        else:
                            batch[m] = _repeat_inputs(self.inputs[m], len(chunk))
                    parts.append(self.model(batch))
                    self.model_rows += len(chunk)
        return torch.cat(parts) if parts else torch.zeros(0)

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        if self.output is None:
            raise ConfigError("the game has no output yet", fix="call set_output() first")
        logits = self.logits(masks)
        out = self.output(logits).detach().cpu().numpy().astype(np.float64)
        if self.on_rows is not None:
            self.on_rows(len(out))
        return out

    def set_output(self, output: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.output = output

    # -- cost -----------------------------------------------------------------------------

    @property
    def encoder_rows(self) -> dict[str, int]:
        return {m: t.encoded for m, t in self.tables.items()}

    def encoder_flops(self) -> dict[str, float]:
        """FLOPs of one encoder row per explained modality (counted on first use)."""
        out = {}
        for m in self.players:
            table = self.tables[m]
            if table.flops_per_row == 0.0 and table.n > 0:
                full = np.ones((1, table.n), dtype=bool)
                table.gather(full)
            out[m] = table.flops_per_row
        return out

    def model_flops(self) -> float:
        """FLOPs of one whole-model pass (every encoder once, the head once)."""
        self.encoder_flops()
        return float(sum(t.flops_per_row for t in self.tables.values()) + self.head_flops_per_row)

    def group_indices(self) -> list[np.ndarray]:
        return [np.arange(self.offsets[i], self.offsets[i + 1]) for i in range(len(self.players))]


def _output_fn(kind: str, class_index: int) -> Callable[[torch.Tensor], torch.Tensor]:
    if kind == "logit":
        return lambda logits: logits[:, class_index].double()
    return lambda logits: torch.softmax(logits.double(), dim=-1)[:, class_index]


# --------------------------------------------------------------------------- estimators


def recombined_permutations(
    sizes: Sequence[int], n_orders: int | Sequence[int], n_walks: int, seed: int, tabulated: Sequence[bool]
) -> np.ndarray:
    """Walk orders (n_walks, n) recombined from per-modality orders (see ``"recombined"``).

    Modality ``m`` owns features ``offset_m .. offset_m + sizes[m] - 1``. A
    tabulated modality gets a fresh random order per walk; the others cycle
    through ``n_orders`` (one count, or one per modality) fixed random orders,
    each used equally often, in a shuffled sequence. Each walk interleaves the
    modalities uniformly at random, so every walk is a uniform permutation.
    """
    rng = np.random.default_rng([seed, 0x5EED])
    sizes = [int(s) for s in sizes]
    orders = [int(n_orders)] * len(sizes) if np.isscalar(n_orders) else [int(o) for o in n_orders]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    n = int(offsets[-1])
    labels = np.repeat(np.arange(len(sizes)), sizes)
    base = [None if tab else np.stack([rng.permutation(s) for _ in range(k)])
            for s, k, tab in zip(sizes, orders, tabulated)]
    picks = []
    for k, tab in zip(orders, tabulated):
        if tab:
            picks.append(None)
            continue
        picks.append(np.concatenate([rng.permutation(k) for _ in range(-(-n_walks // k))])[:n_walks])
    out = np.empty((n_walks, n), dtype=np.int64)
    for w in range(n_walks):
        slots = rng.permutation(labels)
        for m, s in enumerate(sizes):
            if s == 0:
                continue
            order = rng.permutation(s) if tabulated[m] else base[m][picks[m][w]]
            out[w, slots == m] = offsets[m] + order
    return out


@dataclass(frozen=True)
class RecombinedPlan:
    """How ``"recombined"`` spends its budget: orders per modality, tabulated ones, walks."""

    orders: tuple[int, ...]
    tabulated: tuple[bool, ...]
    n_walks: int
    budget_flops: float
    cost_flops: float


def _chain_rows(n_m: int) -> int:
    """Sub-masks one antithetic order adds beyond the empty and full ones."""
    return max(0, 2 * n_m - 2)


def _order_rows(n_m: int, orders: int, tabulated: bool) -> int:
    return 2 ** n_m if tabulated else min(2 ** n_m, orders * _chain_rows(n_m) + 2)


def head_row_flops(head_flops: float) -> float:
    return head_flops + HEAD_ROW_OVERHEAD_FLOPS


def reference_flops(sizes: Sequence[int], model_flops: float, n_permutations: int) -> float:
    """FLOPs of the reference estimator: ``P (2n + 1)`` passes of the whole model."""
    return n_permutations * (2 * int(sum(sizes)) + 1) * model_flops


def plan_recombined(
    sizes: Sequence[int], enc_flops: Sequence[float], head_flops: float, model_flops: float, n_permutations: int,
    n_walks: int | None = None,
) -> RecombinedPlan:
    """Spend 1/RECOMBINED_BUDGET_DIVISOR of the reference's FLOPs (``n_permutations`` walks of the
    whole model) on ``"recombined"``.

    With the error modelled as ``sum_m 1/P_m + WALK_WEIGHT^2/Q`` (``P_m`` orders of modality
    ``m``, ``Q`` walks) and the cost as ``sum_m P_m u_m + Q w`` (``u_m``: FLOPs of one order's
    sub-masks, ``w``: FLOPs of one walk's head passes), the best split is ``P_m`` proportional
    to ``1/sqrt(u_m)`` and ``Q`` to ``WALK_WEIGHT/sqrt(w)``: cheap encoders get more orders.
    Counts are clamped to their bounds; a modality whose orders would visit as many
    sub-masks as it has is tabulated whole instead. Everything is counted, nothing timed,
    so the plan is deterministic.
    """
    sizes = [int(s) for s in sizes]
    n = sum(sizes)
    h = head_row_flops(head_flops)
    budget = reference_flops(sizes, model_flops, n_permutations) / RECOMBINED_BUDGET_DIVISOR
    walk_cost = max(1, 2 * n - 2) * h
    tab = [2 ** s <= 2 for s in sizes]  # 0 or 1 feature: nothing to choose
    orders = [1] * len(sizes)
    walks = n_walks
    fixed_walks = n_walks is not None
    fixed_orders: set[int] = set()
    for _ in range(2 * len(sizes) + 2):
        free = [m for m in range(len(sizes)) if not tab[m] and m not in fixed_orders]
        spent = sum(2 ** sizes[m] * enc_flops[m] for m in range(len(sizes)) if tab[m])
        spent += sum(orders[m] * _chain_rows(sizes[m]) * enc_flops[m] for m in fixed_orders if not tab[m])
        if fixed_walks:
            spent += walks * walk_cost
        weights = {m: math.sqrt(_chain_rows(sizes[m]) * enc_flops[m]) for m in free}
        norm = sum(weights.values()) + (0.0 if fixed_walks else WALK_WEIGHT * math.sqrt(walk_cost))
        lam = max(0.0, budget - spent) / norm if norm > 0 else 0.0
        changed = False
        if not fixed_walks:
            q = lam * WALK_WEIGHT / math.sqrt(walk_cost)
            walks = int(min(MAX_WALKS, max(MIN_WALKS, round(q))))
            if walks != round(q):
                fixed_walks, changed = True, True
        for m in free:
            p = lam / weights[m] if weights[m] > 0 else float(MAX_ORDERS)
            orders[m] = int(min(MAX_ORDERS, max(MIN_ORDERS, round(p))))
            if 2 ** sizes[m] <= orders[m] * _chain_rows(sizes[m]) + 2:
                tab[m], changed = True, True
            elif orders[m] != round(p):
                fixed_orders.add(m)
                changed = True
        if not changed:
            break
    assert walks is not None
    cost = sum(_order_rows(s, o, t) * f for s, o, t, f in zip(sizes, orders, tab, enc_flops)) + \
        (2 + walks * max(0, 2 * n - 2)) * h
    return RecombinedPlan(tuple(orders), tuple(tab), int(walks), float(budget), float(cost))


def exact_flops(sizes: Sequence[int], enc_flops: Sequence[float], head_flops: float) -> float:
    """FLOPs of exact enumeration by factorised tables (inf past EXACT_MAX_FEATURES)."""
    n = int(sum(sizes))
    if n > EXACT_MAX_FEATURES:
        return math.inf
    return float(sum(2 ** s * f for s, f in zip(sizes, enc_flops)) + 2 ** n * head_row_flops(head_flops))


# --------------------------------------------------------------------------- explain


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
) -> Explanation:
    """Explain one sample given the model inputs of each modality (batch dimension 1).

    ``label`` (class name or index) is needed for ``output="true_prob"``;
    ``factorise`` None uses the factorised game whenever the model allows it;
    ``extra`` is merged into the explanation's settings (for example label and
    prediction). Returns one :class:`Explanation`.
    """
    settings = settings or ExplainSettings()
    progress = check_progress(progress)
    t0 = time.perf_counter()
    players = resolve_players(model, settings.modalities)
    classes = [str(c) for c in getattr(model, "classes", [])]
    for m in model.modalities:
        if m not in inputs:
            raise DataError(f"no inputs for modality {m!r}",
                            fix=f"pass inputs for every modality: {', '.join(model.modalities)}")
    maskers, grid_info = build_maskers(model, inputs, players, settings)
    can_factorise = is_factorisable(model)
    if factorise and not can_factorise:
        raise ConfigError("this model cannot be factorised (no per-modality encode / forward_embeddings)",
                          fix="pass factorise=None or False")
    factorised = can_factorise if factorise is None else bool(factorise)
    game = SampleGame(model, inputs, maskers, players, factorised=factorised)
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
    game.set_output(_output_fn(spec.kind, class_index))

    # which estimator
    chosen, costs, plan = settings.method, None, None
    if factorised:
        enc_flops = game.encoder_flops()
        game(np.ones((1, n), dtype=bool))  # counts the head FLOPs
        flops = [enc_flops[m] for m in players]
        plan = plan_recombined(game.sizes, flops, game.head_flops_per_row, game.model_flops(),
                               settings.n_permutations, settings.n_walks)
        costs = {"exact": exact_flops(game.sizes, flops, game.head_flops_per_row), "recombined": plan.cost_flops,
                 "reference": reference_flops(game.sizes, game.model_flops(), settings.n_permutations)}
        if chosen == "auto":
            chosen = "exact" if costs["exact"] <= AUTO_EXACT_COST_RATIO * costs["recombined"] else "recombined"
    elif chosen == "recombined":
        walks = settings.n_walks or min(MAX_WALKS, 10 * settings.n_permutations)
        plan = RecombinedPlan(tuple(settings.n_permutations for _ in players), tuple(2 ** s <= 2 for s in game.sizes),
                              walks, math.nan, math.nan)
    if chosen == "exact" and n > EXACT_MAX_FEATURES:
        sizes = ", ".join(f"{m}: {s}" for m, s in zip(players, game.sizes))
        raise ConfigError(
            f"exact Shapley values of sample {sample_id!r} need 2^{n} coalitions ({sizes} features), "
            f"more than the limit of 2^{EXACT_MAX_FEATURES}",
            fix="use method='auto' or 'recombined' (or 'permutation'), or a smaller grid (grid=2)",
        )
    budget = {
        "exact": 2 ** n, "permutation": 2 + settings.n_permutations * max(0, 2 * n - 2),
        "recombined": 2 + (plan.n_walks if plan else 0) * max(0, 2 * n - 2),
        "kernel": settings.n_permutations * (2 * n + 1), "auto": settings.n_permutations * (2 * n + 1),
    }[chosen] + 2 ** len(players)
    bar = _Progress(progress, budget, desc=f"explain {sample_id}")
    game.on_rows = bar.update
    try:
        common = dict(seed=settings.seed, batch_size=HEAD_BATCH if factorised else game.encoder_batch)
        if chosen == "recombined":
            assert plan is not None
            perms = recombined_permutations(game.sizes, plan.orders, plan.n_walks, settings.seed, plan.tabulated)
            sv = shapley_values(game, n, method="permutation", permutations=perms, **common)
            sv_settings = dict(sv.settings, method=settings.method, n_permutations=settings.n_permutations,
                               n_walks=plan.n_walks, orders={m: int(o) for m, o in zip(players, plan.orders)},
                               tabulated={m: bool(t) for m, t in zip(players, plan.tabulated)},
                               stderr="walks treated as independent (a lower bound)")
            sv_settings.pop("explicit_permutations", None)
            sv = dataclasses.replace(sv, method="recombined", settings=sv_settings)
        else:
            sv = shapley_values(game, n, method=chosen, n_permutations=settings.n_permutations, **common)
        groups = game.group_indices()
        mod_sv = group_shapley_values(game, groups, n, batch_size=common["batch_size"])
    finally:
        bar.close()
        game.on_rows = None

    info = game.maskers
    feature_info: list[dict[str, Any]] = []
    feature_modality: list[int] = []
    for i, m in enumerate(players):
        feature_info.extend(info[m].describe())
        feature_modality.extend([i] * game.sizes[i])
    meta: dict[str, Any] = {
        "settings_hash": settings.hash(),
        "explain_settings": settings.as_dict(),
        "output": spec.key,
        "class_index": class_index,
        "n_features": {m: int(s) for m, s in zip(players, game.sizes)},
        "engine": "factorised" if factorised else "unfactorised",
        "encoder_rows": game.encoder_rows if factorised else None,
        "head_rows": game.head_rows if factorised else None,
        "model_rows": None if factorised else game.model_rows,
        "cost_flops": costs,
        "seconds": round(time.perf_counter() - t0, 4),
        "fill": {"text": "pad token", "image": 0.0, "video": 0.0, "features": 0.0},
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
        modality_shapley={m: float(v) for m, v in zip(players, mod_sv.values)},
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


# --------------------------------------------------------------------------- runs

def explain_threads(threads: int | None = None) -> contextlib.AbstractContextManager[int]:
    """Run with the ``explain`` job's torch threads (or ``threads``), restored afterwards.

    The job defaults to one thread (``FUSIONLENS_THREADS=explain=N`` or
    ``FUSIONLENS_EXPLAIN_THREADS`` change it). Explaining is many small batches: on the shared
    2-core build machine one thread took 0.11 s per emoji sample and two threads 1.39 s (OpenMP
    threads spinning against other processes). Use ``--shard i/n`` processes to use more cores.
    """
    return torch_threads("explain", threads)


@functools.lru_cache(maxsize=8)
def _cached_run(path: str, stamp: int) -> Any:
    from core.bundle import load_run

    return load_run(path)


@functools.lru_cache(maxsize=4)
def _cached_dataset(exp_dir: str, stamp: int) -> Any:
    from core.train import load_experiment_dataset

    return load_experiment_dataset(Path(exp_dir))[0]


def _stamp(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def resolve_run(run: Any) -> Any:
    """A :class:`core.bundle.Run` from a Run or a run folder (loaded runs are cached per process)."""
    from core.bundle import Run

    if isinstance(run, Run):
        return run
    path = Path(run).resolve()
    return _cached_run(str(path), _stamp(path / "config.json"))


def run_dataset(run: Any) -> Any:
    """The dataset the run's experiment was built from (cached per process)."""
    exp_dir = Path(run.path).resolve().parent
    return _cached_dataset(str(exp_dir), _stamp(exp_dir / "dataset.parquet"))


def sample_record(run: Any, sample_id: str) -> dict[str, Any]:
    """label / pred / correct of a sample from the run's predictions (label from the dataset otherwise)."""
    preds = run.predictions
    ids = preds["id"].astype(str)
    hit = preds[ids == str(sample_id)]
    if len(hit):
        row = hit.iloc[0]
        return {"label": str(row["label"]), "pred": str(row["pred"]), "correct": bool(row["correct"]),
                "split": str(row.get("split", "test"))}
    ds = run_dataset(run)
    frame = ds.frame
    known = frame["id"].astype(str) == str(sample_id)
    if not known.any():
        preview = ", ".join(ids.head(5).tolist())
        raise DataError(f"sample {sample_id!r} is not in run {run.name!r} nor in its dataset",
                        fix=f"pick an id from the run's predictions.parquet (for example {preview})")
    row = frame[known].iloc[0]
    return {"label": str(row["label"]), "pred": None, "correct": None, "split": str(row.get("split", ""))}


def run_inputs(run: Any, sample_id: str) -> dict[str, dict[str, torch.Tensor]]:
    """Model inputs (batch 1) of one sample of the run's dataset."""
    ds = run_dataset(run)
    model = run.model()
    missing = [m for m in model.modalities if m not in ds.modalities]
    if missing:
        raise DataError(f"the dataset of run {run.name!r} lacks modality {', '.join(missing)}",
                        fix=f"rebuild the experiment (`{cli_command()} build {experiment_arg(Path(run.path).parent)} --force`)")
    items = {m: ds.items(m, [str(sample_id)]) for m in model.modalities}
    with torch.inference_mode():
        return model.prepare(items)


def run_settings(
    *, output: Any = "pred_prob", method: str = "auto", n_permutations: int = 10, seed: int = 0,
    grid: int | str | None = None, n_walks: int | None = None, modalities: Sequence[str] | None = None,
    video_grid: int = DEFAULT_VIDEO_GRID, video_segments: int = DEFAULT_VIDEO_SEGMENTS,
) -> ExplainSettings:
    return ExplainSettings(
        method=method, n_permutations=n_permutations, seed=seed, output=OutputSpec.parse(output).key, grid=grid,
        n_walks=n_walks, modalities=None if modalities is None else tuple(modalities),
        video_grid=video_grid, video_segments=video_segments,
    )


def check_run_modalities(run: Any, settings: ExplainSettings) -> None:
    if settings.modalities is None:
        return
    unknown = [m for m in settings.modalities if m not in run.modalities]
    if unknown:
        raise ConfigError(f"run {run.name!r} has no modality {', '.join(map(repr, unknown))}",
                          fix=f"explain some of its modalities: {', '.join(run.modalities)}")


def explain_with_settings(run: Any, sample_id: str, settings: ExplainSettings, *, progress: Any = None) -> Explanation:
    """Explain one sample of a run with fixed settings (no storing)."""
    run = resolve_run(run)
    check_run_modalities(run, settings)
    record = sample_record(run, str(sample_id))
    model = run.model()
    inputs = run_inputs(run, str(sample_id))
    factorise = None if run.config.get("strategy") != "early" else False
    with explain_threads():
        return explain_inputs(
            model, inputs, sample_id=str(sample_id), label=record["label"], settings=settings, progress=progress,
            factorise=factorise, extra={"label": record["label"], "pred": record["pred"],
                                        "correct": record["correct"], "run": run.name},
        )


def explain_sample(
    run: Any,
    sample_id: str,
    *,
    output: Any = "pred_prob",
    method: str = "auto",
    n_permutations: int = 10,
    seed: int = 0,
    grid: int | str | None = None,
    n_walks: int | None = None,
    modalities: Sequence[str] | None = None,
    store: bool = True,
    progress: Any = None,
) -> Explanation:
    """Explain one sample of a run on demand (the dashboard's "explain now").

    Args:
        run: a run folder or a loaded :class:`core.bundle.Run` (folders are loaded once per process).
        sample_id: an id of the run's dataset (usually of its test predictions).
        output: ``"pred_prob"`` (default), ``"true_prob"``, ``("class", NAME)`` or ``"logit"``.
        method: ``"auto"`` (default), ``"exact"``, ``"permutation"`` (the reference), ``"kernel"``, ``"recombined"``.
        n_permutations: permutations of the reference estimator (base orders of ``"recombined"``).
        seed: seeds every sampled method; same seed, same values.
        grid: image patch grid: None (reference rule on the mean text length), ``"total"`` or an int.
        n_walks: walks of ``"recombined"`` (default 10 x n_permutations).
        modalities: explained modalities (default all; the others stay present).
        store: also write the result under ``<run>/explanations/`` (read back by
            :func:`explanation_for`); an identical stored result is not recomputed.
        progress: True (tqdm), False, or a callable ``(done, total)``.
    """
    from core.explain._store import explanation_for, store_explanation

    run = resolve_run(run)
    settings = run_settings(output=output, method=method, n_permutations=n_permutations, seed=seed, grid=grid,
                            n_walks=n_walks, modalities=modalities)
    check_run_modalities(run, settings)
    if store:
        stored = explanation_for(run.path, str(sample_id), settings_hash=settings.hash())
        if stored is not None:
            if callable(progress):
                progress(1, 1)
            return stored
    exp = explain_with_settings(run, str(sample_id), settings, progress=progress)
    if store:
        store_explanation(run.path, exp, settings)
    return exp
