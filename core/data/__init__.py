"""Datasets: manifests of a user's own data and the embedded demos."""
from __future__ import annotations

from core.data.manifest import MODALITY_KINDS, Dataset, load_image, load_manifest, stratified_group_split

__all__ = ["MODALITY_KINDS", "Dataset", "load_image", "load_manifest", "stratified_group_split"]
