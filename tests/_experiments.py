"""The tiny experiments of the tests (and of the benchmarks that build one): each declared once as the
dict its TOML file parses to, from shared parts (a C3D video modality, the simulators' datasets), then
written as TOML (:func:`write_experiment`) and, for a module's fixture, trained (:func:`built_experiment`).

A variant is the declared dict with a few changes merged in (:func:`merge`), so a test names only what
it changes (``merge(TINY_ADAPTIVE, {"fusion": {"early": True}})``).
"""
from __future__ import annotations

import contextlib
import copy
import json
import re
from pathlib import Path
from typing import Any, Iterator, Sequence

__all__ = [
    "ADAPTIVE_RUN", "COSTLY_RUN", "FUSION_RUN", "SITE_RUN",
    "TINY_ADAPTIVE", "TINY_RGBD", "TINY_SITE",
    "built_experiment", "dump_toml", "experiment", "image_text_experiment", "merge", "video_modality",
    "write_experiment", "write_tiny_experiment",
]

#: nested tables written inline (``encoder_kwargs = { ... }``); every other nested dict is a ``[table]``
INLINE = frozenset({"encoder_kwargs", "kwargs", "cost", "split"})
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def dump_toml(data: dict[str, Any], inline: frozenset[str] | set[str] = INLINE) -> str:
    """TOML text that parses back to ``data``: nested dicts as ``[a.b]`` tables, those under a key in
    ``inline`` as inline tables."""

    def key(k: str) -> str:
        return k if _BARE_KEY.fullmatch(k) else json.dumps(k)

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + " }"
        raise TypeError(f"no TOML value for {type(v).__name__}")

    lines: list[str] = []

    def table(prefix: str, d: dict[str, Any]) -> None:
        plain = {k: v for k, v in d.items() if not isinstance(v, dict) or k in inline}
        if prefix and (plain or not d):
            lines.append(f"[{prefix}]")
        lines.extend(f"{key(k)} = {value(v)}" for k, v in plain.items())
        for k, v in d.items():
            if k not in plain:
                table(f"{prefix}.{key(k)}" if prefix else key(k), v)

    table("", data)
    return "\n".join(lines) + "\n"


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with ``changes`` merged in, table by table."""
    out = copy.deepcopy(base)
    for k, v in changes.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def video_modality(size: int, out_dim: int, width: int, frames: int = 8) -> dict[str, Any]:
    """A video modality with a C3D encoder over ``frames`` frames of ``size`` x ``size`` px."""
    return {"kind": "video", "encoder": "c3d",
            "encoder_kwargs": {"num_frames": frames, "image_size": size, "out_dim": out_dim, "width": width}}


def experiment(name: str, dataset: dict[str, Any], modalities: dict[str, Any], fusion: dict[str, Any],
               train: dict[str, Any], **rest: Any) -> dict[str, Any]:
    """An experiment (seed 0) from its tables; ``rest`` holds further top-level keys and tables."""
    return {"name": name, "seed": 0, "dataset": dataset, "modalities": modalities, "fusion": fusion,
            "train": train, **rest}


def write_experiment(folder: Path, config: dict[str, Any]) -> Path:
    """``config`` written as ``<folder>/<name>.toml``; the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{config['name']}.toml"
    path.write_text(dump_toml(config))
    return path


@contextlib.contextmanager
def built_experiment(folder: Path, config: dict[str, Any]) -> Iterator[tuple[Path, Path]]:
    """(experiment file, runs root) of ``config`` trained under ``folder``, with a cache of its own
    (``FUSIONLENS_CACHE``) until the block ends: for a module-scoped fixture."""
    import pytest

    from core.experiment import load_experiment
    from core.train import train_experiment

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FUSIONLENS_CACHE", str(folder / "cache"))
        path = write_experiment(folder, config)
        root = folder / "runs"
        train_experiment(load_experiment(path), root, progress=False)
        yield path, root


# --------------------------------------------------------------------------- image + two texts (a manifest)

