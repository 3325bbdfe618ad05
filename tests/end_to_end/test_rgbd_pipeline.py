"""The RGB-D pipeline on a tiny simulated dataset: unimodal, early, intermediate and late fusion."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.bundle import load_run
from core.catalog import list_runs
from core.experiment import load_experiment
from core.results import save_results
from core.train import reproduce_predictions
from tests._experiments import TINY_RGBD, built_experiment, video_modality, write_experiment
from tests._tolerance import f32_atol, longest_reduction


@pytest.fixture(scope="module")
def tiny_rgbd(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    with built_experiment(tmp_path_factory.mktemp("rgbd"), TINY_RGBD) as (path, root):
        yield path, root


def test_default_build_trains_one_encoder_with_every_strategy(tiny_rgbd):
    _, root = tiny_rgbd
    names = {p.name for p in list_runs(root / "tiny-rgbd")}
    assert names == {"c3d-unimodal-rgb", "c3d-unimodal-depth", "c3d-early-rgb+depth", "c3d-multconcat-rgb+depth",
                     "c3d-addition-rgb+depth", "c3d-late-average-rgb+depth"}
    frame, problems = save_results(root / "tiny-rgbd")
    assert not problems
    assert set(frame["strategy"]) == {"unimodal", "early", "intermediate", "late"}
    assert frame["encoders"].str.contains("c3d").all()


def test_early_fusion_bundle_round_trip(tiny_rgbd):
    _, root = tiny_rgbd
    run = load_run(root / "tiny-rgbd" / "c3d-early-rgb+depth")
    assert run.config["early"]["channels"] == {"rgb": 3, "depth": 1}
    assert run.config["early"]["joint"]["kwargs"]["in_channels"] == 4
    # the depth modality's log-metre reading follows it to the stacked clip's fourth channel
    assert run.config["early"]["joint"]["kwargs"]["depth_input"] == "log"
    assert run.config["early"]["joint"]["kwargs"]["depth_channel"] == 3
    depth = load_run(root / "tiny-rgbd" / "c3d-unimodal-depth").model().encoders["depth"]
    assert (depth.depth_input, depth.depth_channel) == ("log", 0)
    model = run.model()
    assert not model.factorizable
    report = reproduce_predictions(run.path)
    # probabilities (scale 1) of the rebuilt network, maybe in other batches and threads
    assert report["same_topk_labels"] and report["max_abs_prob_diff"] <= f32_atol(1.0, longest_reduction(model))
    assert set(run.embeddings()) == {"fused"}


def test_early_fusion_views_read_the_clips_as_the_joint_encoder_trained_on_them(tiny_rgbd):
    """The per-modality views (what maskers and the dashboard prepare) give the joint encoder the very tensor it
    trained on: the depth view reads log metres with the holes filled, as the stacked clip's fourth channel."""
    from core.data import load_experiment_dataset
    from core.model import stack_channels

    _, root = tiny_rgbd
    model = load_run(root / "tiny-rgbd" / "c3d-early-rgb+depth").model()
    ds, _ = load_experiment_dataset(root / "tiny-rgbd")
    ids = ds.ids("test")[:3]
    items = {m: ds.items(m, ids) for m in ("rgb", "depth")}
    views = model.prepare(items)
    joint = model.joint.prepare(stack_channels([items["rgb"], items["depth"]]))["clips"]
    assert torch.equal(torch.cat([views["rgb"]["clips"], views["depth"]["clips"]], dim=1), joint)


@pytest.mark.parametrize("name", ["c3d-unimodal-depth", "c3d-multconcat-rgb+depth", "c3d-late-average-rgb+depth"])
def test_video_bundles_reproduce_predictions(tiny_rgbd, name):
    _, root = tiny_rgbd
    report = reproduce_predictions(root / "tiny-rgbd" / name)
    tol = f32_atol(1.0, longest_reduction(load_run(root / "tiny-rgbd" / name).model()))
    assert report["same_topk_labels"] and report["max_abs_prob_diff"] <= tol


