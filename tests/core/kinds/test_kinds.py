"""Every registered modality kind: contract, manifest cells (good and bad), loading, its default
encoder, its masker and fill value; then the tabular kind end to end (build, reload, reproduce)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
import torch

from core.bundle import load_run
from core.data import load_experiment_dataset, load_manifest
from core.encoders import ENCODERS, create_encoder, default_encoder
from core.errors import ConfigError, DataError
from core.experiment import PROJECT_ROOT, load_experiment
from core.kinds import (
    KINDS,
    MaskerContext,
    ModalityKind,
    OptionKey,
    build_maskers,
    get_kind,
    kinds_of,
    list_kinds,
    patch_grid_for_tokens,
)
from core.model import build_encoder
from ui.figures import modality_color
from core.train import reproduce_predictions, resolve_spec, train_experiment
from tests._tolerance import f32_atol, longest_reduction

N_PER_CLASS = 6
CLASSES = ("a", "b")
SPLITS = ["train"] * 4 + ["val", "test"]


# --------------------------------------------------------------------------- one example per kind

def _ids() -> list[str]:
    return [f"s{i:03d}" for i in range(N_PER_CLASS * len(CLASSES))]


def _text(folder: Path, ids: list[str], labels: list[str]) -> tuple[dict[str, list], dict]:
    return {"m": [f"a {lab} thing number {i}" for i, lab in enumerate(labels)]}, {}


def _image(folder: Path, ids: list[str], labels: list[str]) -> tuple[dict[str, list], dict]:
    from PIL import Image

    (folder / "img").mkdir()
    rng = np.random.default_rng(0)
    for sid, lab in zip(ids, labels):
        arr = rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)
        arr[..., 0] = 255 if lab == "a" else 0
        Image.fromarray(arr).save(folder / "img" / f"{sid}.png")
    return {"m": [f"img/{sid}.png" for sid in ids]}, {}


def _video(folder: Path, ids: list[str], labels: list[str]) -> tuple[dict[str, list], dict]:
    (folder / "clips").mkdir()
    rng = np.random.default_rng(1)
    for sid in ids:
        np.save(folder / "clips" / f"{sid}.npy", rng.integers(0, 256, (4, 10, 10, 3), dtype=np.uint8))
    return {"m": [f"clips/{sid}.npy" for sid in ids]}, {}


def _tabular(folder: Path, ids: list[str], labels: list[str]) -> tuple[dict[str, list], dict]:
    rng = np.random.default_rng(2)
    cols = {"age": [float(30 + 20 * (lab == "b") + rng.normal()) for lab in labels],
            "height": [float(1.7 + 0.1 * rng.normal()) for _ in labels],
            "weight": [float(70 + 5 * rng.normal()) for _ in labels]}
    return cols, {"columns": ["age", "height", "weight"]}


def _audio(folder: Path, ids: list[str], labels: list[str]) -> tuple[dict[str, list], dict]:
    import soundfile as sf

    (folder / "wav").mkdir()
    rng = np.random.default_rng(3)
    t = np.arange(4000) / 16000  # 0.25 s at 16 kHz
    for sid, lab in zip(ids, labels):
        tone = 0.3 * np.sin(2 * np.pi * (300.0 if lab == "a" else 2000.0) * t) + 0.02 * rng.normal(size=t.size)
        sf.write(folder / "wav" / f"{sid}.wav", tone, 16000, subtype="PCM_16")
    return {"m": [f"wav/{sid}.wav" for sid in ids]}, {}


def _timeseries(folder: Path, ids: list[str], labels: list[str]) -> tuple[dict[str, list], dict]:
    (folder / "series").mkdir()
    rng = np.random.default_rng(4)
    for i, (sid, lab) in enumerate(zip(ids, labels)):
        t = np.linspace(0, 1, 9 + i % 3)  # lengths 9 to 11: resampled to the training median
        series = np.stack([np.sin(2 * np.pi * (1 if lab == "a" else 3) * t), rng.normal(size=t.size)], axis=1)
        np.save(folder / "series" / f"{sid}.npy", series)
    return {"m": [f"series/{sid}.npy" for sid in ids]}, {}


#: kind -> writes example cells for the ids and returns (manifest columns, the kind's options)
EXAMPLES: dict[str, Callable[[Path, list[str], list[str]], tuple[dict[str, list], dict]]] = {
    "text": _text, "image": _image, "video": _video, "tabular": _tabular, "audio": _audio,
    "timeseries": _timeseries,
}
#: small default-encoder arguments, so every encoder runs in well under a second
SMALL = {"text": {"max_length": 12}, "image": {"image_size": 12, "width": 4, "out_dim": 8},
         "video": {"num_frames": 4, "image_size": 10, "out_dim": 8}, "tabular": {"hidden": 8, "out_dim": 8},
         "audio": {"n_mels": 16, "width": 4, "out_dim": 8}, "timeseries": {"hidden": 8, "out_dim": 8}}


def _write(folder: Path, kind: str) -> tuple[Path, dict[str, Any]]:
    """A manifest with modality ``m`` of ``kind`` (2 classes, fixed split); returns (path, options)."""
    ids = _ids()
    labels = [CLASSES[i % 2] for i in range(len(ids))]
    cols, options = EXAMPLES[kind](folder, ids, labels)
    split = [SPLITS[i // 2] for i in range(len(ids))]
    frame = pd.DataFrame({"id": ids, "label": labels, "split": split, **cols})
    path = folder / "manifest.csv"
    frame.to_csv(path, index=False)
    return path, options


def _load(path: Path, kind: str, options: dict[str, Any]):
    return load_manifest(path, {"m": kind}, options={"m": options})


def _edit(path: Path, fn: Callable[[pd.DataFrame], None]) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    fn(frame)
    frame.to_csv(path, index=False)


KIND_NAMES = list_kinds()


def test_every_kind_has_an_example_here():
    missing = [k for k in KIND_NAMES if k not in EXAMPLES or k not in SMALL or k not in BAD]
    assert not missing, f"add example cells, small encoder arguments and bad cells for kind(s) {missing} to this file"


# --------------------------------------------------------------------------- the contract

def assert_every_layer_knows(name: str) -> None:
    """Every layer that loops over the kind registry has kind ``name``: the experiment file's kind
    choices, an encoder, the explain package's masker and fill value, its description keys among
    the stored per-feature columns (a round trip through the stored rows, labelled by the kind),
    and a dashboard viewer under the kind's viewer name."""
    from core.encoders import list_encoders
    from core.experiment_schema import modalities_table
    from core.explain import Explanation, fill_values, list_maskers
    from ui.viewers import VIEWERS, registered_viewer

    kind = get_kind(name)
    assert name in modalities_table().item.keys["kind"].choices
    assert kind.default_encoder in list_encoders(name)
    assert name in list_maskers()
    assert fill_values()[name] == kind.fill and json.dumps(fill_values())  # stored with every explanation
    info = {key: 3 if typ == "int" else "x y" for key, typ in kind.feature_columns.items()}
    e = Explanation(sample_id="s", modalities=["m"], values=np.array([0.5]), feature_modality=[0], feature_info=[info],
                    base_value=0.0, full_value=0.5, stderr=None, shares={"m": 1.0}, modality_shapley=None,
                    output_kind="pred_prob", explained_class="a", method="exact",
                    settings={"modality_kinds": {"m": name}})
    frame = e.per_feature_frame()
    assert set(kind.feature_columns) <= set(frame.columns)
    back = Explanation.from_rows(e.summary_row(), frame)
    assert back.feature_info == [info] and back.feature_names() == [f"m:{kind.feature_label(info)}"]
    viewer = registered_viewer(name)
    assert viewer is not None and callable(viewer.show) and VIEWERS[kind.viewer] is viewer


