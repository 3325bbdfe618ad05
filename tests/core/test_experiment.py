"""Experiment files: defaults, the schema, and one clear error per bad key (path, value, allowed, fix)."""
from __future__ import annotations

import copy
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from core.errors import ConfigError, choices, did_you_mean
from core.experiment import DEFAULT_TRAIN, PROJECT_ROOT, load_experiment, parse_experiment
from core.experiment_schema import README_END, README_START, SCHEMA, schema_keys, schema_markdown

BASE = {
    "name": "x", "dataset": {"source": "manifest", "manifest": "m.csv"},
    "modalities": {"image": {"kind": "image", "encoder": "small-cnn"}, "title": {"kind": "text", "encoder": "minilm"}},
}


def _with(**patch) -> dict:
    """BASE with nested keys set: ``_with(train__unimodal__epochs=3)``."""
    raw = copy.deepcopy(BASE)
    for dotted, value in patch.items():
        *parents, last = dotted.split("__")
        node = raw
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return raw


def test_defaults_fill_in():
    exp = parse_experiment(copy.deepcopy(BASE))
    assert exp.subsets == [["image", "title"]]
    assert "multconcat" in exp.fusion_methods and exp.late_methods == ["late-average", "late-weighted"]
    assert exp.train == DEFAULT_TRAIN and exp.train["fusion"]["epochs"] == 60 and exp.train["unimodal"]["patience"] == 5
    assert exp.empty_text == {"title": "refuse"}
    assert exp.seed == 0 and exp.dataset["source"] == "manifest"


def test_subset_methods_limit_the_ablation_subsets():
    from core.train import planned_runs

    raw = _with(**{"modalities__description": {"kind": "text", "encoder": "minilm"},
                    "fusion__methods": ["concat", "multconcat"], "fusion__late": ["late-average"],
                    "fusion__subsets": [["image", "title", "description"], ["image", "title"]]})
    every = planned_runs(parse_experiment(copy.deepcopy(raw)))
    raw["fusion"]["subset_methods"] = ["multconcat"]
    exp = parse_experiment(raw)
    plan = planned_runs(exp)
    fused = [(f, s) for _, _, f, s in plan if f != "unimodal"]
    assert exp.subset_methods == ["multconcat"]
    assert [f for f, s in fused if len(s) == 3] == ["concat", "multconcat", "late-average"]
    assert [f for f, s in fused if len(s) == 2] == ["multconcat"]
    assert len(every) - len(plan) == 2


@pytest.mark.parametrize("name", ["emoji", "rgbd"])
def test_embedded_experiments_are_valid(name):
    exp = load_experiment(name)
    assert exp.name == name
    if name == "emoji":
        assert exp.modalities == {"image": "image", "title": "text", "description": "text"}
        assert ["image", "title"] in exp.subsets and ["image", "description"] in exp.subsets
        assert exp.raster_sizes() == {"image": 32}
    else:
        assert [s.tag for s in exp.selected_sets()] == ["statcnn"] and exp.early


def test_experiments_of_the_tests_are_valid(tmp_path):
    from tests._experiments import TINY_ADAPTIVE, TINY_RGBD, TINY_SITE, dump_toml, image_text_experiment

    for config in (image_text_experiment(), TINY_RGBD, TINY_ADAPTIVE, TINY_SITE):
        assert tomllib.loads(dump_toml(config)) == config  # the files the tests write hold what they declare
        assert parse_experiment(tomllib.loads(dump_toml(config)), tmp_path / "t.toml").name == config["name"]
    tiny = parse_experiment(tomllib.loads(dump_toml(image_text_experiment())), tmp_path / "t.toml")
    assert tiny.train["unimodal"]["hidden"] == 32 and tiny.raster_sizes() == {"image": 16}
    rgbd = parse_experiment(tomllib.loads(dump_toml(TINY_RGBD)))
    assert [s.tag for s in rgbd.encoder_sets] == ["c3d", "slowfast"]
    assert rgbd.encoder_sets[1].specs["rgb"]["kwargs"]["width"] == 8


