"""Adaptive fusion (AdaMML, Panda et al. 2021): a policy picks, per temporal segment, which modalities run.

A clip is cut into ``segments`` temporal segments. For every segment ``t`` the
policy, an LSTM over cheap per-segment features ``f_t`` (``h_t = LSTM(f_t,
h_{t-1})``), gives each *policy* modality ``k`` a distribution ``z_{t,k}`` over
{skip, use}. Training samples binary decisions with the straight-through
Gumbel-softmax at an annealed temperature (:func:`gumbel_decisions`,
:func:`annealed_tau`); at test time a decision is the argmax (use iff
``z_use > z_skip``: deterministic). The recognition part is one classifier per
modality on its segment embedding (initialised from the modality's unimodal
run); a segment's logits are the mean of the logits of the modalities used in
it and of the *always-on* modalities (whole-clip embeddings, which also feed
the policy); a segment where nothing runs is left out of the clip's mean over
segments (a clip where nothing runs at all predicts uniform logits 0).

The loss (:func:`adaptive_cost`) is ``CE + sum_k lambda_k C_k`` with
``C_k = (|U_k|_0 / C)^2`` when the clip is predicted right (``|U_k|_0`` the
segments that use modality ``k``, ``C`` the segment count) and ``gamma`` (the
wrong-prediction penalty) otherwise.

What the policy sees, per segment (:func:`segment_summary`, computed from the
encoder's prepared input, never from an embedding): for each policy modality
the segment's mean over time and its mean absolute change from step to step,
each average-pooled to at most 4 x 4 over the input's last two axes (video: 4 x
4 per colour or depth channel; audio: 4 mel bands; a time series: its
channels); plus the always-on modalities' embeddings, then a layer norm. The
summaries are pooling, which the FLOP counter counts as element-wise work (0
FLOPs, like every pooling); the LSTM, the decision layer and the classifiers
are the head's counted FLOPs.

The head's inputs follow the factorised contract (one 2-D tensor per
modality): a policy modality's is its ``segments`` blocks ``[embedding,
summary]`` flattened, an always-on modality's its embedding.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import ConfigError
from core.fusion.registry import FUSIONS

#: pooled size of a segment summary's last two axes
SUMMARY_POOL = 4
#: initial bias of the decision layer toward "use": p(use) = sigmoid(2) ~ 0.88 at the start, so training
#: starts from (nearly) every modality on and the cost term removes what the prediction can spare
INITIAL_USE_LOGIT = 2.0


def segment_bounds(length: int, segments: int) -> list[tuple[int, int]]:
    """Half-open ``[start, end)`` of each of ``segments`` parts of ``length`` steps (``floor(i * length /
    segments)``: parts differ by at most one step); fewer steps than segments is a ConfigError."""
    if length < segments:
        raise ConfigError(f"{segments} segments do not fit an input of {length} time steps",
                          fix=f"set [fusion.adaptive] segments to at most {length}, or give the encoder more frames "
                              "(num_frames) or steps")
    cuts = [(i * length) // segments for i in range(segments + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


def segment_summary(x: torch.Tensor, axis: int) -> torch.Tensor:
    """The policy's cheap view of one segment: ``x`` (B, ...) with time on ``axis`` -> (B, F).

    The mean over time and the mean absolute step-to-step change (0 for one step), each
    average-pooled to at most ``SUMMARY_POOL`` x ``SUMMARY_POOL`` over the last two remaining axes
    (one remaining axis is pooled to at most ``SUMMARY_POOL``), flattened and concatenated.
    """
    x = x.float()
    mean = x.mean(dim=axis)
    if x.shape[axis] > 1:
        change = x.diff(dim=axis).abs().mean(dim=axis)
    else:
        change = torch.zeros_like(mean)
    return torch.cat([_pool(mean), _pool(change)], dim=1)


def _pool(x: torch.Tensor) -> torch.Tensor:
    b = x.shape[0]
    if x.ndim == 2:  # (B, C): one axis
        return F.adaptive_avg_pool1d(x[:, None], min(SUMMARY_POOL, x.shape[1])).reshape(b, -1)
    flat = x.reshape(b, -1, *x.shape[-2:])  # (B, channels, *last two axes)
    size = (min(SUMMARY_POOL, x.shape[-2]), min(SUMMARY_POOL, x.shape[-1]))
    return F.adaptive_avg_pool2d(flat, size).reshape(b, -1)


def annealed_tau(epoch: int, epochs: int, start: float, end: float) -> float:
    """Gumbel-softmax temperature of ``epoch`` (0-based): exponential decay from ``start`` (first epoch)
    to ``end`` (last epoch)."""
    if start <= 0 or end <= 0:
        raise ConfigError(f"temperatures must be > 0, got tau_start = {start}, tau_end = {end}",
                          fix="set tau_start and tau_end in [fusion.adaptive] to numbers > 0")
    if epochs <= 1:
        return float(end)
    return float(start * (end / start) ** (min(max(epoch, 0), epochs - 1) / (epochs - 1)))


def gumbel_decisions(log_probs: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Straight-through Gumbel-softmax over the last axis (index 0 skip, 1 use) -> "use" in {0, 1}.

    Forward: the hard sample ``argmax(log z + G)`` (Gumbel-max: ``use`` with probability ``z_use``);
    backward: the gradient of ``softmax((log z + G) / tau)``.
    """
    u = torch.rand(log_probs.shape, generator=generator, dtype=log_probs.dtype).clamp_(1e-10, 1.0 - 1e-7)
    gumbel = -torch.log(-torch.log(u))
    soft = torch.softmax((log_probs + gumbel.to(log_probs.device)) / tau, dim=-1)
    hard = F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)
    return (hard - soft.detach() + soft)[..., 1]