@pytest.mark.parametrize("name", KIND_NAMES)
def test_every_layer_loops_over_the_kind(name):
    assert_every_layer_knows(name)


@pytest.mark.parametrize("name", KIND_NAMES)
def test_kind_declares_everything_the_layers_loop_over(name):
    kind = get_kind(name)
    assert isinstance(kind, ModalityKind) and kind.name == name and get_kind(name) is kind  # one shared instance
    assert kind.default_encoder in ENCODERS and ENCODERS.meta(kind.default_encoder)["kind"] == name
    assert default_encoder(name) == kind.default_encoder
    assert kind.input_keys and kind.viewer == name
    assert kind.feature_columns and set(kind.feature_columns.values()) <= {"int", "str"}
    json.dumps(kind.fill)  # stored with every explanation
    assert all(isinstance(o, OptionKey) and o.doc for o in kind.options.values())
    assert kind.cell_doc


def test_registry_fails_with_the_known_names_and_maps_the_old_one():
    assert KIND_NAMES == ["text", "image", "video", "tabular", "timeseries", "audio"]
    with pytest.raises(ConfigError, match=r"unknown modality kind 'smell'. Fix: use one of: audio, image, tabular, "
                                          r"text, timeseries, video"):
        get_kind("smell")
    assert get_kind("features") is get_kind("tabular") and "features" in KINDS and "features" not in KIND_NAMES
    assert list(kinds_of({"x": "text", "y": "image", "z": "text"}).values()) == [["x", "z"], ["y"]]


