"""A tiny RGB-D experiment with adaptive runs (simulator clips of 8 frames at 16 px), built in seconds."""
from __future__ import annotations

from pathlib import Path

TINY_ADAPTIVE = """
name = "tiny-ada"
seed = 0
[dataset]
source = "rgbd-sim"
n_clips = 32
frames = 8
size = 16
[modalities.rgb]
kind = "video"
encoder = "c3d"
encoder_kwargs = { num_frames = 8, image_size = 16, out_dim = 8, width = 4 }
[modalities.depth]
kind = "video"
encoder = "c3d"
encoder_kwargs = { num_frames = 8, image_size = 16, out_dim = 8, width = 4 }
[fusion]
methods = ["concat"]
late = []
subsets = [["rgb", "depth"]]
[fusion.adaptive]
policy = ["rgb", "depth"]
segments = 4
cost = { rgb = 1.0, depth = 0.5 }
cost_scales = [1.0, 20.0]
[train.unimodal]
epochs = 2
batch_size = 8
oof_folds = 0
[train.fusion]
epochs = 3
dim = 8
[train.adaptive]
epochs = 10
batch_size = 8
lr = 0.02
warmup_epochs = 2
cost_ramp_epochs = 3
"""

ADAPTIVE_RUN = "adaptive-rgb+depth"
COSTLY_RUN = "adaptive-x20-rgb+depth"  # every cost weight x 20: the policy drops most segments
FUSION_RUN = "concat-rgb+depth"


def build_tiny_adaptive(folder: Path) -> tuple[Path, Path]:
    """(experiment file, runs root) of the tiny adaptive experiment, trained under ``folder``."""
    from core.experiment import load_experiment
    from core.train import train_experiment

    path = folder / "tiny-ada.toml"
    path.write_text(TINY_ADAPTIVE)
    root = folder / "runs"
    train_experiment(load_experiment(path), root, progress=False)
    return path, root