# Each row: a change to a valid experiment, the key path the message must name, and more text it
# must hold (the value, what is allowed, or the suggested fix).
BAD = [
    # types: a string where a number belongs never gives a traceback
    ({"train__unimodal__epochs": "ten"}, r"\[train.unimodal\] epochs", r'"ten" is a string, not an integer'),
    ({"train__fusion__lr": "0.01"}, r"\[train.fusion\] lr", r"write lr = 0.01 without quotes"),
    ({"train__unimodal__epochs": 2.5}, r"\[train.unimodal\] epochs", r"2.5 is a decimal number, not an integer"),
    ({"train__unimodal__epochs": 3.0}, r"\[train.unimodal\] epochs", r"write epochs = 3 \(a whole number"),
    ({"train__fusion__batch_size": True}, r"\[train.fusion\] batch_size", r"is a boolean, not an integer"),
    ({"seed": "0"}, r"seed \(top level\)", r"write seed = 0 without quotes"),
    ({"dataset__repair_video": "yes"}, r"\[dataset\] repair_video", r"not true or false"),
    ({"fusion__methods": "concat"}, r"\[fusion\] methods", r"not a list of strings"),
    ({"fusion__subsets": ["image", "title"]}, r"\[fusion\] subsets", r"not a list of lists of strings"),
    ({"dataset": "emoji"}, r"dataset \(top level\)", r"not a table"),
    ({"train__fusion": 5}, r"\[train\] fusion", r"not a table"),
    # ranges
    ({"train__unimodal__epochs": -3}, r"\[train.unimodal\] epochs = -3", r"out of range \(allowed: an integer >= 1\)"),
    ({"train__unimodal__epochs": 0}, r"\[train.unimodal\] epochs = 0", r"set epochs = 15 in \[train.unimodal\]"),
    ({"train__fusion__lr": 0}, r"\[train.fusion\] lr = 0", r"a number > 0"),
    ({"train__fusion__lr": float("nan")}, r"\[train.fusion\] lr = nan", r"out of range"),
    ({"train__unimodal__dropout": 1.0}, r"\[train.unimodal\] dropout = 1.0", r">= 0 and < 1"),
    ({"train__fusion__weight_decay": -0.1}, r"\[train.fusion\] weight_decay", r">= 0"),
    ({"train__unimodal__batch_size": 0}, r"\[train.unimodal\] batch_size = 0", r">= 1"),
    ({"train__fusion__patience": 0}, r"\[train.fusion\] patience = 0", r">= 1"),
    ({"train__fusion__max_train_batches": 0}, r"\[train.fusion\] max_train_batches = 0", r">= 1"),
    ({"seed": -1}, r"seed \(top level\) = -1", r"an integer >= 0"),
    ({"dataset__min_per_class": 0}, r"\[dataset\] min_per_class = 0", r"an integer >= 1"),
    ({"dataset__split": {"train": 0.7, "val": 0.0, "test": 0.3}}, r"\[dataset.split\] val = 0.0", r"> 0 and < 1"),
    ({"dataset__split": {"train": 0.6, "val": 0.15, "test": 0.15}}, r"\[dataset\] split", r"sum to 0.9, not 1"),
    ({"dataset__split": {"train": 0.8, "val": 0.2}}, r"\[dataset.split\] lacks test", r"Fix: add test ="),
    # unknown keys, with a suggestion
    ({"fusoin": {}}, r"the top level has an unknown key 'fusoin'", r"did you mean 'fusion'\?"),
    ({"dataset__min_per_clas": 3}, r"\[dataset\] has an unknown key 'min_per_clas'", r"did you mean 'min_per_class'"),
    ({"modalities__image__encoder_kwarg": {}}, r"\[modalities.image\] has an unknown key", r"'encoder_kwargs'"),
    ({"fusion__method": ["concat"]}, r"\[fusion\] has an unknown key 'method'", r"did you mean 'methods'"),
    ({"train__fuse": {}}, r"\[train\] has an unknown key 'fuse'", r"did you mean 'fusion'"),
    ({"train__fusion__epoch": 3}, r"\[train.fusion\] has an unknown key 'epoch'", r"did you mean 'epochs'"),
    ({"dataset__split": {"train": 0.7, "val": 0.15, "tset": 0.15}}, r"\[dataset.split\] has an unknown key 'tset'",
     r"did you mean 'test'"),
    # keys that apply elsewhere only
    ({"dataset__n_clips": 100}, r"\[dataset\] n_clips applies only when source is \"rgbd-sim\"", r"remove n_clips"),
    ({"modalities__image__empty": "drop"}, r"\[modalities.image\] empty applies only when kind is \"text\"",
     r"kind = \"image\""),
    # choices and names
    ({"modalities__title__empty": "skip"}, r"\[modalities.title\] empty = \"skip\"",
     r'one of "refuse", "drop", "keep"'),
    ({"modalities__image__kind": "picture"}, r"\[modalities.image\] kind = \"picture\"", r'one of "text", "image"'),
    ({"dataset__source": "kaggle"}, r"\[dataset\] source = \"kaggle\"", r'"manifest", "emoji", "rgbd-sim"'),
    ({"dataset": {"source": "manifest"}}, r"\[dataset\] needs manifest", r'add manifest = "data/manifest.csv"'),
    ({"fusion__late": ["late-median"]}, r"\[fusion\] late", r'holds "late-median", which is not allowed'),
    ({"fusion__methods": ["multconact"]}, r"unknown fusion method 'multconact'", r"did you mean 'multconcat'"),
    ({"fusion__methods": ["late-average"]}, r"unknown fusion method 'late-average'",
     r"late fusions go in \[fusion\] late"),
    ({"fusion__methods": ["concat", "concat"]}, r"\[fusion\] methods names 'concat' more than once", r"once"),
    ({"fusion__subsets": [["image", "audio"]]}, r"two or more distinct declared modalities", r"image, title"),
    ({"fusion__subset_methods": ["lmf"], "fusion__methods": ["concat"]}, r"\[fusion\] subset_methods: 'lmf' is not",
     r"use some of: .*concat"),
    ({"fusion__early": True}, r"\[fusion\] early = true, but no fusion subset holds only video", r"early = false"),
    ({"modalities__image__encoder": "smallcnn"}, r"\[modalities.image\] encoder = \"smallcnn\"",
     r"did you mean 'small-cnn'"),
    ({"modalities__image__encoder": "minilm"}, r"encoder 'minilm' is not for image data", r"small-cnn"),
    ({"modalities__image": {"kind": "image"}}, r"\[modalities.image\] names no encoder", r'add encoder = "small-cnn"'),
    ({"modalities__image__encoder_kwargs": {"widht": 8}}, r"\[modalities.image\] encoder_kwargs has widht = 8",
     r"did you mean 'width'"),
    ({"modalities__image__encoder_kwargs": {"width": "16"}}, r"\[modalities.image\] encoder_kwargs width = \"16\"",
     r"not an integer"),
    ({"modalities__image__encoder_kwargs": {"out_dim": 0}}, r"\[modalities.image\] encoder_kwargs out_dim = 0",
     r"integer >= 1"),
    ({"modalities__my col": {"kind": "text", "encoder": "minilm"}}, r"\[modalities.my col\]", r"rename it"),
    ({"name": "../x"}, r'name = "../x" is not a plain name', r'set name = "my-experiment"'),
    ({"grid_default": ["c3d"]}, r"grid_default is set, but the file has no \[encoder_grid", r"remove grid_default"),
    ({"encoder_grid__big__imgae": "small-vit"}, r"\[encoder_grid.big\] has an unknown key 'imgae'",
     r"did you mean 'image'"),
    ({"encoder_grid__big__image": "minilm"}, r"\[encoder_grid.big\] image = \"minilm\" is not an encoder for image",
     r"small-cnn"),
    ({"modalities": {}}, r"declares no modalities", r"add \[modalities.<name>\]"),
]


