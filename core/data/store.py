"""The dataset store: an experiment's prepared dataset on disk, written and read back.

``prepare`` writes two files into ``<runs root>/<experiment>/``:
``dataset.parquet`` (the validated manifest with its fixed split: one row per
sample) and ``dataset.json`` (name, data root, modalities and their kinds,
the kinds' options per modality, classes, the preparation report, raster
sizes, RGB/depth pairs, the
experiment file and a fingerprint of the table). Everything downstream
(training, explanations, the dashboard) reads the dataset back from here with
:func:`load_experiment_dataset` or :func:`read_dataset_info`, which check the
keys and types first, so a damaged file is a :class:`BundleError` with the fix.

Reading never imports torch (a test keeps it so): the dashboard's pages read
``dataset.json`` at start-up.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from core.bundle import experiment_arg
from core.data.manifest import Dataset
from core.errors import BundleError, ConfigError, choices, cli_command
from core.io import read_json, read_parquet, stable_hash, write_json, write_parquet
from core.kinds import get_kind, list_kinds

DATASET_INFO = "dataset.json"
DATASET_TABLE = "dataset.parquet"


def dataset_fingerprint(ds: Dataset) -> str:
    """A hash of the prepared table, its classes and the files it points at (path, size and modification time
    of each): runs trained on other data are redone, also when the files change under the same names (clips
    re-rendered by another simulator version, photos re-exported in place). Only ``stat`` is read, so a large
    dataset costs no I/O; a file moved with its folder keeps its fingerprint."""
    files: set[str] = set()
    for modality, kind in ds.modalities.items():
        for column in get_kind(kind).file_columns(modality, ds.options.get(modality, {})):
            if column in ds.frame.columns:
                files.update(str(c) for c in ds.frame[column].dropna())
    stats = []
    for rel in sorted(files):
        try:
            st = (ds.root / rel).stat()
            stats.append((rel, st.st_size, st.st_mtime_ns))
        except OSError:  # prepare refused missing files; a file that went since reads as changed data
            stats.append((rel, -1, -1))
    return stable_hash({"frame": pd.util.hash_pandas_object(ds.frame, index=False).sum(), "classes": ds.classes,
                        "files": stats})


def save_dataset(exp_dir: Path, ds: Dataset, *, manifest: Path, source: str,
                 experiment_file: Path | None = None) -> dict[str, Any]:
    """Write ``dataset.parquet`` and ``dataset.json`` (each atomically; the description last,
    so a description always has its table); returns the description."""
    exp_dir = Path(exp_dir)
    # the experiment file, so that messages (the dashboard's commands) can name a user's own file
    info = {"name": ds.name, "root": str(ds.root.resolve()), "manifest": str(Path(manifest).resolve()),
            "experiment_file": str(Path(experiment_file).resolve()) if experiment_file is not None else None,
            "video_pairs": ds.video_pairs, "repair_video": ds.repair_video,
            "modalities": ds.modalities, "classes": ds.classes, "source": source,
            "raster_sizes": ds.raster_sizes, "modality_options": ds.options, "preparation": ds.report,
            "fingerprint": dataset_fingerprint(ds)}
    write_parquet(exp_dir / DATASET_TABLE, ds.frame)
    write_json(exp_dir / DATASET_INFO, info)
    return info


def has_dataset(exp_dir: Path) -> bool:
    """Whether the experiment has been prepared (both files present; their content is checked on reading)."""
    return (Path(exp_dir) / DATASET_INFO).is_file() and (Path(exp_dir) / DATASET_TABLE).is_file()


def _is_name_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


def dataset_problems(info: Any, frame: pd.DataFrame | None = None) -> list[str]:
    """What is wrong with an experiment's ``dataset.json`` (and ``dataset.parquet``); empty when valid."""
    if not isinstance(info, dict):
        return [f"dataset.json holds a {type(info).__name__}, not an object"]
    out = []
    for key in ("name", "root"):
        if not (isinstance(info.get(key), str) and info.get(key)):
            out.append(f"dataset.json {key!r} is {info.get(key)!r}, not a non-empty string")
    modalities = info.get("modalities")
    if not (isinstance(modalities, dict) and modalities
            and all(isinstance(k, str) and isinstance(v, str) for k, v in modalities.items())):
        out.append(f"dataset.json 'modalities' is {modalities!r}, not an object of modality: kind")
        modalities = {}
    if not _is_name_list(info.get("classes")):
        out.append(f"dataset.json 'classes' is {info.get('classes')!r}, not a non-empty list of names")
    options = _modality_options(info)
    columns: list[str] = []
    for m, kind in modalities.items():
        try:
            columns += get_kind(kind).manifest_columns(m, options.get(m, {}))
        except ConfigError:
            out.append(f"dataset.json gives modality {m!r} the unknown kind {kind!r} (known: {choices(list_kinds())})")
    if frame is not None:
        missing = [c for c in dict.fromkeys(("id", "label", "split", *columns)) if c not in frame.columns]
        if missing:
            out.append(f"dataset.parquet lacks column(s) {', '.join(missing)}")
    return out


def _prepare_fix(exp_dir: Path) -> str:
    return f"rerun `{cli_command()} prepare {experiment_arg(exp_dir)}` to write them again"


def read_dataset_info(exp_dir: Path) -> dict[str, Any]:
    """``dataset.json`` of a prepared experiment, keys and types checked (a BundleError naming
    the problem and the ``prepare`` command otherwise, also when it is missing)."""
    exp_dir = Path(exp_dir)
    info = read_json(exp_dir / DATASET_INFO, what="dataset description")
    problems = dataset_problems(info)
    if problems:
        raise BundleError(f"experiment {exp_dir.name}: {'; '.join(problems)}", fix=_prepare_fix(exp_dir))
    return info


def _raster_sizes(info: dict[str, Any]) -> dict[str, int]:
    sizes = info.get("raster_sizes")
    if not isinstance(sizes, dict):
        return {}
    return {str(m): v for m, v in sizes.items() if isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 4096}


def _modality_options(info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``modality_options`` of ``dataset.json`` (absent in files written before the kinds had options)."""
    options = info.get("modality_options")
    if not isinstance(options, dict):
        return {}
    return {str(m): dict(o) for m, o in options.items() if isinstance(o, dict)}


def load_experiment_dataset(exp_dir: Path) -> tuple[Dataset, dict[str, Any]]:
    """The dataset a built experiment was trained on (as saved by ``prepare``), and its description."""
    exp_dir = Path(exp_dir)
    info = read_json(exp_dir / DATASET_INFO, what="dataset description")
    frame = read_parquet(exp_dir / DATASET_TABLE, what="dataset table")
    problems = dataset_problems(info, frame)
    if problems:
        raise BundleError(f"experiment {exp_dir.name}: {'; '.join(problems)}", fix=_prepare_fix(exp_dir))
    frame["id"] = frame["id"].astype(str)
    ds = Dataset(name=info["name"], root=Path(info["root"]), frame=frame, modalities=info["modalities"],
                 classes=info["classes"], video_pairs=[tuple(p) for p in info.get("video_pairs", [])],
                 repair_video=bool(info.get("repair_video", False)), raster_sizes=_raster_sizes(info),
                 options=_modality_options(info), report=info["preparation"] if isinstance(info.get("preparation"), dict) else {})
    return ds, info
