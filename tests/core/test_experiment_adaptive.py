"""``[fusion.adaptive]``: its defaults, and the bad inputs refused before any training, with the fix."""
from __future__ import annotations

import copy

import pytest

from core.errors import ConfigError
from core.experiment import parse_experiment
from core.train import planned_runs

VIDEO = {"kind": "video", "encoder": "c3d", "encoder_kwargs": {"num_frames": 8, "image_size": 32}}
BASE = {
    "name": "ada",
    "dataset": {"source": "rgbd-sim", "n_clips": 32},
    "modalities": {"rgb": dict(VIDEO), "depth": dict(VIDEO)},
    "fusion": {"methods": ["concat"], "late": []},
}


def _experiment(adaptive: dict, **modalities: dict) -> dict:
    raw = copy.deepcopy(BASE)
    raw["modalities"].update(modalities)
    raw["fusion"]["adaptive"] = adaptive
    return raw


def _refused(raw: dict) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_experiment(raw)
    assert "Fix:" in str(info.value)
    return info.value


def test_defaults_and_one_run_per_cost_scale():
    exp = parse_experiment(_experiment({"policy": ["rgb", "depth"], "cost": {"depth": 0.5},
                                        "cost_scales": [1.0, 4.0]}))
    assert exp.adaptive["cost"] == {"rgb": 1.0, "depth": 0.5}  # a modality the table leaves out costs 1.0
    assert exp.adaptive["segments"] == 4 and exp.adaptive["tau_start"] > exp.adaptive["tau_end"]
    assert exp.train["adaptive"]["epochs"] >= 1
    adaptive = [p for p in planned_runs(exp) if p[2].startswith("adaptive")]
    assert [p[0] for p in adaptive] == ["adaptive-rgb+depth", "adaptive-x4-rgb+depth"]
    assert all(p[3] == ["rgb", "depth"] for p in adaptive)


def test_a_number_is_every_policy_modality_s_cost():
    exp = parse_experiment(_experiment({"policy": ["rgb"], "always_on": ["depth"], "cost": 2.0}))
    assert exp.adaptive["cost"] == {"rgb": 2.0} and exp.adaptive["modalities"] == ["rgb", "depth"]


def test_a_modality_without_segments_is_refused():
    tab = {"kind": "tabular", "encoder": "mlp"}
    err = _refused(_experiment({"policy": ["rgb", "loc"]}, loc=tab))
    assert "'loc'" in err.problem and "no temporal segments" in err.problem
    assert "always_on" in err.fix and "video" in err.fix


def test_an_experiment_without_any_segmentable_modality_says_so():
    raw = {"name": "img", "dataset": {"source": "manifest", "manifest": "m.csv"},
           "modalities": {"image": {"kind": "image", "encoder": "small-cnn"}, "title": {"kind": "text",
                                                                                   "encoder": "minilm"}},
           "fusion": {"adaptive": {"policy": ["image"]}}}
    err = _refused(raw)
    assert "no temporal segments" in err.problem and "this experiment's: (none)" in err.fix


def test_a_negative_cost_is_refused():
    err = _refused(_experiment({"policy": ["rgb"], "cost": {"rgb": -0.5}}))
    assert "cost" in err.problem and "out of range" in err.problem


def test_a_modality_the_experiment_lacks_is_refused():
    err = _refused(_experiment({"policy": ["rgb", "audio"]}))
    assert "'audio'" in err.problem and "lacks" in err.problem and "rgb, depth" in err.fix
    err = _refused(_experiment({"policy": ["rgb"], "always_on": ["trajectory"]}))
    assert "'trajectory'" in err.problem


@pytest.mark.parametrize("adaptive,words", [
    ({"policy": ["rgb"], "cost": {"depth": 1.0}}, "not a policy modality"),
    ({"policy": ["rgb"], "always_on": ["rgb"]}, "both policy and always_on"),
    ({"policy": ["rgb"], "tau_start": 0.5, "tau_end": 2.0}, "annealed"),
    ({"policy": ["rgb"], "cost_scales": []}, "trains no adaptive run"),
    ({"policy": ["rgb"], "segments": 0}, "out of range"),
    ({"segments": 4}, "lacks policy"),
])
def test_other_bad_settings_are_refused(adaptive, words):
    assert words in str(_refused(_experiment(adaptive)))


def test_adaptive_is_not_an_intermediate_method():
    raw = copy.deepcopy(BASE)
    raw["fusion"]["methods"] = ["concat", "adaptive"]
    err = _refused(raw)
    assert "[fusion.adaptive]" in err.fix
