"""Experiment files: defaults, validation and clear errors."""
from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.experiment import load_experiment, parse_experiment

BASE = {
    "name": "x", "dataset": {"source": "manifest", "manifest": "m.csv"},
    "modalities": {"image": {"kind": "image", "encoder": "small-cnn"}, "title": {"kind": "text", "encoder": "minilm"}},
}


def test_defaults_fill_in():
    exp = parse_experiment(dict(BASE))
    assert exp.subsets == [["image", "title"]]
    assert "multconcat" in exp.fusion_methods and exp.late_methods == ["late-average", "late-weighted"]
    assert exp.train["fusion"]["epochs"] > 0


def test_embedded_emoji_experiment_is_valid():
    exp = load_experiment("emoji")
    assert exp.modalities == {"image": "image", "title": "text", "description": "text"}
    assert ["image", "title"] in exp.subsets and ["image", "description"] in exp.subsets


@pytest.mark.parametrize("patch, message", [
    ({"fusion": {"methods": ["multconact"]}}, "unknown fusion method 'multconact'.*multconcat"),
    ({"fusion": {"late": ["late-median"]}}, "unknown late fusion"),
    ({"fusion": {"subsets": [["image", "audio"]]}}, "two or more distinct declared modalities"),
    ({"modalities": {"image": {"kind": "picture", "encoder": "small-cnn"}}}, "unknown kind 'picture'"),
    ({"modalities": {"image": {"kind": "image", "encoder": "minilm"}}}, "not for image data"),
    ({"modalities": {"image": {"kind": "image"}}}, "names no encoder"),
    ({"train": {"fusion": {"epoch": 3}}}, "unknown \\[train.fusion\\] key"),
    ({"dataset": {"source": "kaggle"}}, "unknown dataset source"),
    ({"dataset": {"source": "manifest"}}, "needs `manifest`"),
])
def test_bad_experiment(patch, message):
    raw = {**BASE, **patch}
    with pytest.raises(ConfigError, match=message):
        parse_experiment(raw)


def test_unknown_experiment_name_lists_known():
    with pytest.raises(ConfigError, match="emoji"):
        load_experiment("nope")
