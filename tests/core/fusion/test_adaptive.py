"""The adaptive strategy's parts: annealed Gumbel-softmax, the AdaMML cost term, the head's known answers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import ConfigError
from core.fusion import (
    FUSIONS,
    AdaptiveHead,
    adaptive_cost,
    annealed_tau,
    check_cost_weights,
    create_fusion,
    gumbel_decisions,
    list_fusions,
    segment_bounds,
    segment_summary,
)
from core.kinds import SubsetMasker, VideoTubeMasker
from tests._tolerance import f32_atol


def test_adaptive_is_a_registered_fusion_strategy():
    assert list_fusions("adaptive") == ["adaptive"]
    assert "adaptive" not in list_fusions("intermediate")
    assert FUSIONS.meta("adaptive")["label"]
    head = create_fusion("adaptive", [4, 3], dim=8, n_classes=2, modalities=["rgb", "depth"], policy=["rgb"],
                         segments=2, summary_dims={"rgb": 5})
    assert isinstance(head, AdaptiveHead) and head.always_on == ["depth"]


def test_temperature_anneals_from_start_to_end():
    taus = [annealed_tau(e, 5, 5.0, 0.5) for e in range(5)]
    assert taus[0] == pytest.approx(5.0) and taus[-1] == pytest.approx(0.5)
    assert all(a > b for a, b in zip(taus, taus[1:]))
    assert taus[2] == pytest.approx(np.sqrt(5.0 * 0.5))  # exponential: the midpoint is the geometric mean
    assert annealed_tau(0, 1, 5.0, 0.5) == pytest.approx(0.5)
    with pytest.raises(ConfigError):
        annealed_tau(0, 5, 0.0, 0.5)


def test_gumbel_decisions_are_hard_straight_through_and_follow_the_policy():
    logp = torch.log(torch.tensor([[0.8, 0.2], [0.3, 0.7]])).expand(20000, 2, 2).clone().requires_grad_(True)
    u = gumbel_decisions(logp, tau=1.0, generator=torch.Generator().manual_seed(0))
    assert set(u.detach().unique().tolist()) <= {0.0, 1.0}
    # Gumbel-max: "use" is drawn with probability z_use (binomial sd 0.003 at n = 20000)
    assert u[:, 0].mean().item() == pytest.approx(0.2, abs=0.015)
    assert u[:, 1].mean().item() == pytest.approx(0.7, abs=0.015)
    u.sum().backward()
    assert logp.grad is not None and logp.grad.abs().sum() > 0  # the soft sample's gradient reaches the policy
    again = gumbel_decisions(logp.detach(), tau=1.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, u.detach())  # the same generator seed, the same draws


def test_cost_term_matches_the_formula_on_hand_values():
    usage = torch.zeros(2, 4, 2)
    usage[0, :3, 0] = 1  # clip 0: rgb in 3 of 4 segments, depth in 1
    usage[0, 0, 1] = 1
    usage[1] = 1  # clip 1: everything, but predicted wrong
    cost = adaptive_cost(usage, torch.tensor([True, False]), [1.0, 0.5], penalty=0.3)
    # correct: sum_k lambda_k (|U_k|_0 / C)^2 = 1.0 * (3/4)^2 + 0.5 * (1/4)^2; wrong: gamma * sum_k lambda_k
    expected = torch.tensor([1.0 * 0.75 ** 2 + 0.5 * 0.25 ** 2, 0.3 * (1.0 + 0.5)])
    assert torch.allclose(cost, expected, atol=f32_atol(1.0, 4))


def _constant_head() -> AdaptiveHead:
    """Two policy modalities whose classifiers ignore their input: rgb says [1, 0], depth says [0, 1]."""
    head = AdaptiveHead([3, 3], 4, n_classes=2, modalities=["rgb", "depth"], policy=["rgb", "depth"], segments=4,
                        summary_dims={"rgb": 2, "depth": 2})
    with torch.no_grad():
        for m, out in (("rgb", [1.0, 0.0]), ("depth", [0.0, 1.0])):
            layer = head.classifiers[m].net[-1]
            layer.weight.zero_()
            layer.bias.copy_(torch.tensor(out))
    return head.eval()


def test_segment_logits_average_the_used_modalities_and_skip_empty_segments():
    head = _constant_head()
    seg = {m: torch.randn(1, 4, 3) for m in ("rgb", "depth")}
    usage = torch.tensor([[[1, 1], [1, 0], [0, 0], [1, 0]]], dtype=torch.float32)
    logits = head.combine(seg, {}, usage)
    # segments: both -> [.5, .5]; rgb -> [1, 0]; none -> left out; rgb -> [1, 0]; the clip: their mean
    assert torch.allclose(logits, torch.tensor([[2.5 / 3, 0.5 / 3]]), atol=f32_atol(1.0, 4))
    assert torch.equal(head.combine(seg, {}, torch.zeros(1, 4, 2)), torch.zeros(1, 2))  # nothing runs: 0


def test_always_on_modalities_join_every_segment():
    head = AdaptiveHead([3, 2], 4, n_classes=2, modalities=["rgb", "loc"], policy=["rgb"], segments=2,
                        summary_dims={"rgb": 2})
    with torch.no_grad():
        for m, out in (("rgb", [1.0, 0.0]), ("loc", [0.0, 1.0])):
            head.classifiers[m].net[-1].weight.zero_()
            head.classifiers[m].net[-1].bias.copy_(torch.tensor(out))
    logits = head.combine({"rgb": torch.randn(1, 2, 3)}, {"loc": torch.randn(1, 2)},
                          torch.tensor([[[1.0], [0.0]]]))
    # segment 0: mean(rgb, loc) = [.5, .5]; segment 1: loc alone = [0, 1]
    assert torch.allclose(logits, torch.tensor([[0.25, 0.75]]), atol=f32_atol(1.0, 4))


def test_head_inputs_split_into_segments_and_test_decisions_are_deterministic():
    torch.manual_seed(0)
    head = AdaptiveHead([3, 2], 8, n_classes=3, modalities=["rgb", "loc"], policy=["rgb"], segments=4,
                        summary_dims={"rgb": 5}).eval()
    xs = [torch.randn(6, head.input_dim("rgb")), torch.randn(6, 2)]
    assert head.input_dim("rgb") == 4 * (3 + 5)
    logits, decisions = head.forward_parts(xs)
    assert logits.shape == (6, 3) and decisions.shape == (6, 4, 1) and decisions.dtype == torch.bool
    again, same = head.forward_parts(xs)
    assert torch.equal(same, decisions) and torch.equal(again, logits)  # argmax at test time: no sampling
    fixed = torch.zeros(1, 4, 1, dtype=torch.bool)
    forced, used = head.forward_parts(xs, decisions=fixed)
    assert not used.any() and forced.shape == (6, 3)


def test_training_pass_reaches_policy_and_classifiers():
    torch.manual_seed(0)
    head = AdaptiveHead([3, 3], 8, n_classes=2, modalities=["rgb", "depth"], policy=["rgb", "depth"], segments=3,
                        summary_dims={"rgb": 4, "depth": 4})
    xs = [torch.randn(5, head.input_dim(m)) for m in ("rgb", "depth")]
    logits, usage = head.sample(xs, tau=1.0, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 0, 1, 0])
    every_correct = torch.ones(5, dtype=torch.bool)  # so the cost term depends on the decisions
    loss = torch.nn.functional.cross_entropy(logits, y) + adaptive_cost(usage, every_correct, [1.0, 1.0], 0.5).mean()
    loss.backward()
    assert head.decide.weight.grad is not None and head.decide.weight.grad.abs().sum() > 0
    assert head.lstm.weight_ih_l0.grad.abs().sum() > 0
    assert all(head.classifiers[m].net[-1].weight.grad is not None for m in ("rgb", "depth"))


def test_segments_cover_the_input_and_too_many_are_refused():
    bounds = segment_bounds(10, 4)
    assert bounds[0][0] == 0 and bounds[-1][1] == 10
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert {e - s for s, e in bounds} <= {2, 3}
    with pytest.raises(ConfigError, match="segments"):
        segment_bounds(3, 4)


@pytest.mark.parametrize("shape,axis,width", [((2, 3, 4, 16, 16), 2, 3 * 16 * 2), ((2, 1, 64, 10), 3, 4 * 2),
                                             ((2, 12, 5), 1, 4 * 2)])
def test_segment_summary_size(shape, axis, width):
    x = torch.randn(*shape)
    summary = segment_summary(x, axis)
    assert summary.shape == (2, width) and torch.isfinite(summary).all()
    still = segment_summary(x.narrow(axis, 0, 1).expand(*[s if d != axis else 3 for d, s in enumerate(shape)]), axis)
    n_half = width // 2
    assert torch.equal(still[:, n_half:], torch.zeros(2, n_half))  # no change over time: the change half is 0


def test_cost_weights_in_policy_order_and_refusals():
    assert check_cost_weights({"depth": 0.5}, ["rgb", "depth"]) == [1.0, 0.5]
    with pytest.raises(ConfigError, match=">= 0"):
        check_cost_weights({"rgb": -1.0}, ["rgb"])
    with pytest.raises(ConfigError, match="policy"):
        check_cost_weights({"audio": 1.0}, ["rgb"])


def test_subset_masker_keeps_the_other_players_present():
    clip = torch.arange(1 * 1 * 4 * 4 * 4, dtype=torch.float32).reshape(1, 1, 4, 4, 4) + 1
    base = VideoTubeMasker({"clips": clip}, grid=2, segments=2)
    sub = SubsetMasker(base, [4, 5])  # the second segment's first two tubes
    assert sub.n_features == 2 and sub.kind == "video"
    assert [d["segment"] for d in sub.describe()] == [1, 1]
    out = sub.apply({"clips": clip}, np.array([[False, True]]))["clips"]
    full = base.apply({"clips": clip}, np.array([[True, True, True, True, False, True, True, True]]))["clips"]
    assert torch.equal(out, full)  # masking kept player 0 is masking base player 4, all others present
    with pytest.raises(ConfigError):
        SubsetMasker(base, [8])
