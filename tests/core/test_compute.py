"""core.compute: FLOPs per sample by part, against hand counts; on every registered encoder; in a
trained run's metrics; added to an existing run by ``fusionlens compute``; old runs without it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from core.bundle import load_run, metrics_problems
from core.cli import main
from core.compute import EXTRA_FORMULAS, count_gflops, expected_gflops, has_gflops
from core.encoders import ENCODERS, Encoder, create_encoder
from core.errors import ConfigError, DataError
from core.model import EarlyFusionClassifier, MultimodalClassifier, build_encoder, build_head, stack_channels
from core.results import MISSING, format_results, results_table, save_results
from tests.core.encoders.test_encoders import IMAGE_KW


class ToyEncoder(Encoder):
    """Items are ints n: n tokens of width 3 (variable size, like text), through ``net``."""

    kind = "toy"

    def __init__(self, net: nn.Module, out_dim: int, width: int = 3) -> None:
        super().__init__()
        self.net, self.out_dim, self.width, self.calls = net, out_dim, width, 0

    def prepare(self, items):
        n = max(int(i) for i in items)
        return {"x": torch.ones(len(items), n, self.width)}

    def forward(self, inputs):
        self.calls += 1
        return self.net(inputs["x"])


class LinearMean(nn.Module):
    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(d_in, d_out)

    def forward(self, x):
        return self.lin(x).mean(1)


class ConvPool(nn.Module):
    """Conv1d over the tokens (channels = width), then max over positions."""

    def __init__(self, c_in: int, c_out: int, k: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, k)

    def forward(self, x):
        return self.conv(x.transpose(1, 2)).amax(-1)


class Recurrent(nn.Module):
    def __init__(self, cell: type[nn.Module], d_in: int, hidden: int, **kw) -> None:
        super().__init__()
        self.rnn = cell(d_in, hidden, batch_first=True, **kw)

    def forward(self, x):
        return self.rnn(x)[0][:, -1]


class Spectrum(nn.Module):
    def forward(self, x):
        return torch.fft.rfft(x, dim=1).abs().sum(1)


def _toy_model(nets: dict[str, tuple[nn.Module, int]], head: dict | None = None) -> MultimodalClassifier:
    encoders = {m: ToyEncoder(net, d) for m, (net, d) in nets.items()}
    cfg = head or {"type": "late", "in_dims": [d for _, d in nets.values()], "n_classes": 2, "fusion": "late-average"}
    return MultimodalClassifier(list(nets), encoders, build_head(cfg), ["a", "b"]).eval()


# --------------------------------------------------------------------------- known answers

def test_linear_and_conv_against_the_hand_count():
    torch.manual_seed(0)
    model = _toy_model({"a": (LinearMean(3, 4), 4), "b": (ConvPool(3, 5, 3), 5)})
    count = count_gflops(model, {"a": [6, 6], "b": [10, 10]})
    linear = 2 * 6 * 3 * 4  # 6 tokens x (3 -> 4), a multiply-add = 2 FLOPs; bias and mean not counted
    conv = 2 * (10 - 3 + 1) * 5 * 3 * 3  # 8 positions x 5 filters x (3 channels x 3 taps); the max is not counted
    voters = 2 * 4 * 2 + 2 * 5 * 2  # the late head: one linear classifier per modality
    assert count["flops_by_part"] == {"a": linear, "b": conv, "head": voters}
    assert count["flops_per_sample"] == linear + conv + voters and count["samples"] == 2
    assert count["gflops_by_part"]["b"] == pytest.approx(conv / 1e9, rel=1e-12)
    assert count["uncounted"] == []


def test_variable_sizes_average_and_each_shape_runs_once():
    model = _toy_model({"t": (LinearMean(3, 4), 4)}, {"type": "unimodal", "in_dims": [4], "n_classes": 2, "hidden": 8})
    enc = model.encoders["t"]
    count = count_gflops(model, {"t": [2, 5, 2, 5, 5]})
    assert count["flops_by_part"]["t"] == pytest.approx(2 * 3 * 4 * (2 + 5 + 2 + 5 + 5) / 5, rel=1e-12)
    assert count["flops_by_part"]["head"] == 2 * (4 * 8 + 8 * 2)  # hidden layer, then the classes
    assert enc.calls == 2  # two shapes: each counted once, the count depends on shapes only
    assert model.training is False


@pytest.mark.parametrize("cell,gates", [(nn.LSTM, 4), (nn.GRU, 3), (nn.RNN, 1)])
def test_recurrent_layers_are_counted(cell, gates):
    """Every step multiplies its input (gates*H x in) and hidden state (gates*H x H): the counter counts the GRU's
    and RNN's products itself; the LSTM runs as one CPU kernel it does not know, counted by core.compute."""
    torch.manual_seed(0)
    model = _toy_model({"s": (Recurrent(cell, 3, 8), 8)})
    count = count_gflops(model, {"s": [5]})
    assert count["flops_by_part"]["s"] == 2 * 5 * gates * 8 * (3 + 8)
    assert count["uncounted"] == []