@pytest.mark.parametrize("patch, where, what", BAD, ids=[f"{i}-{where[:40]}" for i, (_, where, _) in enumerate(BAD)])
def test_bad_experiment_names_key_value_and_fix(patch, where, what):
    raw = copy.deepcopy(BASE)
    for dotted, value in patch.items():  # a whole table replaced when the patch names it
        *parents, last = dotted.split("__")
        node = raw
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    with pytest.raises(ConfigError) as info:
        parse_experiment(raw)
    message = str(info.value)
    assert re.search(where, message), message
    assert re.search(what, message), message
    assert "Fix: " in message
    assert not re.search(r"one of:?\s*(\.|$|,|\))", message), f"an empty list of choices: {message}"


def test_every_problem_is_reported_at_once():
    raw = _with(seed=-1, train__unimodal__epochs="5", dataset__min_per_clas=2)
    with pytest.raises(ConfigError) as info:
        parse_experiment(raw)
    problems = info.value.problems
    assert len(problems) == 3
    text = str(info.value)
    assert "has 3 problems" in text and text.count("Fix: ") == 3
    assert "seed (top level) = -1" in text and "[train.unimodal] epochs" in text and "min_per_clas" in text


def test_features_is_read_as_tabular_with_a_warning_saying_what_to_write(caplog):
    raw = _with(modalities__vec={"kind": "features", "encoder": "mlp", "columns": ["a", "b"]})
    with caplog.at_level("WARNING", logger="core.experiment"):
        exp = parse_experiment(raw)
    assert re.search(r'\[modalities.vec\] kind = "features" is the old name of kind "tabular" and is read as '
                     r'"tabular". Fix: write kind = "tabular"', caplog.text), caplog.text
    assert exp.modalities["vec"] == "tabular" and exp.modality_options["vec"] == {"columns": ["a", "b"]}
    assert raw["modalities"]["vec"]["kind"] == "features"  # the caller's dict is left as it was
    assert exp.fingerprint() == parse_experiment(_with(modalities__vec={"kind": "tabular", "encoder": "mlp",
                                                                        "columns": ["a", "b"]})).fingerprint()


