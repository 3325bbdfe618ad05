"""Data sources: where an experiment's manifest comes from (``[dataset] source``).

A source is one function registered in :data:`DATA_SOURCES` under the name the
experiment file uses. It takes the experiment's ``[dataset]`` table, the seed and
whether to show progress, fetches or generates what it needs, and returns the
path of a manifest table that :func:`core.data.load_manifest` then validates.
Adding a source is one function plus one decorator; the experiment schema takes
its list of sources from here. Metadata: ``doc`` (one line for messages and the
README) and ``user_data`` (a user's own files: RGB/depth pairs are checked, and
repaired on request; a generated demo is correct by construction).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from core.data.emoji import build_emoji_manifest, cache_root
from core.data.rgbd_sim import SIMULATOR_VERSION, SITE_VERSION, generate_dataset, generate_site_dataset
from core.io import stable_hash
from core.registry import Registry

#: ``(dataset table, *, seed, progress) -> manifest path``
SourceFn = Callable[..., Path]

DATA_SOURCES: Registry[Path] = Registry("data source")

#: ``[dataset]`` keys of the ``rgbd-sim`` source that change the rendered clips
RGBD_SIM_OPTIONS = ("n_clips", "frames", "size", "degrade")
#: ``[dataset]`` keys of the ``site-sim`` source that change the rendered clips
SITE_SIM_OPTIONS = (*RGBD_SIM_OPTIONS, "audio_rate")


@DATA_SOURCES.register("manifest", doc="your own data in a CSV/TSV/Parquet manifest table", user_data=True)
def manifest_source(dataset: dict[str, Any], *, seed: int, progress: bool = True) -> Path:
    """The manifest the experiment file names (already resolved against the file's folder)."""
    return Path(dataset["manifest"])


@DATA_SOURCES.register("emoji", doc="the emoji demo: image, title and description, fetched with npm")
def emoji_source(dataset: dict[str, Any], *, seed: int, progress: bool = True) -> Path:
    """The emoji artwork and names of ``emoji-datasource-twitter``, fetched once and cached."""
    return build_emoji_manifest()


@DATA_SOURCES.register("rgbd-sim", doc="the construction-site demo: RGB + depth clips from the simulator")
def rgbd_sim_source(dataset: dict[str, Any], *, seed: int, progress: bool = True) -> Path:
    """Clips rendered by the simulator into the cache, one folder per setting (resumable)."""
    opts = {k: dataset[k] for k in RGBD_SIM_OPTIONS if k in dataset}
    # the simulator's version is part of the folder's name: a new version renders into a new folder
    folder = cache_root() / f"rgbd-sim-{stable_hash({**opts, 'seed': seed, 'version': SIMULATOR_VERSION})}"
    return generate_dataset(folder, seed=seed, progress=progress, **opts)


@DATA_SOURCES.register("site-sim", doc="the construction site in five modalities: RGB + depth clips, audio, "
                       "worker tag location and trajectories from the simulator")
def site_sim_source(dataset: dict[str, Any], *, seed: int, progress: bool = True) -> Path:
    """The ``rgbd-sim`` clips (same arrays) plus each scene's audio, tag location and trajectories, rendered
    into the cache, one folder per setting (resumable)."""
    opts = {k: dataset[k] for k in SITE_SIM_OPTIONS if k in dataset}
    key = {**opts, "seed": seed, "version": SIMULATOR_VERSION, "site_version": SITE_VERSION}
    return generate_site_dataset(cache_root() / f"site-sim-{stable_hash(key)}", seed=seed, progress=progress, **opts)


def fetch_manifest(dataset: dict[str, Any], *, seed: int, progress: bool = True) -> Path:
    """The manifest of ``[dataset]``: its ``source``'s function called (an unknown source is a
    ConfigError listing the registered ones)."""
    return DATA_SOURCES.get(dataset.get("source", "manifest"))(dataset, seed=seed, progress=progress)


def is_user_data(source: str) -> bool:
    """Whether ``source`` reads a user's own files (whose RGB/depth pairs are checked)."""
    return bool(DATA_SOURCES.meta(source).get("user_data", False))
