"""Embedding tables shared by the runs of an experiment: each masked variant encoded once.

Every fused run of an experiment whose modality encoder comes from the same
unimodal run (:func:`core.robustness.encoder_source`, the rule the robustness
tables and the blame share embeddings by) plays, for one sample, games whose
per-modality sub-masks overlap: the estimators draw their coalitions from the
seed and the players' counts only, and exact enumeration visits every sub-mask.
:class:`SharedTables` keeps the :class:`~core.explain.SampleGame`'s embedding
tables between the runs' games, keyed by :func:`table_key`:

* the encoder: the experiment folder, the encoder source, the encoder's
  architecture and a digest of its weights (:func:`encoder_identity`), so a run
  with another encoder never reads another's rows;
* the sample: its id and a digest of its prepared inputs;
* the players: the masker's class and every attribute that decides what a
  masked variant is (grid, segments, token positions, fill; :func:`masker_key`).

A model whose ``encode`` is not the plain per-modality encoder (an adaptive
run given its policy's decisions, whose embedding depends on them) gets no key
and keeps tables of its own. Memory is bounded by sample (least recently used
samples are dropped, ``max_samples``); the precompute
(:func:`core.explain.explain_runs`) loops samples outermost and runs inside,
so one sample's tables serve every run before the next sample's are made.
"""
from __future__ import annotations

import hashlib
import json
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Hashable, Mapping

import numpy as np
import torch

from core.explain._game import EmbeddingTable, _architecture_key
from core.model import MultimodalClassifier
from core.robustness import encoder_source

#: samples whose tables :class:`SharedTables` keeps by default (the precompute needs one at a time)
SHARED_SAMPLES = 2


@dataclass(frozen=True)
class TableKey:
    """What decides one modality's embedding table of one sample (see the module docstring)."""

    sample: str
    modality: str
    encoder: Hashable
    inputs: str
    players: str


class SharedTables:
    """Embedding tables lent between the games of runs that share an encoder, least recently used
    samples dropped beyond ``max_samples``. ``hits`` / ``misses`` count the tables lent and made."""

    def __init__(self, max_samples: int = SHARED_SAMPLES) -> None:
        self.max_samples = max(1, int(max_samples))
        self._samples: OrderedDict[str, dict[TableKey, EmbeddingTable]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: TableKey) -> EmbeddingTable | None:
        tables = self._samples.get(key.sample)
        table = None if tables is None else tables.get(key)
        if table is None:
            self.misses += 1
            return None
        self._samples.move_to_end(key.sample)
        self.hits += 1
        return table

    def put(self, key: TableKey, table: EmbeddingTable) -> None:
        self._samples.setdefault(key.sample, {})[key] = table
        self._samples.move_to_end(key.sample)
        while len(self._samples) > self.max_samples:
            self._samples.popitem(last=False)

    def __len__(self) -> int:
        return sum(len(t) for t in self._samples.values())

    @property
    def samples(self) -> list[str]:
        """The samples whose tables are kept, least recently used first."""
        return list(self._samples)


def _digest_update(h: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"tensor{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    elif isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        h.update(f"array{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    elif isinstance(value, (str, int, float, bool, type(None), np.generic)):
        h.update(repr(value).encode())
    elif isinstance(value, (list, tuple)):
        h.update(f"{type(value).__name__}{len(value)}[".encode())
        for v in value:
            _digest_update(h, v)
        h.update(b"]")
    elif isinstance(value, Mapping):
        h.update(b"{")
        for k in sorted(value, key=str):
            h.update(repr(k).encode())
            _digest_update(h, value[k])
        h.update(b"}")
    elif hasattr(value, "n_features") and hasattr(value, "apply"):  # a masker inside a masker (a subset)
        h.update(masker_key(value).encode())
    else:  # anything else cannot be fingerprinted: never equal to another object's
        h.update(f"{type(value).__qualname__}@{id(value)}".encode())


def input_digest(inputs: Mapping[str, Any]) -> str:
    """A digest of one sample's prepared inputs of one modality (every tensor's shape, type and bytes)."""
    h = hashlib.blake2b(digest_size=16)
    _digest_update(h, dict(inputs))
    return h.hexdigest()


def masker_key(masker: Any) -> str:
    """A digest of what decides a masker's masked variants: its class and every attribute (grid,
    segments, token positions, fill, a subset's kept players)."""
    if masker is None:
        return "none"
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{type(masker).__module__}.{type(masker).__qualname__}".encode())
    _digest_update(h, {k: v for k, v in vars(masker).items() if not k.startswith("__")})
    return h.hexdigest()


#: (architecture, weights digest) of each encoder module seen (computed once per loaded module)
_MODULES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def weights_digest(module: Any) -> str:
    """A digest of a module's parameters and buffers."""
    h = hashlib.blake2b(digest_size=16)
    state = module.state_dict() if hasattr(module, "state_dict") else {}
    for name in sorted(state):
        h.update(name.encode())
        _digest_update(h, state[name])
    return h.hexdigest()


def _module_identity(module: Any) -> tuple[str, str]:
    try:
        return _MODULES[module]
    except (KeyError, TypeError):
        pass
    out = (_architecture_key(module), weights_digest(module))
    try:
        _MODULES[module] = out
    except TypeError:  # not weak-referenceable: computed again next time
        pass
    return out


def encoder_identity(run: Any, model: Any, modality: str) -> Hashable | None:
    """Which encoder embeds ``modality`` in ``run``'s model: (experiment folder, encoder source,
    its configuration, architecture, weights digest); None where the model's ``encode`` is not the
    plain encoder (its embeddings depend on more than the encoder and the input: never shared)."""
    if getattr(type(model), "encode", None) is not MultimodalClassifier.encode:
        return None
    config = getattr(run, "config", None) or {}
    source = encoder_source(config, modality) if "run" in config else None
    exp_dir = str(Path(run.path).resolve().parent)
    spec = json.dumps((config.get("encoders") or {}).get(modality), sort_keys=True, default=str)
    return (exp_dir, source, spec, *_module_identity(model.encoders[modality]))


def table_key(encoder: Hashable, modality: str, sample_id: str, masker: Any,
              inputs: Mapping[str, Any]) -> TableKey:
    """The key of one modality's embedding table of one sample (see the module docstring)."""
    return TableKey(sample=str(sample_id), modality=str(modality), encoder=encoder, inputs=input_digest(inputs),
                    players=masker_key(masker))
