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
* ``adaptive``: a policy picks which modalities run on each temporal segment
  (AdaMML, :class:`core.fusion.AdaptiveHead`; the model is an
  :class:`AdaptiveClassifier`).
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
from core.fusion import (AdaptiveHead, ClassicalClassifier, create_fusion, parse_classical, segment_bounds,
                         segment_summary)
from core.kinds import SubsetMasker


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
    """A registered fusion method, then a linear classifier.

    ``modality_dropout`` (one probability per modality, or None): while training, each
    modality's embedding of a sample is replaced by a learned missing-modality embedding
    (``missing[i]``, stored with the weights) with that probability; a sample never loses every
    modality at once (it keeps one, drawn uniformly). At test time :meth:`fill_missing` puts the same
    learned embedding in place of a modality that is absent.
    """

    strategy = "intermediate"

    def __init__(self, in_dims: list[int], n_classes: int, fusion: str, dim: int = 128, dropout: float = 0.0,
                 fusion_kwargs: dict[str, Any] | None = None, modality_dropout: list[float] | None = None) -> None:
        super().__init__()
        self.fusion = create_fusion(fusion, in_dims, dim=dim, **(fusion_kwargs or {}))
        self.classifier = ClassifierHead(self.fusion.out_dim, n_classes, 0, dropout)
        self.modality_dropout = None
        self.missing: nn.ParameterList | None = None
        if modality_dropout is not None:
            probs = [float(p) for p in modality_dropout]
            if len(probs) != len(in_dims) or not all(0.0 <= p < 1.0 for p in probs):
                raise ConfigError(f"modality_dropout {probs} must give one probability in [0, 1) per modality "
                                  f"({len(in_dims)})", fix="set [train.fusion] modality_dropout to a number in [0, 1)")
            self.modality_dropout = probs
            self.missing = nn.ParameterList(nn.Parameter(torch.zeros(d)) for d in in_dims)

    def init_missing(self, means: Sequence[torch.Tensor]) -> None:
        """Start the learned missing-modality embeddings at the training split's mean embeddings."""
        if self.missing is not None:
            with torch.no_grad():
                for p, m in zip(self.missing, means):
                    p.copy_(m.to(p))

    def fill_missing(self, xs: Sequence[torch.Tensor], present: torch.Tensor) -> list[torch.Tensor]:
        """``xs`` with the learned missing embedding where ``present[:, i]`` is False (needs ``missing``)."""
        if self.missing is None:
            raise ConfigError("this head learned no missing-modality embedding",
                              fix="train it with [train.fusion] modality_dropout > 0")
        return [torch.where(present[:, i:i + 1], x, self.missing[i].to(x)[None, :]) for i, x in enumerate(xs)]

    def _drop(self, xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        probs = torch.tensor(self.modality_dropout)
        batch = xs[0].shape[0]
        present = torch.rand(batch, len(xs)) >= probs[None, :]
        none = ~present.any(1)
        if none.any():  # never every modality at once: such a sample keeps one, drawn uniformly
            present[none.nonzero()[:, 0], torch.randint(len(xs), (int(none.sum()),))] = True
        return self.fill_missing(xs, present.to(xs[0].device))

    def fuse(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        if self.training and self.missing is not None:
            xs = self._drop(xs)
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

    def fuse(self, xs: Sequence[torch.Tensor], present: torch.Tensor | None = None) -> torch.Tensor:
        """The weighted vote; with ``present`` (B, M) bool, over the modalities present only (their
        weights renormalised per sample; a sample with none present keeps every vote)."""
        probs = torch.stack([torch.softmax(v(x), -1) for v, x in zip(self.voters, xs)], 1)  # (B, M, C)
        w = self.weights()[None, :].expand(probs.shape[0], -1)
        if present is not None:
            keep = present.to(w.device)
            keep = keep | ~keep.any(1, keepdim=True)  # none present: every vote
            w = w * keep
            w = w / w.sum(1, keepdim=True).clamp_min(1e-12)
        return (probs * w[:, :, None]).sum(1)

    def forward(self, xs: Sequence[torch.Tensor], present: torch.Tensor | None = None) -> torch.Tensor:
        return torch.log(self.fuse(xs, present).clamp_min(1e-12))


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
    heads = {"unimodal": UnimodalHead, "intermediate": IntermediateHead, "late": LateHead, "classical": ClassicalHead,
             "adaptive": AdaptiveHead}
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

        views, start = {}, 0
        depth = joint.depth_input
        for m in modalities:
            c = int(channels[m])
            # the view of the modality that holds the joint clip's depth channel reads it as the joint does
            inside = depth != "metres" and start <= joint.depth_channel < start + c
            views[m] = VideoEncoder(in_channels=c, num_frames=joint.num_frames, image_size=joint.image_size,
                                    out_dim=joint.out_dim, depth_input=depth if inside else "metres",
                                    depth_channel=joint.depth_channel - start if inside else -1)
            views[m].saves_weights = False
            start += c
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


class AdaptiveClassifier(MultimodalClassifier):
    """Adaptive fusion (AdaMML): the policy of an :class:`~core.fusion.AdaptiveHead` decides, per temporal
    segment, which *policy* modalities' encoders run; the *always-on* modalities run on the whole item.

    The encoders are the unimodal runs' (frozen when trained). A policy modality's prepared input is cut
    along its kind's time axis (``segment_inputs[m]``: ``{"key", "axis"}``, from
    :attr:`core.kinds.ModalityKind.segment_axis`) into ``segments`` parts, and its encoder runs on each
    part (a shorter clip or spectrogram), so running every segment costs about one whole item.

    Two paths, with the same result: :meth:`predict` (and ``forward``) decides first and encodes only the
    segments the policy keeps, which is where the saving is; :meth:`encode` + ``forward_embeddings`` encode
    every segment (the factorised contract: FLOP counts per part, reproducing stored predictions) and the
    head applies the decisions it makes from the summaries in those inputs.
    """

    def __init__(self, modalities: list[str], encoders: dict[str, Encoder], head: AdaptiveHead, classes: list[str],
                 segment_inputs: dict[str, dict[str, Any]]) -> None:
        super().__init__(modalities, encoders, head, classes)
        missing = [m for m in head.policy if m not in segment_inputs]
        if missing:
            raise ConfigError(f"no time axis is known for policy modality {', '.join(missing)}",
                              fix="rebuild the run (its config.json records each policy modality's time axis)")
        self.segment_inputs = {m: {"key": str(segment_inputs[m]["key"]), "axis": int(segment_inputs[m]["axis"])}
                               for m in head.policy}

    @property
    def policy(self) -> list[str]:
        return list(self.head.policy)

    @property
    def segments(self) -> int:
        return int(self.head.segments)

    def segment_parts(self, modality: str, inputs: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """The prepared inputs of ``modality`` cut into its ``segments`` parts along time."""
        key, axis = self.segment_inputs[modality]["key"], self.segment_inputs[modality]["axis"]
        x = inputs[key]
        return [{**inputs, key: x.narrow(axis, a, b - a)} for a, b in segment_bounds(int(x.shape[axis]), self.segments)]

    def summaries(self, modality: str, parts: Sequence[dict[str, torch.Tensor]]) -> torch.Tensor:
        """(B, S, F): the policy's cheap view of each segment (:func:`core.fusion.segment_summary`)."""
        key, axis = self.segment_inputs[modality]["key"], self.segment_inputs[modality]["axis"]
        return torch.stack([segment_summary(p[key], axis) for p in parts], dim=1)

    def encode(self, modality: str, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """A policy modality: every segment's ``[embedding, summary]``, flattened (B, S * (D + F)); an
        always-on modality: its embedding."""
        if modality not in self.segment_inputs:
            return self.encoders[modality](inputs)
        parts = self.segment_parts(modality, inputs)
        emb = torch.stack([self.encoders[modality](p) for p in parts], dim=1)
        return torch.cat([emb, self.summaries(modality, parts).to(emb.dtype)], dim=-1).flatten(1)

    def decisions(self, inputs: dict[str, dict[str, torch.Tensor]]) -> torch.Tensor:
        """The policy's decisions (B, S, K) bool, from the summaries and the always-on embeddings only."""
        always = {m: self.encoders[m](inputs[m]) for m in self.head.always_on}
        summ = {m: self.summaries(m, self.segment_parts(m, inputs[m])) for m in self.policy}
        return self.head.decisions(summ, always)

    def predict(self, inputs: dict[str, dict[str, torch.Tensor]],
                decisions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, decisions), encoding only the segments the policy uses (or the given ``decisions``)."""
        always = {m: self.encoders[m](inputs[m]) for m in self.head.always_on}
        parts = {m: self.segment_parts(m, inputs[m]) for m in self.policy}
        if decisions is None:
            decisions = self.head.decisions({m: self.summaries(m, parts[m]) for m in self.policy}, always)
        batch = int(decisions.shape[0])
        seg = {}
        for k, m in enumerate(self.policy):
            dim = self.head.in_dims[self.head.modalities.index(m)]
            out = torch.zeros(batch, self.segments, dim)
            for s, part in enumerate(parts[m]):
                rows = decisions[:, s, k].nonzero().flatten()
                if len(rows):
                    out[rows, s] = self.encoders[m]({key: v[rows] for key, v in part.items()}).float()
            seg[m] = out
        return self.head.combine(seg, always, decisions), decisions

    def forward(self, inputs: dict[str, dict[str, torch.Tensor]]) -> torch.Tensor:
        return self.predict(inputs)[0]

    def given_decisions(self, inputs: dict[str, dict[str, torch.Tensor]]) -> GivenDecisions:
        """This model with the policy's decisions for one sample (``inputs``, batch 1) fixed: what MM-SHAP of
        an adaptive run explains (masking an input never changes which segments run)."""
        with torch.no_grad():
            return GivenDecisions(self, self.decisions(inputs)[:1])


class GivenDecisions:
    """An :class:`AdaptiveClassifier` with one sample's decisions fixed (1, S, K), for explanations.

    It has the factorised contract (``encode``, ``forward_embeddings``), runs a policy modality's encoder
    on the used segments only, and narrows a policy modality's players to those that change a used
    segment (:meth:`narrow_maskers`): a skipped segment is absent from the game, not a player.
    """

    factorizable = True

    def __init__(self, model: AdaptiveClassifier, decisions: torch.Tensor) -> None:
        self.model, self.decisions = model, decisions.to(torch.bool)
        self.modalities, self.head, self.classes = model.modalities, model.head, model.classes
        self.encoders = {m: _UsedSegments(model.encoders[m], self.used(m)) if m in model.policy else model.encoders[m]
                         for m in model.modalities}

    def prepare(self, items: dict[str, Sequence[Any]]) -> dict[str, dict[str, torch.Tensor]]:
        return self.model.prepare(items)

    def used(self, modality: str) -> list[int]:
        """The segments in which ``modality`` runs (every one for an always-on modality)."""
        if modality not in self.model.policy:
            return list(range(self.model.segments))
        k = self.model.policy.index(modality)
        return [s for s in range(self.model.segments) if bool(self.decisions[0, s, k])]

    def encode(self, modality: str, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if modality not in self.model.policy:
            return self.encoders[modality](inputs)
        parts = self.model.segment_parts(modality, inputs)
        batch = next(iter(inputs.values())).shape[0]
        dim = self.head.in_dims[self.head.modalities.index(modality)]
        width = dim + self.head.summary_dims[modality]
        out = torch.zeros(batch, self.model.segments, width)
        for s in self.used(modality):  # skipped segments stay 0: the head ignores them
            out[:, s, :dim] = self.model.encoders[modality](parts[s]).float()
        return out.flatten(1)

    def forward_embeddings(self, embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.head.forward_parts(list(embeddings), decisions=self.decisions)[0]

    def fuse(self, embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.forward_embeddings(embeddings)

    def __call__(self, inputs: dict[str, dict[str, torch.Tensor]]) -> torch.Tensor:
        batch = int(next(iter(inputs[self.modalities[0]].values())).shape[0])
        return self.model.predict(inputs, decisions=self.decisions.expand(batch, -1, -1))[0]

    def narrow_maskers(self, maskers: dict[str, Any], inputs: dict[str, dict[str, torch.Tensor]]) -> dict[str, Any]:
        """Each policy modality's masker restricted to the players that change a used segment's input."""
        out = dict(maskers)
        for m, masker in maskers.items():
            if m not in self.model.policy or masker.n_features == 0:
                continue
            key, axis = self.model.segment_inputs[m]["key"], self.model.segment_inputs[m]["axis"]
            base = inputs[m][key]
            bounds = segment_bounds(int(base.shape[axis]), self.model.segments)
            in_used = torch.zeros(int(base.shape[axis]), dtype=torch.bool)
            for s in self.used(m):
                in_used[bounds[s][0]:bounds[s][1]] = True
            off = ~torch.eye(masker.n_features, dtype=torch.bool)
            changed = masker.apply(inputs[m], off.numpy())[key] != base  # (n, ...) one player off per row
            other = [d for d in range(changed.ndim) if d not in (0, axis)]
            per_step = changed.any(dim=other) if other else changed  # (n, T)
            keep = (per_step & in_used[None, :]).any(dim=1).nonzero().flatten().tolist()
            out[m] = SubsetMasker(masker, keep)
        return out

    def record(self) -> dict[str, Any]:
        """The decisions as JSON: ``{"segments", "policy", "used": {modality: [segment, ...]}}``."""
        return {"segments": self.model.segments, "policy": self.model.policy,
                "used": {m: self.used(m) for m in self.model.policy}}


class _UsedSegments:
    """An encoder seen through one sample's decisions: every attribute is the encoder's, but ``spec()`` names
    the segments it runs on, so costs cached by architecture (core.explain) never take it for the whole
    encoder."""

    def __init__(self, encoder: Encoder, used: Sequence[int]) -> None:
        self._encoder, self._used = encoder, [int(s) for s in used]

    def spec(self) -> dict[str, Any]:
        return {**self._encoder.spec(), "segments_used": self._used}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)
