"""The shared embedding bank of one experiment: the test subsample, its raw items and every modality's
embeddings under each condition, keyed by the unimodal run the encoder comes from.

A fusion run's encoders are its unimodal runs' encoders, so a perturbed modality is encoded once per
noise and level and reused by every head that shares the encoder; the clean embeddings are the
runs' stored test embeddings; the fill of a missing modality is the training split's mean embedding
from the stage-2 cache.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from core.bundle import Run
from core.data import load_experiment_dataset
from core.errors import BundleError
from core.kinds import canonical_kind
from core.robustness._noise import fit_noise, get_noise, perturb_items
from core.robustness._settings import RobustnessSettings
from core.robustness._summary import missing_table
from core.threads import torch_threads
from core.train import cache_path, encode_items, load_cached_embeddings


def subsample(ids: Sequence[str], n: int, seed: int) -> list[str]:
    """All ``ids``, or the first ``n`` of a ``default_rng(seed)`` shuffle, kept in their order."""
    ids = [str(i) for i in ids]
    if n >= len(ids):
        return ids
    pick = np.sort(np.random.default_rng(seed).permutation(len(ids))[: int(n)])
    return [ids[i] for i in pick]


def encoder_source(config: dict[str, Any], modality: str) -> str:
    """Which runs share the encoder of ``modality``: the unimodal run it comes from."""
    if config.get("strategy") == "unimodal":
        return str(config["run"])
    return str((config.get("unimodal_runs") or {}).get(modality) or f"{config['run']}:{modality}")


class EmbeddingBank:
    """One experiment's test subsample, raw items and embeddings per (encoder source, modality, noise,
    level), computed once and shared by every run.

    ``setup_seconds``: the time spent on that shared work so far (reading items, fitting noises, encoding),
    which the runs after the one that paid it reuse; ``encode_seconds`` the encoding part of it."""

    def __init__(self, exp_dir: str | Path, settings: RobustnessSettings) -> None:
        self.exp_dir = Path(exp_dir)
        self.settings = settings
        self.ds, _ = load_experiment_dataset(self.exp_dir)
        self.ids = subsample(self.ds.ids("test"), settings.samples, settings.seed)
        self.labels = [str(v) for v in self.ds.rows(self.ids)["label"]] if self.ids else []
        self._raw: dict[str, list[Any]] = {}
        self._emb: dict[tuple, torch.Tensor] = {}
        self._stats: dict[tuple[str, str], dict[str, Any]] = {}
        self._means: dict[str, torch.Tensor] = {}
        self.encode_seconds = 0.0
        self.encodings = 0
        self.setup_seconds = 0.0
        self._depth = 0

    @contextmanager
    def _setup(self) -> Iterator[None]:
        """Time shared work once, however deeply one cached step calls another."""
        self._depth += 1
        t0 = time.perf_counter() if self._depth == 1 else 0.0
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.setup_seconds += time.perf_counter() - t0

    def encoded(self, source: str, modality: str) -> bool:
        """Whether embeddings of ``modality`` by the encoder of ``source`` are already in the bank."""
        return any(k[0] == source and k[1] == modality for k in self._emb)

    def kind(self, modality: str) -> str:
        return canonical_kind(self.ds.modalities[modality])

    def raw(self, modality: str) -> list[Any]:
        if modality not in self._raw:
            with self._setup():
                self._raw[modality] = self.ds.items(modality, self.ids)
        return self._raw[modality]

    def stats(self, modality: str, noise: str) -> dict[str, Any]:
        key = (modality, noise)
        if key not in self._stats:
            with self._setup():
                fits = get_noise(self.kind(modality), noise).fit is not None
                train = self.ds.items(modality, self.ds.ids("train")) if fits else []
                self._stats[key] = fit_noise(self.kind(modality), noise, train)
        return self._stats[key]

    def perturbed(self, modality: str, noise: str, level: float, n: int | None = None) -> list[Any]:
        """The first ``n`` (default all) raw items of ``modality`` with ``noise`` at ``level``."""
        items, ids = self.raw(modality), self.ids
        if n is not None:
            items, ids = items[:n], ids[:n]
        return perturb_items(self.kind(modality), noise, items, level, ids=ids, modality=modality,
                             seed=self.settings.seed, stats=self.stats(modality, noise))

    def _encode(self, encoder: Any, items: list[Any]) -> torch.Tensor:
        t0 = time.perf_counter()
        with torch_threads("encoder"):
            out = encode_items(encoder, items)
        self.encode_seconds += time.perf_counter() - t0
        self.encodings += 1
        return out

    def clean(self, source: str, encoder: Any, modality: str, run: Run) -> torch.Tensor:
        """The clean test embeddings: the run's stored ones (the subsample's rows), else encoded."""
        key = (source, modality, None, 0.0)
        if key not in self._emb:
            with self._setup():
                self._emb[key] = self._clean(encoder, modality, run)
        return self._emb[key]

    def _clean(self, encoder: Any, modality: str, run: Run) -> torch.Tensor:
        stored = None
        try:
            stored = run.embeddings().get(modality)
        except BundleError:
            pass
        pos = {str(i): k for k, i in enumerate(run.predictions["id"].astype(str))}
        if stored is not None and all(i in pos for i in self.ids):
            return torch.as_tensor(stored[[pos[i] for i in self.ids]]).float()
        return self._encode(encoder, self.raw(modality))

    def noisy(self, source: str, encoder: Any, modality: str, noise: str, level: float) -> torch.Tensor:
        key = (source, modality, noise, float(level))
        if key not in self._emb:
            with self._setup():
                self._emb[key] = self._encode(encoder, self.perturbed(modality, noise, level))
        return self._emb[key]

    def train_mean(self, source: str, encoder: Any, modality: str) -> torch.Tensor:
        """The training split's mean embedding: from the stage-2 cache (what the heads trained on),
        else the training items encoded."""
        if source not in self._means:
            with self._setup():
                self._means[source] = self._train_mean(source, encoder, modality)
        return self._means[source]

    def _train_mean(self, source: str, encoder: Any, modality: str) -> torch.Tensor:
        train = self.ds.ids("train")
        if cache_path(self.exp_dir, source).is_file():
            try:
                cached_ids, cached = load_cached_embeddings(self.exp_dir, source)
                pos = {i: k for k, i in enumerate(cached_ids)}
                rows = [pos[i] for i in train if i in pos]
                if rows:
                    return cached[rows].float().mean(0)
            except (BundleError, KeyError, ValueError):
                pass
        return self._encode(encoder, self.ds.items(modality, train)).mean(0)

    def missing_table(self, modalities: Sequence[str], rate: float) -> np.ndarray:
        """The seeded missing-at-random table over the experiment's modalities, columns ``modalities``."""
        every = list(self.ds.modalities)
        table = missing_table(self.ids, every, rate, self.settings.seed)
        return table[:, [every.index(m) for m in modalities]]