def test_two_layer_bidirectional_lstm():
    model = _toy_model({"s": (Recurrent(nn.LSTM, 3, 8, num_layers=2, bidirectional=True), 16)})
    first, second = 2 * 5 * 4 * 8 * (3 + 8), 2 * 5 * 4 * 8 * (16 + 8)  # layer 2 reads both directions
    assert count_gflops(model, {"s": [5]})["flops_by_part"]["s"] == 2 * (first + second)


def test_an_operation_without_a_formula_is_reported_not_silently_zero():
    model = _toy_model({"a": (LinearMean(3, 4), 4), "f": (Spectrum(), 3)})
    count = count_gflops(model, {"a": [4], "f": [8]})
    assert count["flops_by_part"]["f"] == 0
    assert count["uncounted"] and all(u.startswith("f: ") and "fft" in u for u in count["uncounted"])
    assert not any(u.startswith("a: ") for u in count["uncounted"])


def test_bad_items_are_clear_errors():
    model = _toy_model({"a": (LinearMean(3, 4), 4), "b": (LinearMean(3, 4), 4)})
    with pytest.raises(DataError, match="same number"):
        count_gflops(model, {"a": [2, 3], "b": [2]})
    with pytest.raises(DataError, match="no items for modality 'b'") as err:
        count_gflops(model, {"a": [2]})
    assert err.value.fix


def test_expected_gflops_of_an_adaptive_run():
    stored = expected_gflops({"rgb": 2.0, "depth": 1.0, "head": 0.5}, {"rgb": 0.25, "depth": 1.0})
    assert stored["gflops_by_part"] == {"rgb": 0.5, "depth": 1.0, "head": 0.5}  # head: no rate, always runs
    assert stored["gflops_per_sample"] == 2.0 and stored["gflops_max_per_sample"] == 3.5
    assert metrics_problems({**_valid_metrics(), **stored}) == []
    with pytest.raises(ConfigError, match="between 0 and 1"):
        expected_gflops({"rgb": 2.0}, {"rgb": 1.5})
    with pytest.raises(ConfigError, match="no count"):
        expected_gflops({"rgb": 2.0}, {"audio": 0.5})


def _valid_metrics() -> dict:
    return {"top1": 0.5, "top3": 1.0, "top5": 1.0, "macro_f1": 0.4, "n_params": 10, "inference_ms_per_sample": 1.0}


@pytest.mark.parametrize("bad,problem", [
    ({"gflops_per_sample": "lots"}, "'gflops_per_sample'"),
    ({"gflops_per_sample": -1.0}, "'gflops_per_sample'"),
    ({"gflops_by_part": {"image": None}}, "'gflops_by_part'"),
    ({"gflops_by_part": [1.0]}, "'gflops_by_part'"),
    ({"gflops_selection_rates": {"image": 2.0}}, "'gflops_selection_rates'"),
    ({"gflops_uncounted": "none"}, "'gflops_uncounted'"),
])
def test_damaged_counts_are_reported_by_the_bundle_checks(bad, problem):
    assert metrics_problems(_valid_metrics()) == []  # a run built before the count is valid
    problems = metrics_problems({**_valid_metrics(), **bad})
    assert len(problems) == 1 and problem in problems[0]


# --------------------------------------------------------------------------- every registered encoder