def test_a_kind_without_an_encoder_says_so():
    from core.kinds import KINDS, ModalityKind

    @KINDS.register("sound-test")
    class SoundKind(ModalityKind):  # registered here only: a kind no encoder exists for
        name = "sound-test"
        default_encoder = "none"

    try:
        with pytest.raises(ConfigError) as info:
            parse_experiment(_with(modalities__hum={"kind": "sound-test", "encoder": "x"}))
    finally:
        KINDS.unregister("sound-test")
    text = str(info.value)
    assert "[modalities.hum] kind = \"sound-test\": no encoder exists for sound-test data yet" in text
    assert "leave modality 'hum' out" in text and "audio, image, tabular, text, timeseries, video" in text


def test_choices_never_prints_an_empty_list():
    assert choices([]) == "(none registered)"
    assert choices([], "(none built yet)") == "(none built yet)"
    assert choices(["a", "b"]) == "a, b"
    assert did_you_mean("multconact", ["multconcat", "concat"]) == "did you mean 'multconcat'? "
    assert did_you_mean("zzz", ["multconcat"]) == ""


def test_registry_suggests_the_closest_name():
    from core.encoders import ENCODERS
    from core.registry import Registry

    with pytest.raises(ConfigError, match=r"did you mean 'small-cnn'\? use one of: .*small-cnn"):
        ENCODERS.get("small_cnn")
    with pytest.raises(ConfigError, match=r"use one of: \(none registered\)"):
        Registry("widget").get("x")


def test_unknown_experiment_name_lists_known():
    with pytest.raises(ConfigError, match="did you mean 'emoji'.*emoji, rgbd"):
        load_experiment("emoij")


def test_a_name_resolves_to_the_current_folder_first(tmp_path, monkeypatch):
    from core.experiment import EXPERIMENTS_DIR, resolve_experiment_path

    (tmp_path / "mine.toml").write_text('[dataset]\nsource = "emoji"\n')
    monkeypatch.chdir(tmp_path)
    assert resolve_experiment_path("mine") == (tmp_path / "mine.toml").resolve()
    assert resolve_experiment_path("emoji") == EXPERIMENTS_DIR / "emoji.toml"  # none here: the demo
    (tmp_path / "emoji.toml").write_text('[dataset]\nsource = "emoji"\n')
    assert resolve_experiment_path("emoji") == (tmp_path / "emoji.toml").resolve()
    with pytest.raises(ConfigError, match=r"neither \./nothere\.toml nor .*experiments/nothere\.toml exists"):
        resolve_experiment_path("nothere")


def test_undecodable_experiment_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'name = "\xff\xfe"\n')
    with pytest.raises(ConfigError, match="not UTF-8 text.*Fix: save it as UTF-8"):
        load_experiment(bad)


def test_readme_key_reference_is_generated_from_the_schema():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert README_START in readme and README_END in readme
    section = readme[readme.index(README_START) + len(README_START):readme.index(README_END)]
    assert section.strip() == schema_markdown().strip(), "run `python -m core.experiment_schema` to regenerate it"
    for key in schema_keys():
        assert f"`{key}`" in section
    assert len(schema_keys()) > 40 and "[train.unimodal] epochs" in schema_keys()
    assert set(SCHEMA.keys) == {"name", "seed", "grid_default", "dataset", "modalities", "encoder_grid", "fusion",
                                "train", "precompute"}


# The same files through the CLI, as a user meets them: exit 2, the problem and the fix, no traceback.
CLI_BAD = {
    "string-for-number": '[train.unimodal]\nepochs = "ten"\n',
    "negative-epochs": "[train.unimodal]\nepochs = -3\n",
    "unknown-key": "[fusion]\nmethod = [\"concat\"]\n",
    "tabular-columns-string": '[modalities.vec]\nkind = "tabular"\nencoder = "mlp"\ncolumns = "age"\n',
    "columns-on-text": '[modalities.vec]\nkind = "text"\nencoder = "minilm"\ncolumns = ["age"]\n',
}
CLI_HEAD = """name = "bad"
[dataset]
source = "manifest"
manifest = "m.csv"
[modalities.image]
kind = "image"
encoder = "small-cnn"
[modalities.title]
kind = "text"
encoder = "minilm"
"""


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "PYTHONPATH": str(PROJECT_ROOT)})


@pytest.mark.parametrize("case", sorted(CLI_BAD))
def test_cli_refuses_a_bad_experiment_file_cleanly(tmp_path, case):
    path = tmp_path / "bad.toml"
    path.write_text(CLI_HEAD + CLI_BAD[case])
    out = run_cli("--runs-dir", str(tmp_path / "runs"), "prepare", str(path), cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and "Fix: " in out.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
