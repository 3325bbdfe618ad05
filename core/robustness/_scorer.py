"""One run scored under a condition: clean, some modalities missing (filled by the run's own rule), or
one modality perturbed (see ``docs/ROBUSTNESS.md``).

A missing modality is filled by the run's own rule (:func:`missing_rule`): a late fusion
renormalises its vote over the modalities present; a head trained with modality dropout uses
its learned missing-modality embedding; an early fusion sets the modality's channels to 0, the
dataset mean after normalisation; every other head (intermediate, classical, unimodal) gets the
training split's mean embedding of the modality. Runs of those strategies are scored on the bank's
embeddings (only their head runs); any other model end to end on its prepared inputs.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from core.bundle import Run
from core.errors import BundleError
from core.model import IntermediateHead, LateHead
from core.robustness._bank import EmbeddingBank, encoder_source
from core.robustness._noise import noises_for
from core.robustness._report import robustness_command
from core.threads import torch_threads
from core.train import EMBED_BATCH

#: How each rule fills a missing modality, in words (``robustness.json`` stores the key).
RULES = {
    "renormalised": "late fusion: the vote is renormalised over the modalities present",
    "learned": "the missing-modality embedding the head learned with modality dropout",
    "train-mean": "the training split's mean embedding of the modality",
    "zeros": "early fusion: the modality's channels set to 0 (the dataset mean after normalisation)",
}


#: Strategies scored on the per-modality embeddings (the others end to end on their prepared inputs).
FACTORISED = ("unimodal", "intermediate", "late", "classical")


def missing_rule(config: dict[str, Any]) -> str | None:
    """The key of :data:`RULES` a run (by its ``config.json``) fills a missing modality with."""
    strategy = config.get("strategy")
    if strategy == "late":
        return "renormalised"
    if strategy == "early":
        return "zeros"
    if strategy == "intermediate" and (config.get("head") or {}).get("modality_dropout"):
        return "learned"
    return "train-mean" if strategy in FACTORISED else None


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(1) == y).float().mean()) if len(y) else float("nan")


class Scorer:
    """One run's predictions under a condition (clean, some modalities absent, one modality perturbed)."""

    def __init__(self, run: Run, bank: EmbeddingBank) -> None:
        self.run, self.bank = run, bank
        self.model = run.model()
        self.modalities = list(run.modalities)
        self.rule = missing_rule(run.config)
        classes = list(run.classes)
        unknown = sorted(set(bank.labels) - set(classes))
        if unknown:
            raise BundleError(f"run {run.name} does not know class(es) {unknown[:5]} of its dataset",
                              fix=f"retrain it: {robustness_command(run.path)} needs a run of the current dataset")
        self.y = torch.as_tensor([classes.index(c) for c in bank.labels], dtype=torch.long)
        strategy = run.config.get("strategy")
        # on embeddings: the strategies whose output depends on each modality only through its encoder's
        # embedding; early fusion and any other model: end to end on the prepared inputs
        self.factorised = strategy in FACTORISED and bool(getattr(self.model, "factorizable", True))
        self.fillable = self.factorised or strategy == "early"
        if self.factorised:
            self.sources = {m: encoder_source(run.config, m) for m in self.modalities}
            self.encoders = {m: self.model.encoders[m] for m in self.modalities}

    # -------------------------------------------------------------- factorised runs (on embeddings)

    def _clean_embeddings(self) -> list[torch.Tensor]:
        return [self.bank.clean(self.sources[m], self.encoders[m], m, self.run) for m in self.modalities]

    def _fills(self) -> list[torch.Tensor]:
        return [self.bank.train_mean(self.sources[m], self.encoders[m], m) for m in self.modalities]

    @torch.no_grad()
    def _head(self, embs: list[torch.Tensor], present: np.ndarray | None = None) -> torch.Tensor:
        head = self.model.head
        with torch_threads("head"):
            if present is None:
                return self.model.forward_embeddings(embs)
            keep = torch.as_tensor(present, dtype=torch.bool)
            if isinstance(head, IntermediateHead) and head.missing is not None:
                return head(head.fill_missing(embs, keep))
            fills = self._fills()
            filled = [torch.where(keep[:, i:i + 1], x, fills[i][None, :].to(x)) for i, x in enumerate(embs)]
            if isinstance(head, LateHead):
                return head(filled, keep)
            return head(filled)

    # -------------------------------------------------------------- early fusion (joint input)

    @torch.no_grad()
    def _joint(self, items: dict[str, list[Any]], present: np.ndarray | None = None) -> torch.Tensor:
        out = []
        n = len(self.bank.ids)
        with torch_threads("encoder"):
            for s in range(0, n, EMBED_BATCH):
                chunk = slice(s, min(s + EMBED_BATCH, n))
                inputs = self.model.prepare({m: items[m][chunk] for m in self.modalities})
                if present is not None:
                    for i, m in enumerate(self.modalities):
                        gone = torch.as_tensor(~present[chunk, i])
                        if gone.any():
                            clips = inputs[m]["clips"].clone()
                            clips[gone] = 0.0  # the dataset mean after normalisation
                            inputs[m] = {**inputs[m], "clips": clips}
                out.append(self.model(inputs))
        return torch.cat(out) if out else torch.zeros(0, len(self.run.classes))

    # -------------------------------------------------------------- conditions

    def clean(self) -> float:
        if self.factorised:
            return _accuracy(self._head(self._clean_embeddings()), self.y)
        return _accuracy(self._joint({m: self.bank.raw(m) for m in self.modalities}), self.y)

    def absent(self, present: np.ndarray) -> float | None:
        """Accuracy with the modalities where ``present`` (n, M) is False filled by the run's rule (None
        for a model that has no rule)."""
        if not self.fillable:
            return None
        if self.factorised:
            return _accuracy(self._head(self._clean_embeddings(), present), self.y)
        return _accuracy(self._joint({m: self.bank.raw(m) for m in self.modalities}, present), self.y)

    def noisy(self, modality: str, noise: str, level: float) -> float:
        if self.factorised:
            embs = self._clean_embeddings()
            i = self.modalities.index(modality)
            embs[i] = self.bank.noisy(self.sources[modality], self.encoders[modality], modality, noise, level)
            return _accuracy(self._head(embs), self.y)
        items = {m: self.bank.raw(m) for m in self.modalities}
        items[modality] = self.bank.perturbed(modality, noise, level)
        return _accuracy(self._joint(items), self.y)

    def curves(self, modalities: Sequence[str], levels: Sequence[float], clean: float | None = None
               ) -> dict[str, dict[str, list[float]]]:
        """Accuracy at each level of every noise of ``modalities`` (level 0: the clean accuracy)."""
        clean = self.clean() if clean is None else clean
        out: dict[str, dict[str, list[float]]] = {}
        for m in modalities:
            out[m] = {}
            for noise in noises_for(self.bank.kind(m)):
                out[m][noise] = [clean if lv == 0.0 else self.noisy(m, noise, lv) for lv in levels]
        return out