def _example(kind: str, name: str) -> tuple[dict, list] | None:
    rng = np.random.default_rng(0)
    if kind == "text":
        return {"max_length": 12}, ["a red thing", "a much longer description of a blue thing"]
    if kind == "image" and name in IMAGE_KW:
        return IMAGE_KW[name], [rng.integers(0, 256, (20, 20, 3), dtype=np.uint8) for _ in range(2)]
    if kind == "video":
        return ({"in_channels": 3, "num_frames": 8, "image_size": 32, "out_dim": 16},
                [rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8) for _ in range(2)])
    if kind == "tabular":
        return {"in_features": 5}, [rng.normal(size=5).astype(np.float32) for _ in range(2)]
    if kind == "timeseries":  # (T, C) series of different lengths, resampled by prepare
        return {"in_channels": 2}, [rng.normal(size=(t, 2)).astype(np.float32) for t in (20, 30)]
    if kind == "audio":  # 1-D waveforms, 0.5 s at 8 kHz
        return {"sample_rate": 8000}, [0.1 * rng.normal(size=4000).astype(np.float32) for _ in range(2)]
    return None


@pytest.mark.parametrize("name", ENCODERS.names())
def test_every_registered_encoder_is_counted_in_full(name):
    kind = ENCODERS.meta(name)["kind"]
    example = _example(kind, name)
    if example is None:
        pytest.skip(f"no example items for {name} ({kind}) here: add them to _example")
    kwargs, items = example
    torch.manual_seed(0)
    enc = build_encoder({"name": name, "kwargs": kwargs}) if kind == "text" else create_encoder(name, **kwargs)
    enc.fit_preprocessing(items)
    model = MultimodalClassifier(["m"], {"m": enc}, build_head({"type": "unimodal", "in_dims": [enc.out_dim],
                                                                 "n_classes": 3}), ["a", "b", "c"]).eval()
    count = count_gflops(model, {"m": items})
    assert set(count["flops_by_part"]) == {"m", "head"} and count["flops_by_part"]["m"] > 0
    assert count["uncounted"] == []  # every matrix product of the encoder has a formula
    whole = 0  # the parts add up to the whole model run on each sample
    for i in range(len(items)):
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=EXTRA_FORMULAS) as counter:
            model(model.prepare({"m": items[i:i + 1]}))
        whole += counter.get_total_flops()
    assert count["flops_per_sample"] == pytest.approx(whole / len(items), rel=1e-12)


def test_early_fusion_has_one_joint_part():
    rng = np.random.default_rng(0)
    rgb = [rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8) for _ in range(2)]
    depth = [rng.integers(0, 256, (8, 32, 32), dtype=np.uint8) for _ in range(2)]
    torch.manual_seed(0)
    joint = create_encoder("c3d", in_channels=4, num_frames=8, image_size=32, out_dim=16)
    joint.fit_preprocessing(stack_channels([rgb, depth]))
    head = build_head({"type": "unimodal", "in_dims": [16], "n_classes": 2})
    model = EarlyFusionClassifier(["rgb", "depth"], joint, head, ["a", "b"], {"rgb": 3, "depth": 1}).eval()
    count = count_gflops(model, {"rgb": rgb, "depth": depth})
    assert list(count["flops_by_part"]) == ["rgb+depth", "head"] and count["flops_by_part"]["head"] == 2 * 16 * 2
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.joint_embedding(model.prepare({"rgb": rgb[:1], "depth": depth[:1]}))
    assert count["flops_by_part"]["rgb+depth"] == counter.get_total_flops() > 0


# --------------------------------------------------------------------------- runs

def test_every_trained_run_stores_its_count(tiny_built):
    _, root = tiny_built
    runs = {p.name: load_run(p) for p in sorted((root / "tiny").iterdir()) if (p / "config.json").is_file()}
    assert len(runs) == 11
    for name, run in runs.items():
        met = run.metrics
        assert has_gflops(met) and met["gflops_uncounted"] == [], name
        assert list(met["gflops_by_part"]) == [*run.modalities, "head"]
        assert met["gflops_per_sample"] == pytest.approx(sum(met["gflops_by_part"].values()), rel=1e-9)
        assert all(v > 0 for v in met["gflops_by_part"].values())
    uni = {m: runs[f"unimodal-{m}"].metrics["gflops_by_part"][m] for m in ("image", "title", "description")}
    for name, run in runs.items():  # fusion runs reuse the unimodal encoders: the same cost per encoder
        assert {m: run.metrics["gflops_by_part"][m] for m in run.modalities} == {m: uni[m] for m in run.modalities}
    # a late-fusion run is the sum of the unimodal models it combines (encoders and their classifiers)
    late = runs["late-average-image+title"].metrics["gflops_per_sample"]
    assert late == pytest.approx(sum(runs[f"unimodal-{m}"].metrics["gflops_per_sample"] for m in ("image", "title")),
                                 rel=1e-9)


