"""Multimodal classifiers: per-modality encoders feeding one head.

The model is factored on purpose: ``encode(modality, inputs)`` runs one
modality's encoder, ``head(embeddings)`` runs the cheap part. Training stage 2
fits heads on cached embeddings, and explanations recompute only the modality
whose tokens or patches they mask.

Heads, selected by ``strategy``:
* ``unimodal``: one modality, a classifier on its embedding.
* ``intermediate``: a registered fusion method, then a linear classifier.
* ``late``: the unimodal classifiers' probabilities, averaged
  (``late-average``) or combined with learned modality weights
  (``late-weighted``, weights fitted on the validation split).
* ``classical``: a scikit-learn estimator (``logreg``, ``svc-linear``,
  ``svc-rbf``) on the concatenated embeddings (``-early``), on their per-modality
  PCA reductions (``-intermediate``) or on the unimodal classifiers'
  probabilities (``-late``, stacking), computed from its exported arrays
  (:class:`core.fusion.ClassicalClassifier`).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from core.encoders import Encoder, create_encoder
from core.errors import ConfigError
from core.fusion import ClassicalClassifier, create_fusion, parse_classical


class ClassifierHead(nn.Module):
    """Linear classifier, or a one-hidden-layer MLP when ``hidden > 0``."""

    def __init__(self, in_dim: int, n_classes: int, hidden: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        if hidden > 0:
            self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.ReLU(),
                                     nn.Dropout(dropout), nn.Linear(hidden, n_classes))
        else:
            self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class UnimodalHead(nn.Module):
    strategy = "unimodal"

    def __init__(self, in_dims: list[int], n_classes: int, hidden: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.classifier = ClassifierHead(in_dims[0], n_classes, hidden, dropout)

    def fuse(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        return xs[0]

    def forward(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.classifier(xs[0])


class IntermediateHead(nn.Module):
    strategy = "intermediate"

    def __init__(self, in_dims: list[int], n_classes: int, fusion: str, dim: int = 128, dropout: float = 0.0,
                 fusion_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.fusion = create_fusion(fusion, in_dims, dim=dim, **(fusion_kwargs or {}))
        self.classifier = ClassifierHead(self.fusion.out_dim, n_classes, 0, dropout)

    def fuse(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.fusion(list(xs))

    def forward(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.fuse(xs))


class LateHead(nn.Module):
    """Vote of the unimodal classifiers; ``fuse`` returns the combined probabilities."""

    strategy = "late"

    def __init__(self, in_dims: list[int], n_classes: int, fusion: str, hidden: list[int] | None = None,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if fusion not in ("late-average", "late-weighted"):
            raise ConfigError(f"unknown late fusion {fusion!r}", fix="use late-average or late-weighted")
        hidden = hidden or [0] * len(in_dims)
        self.voters = nn.ModuleList(ClassifierHead(d, n_classes, h, dropout) for d, h in zip(in_dims, hidden))
        self.learn_weights = fusion == "late-weighted"
        self.weight_logits = nn.Parameter(torch.zeros(len(in_dims)), requires_grad=self.learn_weights)

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.weight_logits, 0)

    def fuse(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        probs = torch.stack([torch.softmax(v(x), -1) for v, x in zip(self.voters, xs)], 1)  # (B, M, C)
        return (probs * self.weights()[None, :, None]).sum(1)

    def forward(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.log(self.fuse(xs).clamp_min(1e-12))


class ClassicalHead(nn.Module):
    """A classical head ``fusion`` = ``<estimator>-<aggregation>`` (``logreg-early``, ``svc-rbf-late``), kept
    as ``method``.

    Its features are the concatenated embeddings (``early``, ``intermediate``:
    the estimator's pipeline reduces each modality's block by PCA) or, for
    ``late``, the concatenated probabilities of the unimodal classifiers
    (``voters``, copied from the unimodal runs and frozen). ``forward`` returns
    log-probabilities; ``fuse`` the estimator's input (standardised, reduced).
    ``settings`` and ``fitted`` go to ``config.json`` (:meth:`config`), the
    arrays to ``model.safetensors``; :meth:`to_sklearn` rebuilds the fitted
    scikit-learn pipeline on :meth:`features`.
    """

    strategy = "classical"

    def __init__(self, in_dims: list[int], n_classes: int, fusion: str, settings: dict[str, Any] | None = None,
                 fitted: dict[str, Any] | None = None, hidden: list[int] | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        estimator, self.aggregation = parse_classical(fusion)
        self.method, self.in_dims, self.n_classes = fusion, list(in_dims), int(n_classes)
        self.hidden = list(hidden or [0] * len(in_dims)) if self.aggregation == "late" else None
        blocks = self.in_dims
        if self.hidden is not None:
            self.voters = nn.ModuleList(ClassifierHead(d, n_classes, h, dropout) for d, h in zip(in_dims, self.hidden))
            self.voters.requires_grad_(False)
            blocks = [self.n_classes] * len(self.in_dims)
        self.estimator = ClassicalClassifier(estimator, blocks, n_classes, reduce=self.aggregation == "intermediate",
                                             settings=settings, fitted=fitted)

    def features(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The estimator pipeline's input: concatenated embeddings, or the voters' concatenated probabilities."""
        if self.hidden is None:
            return torch.cat(list(xs), dim=-1)
        return torch.cat([torch.softmax(v(x), -1) for v, x in zip(self.voters, xs)], dim=-1)

    def fit(self, xs: Sequence[torch.Tensor], y: torch.Tensor, xs_cal: Sequence[torch.Tensor] | None = None,
            y_cal: torch.Tensor | None = None, seed: int = 0) -> ClassicalHead:
        """Fit the estimator on ``(xs, y)``; an SVM's temperature on ``(xs_cal, y_cal)`` when given, else on
        cross-fitted decisions of ``(xs, y)``. Returns self."""
        self.eval()
        with torch.no_grad():
            x = self.features(xs).double().numpy()
            x_cal = None if xs_cal is None else self.features(xs_cal).double().numpy()
        self.estimator.fit(x, y.numpy(), x_cal, None if y_cal is None else y_cal.numpy(), seed=seed)
        return self

    def config(self) -> dict[str, Any]:
        """The JSON config that rebuilds this head (``build_head``), fitted settings included."""
        cfg = {"type": "classical", "in_dims": self.in_dims, "n_classes": self.n_classes, "fusion": self.method,
               "settings": dict(self.estimator.settings), "fitted": self.estimator.fitted}
        if self.hidden is not None:
            cfg["hidden"] = self.hidden
        return cfg

    def check_arrays(self, state: dict[str, torch.Tensor]) -> None:
        """Refuse stored arrays (keys relative to the head) that do not match the fitted settings."""
        prefix = "estimator."
        problems = self.estimator.array_problems({k[len(prefix):]: v for k, v in state.items()
                                                  if k.startswith(prefix)})
        if problems:
            raise ValueError(f"classical head {self.method}: {'; '.join(problems)}")

    def to_sklearn(self) -> Any:
        return self.estimator.to_sklearn()

    def fuse(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.estimator.transform(self.features(xs)).float()

    def forward(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.estimator(self.features(xs))


def build_head(cfg: dict[str, Any]) -> nn.Module:
    """Rebuild a head from its JSON config (``{"type": ..., **kwargs}``)."""
    kwargs = dict(cfg)
    kind = kwargs.pop("type")
    heads = {"unimodal": UnimodalHead, "intermediate": IntermediateHead, "late": LateHead, "classical": ClassicalHead}
    if kind not in heads:
        raise ConfigError(f"unknown head type {kind!r}", fix=f"use one of: {', '.join(heads)}")
    return heads[kind](**kwargs)


_SHARED_FROZEN: dict[str, Encoder] = {}


def build_encoder(spec: dict[str, Any]) -> Encoder:
    """Create an encoder from ``{"name", "kwargs"}``; frozen pretrained ones are shared, never mutated."""
    import json

    key = json.dumps(spec, sort_keys=True)
    if key in _SHARED_FROZEN:
        return _SHARED_FROZEN[key]
    enc = create_encoder(spec["name"], **spec.get("kwargs", {}))
    if not enc.saves_weights:
        enc.eval()
        _SHARED_FROZEN[key] = enc
    return enc


class MultimodalClassifier(nn.Module):
    """Encoders (one per modality, in order) plus a head, with the class names.

    ``factorizable``: the output depends on each modality only through
    ``encode(m, inputs[m])``, so explanations can cache per-modality embeddings.
    """

    factorizable = True

    def __init__(self, modalities: list[str], encoders: dict[str, Encoder], head: nn.Module,
                 classes: list[str]) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.encoders = nn.ModuleDict({m: encoders[m] for m in self.modalities})
        self.head = head
        self.classes = list(classes)

    def prepare(self, items: dict[str, Sequence[Any]]) -> dict[str, dict[str, torch.Tensor]]:
        return {m: self.encoders[m].prepare(items[m]) for m in self.modalities}

    def encode(self, modality: str, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.encoders[modality](inputs)

    def forward_embeddings(self, embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.head(list(embeddings))

    def fuse(self, embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.head.fuse(list(embeddings))

    def forward(self, inputs: dict[str, dict[str, torch.Tensor]]) -> torch.Tensor:
        return self.head([self.encode(m, inputs[m]) for m in self.modalities])

    def owned_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights the run saves: all but those of encoders whose weights are external (frozen, pretrained)."""
        external = tuple(f"encoders.{m}." for m in self.modalities if not self.encoders[m].saves_weights)
        return {k: v for k, v in self.state_dict().items() if not k.startswith(external)}

    def load_owned_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        check = getattr(self.head, "check_arrays", None)
        if callable(check):  # a head whose arrays follow its settings names the array that does not
            check({k[len("head."):]: v for k, v in state.items() if k.startswith("head.")})
        expected = self.owned_state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        if missing or unexpected:
            raise ValueError(f"weights do not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
        for k, v in state.items():
            if tuple(v.shape) != tuple(expected[k].shape):
                raise ValueError(f"weight {k} has shape {tuple(v.shape)}, the model expects {tuple(expected[k].shape)}")
        self.load_state_dict(state, strict=False)  # the key sets match; only external encoders are left out

    def n_params(self) -> int:
        seen: set[int] = set()
        total = 0
        for p in self.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
        return total


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    return F.softmax(logits.float(), dim=-1)


class EarlyFusionClassifier(MultimodalClassifier):
    """Early fusion: the modalities' raw inputs stacked on the channel axis into one encoder.

    Defined where modalities share a layout (RGB and depth clips of the same
    size: a 4-channel input). ``encoders[m]`` only preprocess modality ``m``
    (its channel slice of the joint normalisation), so maskers and the
    dashboard see the same per-modality inputs as for other runs; the model
    cannot be factorised per modality (``factorizable = False``).
    """

    factorizable = False

    def __init__(self, modalities: list[str], joint: Encoder, head: nn.Module, classes: list[str],
                 channels: dict[str, int]) -> None:
        from core.encoders._video import VideoEncoder

        views = {}
        for m in modalities:
            views[m] = VideoEncoder(in_channels=int(channels[m]), num_frames=joint.num_frames,
                                    image_size=joint.image_size, out_dim=joint.out_dim)
            views[m].saves_weights = False
        super().__init__(modalities, views, head, classes)
        self.joint = joint
        self.channels = {m: int(channels[m]) for m in modalities}
        self.sync_views()

    def sync_views(self) -> None:
        """Copy the joint encoder's per-channel statistics into the per-modality views."""
        start = 0
        for m in self.modalities:
            c = self.channels[m]
            self.encoders[m].mean.copy_(self.joint.mean[start:start + c])
            self.encoders[m].std.copy_(self.joint.std[start:start + c])
            start += c

    def joint_embedding(self, inputs: dict[str, dict[str, torch.Tensor]]) -> torch.Tensor:
        clips = torch.cat([inputs[m]["clips"] for m in self.modalities], dim=1)
        return self.joint({"clips": clips})

    def encode(self, modality: str, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError("an early-fusion model has no per-modality embedding; use joint_embedding")

    def forward_embeddings(self, embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.head([embeddings[0]])

    def fuse(self, embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
        return embeddings[0]

    def forward(self, inputs: dict[str, dict[str, torch.Tensor]]) -> torch.Tensor:
        return self.head([self.joint_embedding(inputs)])

    def load_owned_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        super().load_owned_state_dict(state)
        self.sync_views()


def stack_channels(per_modality: Sequence[Sequence[Any]]) -> list[Any]:
    """Stack raw clips of several modalities on the channel axis (uint8 scaled to [0, 1])."""
    import numpy as np

    out = []
    for clips in zip(*per_modality):
        parts = []
        for c in clips:
            a = np.asarray(c)
            a = a[..., None] if a.ndim == 3 else a
            parts.append(a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32))
        shapes = {p.shape[:3] for p in parts}
        if len(shapes) != 1:
            from core.errors import DataError

            raise DataError(f"clips to stack for early fusion differ in frames/size: {sorted(shapes)}",
                            fix="give every modality the same frame count and size, or set repair_video = true in "
                                "[dataset] of the experiment file")
        out.append(np.concatenate(parts, axis=-1))
    return out