def test_kinds_and_manifest_validation_never_import_torch():
    code = "import sys, core.kinds, core.data.manifest, core.experiment_schema; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


# --------------------------------------------------------------------------- manifest cells

@pytest.mark.parametrize("name", KIND_NAMES)
def test_good_cells_validate_and_load(tmp_path, name):
    path, options = _write(tmp_path, name)
    ds = _load(path, name, options)
    assert ds.modalities == {"m": name} and ds.classes == list(CLASSES)
    items = ds.items("m", ds.ids("test"))
    assert len(items) == 2
    if name == "text":
        assert all(isinstance(t, str) and t for t in items)
    elif name == "image":
        assert items[0].dtype == np.uint8 and items[0].shape == (12, 14, 3)
    elif name == "video":
        assert items[0].dtype == np.uint8 and items[0].shape == (4, 10, 10, 3)
    elif name == "timeseries":  # (T, C) float32 as stored, lengths differ
        assert items[0].dtype == np.float32 and items[0].ndim == 2 and items[0].shape[1] == 2
    elif name == "audio":  # mono float32 at 16 kHz, every clip the training median length (0.25 s)
        assert items[0].dtype == np.float32 and items[0].shape == (4000,)
    else:
        assert items[0].dtype == np.float32 and items[0].shape == (3,)
        row = ds.rows(ds.ids("test")[:1])
        np.testing.assert_array_equal(items[0], row[["age", "height", "weight"]].to_numpy(np.float32)[0])  # a copy


def test_file_columns_are_the_path_cells_only():
    assert get_kind("text").file_columns("t", {}) == []
    assert get_kind("image").file_columns("i", {}) == ["i"] and get_kind("video").file_columns("v", {}) == ["v"]
    assert get_kind("tabular").file_columns("w", {}) == ["w"]  # .npy paths
    assert get_kind("tabular").file_columns("w", {"columns": ["a"]}) == []  # numbers
    assert get_kind("audio").file_columns("a", {}) == ["a"]
    assert get_kind("timeseries").file_columns("s", {}) == ["s"]


def _blank(row: int) -> Callable[[pd.DataFrame], None]:
    def edit(frame: pd.DataFrame) -> None:
        frame.loc[row, "m"] = ""
    return edit


def _cell(column: str, row: int, value: str) -> Callable[[pd.DataFrame], None]:
    def edit(frame: pd.DataFrame) -> None:
        frame.loc[row, column] = value
    return edit


def _unlink(rel: str) -> Callable[[Path], None]:
    return lambda folder: (folder / rel).unlink()


def _garbage(rel: str) -> Callable[[Path], None]:
    return lambda folder: (folder / rel).write_bytes(b"not what it claims to be")