def _old_experiment(tiny_built, tmp_path: Path, runs: tuple[str, ...]) -> Path:
    """A copy of the tiny experiment with ``runs`` as built before the count (no gflops keys)."""
    _, root = tiny_built
    exp = tmp_path / "runs" / "tiny"
    shutil.copytree(root / "tiny", exp, ignore=shutil.ignore_patterns("results.csv"))
    for run in runs:
        path = exp / run / "metrics.json"
        metrics = json.loads(path.read_text())
        path.write_text(json.dumps({k: v for k, v in metrics.items() if not k.startswith("gflops")}, indent=2) + "\n")
    return exp


def test_a_run_from_before_the_count_loads_and_shows_a_dash(tiny_built, tmp_path):
    exp = _old_experiment(tiny_built, tmp_path, ("unimodal-image",))
    assert not has_gflops(load_run(exp / "unimodal-image").metrics)
    frame, problems = save_results(exp)
    assert problems == [] and len(frame) == 11
    row = frame.set_index("run")
    assert np.isnan(row.loc["unimodal-image", "gflops"]) and row.loc["unimodal-title", "gflops"] > 0
    line = next(ln for ln in format_results(frame).splitlines() if ln.strip().startswith("unimodal-image"))
    assert line.rstrip().endswith(MISSING)
    saved = (exp / "results.csv").read_text().splitlines()
    assert saved[0].endswith(",gflops") and next(s for s in saved if s.startswith("unimodal-image,")).endswith(",")


def test_compute_adds_the_count_and_changes_nothing_else(tiny_built, tmp_path, capsys):
    _, root = tiny_built
    exp = _old_experiment(tiny_built, tmp_path, ("unimodal-image", "concat-image+title"))
    files = {p: p.read_bytes() for p in exp.rglob("*") if p.is_file()}
    before = {r: json.loads((exp / r / "metrics.json").read_text()) for r in ("unimodal-image", "concat-image+title")}
    assert main(["--runs-dir", str(tmp_path / "runs"), "compute", "tiny", "--run", "unimodal-image",
                 "--run", "concat-image+title"]) == 0
    out = capsys.readouterr().out
    assert "unimodal-image: " in out and "GFLOPs/sample" in out and "counted" in out
    for run, old in before.items():
        metrics = json.loads((exp / run / "metrics.json").read_text())
        assert {k: v for k, v in metrics.items() if not k.startswith("gflops")} == old  # every other key as it was
        trained = json.loads((root / "tiny" / run / "metrics.json").read_text())
        assert metrics["gflops_by_part"] == trained["gflops_by_part"]  # the same samples as at training
        assert metrics["gflops_per_sample"] == trained["gflops_per_sample"] and metrics["gflops_uncounted"] == []
    changed = {p.relative_to(exp).as_posix() for p, data in files.items() if not p.is_file() or p.read_bytes() != data}
    assert changed == {"unimodal-image/metrics.json", "concat-image+title/metrics.json"}
    assert not list(exp.rglob(".*.tmp")) and not list(exp.glob("*.partial"))
    assert np.isfinite(results_table(exp)[0].set_index("run").loc["unimodal-image", "gflops"])
    # a counted run is kept (resumable) unless --force
    stamp = (exp / "unimodal-image" / "metrics.json").stat().st_mtime_ns
    assert main(["--runs-dir", str(tmp_path / "runs"), "compute", str(exp / "unimodal-image")]) == 0
    assert "already counted" in capsys.readouterr().out
    assert (exp / "unimodal-image" / "metrics.json").stat().st_mtime_ns == stamp