def adaptive_cost(usage: torch.Tensor, correct: torch.Tensor, weights: torch.Tensor | Sequence[float],
                  penalty: float) -> torch.Tensor:
    """Per clip ``sum_k lambda_k C_k``: ``C_k = (|U_k|_0 / C)^2`` when ``correct``, else ``penalty`` (gamma).

    ``usage`` (B, C segments, K modalities) in {0, 1} (straight-through: the gradient reaches the policy),
    ``correct`` (B,) bool, ``weights`` the K cost weights lambda_k.
    """
    w = torch.as_tensor(weights, dtype=usage.dtype, device=usage.device)
    fraction = usage.sum(dim=1) / usage.shape[1]  # (B, K)
    c = torch.where(correct[:, None].to(usage.device), fraction ** 2, torch.full_like(fraction, float(penalty)))
    return (c * w).sum(dim=1)


class _SegmentClassifier(nn.Module):
    """The unimodal runs' classifier shape (core.model.ClassifierHead): linear, or one hidden layer."""

    def __init__(self, in_dim: int, n_classes: int, hidden: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        if hidden > 0:
            self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.ReLU(),
                                     nn.Dropout(dropout), nn.Linear(hidden, n_classes))
        else:
            self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@FUSIONS.register("adaptive", strategy="adaptive", label="Adaptive (AdaMML)")
