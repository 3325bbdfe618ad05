"""The timeseries kind: its files and their documented rules, its options, its players, and a
timeseries + tabular experiment trained, explained and shown in the Sample explorer."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
import torch

from core.data import load_experiment_dataset, load_manifest
from core.errors import ConfigError, DataError
from core.experiment import load_experiment
from core.explain import DEFAULT_SERIES_SEGMENTS, ExplainSettings, build_maskers, explain_run, explanation_for
from core.kinds import MaskerContext, SegmentMasker, get_kind
from core.kinds import build_maskers as build_kind_maskers
from core.kinds.series_files import fill_gaps, read_series, resample_series
from core.model import build_encoder
from core.train import reproduce_predictions, train_experiment
from tests._tolerance import f32_atol
from tests.core.kinds.test_kinds import figure_values, open_explorer, plotly_figures

IDS = [f"s{i:03d}" for i in range(12)]
LABELS = ["a", "b"] * 6
SPLITS = ["train"] * 8 + ["val"] * 2 + ["test"] * 2
CHANNELS = ["x", "y", "speed"]


def _series(i: int, t: int | None = None) -> np.ndarray:
    t = t or 10 + i % 4
    rng = np.random.default_rng(i)
    return np.stack([np.linspace(0, 5, t), np.linspace(2, -1, t) ** 2, rng.normal(size=t)], axis=1)


def _write(folder: Path, fmt: str = "npy", edit: Callable[[Path], None] | None = None) -> Path:
    """12 samples of 3 channels (``fmt``: npy, csv, or mixed), lengths 10 to 13; returns the manifest."""
    (folder / "s").mkdir(parents=True, exist_ok=True)
    cells = []
    for i, sid in enumerate(IDS):
        suffix = fmt if fmt != "mixed" else ("csv" if i % 2 else "npy")
        path = folder / "s" / f"{sid}.{suffix}"
        if suffix == "csv":
            pd.DataFrame(_series(i), columns=CHANNELS).to_csv(path, index=False)
        else:
            np.save(path, _series(i))
        cells.append(f"s/{sid}.{suffix}")
    if edit is not None:  # may replace a file by one of another type: the manifest names what is there
        edit(folder)
        cells = [next((f"s/{p.name}" for p in (folder / "s").glob(f"{Path(c).stem}.*")), c) for c in cells]
    frame = pd.DataFrame({"id": IDS, "label": LABELS, "split": SPLITS, "m": cells})
    frame.to_csv(folder / "manifest.csv", index=False)
    return folder / "manifest.csv"


def _load(path: Path, **options: Any):
    ds = load_manifest(path, {"m": "timeseries"}, options={"m": options})
    get_kind("timeseries").finish_dataset(ds, ["m"], {}, user_data=True)  # as prepare does
    return ds


# --------------------------------------------------------------------------- files and rules


def test_gaps_are_interpolated_in_time_and_the_edges_held():
    nan = np.nan
    raw = np.array([[nan, 1.0], [2.0, nan], [nan, nan], [4.0, 7.0], [nan, 9.0]])
    filled = fill_gaps(raw, "sample 'x'", ["a", "b"])
    assert filled.dtype == np.float32
    np.testing.assert_array_equal(filled, [[2, 1], [2, 3], [3, 5], [4, 7], [4, 9]])  # exact in float32


def test_resampling_is_linear_in_time_and_keeps_both_ends():
    series = np.array([[0.0, 10.0], [1.0, 10.0], [4.0, 10.0]])
    out = resample_series(series, 5)  # positions 0, 0.5, 1, 1.5, 2
    np.testing.assert_allclose(out[:, 0], [0.0, 0.5, 1.0, 2.5, 4.0], rtol=0, atol=1e-12)
    assert (out[:, 1] == 10.0).all() and out.shape == (5, 2)
    np.testing.assert_array_equal(resample_series(series, 3), series)
    np.testing.assert_allclose(resample_series(series, 2), series[[0, 2]], rtol=0, atol=1e-12)


def test_npy_csv_and_mixed_series_load_with_their_channel_names(tmp_path):
    for fmt in ("npy", "csv", "mixed"):
        ds = _load(_write(tmp_path / fmt, fmt))
        items = ds.items("m", IDS[:4])
        assert [i.shape for i in items] == [(10, 3), (11, 3), (12, 3), (13, 3)]  # T differs, as stored
        assert all(i.dtype == np.float32 for i in items)
        np.testing.assert_allclose(items[1], _series(1), rtol=0, atol=f32_atol(25.0))  # float32 of the file
        # prepare records a csv header as the channel names (kept in dataset.json)
        assert ds.options.get("m", {}).get("channels") == (None if fmt == "npy" else CHANNELS)
    one = tmp_path / "one" / "s"
    one.mkdir(parents=True)
    np.save(one / "a.npy", np.arange(5.0))
    arr, names = read_series(one / "a.npy", "sample 'a'")
    assert arr.shape == (5, 1) and names is None  # (T,) is one channel


def test_csv_blank_cells_are_gaps(tmp_path):
    def dropouts(folder: Path) -> None:
        path = folder / "s" / "s002.csv"
        lines = path.read_text().splitlines()
        lines[3] = ",".join(["", lines[3].split(",")[1], "NaN"])  # step 2: x and speed missing
        path.write_text("\n".join(lines) + "\n")

    ds = _load(_write(tmp_path, "csv", dropouts))
    item = ds.items("m", ["s002"])[0]
    expected = _series(2)
    np.testing.assert_allclose(item[2, 0], (expected[1, 0] + expected[3, 0]) / 2, rtol=0, atol=f32_atol(5.0))
    assert np.isfinite(item).all()


def _replace(sid: str, value: Any, suffix: str = "npy") -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        for old in (folder / "s").glob(f"{sid}.*"):
            old.unlink()
        path = folder / "s" / f"{sid}.{suffix}"
        if suffix == "npy":
            np.save(path, value, allow_pickle=True)
        else:
            path.write_text(value)
    return edit


def _with(i: int, fn: Callable[[np.ndarray], None]) -> np.ndarray:
    arr = _series(i)
    fn(arr)
    return arr


def _nan_channel(arr: np.ndarray) -> None:
    arr[:, 1] = np.nan


def _one_point(arr: np.ndarray) -> None:
    arr[1:, 2] = np.nan


#: case -> (edit of the files, error pattern); every error names the sample, the problem and the fix
RULES: dict[str, tuple[Callable[[Path], None], str]] = {
    "empty-channel": (_replace("s003", _with(3, _nan_channel)),
                      r"sample 's003': channel 'c1' has no valid value.*Fix: .*empty_channel = \"zero\""),
    "infinite": (_replace("s003", _with(3, lambda a: a.__setitem__((2, 0), np.inf))),
                 r"sample 's003': series holds 1 infinite value\(s\) in channel\(s\) 'c0'.*Fix: replace them"),
    "one-step": (_replace("s003", _series(3, t=1)), r"sample 's003': series is too short \(1 time step.*Fix: give"),
    "one-valid-point": (_replace("s003", _with(3, _one_point)),
                        r"sample 's003': channel 'c2' is too short \(1 valid time step.*Fix: give every series"),
    "3-D": (_replace("s003", np.zeros((4, 3, 2))), r"sample 's003': series in .* has shape \(4, 3, 2\), not \(T,\)"),
    "0-D": (_replace("s003", np.float64(3.0)), r"sample 's003': series in .* has shape \(\), not \(T,\)"),
    "pickled": (_replace("s003", np.array([{"a": 1}], dtype=object)),
                r"sample 's003': series file .* is not a plain .npy array.*Fix: save a float array"),
    "not-a-number": (_replace("s003", "x,y,speed\n1,2,3\n4,5 m,6\n", "csv"),
                     r"sample 's003': series file .* 1 cell\(s\) that are not numbers, e.g. row 3, channel 'y': "
                     r"'5 m'"),
    "another-type": (_replace("s003", "1,2", "txt"), r"sample 's003': series file .* unsupported type '.txt'"),
    "channels": (_replace("s003", np.zeros((10, 2))),
                 r"the series differ in channels: the first sample has 3 channel\(s\), others have 2 channel\(s\) "
                 r"\(s003\).*Fix: give every sample the same channels"),
}


@pytest.mark.parametrize("case", sorted(RULES))
def test_each_rule_refuses_bad_input_naming_the_sample_and_the_fix(tmp_path, case):
    edit, pattern = RULES[case]
    path = _write(tmp_path, "npy", edit)
    with pytest.raises(DataError, match=pattern) as info:
        _load(path)
    assert "Fix: " in str(info.value)


def test_missing_files_and_other_csv_headers_are_refused(tmp_path):
    with pytest.raises(DataError, match=r"file\(s\) missing for sample\(s\) s005"):
        _load(_write(tmp_path / "a", "npy", lambda f: (f / "s" / "s005.npy").unlink()))
    other = "speed,x,y\n" + "\n".join("1,2,3" for _ in range(10)) + "\n"
    with pytest.raises(DataError, match=r"first sample has 3 channel\(s\) \['x', 'y', 'speed'\], others have "
                                         r"3 channel\(s\) \['speed', 'x', 'y'\] \(s004\)"):
        _load(_write(tmp_path / "b", "csv", _replace("s004", other, "csv")))


def test_an_empty_channel_becomes_the_training_mean_with_empty_channel_zero(tmp_path):
    path = _write(tmp_path, "npy", _replace("s001", _with(1, _nan_channel)))
    ds = _load(path, empty_channel="zero")
    item = ds.items("m", ["s001"])[0]
    assert np.isnan(item[:, 1]).all() and np.isfinite(item[:, [0, 2]]).all()  # left to the encoder
    encoder = build_encoder({"name": "gru", "kwargs": {"in_channels": 3, "hidden": 8, "out_dim": 4}})
    train = ds.items("m", ds.ids("train"))
    encoder.fit_preprocessing(train)
    others = [resample_series(s, encoder.length)[:, 1] for s in train if not np.isnan(s[:, 1]).any()]
    assert float(encoder.mean[1]) == pytest.approx(np.mean(others), abs=f32_atol(5.0))  # of the valid values
    x = encoder.prepare([item])["series"]
    assert (x[0, :, 1] == 0).all() and torch.isfinite(x).all()  # 0 after standardisation: the training mean


@pytest.mark.parametrize("options, pattern", [
    ({"channel_groups": [["c0", "c1"], ["c9"]]}, r"channel_groups names unknown channel\(s\) 'c9'"),
    ({"channel_groups": [["c0", "c1"], ["c1", "c2"]]}, r"channel_groups puts 'c1' in more than one group"),
    ({"channel_groups": [["c0", "c1"]]}, r"channel_groups leaves out 'c2'"),
    ({"channels": ["a", "b"]}, r"channels names 2 channel\(s\), the series have 3"),
    ({"xy": ["c0", "c1", "c2"]}, r"xy has 3 names, not x/y pairs"),
    ({"xy": ["c0", "north"]}, r"xy names unknown channel\(s\) 'north'. Fix: .*among: c0, c1, c2"),
    ({"length": 1}, r"length = 1 is not an integer >= 2"),
])
def test_options_that_do_not_fit_the_channels_are_refused(tmp_path, options, pattern):
    with pytest.raises(ConfigError, match=r"\[modalities.m\] " + pattern) as info:
        _load(_write(tmp_path), **options)
    assert "Fix: " in str(info.value)


def test_encoder_arguments_come_from_the_data_and_the_options(tmp_path):
    ds = _load(_write(tmp_path, "csv"), channel_groups=[["x", "y"], ["speed"]], length=16)
    kind = get_kind("timeseries")
    first = ds.items("m", ds.ids("train")[:1])[0]
    assert kind.encoder_kwargs(first, "m", ds.options["m"]) == {
        "in_channels": 3, "channels": CHANNELS, "channel_groups": [["x", "y"], ["speed"]], "length": 16}
    assert kind.encoder_kwargs(first, "m", {}) == {"in_channels": 3, "channels": ["c0", "c1", "c2"]}


# --------------------------------------------------------------------------- players


def _inputs(length: int = 13, channels: int = 3) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"series": torch.randn(1, length, channels, generator=g) + 5.0}


def test_players_are_time_segments_times_channel_groups():
    masker = SegmentMasker(_inputs(), segments=4, channels=CHANNELS, channel_groups=[["x", "y"], ["speed"]])
    assert masker.n_features == 8
    rows = masker.describe()
    assert [(r["segment"], r["group"]) for r in rows[:3]] == [(0, 0), (0, 1), (1, 0)]  # segment-major
    assert [(r["t0"], r["t1"]) for r in rows[::2]] == [(0, 3), (3, 6), (6, 9), (9, 13)]  # floor(i * 13 / 4)
    assert rows[0]["channels"] == "x, y" and rows[1]["channels"] == "speed"
    assert get_kind("timeseries").feature_label(rows[1]) == "t0-3 [speed]"
    # one group of every channel by default; more segments than steps: one per step
    assert SegmentMasker(_inputs(), segments=5).n_features == 5
    assert SegmentMasker(_inputs(length=3), segments=8).n_features == 3


def test_masking_one_player_changes_only_its_segment_and_group_to_the_fill():
    inputs = _inputs()
    masker = SegmentMasker(inputs, segments=4, channels=CHANNELS, channel_groups=[["x", "y"], ["speed"]])
    eye = ~np.eye(masker.n_features, dtype=bool)  # row j: only player j masked
    out = masker.apply(inputs, eye)["series"]
    for j, row in enumerate(masker.describe()):
        changed = out[j] != inputs["series"][0]
        block = torch.zeros_like(changed)
        cols = [0, 1] if row["group"] == 0 else [2]
        block[row["t0"]:row["t1"], cols] = True
        assert torch.equal(changed, block), j
        assert (out[j][block] == 0.0).all()  # the training mean after standardisation
    assert torch.equal(masker.apply(inputs, np.ones((1, 8), dtype=bool))["series"], inputs["series"])


def test_bad_masker_arguments_are_refused():
    with pytest.raises(ConfigError, match="series_segments must be a positive integer"):
        SegmentMasker(_inputs(), segments=0)
    with pytest.raises(ConfigError, match="got 2 channel names for 3 channels"):
        SegmentMasker(_inputs(), channels=["a", "b"])
    with pytest.raises(DataError, match="one sample"):
        SegmentMasker({"series": torch.zeros(2, 5, 3)})


def test_series_segments_is_an_explain_setting_threaded_to_the_masker():
    maskers, info = build_kind_maskers({"m": "timeseries"}, {"m": _inputs()}, ["m"], series_segments=3)
    assert maskers["m"].n_features == 3 and info["series_segments"] == 3
    assert MaskerContext().series_segments == DEFAULT_SERIES_SEGMENTS == ExplainSettings().series_segments == 8
    assert ExplainSettings(series_segments=3).series_segments == 3
    with pytest.raises(ConfigError, match="series_segments=0 is not valid"):
        ExplainSettings(series_segments=0)
    # stored results keep their names: the default is not hashed, another value is
    assert ExplainSettings().hash() == "43179091972b"
    assert ExplainSettings(series_segments=3).hash() != ExplainSettings().hash()
    assert ExplainSettings().as_dict()["series_segments"] == 8  # stored with the settings all the same

    class Model:  # the explain package reads the kinds and encoders of a model
        modalities = ["m"]
        modality_kinds = {"m": "timeseries"}
        encoders: dict = {}

    maskers, _ = build_maskers(Model(), {"m": _inputs()}, ["m"], ExplainSettings(series_segments=2))
    assert maskers["m"].n_features == 2


# --------------------------------------------------------------------------- end to end

EXPERIMENT = """
name = "site"
seed = 0
[dataset]
source = "manifest"
manifest = "data/manifest.csv"
[modalities.track]
kind = "timeseries"
encoder = "gru"
encoder_kwargs = { hidden = 16, out_dim = 8 }
channel_groups = [["worker_x", "worker_y"], ["speed"]]
xy = ["worker_x", "worker_y"]
[modalities.worker]
kind = "tabular"
encoder = "mlp"
encoder_kwargs = { hidden = 8, out_dim = 8 }
columns = ["age", "shift"]
missing = "mean"
[fusion]
methods = ["concat"]
late = []
[train.unimodal]
epochs = 30
lr = 0.01
batch_size = 16
hidden = 16
patience = 30
[train.fusion]
epochs = 10
batch_size = 16
dim = 8
"""


def write_site(folder: Path) -> Path:
    """Two classes that the worker's track separates (walking towards the excavator at the origin, or
    away from it), with tag dropouts (empty cells); the tabular columns say nothing and have gaps."""
    rng = np.random.default_rng(0)
    data = folder / "data"
    (data / "tracks").mkdir(parents=True)
    rows = []
    for label, sign in (("approach", -1.0), ("leave", 1.0)):
        for i in range(12):
            sid = f"{label}-{i:02d}"
            t = int(rng.integers(24, 33))
            r = 6.0 + sign * np.linspace(0, 4, t) + rng.normal(0, 0.2, t)
            angle = rng.uniform(0, 2 * np.pi) + np.linspace(0, 0.5, t)
            track = pd.DataFrame({"worker_x": r * np.cos(angle), "worker_y": r * np.sin(angle),
                                  "speed": np.abs(rng.normal(1.0, 0.2, t))})
            track.iloc[rng.integers(1, t - 1, 3), :2] = np.nan  # the tag's dropouts
            track.to_csv(data / "tracks" / f"{sid}.csv", index=False)
            rows.append({"id": sid, "label": label, "track": f"tracks/{sid}.csv",
                         "age": "" if i % 5 == 0 else f"{rng.normal(40, 8):.1f}",
                         "shift": f"{rng.integers(0, 3)}"})
    pd.DataFrame(rows).to_csv(data / "manifest.csv", index=False)
    path = folder / "site.toml"
    path.write_text(EXPERIMENT)
    return path


def test_a_timeseries_and_tabular_experiment_trains_explains_and_shows(tmp_path, monkeypatch):
    exp = load_experiment(write_site(tmp_path))
    assert exp.modalities == {"track": "timeseries", "worker": "tabular"}
    root = tmp_path / "runs"
    runs = train_experiment(exp, root, progress=False)
    assert {r.name for r in runs} == {"unimodal-track", "unimodal-worker", "concat-track+worker"}
    ds, info = load_experiment_dataset(root / "site")
    assert info["modality_options"]["track"]["channels"] == ["worker_x", "worker_y", "speed"]  # the csv header
    missing = info["preparation"]["missing_values"]["worker"]
    assert missing["columns"] == {"age": 6, "shift": 0} and missing["rule"] == "mean"
    config = json.loads((root / "site" / "unimodal-track" / "config.json").read_text())
    kwargs = config["encoders"]["track"]["kwargs"]
    lengths = [len(pd.read_csv(tmp_path / "data" / "tracks" / f"{i}.csv")) for i in ds.ids("train")]
    assert kwargs["length"] == int(np.floor(np.median(lengths) + 0.5))  # the training median, saved
    assert kwargs["channel_groups"] == [["worker_x", "worker_y"], ["speed"]]
    metrics = json.loads((root / "site" / "unimodal-track" / "metrics.json").read_text())
    assert metrics["top1"] >= 0.75  # the tracks separate the classes (chance: 1/2)
    for run in runs:
        assert reproduce_predictions(run)["same_topk_labels"], run.name

    run_dir = root / "site" / "concat-track+worker"
    report = explain_run(run_dir, n=2, series_segments=4, method="exact", progress=False)
    assert report["computed"] == 2
    sample = ds.ids("test")[0]
    e = explanation_for(run_dir, sample) or explanation_for(run_dir, ds.ids("test")[1])
    sample = e.sample_id
    assert e.settings["series_segments"] == 4 and e.settings["fill"]["timeseries"] == 0.0
    track = [i for i, m in zip(e.feature_info, e.feature_modality) if e.modalities[m] == "track"]
    assert len(track) == 8 and {r["channels"] for r in track} == {"worker_x, worker_y", "speed"}
    assert abs(e.values.sum() - (e.full_value - e.base_value)) <= 1e-9  # exact values: efficiency

    at = open_explorer(monkeypatch, root, "concat-track+worker", sample)
    figures = plotly_figures(at)
    series = figures["track: segment contributions"]
    lines = [t for t in series["data"] if t.get("mode") == "lines"]
    assert [t["name"] for t in lines] == ["worker_x", "worker_y", "speed"]
    assert len(figure_values(lines[0]["y"])) == len(ds.items("track", [sample])[0])  # the series as stored
    bands = [s for s in series["layout"]["shapes"] if s["type"] == "rect"]
    phi = e.modality_values("track")
    assert len(bands) == 8
    phi = np.concatenate([phi[0::2], phi[1::2]])  # players are segment-major; bands panel by panel (group)
    biggest = int(np.argmax(np.abs(phi)))
    assert bands[biggest]["opacity"] == pytest.approx(0.5) and all(b["opacity"] <= 0.5 + 1e-9 for b in bands)
    assert all((b["fillcolor"] == "#B2182B") == (v >= 0) for b, v in zip(bands, phi))  # red: towards the class
    assert series["layout"]["xaxis2"]["title"]["text"] == "Time step" and series["layout"]["yaxis"]["title"]["text"]
    tracks = figures["track: track map (top-down)"]
    assert tracks["layout"]["yaxis"]["scaleanchor"] == "x" and tracks["layout"]["xaxis"]["title"]["text"] == "x (m)"
    colours = figure_values(tracks["data"][0]["marker"]["color"])
    assert set(np.round(colours, 12)) <= set(np.round(phi[:4], 12))  # the worker_x/y group's segment values