def image_text_experiment(name: str = "tiny", *, methods: Sequence[str] = ("multconcat", "concat"),
                          late: Sequence[str] = ("late-average", "late-weighted"),
                          subsets: Sequence[Sequence[str]] = (("image", "title", "description"), ("image", "title")),
                          image_kwargs: dict[str, Any] | None = None, max_length: int = 12,
                          train: dict[str, Any] | None = None) -> dict[str, Any]:
    """An image + title + description experiment over ``data/manifest.csv`` beside its file; the
    defaults are the tiny experiment's (16 px images, 12 tokens, a few epochs)."""
    text = {"kind": "text", "encoder": "minilm", "encoder_kwargs": {"max_length": max_length}}
    image = {"kind": "image", "encoder": "small-cnn",
             "encoder_kwargs": image_kwargs or {"image_size": 16, "width": 4, "out_dim": 16}}
    return experiment(
        name,
        dataset={"source": "manifest", "manifest": "data/manifest.csv"},
        modalities={"image": image, "title": text, "description": copy.deepcopy(text)},
        fusion={"methods": list(methods), "late": list(late), "subsets": [list(s) for s in subsets]},
        train=train or {"unimodal": {"epochs": 4, "batch_size": 16, "hidden": 32},
                        "fusion": {"epochs": 8, "batch_size": 16, "dim": 16}})


def write_tiny_experiment(folder: Path, methods: Sequence[str] = ("multconcat", "concat"),
                          changes: dict[str, Any] | None = None, **manifest_kw: Any) -> Path:
    """The tiny experiment (with ``changes`` merged in) and its synthetic manifest
    (``make_synthetic_manifest(**manifest_kw)``) written under ``folder``; the experiment file."""
    from core.data.synthetic import make_synthetic_manifest

    make_synthetic_manifest(folder / "data", **manifest_kw)
    return write_experiment(folder, merge(image_text_experiment(methods=methods), changes or {}))


# --------------------------------------------------------------------------- simulated video (and audio)

#: the RGB-D simulator's two C3D modalities, one early fusion beside two intermediate and a late one,
#: and an encoder grid of two sets (the default builds one)
TINY_RGBD = experiment(
    "tiny-rgbd",
    dataset={"source": "rgbd-sim", "n_clips": 32, "frames": 8, "size": 32},
    modalities={"rgb": video_modality(size=32, out_dim=16, width=4),
                "depth": merge(video_modality(size=32, out_dim=16, width=4),
                               {"encoder_kwargs": {"depth_input": "log"}})},   # as experiments/rgbd.toml
    fusion={"methods": ["multconcat", "addition"], "late": ["late-average"], "early": True,
            "subsets": [["rgb", "depth"]]},
    train={"unimodal": {"epochs": 2, "batch_size": 8}, "fusion": {"epochs": 3, "dim": 8}},
    grid_default=["c3d"],
    encoder_grid={"c3d": {"video": "c3d"}, "slowfast": {"video": "slowfast", "kwargs": {"width": 8}}})

#: RGB-D clips of 8 frames at 16 px with adaptive runs (AdaMML at two cost scales), built in seconds
TINY_ADAPTIVE = experiment(
    "tiny-ada",
    dataset={"source": "rgbd-sim", "n_clips": 32, "frames": 8, "size": 16},
    modalities={m: video_modality(size=16, out_dim=8, width=4) for m in ("rgb", "depth")},
    fusion={"methods": ["concat"], "late": [], "subsets": [["rgb", "depth"]],
            "adaptive": {"policy": ["rgb", "depth"], "segments": 4, "cost": {"rgb": 1.0, "depth": 0.5},
                         "cost_scales": [1.0, 20.0]}},
    train={"unimodal": {"epochs": 2, "batch_size": 8, "oof_folds": 0}, "fusion": {"epochs": 3, "dim": 8},
           "adaptive": {"epochs": 10, "batch_size": 8, "lr": 0.02, "warmup_epochs": 2, "cost_ramp_epochs": 3}})
ADAPTIVE_RUN = "adaptive-rgb+depth"
COSTLY_RUN = "adaptive-x20-rgb+depth"  # every cost weight x 20: the policy drops most segments
FUSION_RUN = "concat-rgb+depth"

#: the site simulator's RGB, depth and audio of 16 clips (8 frames of 16 px over 4 s), one fusion run
TINY_SITE = experiment(
    "tiny-site",
    dataset={"source": "site-sim", "n_clips": 16, "frames": 8, "size": 16, "audio_rate": 8000},
    modalities={"rgb": video_modality(size=16, out_dim=8, width=4),
                "depth": video_modality(size=16, out_dim=8, width=4),
                "audio": {"kind": "audio", "encoder": "audio-cnn", "sample_rate": 8000,
                          "encoder_kwargs": {"n_mels": 16, "out_dim": 8}}},
    fusion={"methods": ["concat"], "late": [], "subsets": [["rgb", "depth", "audio"]]},
    train={"unimodal": {"epochs": 1, "batch_size": 8, "oof_folds": 0}, "fusion": {"epochs": 1, "dim": 8}})
SITE_RUN = "concat-rgb+depth+audio"