class AdaptiveHead(nn.Module):
    """Policy (LSTM over segment summaries and always-on embeddings) plus per-modality classifiers.

    Args:
        in_dims: embedding size of each modality (in ``modalities`` order).
        dim: the policy LSTM's hidden width.
        n_classes: output classes.
        modalities: every modality of the run, in the order of the head's inputs.
        policy: the modalities the policy selects per segment (the rest are always on).
        segments: temporal segments per clip.
        summary_dims: size of each policy modality's segment summary (:func:`segment_summary`).
        hidden: each modality's classifier hidden width (0: linear), as its unimodal run's.
        dropout: classifier dropout.
    """

    strategy = "adaptive"

    def __init__(self, in_dims: list[int], dim: int = 64, *, n_classes: int, modalities: Sequence[str],
                 policy: Sequence[str], segments: int, summary_dims: dict[str, int],
                 hidden: Sequence[int] | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_dims, self.dim, self.n_classes = [int(d) for d in in_dims], int(dim), int(n_classes)
        self.modalities, self.policy = [str(m) for m in modalities], [str(m) for m in policy]
        unknown = [m for m in self.policy if m not in self.modalities]
        if unknown or not self.policy:
            raise ConfigError(f"policy modalities {list(policy)} must be some of the head's {self.modalities}",
                              fix="name one or more of the run's modalities in [fusion.adaptive] policy")
        if len(self.in_dims) != len(self.modalities):
            raise ConfigError(f"{len(self.in_dims)} embedding sizes for {len(self.modalities)} modalities",
                              fix="give one in_dims entry per modality")
        self.always_on = [m for m in self.modalities if m not in self.policy]
        self.segments = int(segments)
        if self.segments < 1:
            raise ConfigError(f"segments = {segments} is not a positive count", fix="set segments >= 1")
        self.summary_dims = {m: int(summary_dims[m]) for m in self.policy}
        self.hidden = [int(h) for h in (hidden or [0] * len(self.modalities))]
        self.dropout = float(dropout)
        dims = dict(zip(self.modalities, self.in_dims))
        policy_in = sum(self.summary_dims.values()) + sum(dims[m] for m in self.always_on)
        self.norm = nn.LayerNorm(policy_in, elementwise_affine=False)
        self.lstm = nn.LSTM(policy_in, self.dim, batch_first=True)
        self.decide = nn.Linear(self.dim, 2 * len(self.policy))
        with torch.no_grad():
            self.decide.bias.view(len(self.policy), 2)[:, 1] += INITIAL_USE_LOGIT
        self.classifiers = nn.ModuleDict({m: _SegmentClassifier(dims[m], self.n_classes, h, self.dropout)
                                          for m, h in zip(self.modalities, self.hidden)})

    def config(self) -> dict[str, Any]:
        """The JSON head config that rebuilds this head (``core.model.build_head``)."""
        return {"type": "adaptive", "in_dims": self.in_dims, "dim": self.dim, "n_classes": self.n_classes,
                "modalities": self.modalities, "policy": self.policy, "segments": self.segments,
                "summary_dims": self.summary_dims, "hidden": self.hidden, "dropout": self.dropout}

    def input_dim(self, modality: str) -> int:
        """Width of the head's input of ``modality``: ``segments * (embedding + summary)`` or the embedding."""
        d = self.in_dims[self.modalities.index(modality)]
        return self.segments * (d + self.summary_dims[modality]) if modality in self.policy else d

    # -- the parts ---------------------------------------------------------------------------------------

    def split(self, xs: Sequence[torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor],
                                                            dict[str, torch.Tensor]]:
        """Head inputs -> (segment embeddings (B, S, D), segment summaries (B, S, F), always-on embeddings)."""
        if len(xs) != len(self.modalities):
            raise ConfigError(f"the adaptive head takes {len(self.modalities)} inputs, got {len(xs)}",
                              fix=f"pass one per modality: {', '.join(self.modalities)}")
        seg, summ, always = {}, {}, {}
        for m, d, x in zip(self.modalities, self.in_dims, xs):
            if m in self.policy:
                blocks = x.reshape(x.shape[0], self.segments, d + self.summary_dims[m])
                seg[m], summ[m] = blocks[..., :d], blocks[..., d:]
            else:
                always[m] = x
        return seg, summ, always

    def policy_log_probs(self, summaries: dict[str, torch.Tensor], always: dict[str, torch.Tensor]) -> torch.Tensor:
        """log z: (B, S, K, 2) log-probabilities of (skip, use) per segment and policy modality."""
        parts = [summaries[m] for m in self.policy]
        b = parts[0].shape[0]
        parts += [always[m][:, None].expand(b, self.segments, -1) for m in self.always_on]
        h, _ = self.lstm(self.norm(torch.cat(parts, dim=-1)))
        return torch.log_softmax(self.decide(h).reshape(b, self.segments, len(self.policy), 2), dim=-1)

    def decisions(self, summaries: dict[str, torch.Tensor], always: dict[str, torch.Tensor]) -> torch.Tensor:
        """Test-time decisions (B, S, K) bool: use iff ``z_use > z_skip``."""
        logp = self.policy_log_probs(summaries, always)
        return logp[..., 1] > logp[..., 0]

    def combine(self, segment_embeddings: dict[str, torch.Tensor], always: dict[str, torch.Tensor],
                usage: torch.Tensor) -> torch.Tensor:
        """Clip logits from segment embeddings (B, S, D), always-on embeddings and ``usage`` (B, S, K).

        A segment's logits: the mean of the used modalities' and the always-on modalities' logits; segments
        with none are left out of the clip's mean (all left out: logits 0)."""
        usage = usage.to(torch.float32)
        b = usage.shape[0]
        total = torch.zeros(b, self.segments, self.n_classes, dtype=torch.float32, device=usage.device)
        count = usage.sum(dim=-1)
        for k, m in enumerate(self.policy):
            total = total + usage[..., k, None] * self.classifiers[m](segment_embeddings[m])
        if self.always_on:
            fixed = sum(self.classifiers[m](always[m]) for m in self.always_on)
            total = total + fixed[:, None]
            count = count + len(self.always_on)
        seg_logits = total / count.clamp_min(1.0)[..., None]
        present = (count > 0).to(seg_logits.dtype)
        return (seg_logits * present[..., None]).sum(dim=1) / present.sum(dim=1).clamp_min(1.0)[:, None]

    # -- whole passes ----------------------------------------------------------------------------------

    def forward_parts(self, xs: Sequence[torch.Tensor], decisions: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, decisions): the policy's test-time decisions, or the given ``decisions`` (B or 1, S, K)."""
        seg, summ, always = self.split(xs)
        if decisions is None:
            decisions = self.decisions(summ, always)
        else:
            decisions = decisions.to(torch.bool).expand(xs[0].shape[0], -1, -1)
        return self.combine(seg, always, decisions), decisions

    def forward(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.forward_parts(xs)[0]

    def fuse(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The clip's mean segment logits (what the classifiers' votes add up to)."""
        return self.forward(xs)

    def sample(self, xs: Sequence[torch.Tensor], tau: float, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass: (logits, usage) with straight-through Gumbel-softmax decisions at temperature ``tau``."""
        seg, summ, always = self.split(xs)
        usage = gumbel_decisions(self.policy_log_probs(summ, always), tau, generator)
        return self.combine(seg, always, usage), usage


def check_cost_weights(cost: dict[str, float], policy: Sequence[str]) -> list[float]:
    """The cost weights lambda_k in ``policy`` order (1.0 where none is given); negative or unknown ones fail."""
    bad = {m: w for m, w in cost.items() if not isinstance(w, (int, float)) or isinstance(w, bool)
           or not math.isfinite(w) or w < 0}
    if bad:
        raise ConfigError(f"cost weights must be numbers >= 0, got {bad}",
                          fix="give each policy modality a cost weight >= 0 in [fusion.adaptive] cost")
    unknown = [m for m in cost if m not in policy]
    if unknown:
        raise ConfigError(f"cost weights for modalities the policy does not select: {unknown}",
                          fix=f"give weights only to the policy modalities: {', '.join(policy)}")
    return [float(cost.get(m, 1.0)) for m in policy]