#: kind -> (case, edit of the manifest frame or None, edit of the folder or None, error pattern)
BAD: dict[str, list[tuple[str, Any, Any, str]]] = {
    "text": [("empty", _blank(3), None, r"'m': sample\(s\) s003 have empty text.*Fix: fill them in")],
    "image": [("blank", _blank(3), None, r"s003 have no file path"),
              ("missing", None, _unlink("img/s003.png"), r"file\(s\) missing for sample\(s\) s003"),
              ("unreadable", None, _garbage("img/s003.png"), r"1 of 12 image file\(s\) cannot be used: s003")],
    "video": [("blank", _blank(3), None, r"s003 have no file path"),
              ("missing", None, _unlink("clips/s003.npy"), r"file\(s\) missing for sample\(s\) s003")],
    "tabular": [("not-a-number", _cell("age", 3, "3O"), None,
                 r"column 'age' is not a number for sample\(s\) s003 \('3O'\).*Fix: write a finite number"),
                ("empty", _cell("height", 5, ""), None, r"column 'height' is empty or NaN for sample\(s\) s005"),
                ("nan", _cell("height", 5, "nan"), None, r"column 'height' is empty or NaN for sample\(s\) s005"),
                ("inf", _cell("weight", 7, "inf"), None, r"column 'weight' is infinite for sample\(s\) s007"),
                ("no-column", lambda f: f.drop(columns=["weight"], inplace=True), None,
                 r"lacks column\(s\) weight.*or correct columns = \[...\] in \[modalities.m\]")],
    "audio": [("blank", _blank(3), None, r"s003 have no file path"),
              ("missing", None, _unlink("wav/s003.wav"), r"1 of 12 audio clip\(s\) cannot be used: s003 "
                                                         r"\(wav/s003.wav: missing\).*Fix: fix the paths"),
              ("unreadable", None, _garbage("wav/s003.wav"), r"s003 \(wav/s003.wav: unreadable.*Fix: convert it")],
    "timeseries": [("blank", _blank(3), None, r"s003 have no file path"),
                   ("missing", None, _unlink("series/s003.npy"), r"file\(s\) missing for sample\(s\) s003"),
                   ("unreadable", None, _garbage("series/s003.npy"),
                    r"1 series file\(s\) cannot be used: sample 's003'.*not a plain .npy.*Fix: save a float array")],
}


@pytest.mark.parametrize("name,case", [(k, c[0]) for k in KIND_NAMES for c in BAD.get(k, [])])
def test_bad_cells_are_refused_naming_the_sample_and_the_fix(tmp_path, name, case):
    path, options = _write(tmp_path, name)
    _, edit_frame, edit_files, pattern = next(c for c in BAD[name] if c[0] == case)
    if edit_frame is not None:
        _edit(path, edit_frame)
    if edit_files is not None:
        edit_files(tmp_path)
    with pytest.raises(DataError, match=pattern) as info:
        _load(path, name, options)
    assert "Fix: " in str(info.value)


def test_a_video_clip_of_the_wrong_shape_fails_on_load_naming_it(tmp_path):
    path, options = _write(tmp_path, "video")
    np.save(tmp_path / "clips" / "s003.npy", np.zeros((4, 10, 10, 4), dtype=np.uint8))
    ds = _load(path, "video", options)
    with pytest.raises(DataError, match=r"clip 's003'.*4 channels.*Fix"):
        ds.items("m", ["s003"])


# --------------------------------------------------------------------------- encoder and masker

def _encoder_and_items(tmp_path: Path, name: str):
    path, options = _write(tmp_path, name)
    ds = _load(path, name, options)
    spec = resolve_spec({"name": get_kind(name).default_encoder, "kwargs": dict(SMALL[name])}, ds, "m")
    torch.manual_seed(0)
    encoder = build_encoder(spec)
    encoder.fit_preprocessing(ds.items("m", ds.ids("train")))
    return encoder.eval(), ds.items("m", ds.ids("test")), spec