def test_full_grid_adds_the_other_encoders(tiny_rgbd):
    from core.train import planned_runs

    exp_path, _ = tiny_rgbd
    exp = load_experiment(exp_path)
    default = {p[0] for p in planned_runs(exp)}
    full = {p[0] for p in planned_runs(exp, full=True)}
    assert default < full and "slowfast-early-rgb+depth" in full
    assert all(n.startswith("c3d-") for n in default)


def _user_rgbd(tmp_path: Path, repair: bool) -> Path:
    """A user's own RGB-D data: one .npy per clip and modality, one depth clip too short."""
    from core.data.rgbd_sim import simulate_clip

    rows = []
    (tmp_path / "clips").mkdir()
    for i in range(12):
        label = ["Safe", "Cabin-Worker"][i % 2]
        rgb, depth, _ = simulate_clip(label, seed=i, frames=6, size=24)
        if i == 5:
            depth = depth[:4]
        np.save(tmp_path / "clips" / f"c{i}_rgb.npy", rgb)
        np.save(tmp_path / "clips" / f"c{i}_depth.npy", depth)
        rows.append(f"c{i},{label},clips/c{i}_rgb.npy,clips/c{i}_depth.npy")
    (tmp_path / "manifest.csv").write_text("id,label,rgb,depth\n" + "\n".join(rows) + "\n")
    video = video_modality(size=24, out_dim=8, width=2, frames=6)
    return write_experiment(tmp_path, {
        "name": "mine", "dataset": {"source": "manifest", "manifest": "manifest.csv", "repair_video": repair},
        "modalities": {"rgb": video, "depth": video}, "fusion": {"methods": ["concat"], "late": []}})


def test_user_rgbd_mismatch_names_the_clip(tmp_path):
    from core.errors import DataError
    from core.data import prepare_dataset

    exp = load_experiment(_user_rgbd(tmp_path, repair=False))
    with pytest.raises(DataError, match="c5.*frame"):
        prepare_dataset(exp, tmp_path / "runs", progress=False)


def test_user_rgbd_mismatch_is_repaired_on_request(tmp_path):
    from core.data import prepare_dataset

    exp = load_experiment(_user_rgbd(tmp_path, repair=True))
    ds = prepare_dataset(exp, tmp_path / "runs", progress=False)
    depth = ds.items("depth", ["c5"])[0]
    rgb = ds.items("rgb", ["c5"])[0]
    assert depth.shape[0] == rgb.shape[0] == 6


def test_robustness_of_an_early_fusion_run(tiny_rgbd):
    """Early fusion: a missing modality's channels become 0 (the dataset mean after normalisation), the
    joint input is encoded per condition, and both video noises are swept."""
    import torch

    from core.robustness import RobustnessSettings, load_robustness, robustness_runs

    _, root = tiny_rgbd
    run_dir = root / "tiny-rgbd" / "c3d-early-rgb+depth"
    robustness_runs([run_dir], RobustnessSettings(levels=2, share_samples=0), share_run=None)
    table = load_robustness(run_dir)
    run = load_run(run_dir)
    assert table["rule"] == "zeros" and table["clean"] == pytest.approx(run.metrics["top1"], abs=1e-9)
    assert set(table["noise"]) == {"rgb", "depth"} and set(table["noise"]["rgb"]) == {"pixel-noise", "occlusion"}
    assert table["noise"]["rgb"]["pixel-noise"]["baseline"] == "c3d-late-average-rgb+depth"
    # without depth by hand: the depth channels of the normalised joint input set to 0
    from core.data import load_experiment_dataset

    ds, _ = load_experiment_dataset(root / "tiny-rgbd")
    model = run.model()
    ids = run.predictions["id"].astype(str).tolist()
    with torch.no_grad():
        inputs = model.prepare({m: ds.items(m, ids) for m in model.modalities})
        inputs["depth"] = {"clips": torch.zeros_like(inputs["depth"]["clips"])}
        pred = model(inputs).argmax(1).numpy()
    y = np.array([run.classes.index(c) for c in run.predictions["label"]])
    assert table["missing"]["depth"] == pytest.approx(float((pred == y).mean()), abs=1e-9)
