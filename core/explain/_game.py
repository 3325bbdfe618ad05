"""The factorised game of one sample, and the FLOP counting its cost model uses.

A :class:`SampleGame` is the ``value_fn`` the estimators play: boolean masks
``(B, n_features)`` in, the explained output of each masked variant out.
Players are the features of the explained modalities, modality by modality;
the model's other modalities stay present.

The game is factorised: a coalition mask splits into one sub-mask per
modality; each modality's distinct sub-masks are encoded once (batched, cached
by the sub-mask's bytes, :class:`EmbeddingTable`) and every coalition then costs
one pass of the cheap fusion head (``model.forward_embeddings``) over cached
embeddings. The tables can outlive a game: the runs that share an encoder lend
them to each other (:mod:`core.explain._reuse`). A model that cannot be
factorised (no ``encode``/``forward_embeddings``, ``factorisable`` or
``factorizable = False``, or an ``early`` run) is played unfactorised: every
coalition runs the whole model on the masked inputs, in batches.

Costs are floating-point operations counted with ``torch.utils.flop_counter``
once per architecture and input shape (:func:`counted_flops`: matrix products
and convolutions), never timed, so every choice made from them is the same on
any machine.
"""
from __future__ import annotations

import functools
import json
from typing import Any, Callable, Hashable, Mapping, Sequence

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from core.errors import ConfigError
from core.explain._maskers import Masker

#: Encoder calls take at most ENCODER_BATCH rows and about ENCODER_BATCH_ELEMENTS input
#: elements, but at least ENCODER_MIN_BATCH rows (measured on CPU, one thread: the small CNN on
#: 48 px images runs fastest per row at batch 4, MiniLM on short texts at the largest batches, the
#: RGB-D SlowFast on 8 x 64 x 64 clips at batch 4: 1.6 ms per row against 5.0 ms one at a time);
#: head calls take HEAD_BATCH rows.
ENCODER_BATCH = 256
ENCODER_BATCH_ELEMENTS = 32_768
ENCODER_MIN_BATCH = 4
HEAD_BATCH = 4096


def is_factorisable(model: Any) -> bool:
    """Whether the model exposes per-modality ``encode`` and a head ``forward_embeddings``."""
    if getattr(model, "factorisable", True) is False or getattr(model, "factorizable", True) is False:
        return False
    return callable(getattr(model, "encode", None)) and callable(getattr(model, "forward_embeddings", None))


def _repeat_inputs(inputs: dict[str, torch.Tensor], batch: int) -> dict[str, torch.Tensor]:
    return Masker._repeat(inputs, batch, skip=())


def encoder_batch_size(inputs: Mapping[str, Any], limit: int = ENCODER_BATCH) -> int:
    """Rows per encoder call for one sample's inputs: about ENCODER_BATCH_ELEMENTS input elements,
    at least ENCODER_MIN_BATCH (a video clip alone is more elements than that budget)."""
    per_row = sum(int(v[0].numel()) for v in inputs.values() if isinstance(v, torch.Tensor) and v.ndim >= 1)
    return int(max(1, min(limit, max(ENCODER_MIN_BATCH, ENCODER_BATCH_ELEMENTS // max(1, per_row)))))


#: FLOPs per row, keyed by (architecture, input shapes).
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
    with FlopCounterMode(display=False) as counter:
        out = fn(inputs)
    per_row = float(counter.get_total_flops()) / max(1, int(out.shape[0]))
    if len(_FLOP_CACHE) > 4096:
        _FLOP_CACHE.clear()
    _FLOP_CACHE[key] = per_row
    return out, per_row


class EmbeddingTable:
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
    the whole model on masked inputs. ``shared`` (a :class:`~core.explain.SharedTables`)
    lends the tables of modalities given a key in ``table_keys``: the games of runs with the
    same encoder, sample and players (:func:`~core.explain.table_key`) encode each masked
    variant once between them.
    """

    def __init__(self, model: Any, inputs: Mapping[str, dict[str, torch.Tensor]], maskers: Mapping[str, Masker],
                 players: Sequence[str], *, factorised: bool, encoder_batch: int | None = None,
                 head_batch: int = HEAD_BATCH, shared: Any = None,
                 table_keys: Mapping[str, Hashable | None] | None = None) -> None:
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
        self.tables: dict[str, EmbeddingTable] = {}
        self.shared_tables: list[str] = []  # modalities whose table an earlier game (another run) made
        self._encoded_before: dict[str, int] = {}
        if self.factorised:
            keys = dict(table_keys or {})
            for m in self.modalities:
                key = keys.get(m) if shared is not None else None
                table = shared.get(key) if key is not None else None
                if table is None:
                    encode = functools.partial(model.encode, m)
                    module = model.encoders[m] if hasattr(model, "encoders") else model
                    table = EmbeddingTable(encode, self.maskers.get(m) if m in self.players else None,
                                           self.inputs[m], batches[m], module=module)
                    if key is not None:
                        shared.put(key, table)
                    self._encoded_before[m] = 0
                else:
                    self.shared_tables.append(m)
                    self._encoded_before[m] = table.encoded
                self.tables[m] = table

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
        """Rows each modality's encoder ran on for this game (rows an earlier game encoded into a
        shared table are not counted again)."""
        return {m: t.encoded - self._encoded_before.get(m, 0) for m, t in self.tables.items()}

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


def output_function(kind: str, class_index: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Logits ``(B, classes)`` -> the explained output ``(B,)``: the logit of ``class_index``
    for ``kind == "logit"``, else its softmax probability (float64)."""
    if kind == "logit":
        return lambda logits: logits[:, class_index].double()
    return lambda logits: torch.softmax(logits.double(), dim=-1)[:, class_index]