@pytest.mark.parametrize("name", KIND_NAMES)
def test_default_encoder_encodes_loaded_items(tmp_path, name):
    encoder, items, spec = _encoder_and_items(tmp_path, name)
    inputs = encoder.prepare(items)
    assert set(get_kind(name).input_keys) <= set(inputs)
    with torch.no_grad():
        out = encoder(inputs)
    assert out.shape == (len(items), encoder.out_dim) and torch.isfinite(out).all()
    json.dumps(spec)  # saved with the run


@pytest.mark.parametrize("name", KIND_NAMES)
def test_masker_players_describe_and_fill(tmp_path, name):
    kind = get_kind(name)
    encoder, items, _ = _encoder_and_items(tmp_path, name)
    inputs = encoder.prepare(items[:1])
    masker = kind.build_masker(inputs, encoder=encoder, context=MaskerContext(grid=2, video_grid=2, video_segments=2))
    n = masker.n_features
    assert n >= 1 and masker.kind == name
    rows = masker.describe()
    assert len(rows) == n
    for row in rows:
        assert set(row) == set(kind.feature_columns)
        for key, typ in kind.feature_columns.items():
            assert isinstance(row[key], int if typ == "int" else str)
        assert kind.feature_label(row)
    present = masker.apply(inputs, np.ones((1, n), dtype=bool))
    for key in inputs:  # all players present: the inputs, copied unchanged
        assert torch.equal(present[key], inputs[key])
    masked = masker.apply(inputs, np.zeros((3, n), dtype=bool))
    for key in kind.input_keys:
        before, after = inputs[key].expand_as(masked[key]), masked[key]
        changed = before != after
        assert changed.any() and after.shape[0] == 3
        if isinstance(kind.fill, float):  # every changed value is the fill value
            assert (after[changed] == kind.fill).all()
        else:  # text: a masked token becomes the pad id
            assert (after[changed] == encoder.pad_token_id).all()
    with torch.no_grad():  # the encoder still runs on the masked inputs
        assert torch.isfinite(encoder(masked)).all()


def test_build_maskers_applies_the_reference_grid_rule(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "i").mkdir()
    text_enc, text_items, _ = _encoder_and_items(tmp_path / "t", "text")
    image_enc, image_items, _ = _encoder_and_items(tmp_path / "i", "image")
    inputs = {"title": text_enc.prepare(text_items[:1]), "photo": image_enc.prepare(image_items[:1])}
    kinds = {"title": "text", "photo": "image"}
    maskers, info = build_maskers(kinds, inputs, ["photo", "title"], encoders={"title": text_enc})
    n_tokens = int(inputs["title"]["attention_mask"].sum())
    assert info["text_tokens"] == {"title": n_tokens} and info["grid_rule"] == "ceil(sqrt(mean text tokens))"
    assert info["image_grid"] == {"photo": patch_grid_for_tokens(n_tokens)} == {"photo": maskers["photo"].grid}
    assert list(maskers) == ["photo", "title"]
    _, fixed = build_maskers(kinds, inputs, ["photo"], grid=20)
    assert fixed["image_grid"] == {"photo": 12} and fixed["grid_rule"] == "fixed"  # 12 pixels: no finer
    _, alone = build_maskers(kinds, inputs, ["photo"])
    assert alone["image_grid"] == {"photo": 3} and alone["grid_rule"] == "default (no text)"
    with pytest.raises(ConfigError, match="cannot tell the kind of modality 'x'"):
        build_maskers(kinds, {"x": {}}, ["x"])


@pytest.mark.parametrize("name", KIND_NAMES)
def test_the_explain_package_builds_its_maskers_through_the_kinds(tmp_path, name):
    """One masker registry (the kinds): core.explain's masker of a kind is the kind's own."""
    from core.explain import create_masker, list_maskers

    kind = get_kind(name)
    encoder, items, _ = _encoder_and_items(tmp_path, name)
    inputs = encoder.prepare(items[:1])
    context = MaskerContext(grid=2, video_grid=2, video_segments=2)
    ours = kind.build_masker(inputs, encoder=encoder, context=context)
    theirs = create_masker(name, inputs, encoder=encoder, context=context)
    assert type(ours) is type(theirs) and ours.describe() == theirs.describe()
    assert list_maskers() == KIND_NAMES


