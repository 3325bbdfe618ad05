"""Datasets: manifests of a user's own data and the embedded demos.

Where the samples come from (:data:`DATA_SOURCES`: ``manifest``, ``emoji``,
``rgbd-sim``, ``site-sim``), how they are validated and split (:func:`load_manifest`, which
loops over the modality kinds of :mod:`core.kinds`; :func:`prepare_dataset`)
and how the prepared dataset is stored and read back
(:func:`load_experiment_dataset`, :func:`read_dataset_info`; never imports torch).
"""
from __future__ import annotations

from core.data.manifest import Dataset, load_image, load_manifest, stratified_group_split
from core.data.prepare import prepare_dataset
from core.data.sources import DATA_SOURCES
from core.data.store import dataset_problems, has_dataset, load_experiment_dataset, read_dataset_info
from core.data.timing import frame_rate

__all__ = ["DATA_SOURCES", "Dataset", "dataset_problems", "frame_rate", "has_dataset", "load_experiment_dataset",
           "load_image", "load_manifest", "prepare_dataset", "read_dataset_info", "stratified_group_split"]
