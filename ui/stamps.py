"""Cache keys of run files: a rebuilt run, or a file rewritten inside it, gets a new key.

The pages' loaders (:mod:`ui.loaders`) key ``st.cache_data`` by a run folder plus
these stamps, so nothing stale is shown after a rebuild, a repair or a new
precompute. Plain Python over file metadata; nothing is read.
"""
from __future__ import annotations

from pathlib import Path

from core.bundle import REQUIRED_FILES
from core.catalog import list_run_names, safe_join

__all__ = ["path_stamp", "run_stamp", "bundle_stamp", "experiment_stamp", "dataset_stamp"]


def path_stamp(path: Path) -> tuple[str, int, int]:
    """(path, mtime_ns, size) or (path, -1, -1) when absent: part of a cache key."""
    try:
        st = Path(path).stat()
        return str(path), st.st_mtime_ns, st.st_size
    except OSError:
        return str(path), -1, -1


def run_stamp(run_dir: str | Path) -> tuple:
    """Cache key of a run's files: changes when the run is rebuilt, gains projections or
    explanations, or one of their files is rewritten (a repaired or damaged file is read again)."""
    run_dir = Path(run_dir)
    stamps = [path_stamp(run_dir)] + [path_stamp(run_dir / f) for f in REQUIRED_FILES]
    for folder in (run_dir / "projections", run_dir / "explanations"):
        stamps.append(path_stamp(folder))
        try:
            names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        except OSError:
            continue
        stamps += [path_stamp(folder / n) for n in names]
    return tuple(stamps)


def bundle_stamp(run_dir: str | Path) -> tuple:
    """Cache key of the model files only (not projections or explanations): keys a rebuilt model."""
    return tuple(path_stamp(Path(run_dir) / f) for f in REQUIRED_FILES)


def experiment_stamp(root: str | Path, experiment: str) -> tuple:
    """Cache key of an experiment: its dataset files and every bundle file of every run."""
    exp_dir = safe_join(root, experiment)
    stamps = [path_stamp(exp_dir), path_stamp(exp_dir / "dataset.json"), path_stamp(exp_dir / "dataset.parquet")]
    for name in list_run_names(root, experiment):
        stamps += [path_stamp(exp_dir / name)] + [path_stamp(exp_dir / name / f) for f in REQUIRED_FILES]
    return tuple(stamps)


def dataset_stamp(exp_dir: str | Path) -> tuple:
    """Cache key of an experiment's dataset description and table."""
    exp_dir = Path(exp_dir)
    return path_stamp(exp_dir / "dataset.json"), path_stamp(exp_dir / "dataset.parquet")