# --------------------------------------------------------------------------- tabular

def test_mlp_standardises_with_the_training_statistics_and_reloads_exactly():
    rng = np.random.default_rng(0)
    train = [np.array([rng.normal(50, 10), 3.0, rng.normal(-2, 0.5)], dtype=np.float32) for _ in range(40)]
    torch.manual_seed(0)
    enc = create_encoder("mlp", in_features=3, hidden=8, out_dim=4, feature_names=["age", "const", "x"]).eval()
    enc.fit_preprocessing(train)
    x = enc.prepare(train)["features"]
    assert x.mean(0).abs().max() <= f32_atol(60.0, 40)  # centred (float32 values of magnitude <= ~60)
    np.testing.assert_allclose(x[:, [0, 2]].std(0, unbiased=False).numpy(), 1.0, atol=f32_atol(6.0, 40))
    assert (x[:, 1] == 0).all()  # a constant column is only centred: exactly 0
    state = {k: v.clone() for k, v in enc.state_dict().items()}
    assert {"mean", "std"} <= set(state)  # saved with the run's weights
    twin = create_encoder(enc.spec()["name"], **enc.spec()["kwargs"])
    twin.load_state_dict(state)
    twin.eval()
    with torch.no_grad():  # the same weights and statistics, the same operations: the same outputs
        assert torch.equal(twin(twin.prepare(train)), enc(enc.prepare(train)))
    with pytest.raises(DataError, match="tabular item 0 has shape \\(2,\\)"):
        enc.prepare([np.zeros(2)])
    with pytest.raises(ConfigError, match="needs in_features"):
        create_encoder("mlp")


def _write_vectors(folder: Path, vectors: dict[str, Any]) -> None:
    (folder / "vec").mkdir(exist_ok=True)
    for sid, v in vectors.items():
        np.save(folder / "vec" / f"{sid}.npy", v, allow_pickle=True)


