"""Modality dropout: the head's learned missing-modality embeddings, late fusion's renormalised vote,
and the experiment-file keys that ask for them."""
from __future__ import annotations

import tomllib

import pytest
import torch

from core.errors import ConfigError
from core.experiment import EXPERIMENTS_DIR, parse_experiment
from core.model import build_head
from core.train import MDROP_SUFFIX, modality_dropout_probs, planned_runs


def _head(p: list[float] | None):
    return build_head({"type": "intermediate", "in_dims": [3, 2], "n_classes": 2, "fusion": "concat", "dim": 4,
                       "modality_dropout": p})


def test_dropout_replaces_embeddings_by_the_learned_ones_while_training_only():
    torch.manual_seed(0)
    head = _head([0.5, 0.5])
    head.init_missing([torch.full((3,), 7.0), torch.full((2,), -7.0)])
    xs = [torch.zeros(400, 3), torch.zeros(400, 2)]
    head.train()
    dropped = head._drop(xs)
    gone = torch.stack([(dropped[0] == 7.0).all(1), (dropped[1] == -7.0).all(1)], 1)
    # p = 0.5 each, and a sample that would lose both keeps one: 0.5 - 0.25 / 2 = 0.375 of each dropped
    assert 0.3 < gone[:, 0].float().mean() < 0.45 and 0.3 < gone[:, 1].float().mean() < 0.45
    assert not gone.all(1).any()  # never every modality of a sample at once
    head.eval()
    assert torch.equal(head.fuse(xs), head.fusion(xs))  # no dropout at test time
    present = torch.tensor([[True, False]] * 400)
    assert (head.fill_missing(xs, present)[1] == -7.0).all() and (head.fill_missing(xs, present)[0] == 0).all()
    assert "missing.0" in head.state_dict() and _head(None).missing is None
    with pytest.raises(ConfigError, match="learned no missing-modality embedding"):
        _head(None).fill_missing(xs, present)
    with pytest.raises(ConfigError, match="one probability in \\[0, 1\\) per modality"):
        _head([0.5])


def test_late_fusion_renormalises_its_vote_over_the_modalities_present():
    head = build_head({"type": "late", "in_dims": [2, 2], "n_classes": 2, "fusion": "late-average"})
    with torch.no_grad():
        for voter, w in zip(head.voters, (torch.eye(2), -torch.eye(2))):
            voter.net[-1].weight.copy_(w)
            voter.net[-1].bias.zero_()
    x = [torch.tensor([[3.0, 0.0]]), torch.tensor([[3.0, 0.0]])]
    both = head.fuse(x)
    assert torch.allclose(both, torch.tensor([[0.5, 0.5]]), atol=1e-6)  # the two votes cancel
    only_first = head.fuse(x, torch.tensor([[True, False]]))
    assert torch.allclose(only_first, torch.softmax(torch.tensor([[3.0, 0.0]]), -1), atol=1e-6)
    assert torch.allclose(head.fuse(x, torch.tensor([[False, False]])), both, atol=1e-6)  # none: every vote


def test_experiment_keys_and_the_twin_runs():
    raw = tomllib.loads((EXPERIMENTS_DIR / "emoji.toml").read_text())
    raw["fusion"]["dropout_runs"] = ["multconcat"]
    raw["fusion"]["dropout_probability"] = {"image": 0.5}
    exp = parse_experiment(raw)
    twins = [p for p in planned_runs(exp) if p[2].endswith(MDROP_SUFFIX)]
    assert [p[0] for p in twins] == ["multconcat-mdrop-image+title+description"]  # over the first subset only
    assert modality_dropout_probs(exp.dropout_probability, ["image", "title"]) == [0.5, 0.0]
    assert modality_dropout_probs(0.0, ["a", "b"]) is None and modality_dropout_probs(0.2, ["a"]) == [0.2]
    bad = {**raw, "fusion": {**raw["fusion"], "dropout_probability": {"image": 1}}}
    with pytest.raises(ConfigError, match="dropout_probability = .* is out of range .*each >= 0 and < 1"):
        parse_experiment(bad)
    bad["fusion"].update(dropout_runs=["late-average"], dropout_probability={"audio": 0.5})
    with pytest.raises(ConfigError) as info:
        parse_experiment(bad)
    text = str(info.value)
    assert "'late-average' is not an intermediate method of [fusion] methods" in text
    assert "names 'audio', not a declared modality" in text and "image, title, description" in text
    raw["train"]["fusion"]["modality_dropout"] = 1.5
    with pytest.raises(ConfigError, match="modality_dropout = 1.5 is out of range"):
        parse_experiment(raw)
