"""Dataset preparation: from an experiment's data source to the stored, split dataset.

:func:`prepare_dataset` asks the experiment's source (:data:`core.data.sources.DATA_SOURCES`)
for its manifest, validates it with :func:`core.data.load_manifest` (files opened,
empty text by the modality's rule, too-small classes reported), fixes the seeded
split, lets each modality kind check what spans modalities (a user's RGB/depth
pairs), applies ``max_per_class``, prints what preparation changed and writes
the result with :mod:`core.data.store`.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from core.data.manifest import Dataset, describe_preparation, load_manifest
from core.data.sources import fetch_manifest, is_user_data
from core.data.store import save_dataset
from core.kinds import kinds_of

if TYPE_CHECKING:  # core.experiment imports the schema, which imports the data sources
    from core.experiment import Experiment

DEFAULT_SPLIT = {"train": 0.7, "val": 0.15, "test": 0.15}


def prepare_dataset(exp: Experiment, root: Path, *, progress: bool = True) -> Dataset:
    """Fetch or generate the data, validate the manifest, fix the split; saved under ``<root>/<exp>/``."""
    ds_cfg = exp.dataset
    source = ds_cfg.get("source", "manifest")
    manifest = fetch_manifest(ds_cfg, seed=exp.seed, progress=progress)
    fractions = ds_cfg.get("split") or DEFAULT_SPLIT
    ds = load_manifest(manifest, exp.modalities, name=exp.name, fractions=fractions, seed=exp.seed,
                       min_per_class=int(ds_cfg.get("min_per_class", 1)), empty=exp.empty_text,
                       options=exp.modality_options, progress=progress)
    ds.raster_sizes = exp.raster_sizes()  # SVG images are rasterised at the encoder's size
    for kind, mods in kinds_of(ds.modalities).items():  # checks over several modalities (RGB/depth pairs)
        kind.finish_dataset(ds, mods, ds_cfg, user_data=is_user_data(source), progress=progress)
    limit = ds_cfg.get("max_per_class")
    if limit:  # tiny builds for tests and quick looks
        before = len(ds.frame)
        ds.frame = ds.frame[ds.frame.groupby(["label", "split"]).cumcount() < int(limit)].reset_index(drop=True)
        ds.report["max_per_class"] = {"limit": int(limit), "removed": before - len(ds.frame)}
    for line in describe_preparation(ds.report):  # what preparation changed, also kept in dataset.json
        print(f"prepare {exp.name}: {line}", file=sys.stderr)
    save_dataset(Path(root) / exp.name, ds, manifest=manifest, source=source, experiment_file=exp.path)
    return ds