def test_npy_vectors_load_and_bad_ones_are_named(tmp_path):
    ids = _ids()
    labels = [CLASSES[i % 2] for i in range(len(ids))]
    _write_vectors(tmp_path, {sid: np.arange(4, dtype=np.float64) + i for i, sid in enumerate(ids)})
    frame = pd.DataFrame({"id": ids, "label": labels, "split": [SPLITS[i // 2] for i in range(len(ids))],
                          "m": [f"vec/{sid}.npy" for sid in ids]})
    path = tmp_path / "manifest.csv"
    frame.to_csv(path, index=False)
    ds = load_manifest(path, {"m": "features"})  # the old name still loads, as tabular
    assert ds.modalities == {"m": "tabular"}
    item = ds.items("m", ["s002"])[0]
    assert item.dtype == np.float32 and item.tolist() == [2.0, 3.0, 4.0, 5.0]
    for sid, value, pattern in [
        ("s003", np.zeros(5), r"the vectors differ in length: most have 4 values, others have 5 \(s003\)"),
        ("s004", np.zeros((2, 2)), r"s004 \(feature file .*must hold a finite 1-D numeric vector, got shape \(2, 2\)"),
        ("s005", np.array([1.0, np.nan, 0, 0]), r"s005 \(feature file .*finite 1-D"),
        ("s006", np.array([{"a": 1}], dtype=object), r"s006 \(feature file .*not a plain .npy array"),
    ]:
        _write_vectors(tmp_path, {sid: value})
        with pytest.raises(DataError, match=pattern):
            load_manifest(path, {"m": "tabular"})
        _write_vectors(tmp_path, {sid: np.arange(4, dtype=np.float64)})


def test_reserved_or_repeated_columns_are_refused(tmp_path):
    path, _ = _write(tmp_path, "tabular")
    with pytest.raises(DataError, match=r"columns names label, which is not a feature"):
        _load(path, "tabular", {"columns": ["age", "label"]})
    with pytest.raises(DataError, match=r"columns names age more than once"):
        _load(path, "tabular", {"columns": ["age", "age"]})


TABULAR_EXPERIMENT = """
name = "tab"
seed = 0
[dataset]
source = "manifest"
manifest = "data/manifest.csv"
[modalities.worker]
kind = "tabular"
encoder = "mlp"
encoder_kwargs = {{ hidden = 16, out_dim = 8 }}
{columns}
[modalities.note]
kind = "text"
encoder = "minilm"
encoder_kwargs = {{ max_length = 10 }}
[fusion]
methods = ["concat"]
late = ["late-average"]
[train.unimodal]
epochs = 60
lr = 0.01
batch_size = 16
hidden = 16
patience = 60
[train.fusion]
epochs = 10
batch_size = 16
dim = 8
"""


def _tabular_experiment(folder: Path, vectors: bool) -> Path:
    """Three classes that the tabular columns separate (the text says nothing about them)."""
    rng = np.random.default_rng(0)
    data = folder / "data"
    data.mkdir(parents=True)
    rows = []
    for c, label in enumerate(("low", "mid", "high")):
        for i in range(14):
            sid = f"{label}-{i:02d}"
            values = [10.0 * c + rng.normal(0, 1.5), rng.normal(0, 1), 100.0 + rng.normal(0, 20)]
            row = {"id": sid, "label": label, "note": f"worker record {rng.integers(0, 5)}"}
            if vectors:
                (data / "vec").mkdir(exist_ok=True)
                np.save(data / "vec" / f"{sid}.npy", np.asarray(values))
                row["worker"] = f"vec/{sid}.npy"
            else:
                row.update(zone=values[0], speed=values[1], shift=values[2])
            rows.append(row)
    pd.DataFrame(rows).to_csv(data / "manifest.csv", index=False)
    columns = "" if vectors else 'columns = ["zone", "speed", "shift"]'
    path = folder / "tab.toml"
    path.write_text(TABULAR_EXPERIMENT.format(columns=columns))
    return path


@pytest.mark.parametrize("vectors", [False, True], ids=["columns", "npy"])
def test_tabular_experiment_builds_reloads_and_reproduces(tmp_path, vectors):
    exp = load_experiment(_tabular_experiment(tmp_path, vectors))
    assert exp.modalities == {"worker": "tabular", "note": "text"}
    root = tmp_path / "runs"
    runs = train_experiment(exp, root, progress=False)
    assert {r.name for r in runs} == {"unimodal-worker", "unimodal-note", "concat-worker+note",
                                      "late-average-worker+note"}
    ds, info = load_experiment_dataset(root / "tab")
    if not vectors:
        assert info["modality_options"]["worker"] == {"columns": ["zone", "speed", "shift"]}
        assert "worker" not in ds.frame.columns and ds.frame["zone"].dtype == np.float64
    config = json.loads((root / "tab" / "unimodal-worker" / "config.json").read_text())
    kwargs = config["encoders"]["worker"]["kwargs"]
    assert kwargs["in_features"] == 3
    assert kwargs["feature_names"] == (["worker[0]", "worker[1]", "worker[2]"] if vectors else
                                       ["zone", "speed", "shift"])
    metrics = json.loads((root / "tab" / "unimodal-worker" / "metrics.json").read_text())
    assert metrics["top1"] >= 0.8  # the columns separate the classes (chance: 1/3)
    for run in runs:
        report = reproduce_predictions(run)
        assert report["same_topk_labels"], run.name
        assert report["max_abs_prob_diff"] <= f32_atol(1.0, longest_reduction(load_run(run).model())), run.name


# --------------------------------------------------------------------------- tabular: build, explain, show

PRECOMPUTE = """
[precompute]
projections = []
explain_runs = ["concat-worker+note"]
explain_samples = [3]
"""


def figure_values(value: Any) -> list:
    """A figure's data array as a list: plotly writes numeric arrays as base64 (``bdata``)."""
    if isinstance(value, dict) and "bdata" in value:
        import base64

        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return list(value)


def open_explorer(monkeypatch, root: Path, run: str, sample: str):
    """The dashboard's Sample explorer (AppTest, headless) on one run and sample of ``root``."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("FUSIONLENS_RUNS", str(root))
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120)
    for key, value in {"page": "explorer", "run": run, "sample": sample}.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, "\n".join(str(e.value) for e in at.exception)
    assert not at.error, "\n".join(str(e.value) for e in at.error)
    return at


def plotly_figures(at) -> dict[str, dict]:
    """The page's Plotly figures by title."""
    figures = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {f["layout"]["title"]["text"]: f for f in figures}


def test_tabular_experiment_builds_explains_and_shows_in_the_explorer(tmp_path, monkeypatch):
    """The whole build (core.pipeline) of a tabular + text experiment, its explain step included,
    and the Sample explorer drawing the tabular viewer from the stored explanation."""
    from core.explain import explanation_for, load_explanations
    from core.pipeline import run_build

    path = _tabular_experiment(tmp_path, vectors=False)
    path.write_text(path.read_text() + PRECOMPUTE)
    root = tmp_path / "runs"
    ctx = run_build(load_experiment(path), root, progress=False)
    assert [(step, status) for step, status, *_ in ctx.log] == [
        (s, "done") for s in ("prepare", "train", "results", "project", "blame", "explain", "robustness")]
    run_dir = root / "tab" / "concat-worker+note"
    samples, features = load_explanations(run_dir)
    assert len(samples) == 3
    columns = features[features["modality"] == "worker"].groupby("sample_id", sort=False)["column"].apply(list)
    assert columns.tolist() == [["zone", "speed", "shift"]] * 3
    sample = str(samples["sample_id"].iloc[0])
    e = explanation_for(run_dir, sample)
    assert e.settings["modality_kinds"] == {"worker": "tabular", "note": "text"}
    assert e.settings["fill"]["tabular"] == 0.0 and e.feature_names()[:3] == ["worker:zone", "worker:speed",
                                                                             "worker:shift"]
    assert abs(e.values.sum() - (e.full_value - e.base_value)) <= 1e-9  # exact values: efficiency in float64

    at = open_explorer(monkeypatch, root, "concat-worker+note", sample)
    figures = plotly_figures(at)
    bars = figures["worker: column contributions"]["data"][0]  # the tabular viewer, from the stored values
    assert bars["type"] == "bar" and bars["orientation"] == "h"
    assert bars["y"] == ["shift", "speed", "zone"]  # first column on top
    np.testing.assert_array_equal(figure_values(bars["x"]), e.modality_values("worker")[::-1])
    ds, _ = load_experiment_dataset(root / "tab")
    row = ds.frame.set_index("id").loc[sample]
    assert bars["customdata"] == [f"{float(np.float32(row[c])):.4g}" for c in ("shift", "speed", "zone")]
    layout = figures["worker: column contributions"]["layout"]
    assert layout["xaxis"]["title"]["text"].startswith("Contribution") and layout["yaxis"]["title"]["text"] == "Column"
    assert bars["marker"]["color"] == modality_color("worker", ["worker", "note"])  # as in every figure
    assert any("fusionlens-tokens" in str(h.proto) for h in at.get("html"))  # the note's tokens, coloured
    assert "note" in at.dataframe[0].value.columns  # text cells listed (and searched) beside the predictions

    # a sample without an explanation: the columns' values, named from the experiment's columns
    other = next(i for i in ds.ids("test") if i not in set(samples["sample_id"].astype(str)))
    values = plotly_figures(open_explorer(monkeypatch, root, "concat-worker+note", other))
    bars = values["worker: column values (no explanation yet)"]["data"][0]
    assert bars["y"] == ["shift", "speed", "zone"]
    np.testing.assert_array_equal(figure_values(bars["x"]), ds.items("worker", [other])[0][::-1])
