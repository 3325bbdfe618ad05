"""What the dashboard needs from the run files, without streamlit.

The pages stay thin: they pick names with widgets and call these functions
(through ``st.cache_data`` keyed by :func:`run_stamp` / :func:`experiment_stamp`,
so a rebuilt run is read again). Everything here is plain Python over the
formats of ``docs/FORMATS.md`` and is tested without a server.

Safety: the dashboard reads only inside its runs root. Every experiment or run
name that comes from the URL or a widget goes through :func:`safe_join`, which
refuses path separators, ``..``, absolute paths and anything that resolves
(symlinks included) outside the root. Sample ids are looked up as keys in a
run's tables, never used as paths; raw items are read from the data folder
that the build recorded in ``dataset.json``, and only within it.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from core.errors import BundleError, ConfigError, DataError, FusionLensError

__all__ = [
    "PathRefused",
    "check_name",
    "safe_join",
    "is_inside",
    "list_experiments",
    "list_run_names",
    "run_state",
    "path_stamp",
    "run_stamp",
    "bundle_stamp",
    "experiment_stamp",
    "best_run",
    "split_counts",
    "gallery_ids",
    "safe_items",
    "predictions_view",
    "filter_predictions",
    "FILTER_ALL",
    "dominant_modality",
    "sample_across_runs",
    "projection_frame",
    "selected_ids",
    "precompute_status",
    "expected_projections",
    "ExplanationStore",
    "explanation_store",
    "share_frame",
    "patch_grid",
    "tube_values",
    "token_values",
    "filter_results",
    "build_commands",
]

BUILD_COMMAND = "bash scripts/run.sh"
# Folders inside an experiment that are not runs.
_NOT_RUNS = ("_cache",)
_MAX_NAME = 200


class PathRefused(ConfigError):
    """A name from the URL or a widget would reach outside the runs directory."""


# --------------------------------------------------------------------------- safe paths


def check_name(name: Any, what: str = "name") -> str:
    """``name`` if it is a plain file name (no separators, not ``.``/``..``, not hidden); else PathRefused."""
    if not isinstance(name, str) or not name:
        raise PathRefused(f"empty {what}", fix="pick one from the sidebar")
    bad = (
        len(name) > _MAX_NAME
        or name in (".", "..")
        or name.startswith(".")
        or any(sep in name for sep in ("/", "\\", "\x00"))
        or os.path.isabs(name)
        or ".." in Path(name).parts
    )
    if bad:
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise PathRefused(
            f"refused {what} {shown!r}: it is not a plain name inside the runs directory",
            fix="pick an experiment and a run from the sidebar",
        )
    return name


def is_inside(path: Path, root: Path) -> bool:
    """Whether ``path`` resolves (symlinks followed) to ``root`` or below it."""
    try:
        return Path(path).resolve().is_relative_to(Path(root).resolve())
    except (OSError, RuntimeError):  # symlink loops
        return False


def safe_join(root: str | Path, *names: str, what: Sequence[str] = ("experiment", "run")) -> Path:
    """``root / name / ...`` after checking every name and where the result really points.

    Raises :class:`PathRefused` for separators, ``..``, absolute paths, hidden
    names, or a symlink that leads outside ``root``.
    """
    root = Path(root).resolve()
    path = root
    for i, name in enumerate(names):
        label = what[i] if i < len(what) else "name"
        path = path / check_name(name, label)
    if not is_inside(path, root):
        raise PathRefused(
            f"refused {'/'.join(names)!r}: it points outside the runs directory {root}",
            fix="only runs inside the runs directory can be opened",
        )
    return path


# --------------------------------------------------------------------------- discovery


def list_experiments(root: str | Path) -> list[str]:
    """Experiments under the runs root: folders (inside it) with a dataset or at least one run."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for p in sorted(root.iterdir()):
        if not p.is_dir() or p.name.startswith((".", "_")) or not is_inside(p, root):
            continue
        if (p / "dataset.json").is_file() or list_run_names(root, p.name):
            out.append(p.name)
    return out


def list_run_names(root: str | Path, experiment: str) -> list[str]:
    """Run folders of an experiment, complete or not (a broken run is shown with its problem).

    Staging folders (``.partial``, ``.old``), hidden folders, ``_cache`` and
    anything that resolves outside the root are left out.
    """
    exp_dir = safe_join(root, experiment)
    if not exp_dir.is_dir():
        return []
    names = []
    for p in sorted(exp_dir.iterdir()):
        if (not p.is_dir() or p.name.startswith((".", "_")) or p.name in _NOT_RUNS
                or p.name.endswith((".partial", ".old")) or not is_inside(p, root)):
            continue
        # a run folder has at least one bundle file; other folders are not runs
        if any((p / f).exists() for f in ("config.json", "predictions.parquet", "metrics.json", "model.safetensors")):
            names.append(p.name)
    return names


def run_state(run_dir: Path) -> str:
    """``"complete"`` or ``"incomplete"`` from the files present (cheap; corruption shows on load)."""
    from core.bundle import is_complete

    return "complete" if is_complete(run_dir) else "incomplete"


def _escapes(run_dir: Path, root: Path) -> list[str]:
    """Entries of a run (and its projection/explanation folders) that resolve outside the root."""
    bad = []
    for folder in (run_dir, run_dir / "projections", run_dir / "explanations"):
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.is_symlink() and not is_inside(entry, root):
                bad.append(entry.name)
    return bad


def check_run_dir(root: str | Path, experiment: str, run: str) -> Path:
    """The run folder, refused if a name or any file in it points outside the root."""
    run_dir = safe_join(root, experiment, run)
    bad = _escapes(run_dir, Path(root).resolve())
    if bad:
        raise PathRefused(
            f"refused run {run!r}: {', '.join(bad)} link(s) outside the runs directory",
            fix="replace the links with the files themselves, or rebuild the run",
        )
    return run_dir


# --------------------------------------------------------------------------- cache keys


def path_stamp(path: Path) -> tuple[str, int, int]:
    """(path, mtime_ns, size) or (path, -1, -1) when absent: part of a cache key."""
    try:
        st = Path(path).stat()
        return str(path), st.st_mtime_ns, st.st_size
    except OSError:
        return str(path), -1, -1


def run_stamp(run_dir: str | Path) -> tuple:
    """Cache key of a run's files: changes when the run is rebuilt or gains projections/explanations."""
    from core.bundle import REQUIRED_FILES

    run_dir = Path(run_dir)
    stamps = [path_stamp(run_dir)] + [path_stamp(run_dir / f) for f in REQUIRED_FILES]
    stamps += [path_stamp(run_dir / "projections"), path_stamp(run_dir / "explanations")]
    return tuple(stamps)


def bundle_stamp(run_dir: str | Path) -> tuple:
    """Cache key of the model files only (not projections or explanations): keys a rebuilt model."""
    from core.bundle import REQUIRED_FILES

    return tuple(path_stamp(Path(run_dir) / f) for f in REQUIRED_FILES)


def experiment_stamp(root: str | Path, experiment: str) -> tuple:
    """Cache key of an experiment: its dataset files and every run's config and predictions."""
    exp_dir = safe_join(root, experiment)
    stamps = [path_stamp(exp_dir), path_stamp(exp_dir / "dataset.json"), path_stamp(exp_dir / "dataset.parquet")]
    for name in list_run_names(root, experiment):
        stamps += [path_stamp(exp_dir / name / "config.json"), path_stamp(exp_dir / name / "metrics.json")]
    return tuple(stamps)


# --------------------------------------------------------------------------- overview


def best_run(results: pd.DataFrame, metric: str = "top1") -> str | None:
    """Name of the run with the highest ``metric`` (first one on ties), or None."""
    if results is None or results.empty or metric not in results.columns:
        return None
    values = pd.to_numeric(results[metric], errors="coerce")
    if values.notna().sum() == 0:
        return None
    return str(results.loc[values.idxmax(), "run"])


def split_counts(frame: pd.DataFrame, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """Samples per class (rows, in class order) and split (columns train/val/test) plus ``total``."""
    if frame is None or frame.empty:
        return pd.DataFrame(columns=["train", "val", "test", "total"])
    table = frame.groupby(["label", "split"]).size().unstack(fill_value=0)
    cols = [s for s in ("train", "val", "test") if s in table.columns] + [
        s for s in table.columns if s not in ("train", "val", "test")
    ]
    table = table[cols]
    if classes is not None:
        table = table.reindex([c for c in classes if c in table.index])
    table["total"] = table.sum(axis=1)
    table.index.name = "class"
    table.columns.name = None
    return table.astype(int)


def gallery_ids(frame: pd.DataFrame, n: int = 8, split: str = "test", seed: int = 0) -> list[str]:
    """``n`` sample ids of ``split``, one per class first (classes spread out), seeded."""
    part = frame[frame["split"] == split] if "split" in frame.columns else frame
    if part.empty:
        part = frame
    if part.empty:
        return []
    rng = np.random.default_rng(seed)
    classes = sorted(part["label"].astype(str).unique())
    rng.shuffle(classes)
    picked: list[str] = []
    by_class = {c: g["id"].astype(str).tolist() for c, g in part.groupby(part["label"].astype(str))}
    for c in classes:
        if len(picked) >= n:
            break
        ids = by_class[c]
        picked.append(ids[int(rng.integers(len(ids)))])
    if len(picked) < n:
        rest = [i for i in part["id"].astype(str) if i not in set(picked)]
        picked += rest[: n - len(picked)]
    return picked


def safe_items(dataset: Any, modality: str, ids: Sequence[str]) -> list[Any]:
    """Raw items like ``Dataset.items``, refusing file cells that resolve outside the data folder."""
    kind = dataset.modalities.get(modality)
    if kind in ("image", "video", "features"):
        root = Path(dataset.root)
        for cell in dataset.rows(list(ids))[modality].tolist():
            if os.path.isabs(str(cell)) or not is_inside(root / str(cell), root):
                raise PathRefused(
                    f"refused item {cell!r} of modality {modality!r}: outside the data folder {root}",
                    fix="rebuild the experiment from a manifest whose paths stay inside its folder",
                )
    return dataset.items(modality, list(ids))


def build_commands(experiment: str | None, run: str | None = None, root: str | Path | None = None) -> dict[str, str]:
    """Shell commands that produce what a page needs (for the runs root ``root``)."""
    from core.experiment import PROJECT_ROOT

    exp = experiment or "emoji"
    root_path = Path(root).resolve() if root is not None else (PROJECT_ROOT / "runs").resolve()
    default_root = root_path == (PROJECT_ROOT / "runs").resolve()
    env = "" if default_root else f"FUSIONLENS_RUNS={root_path} "
    run_arg = f" --run {run}" if run else ""
    run_path = root_path / exp / (run or "<run>")
    try:
        shown = run_path.relative_to(PROJECT_ROOT)
    except ValueError:
        shown = run_path
    return {
        "everything": f"{env}{BUILD_COMMAND}",
        "build": f"{env}python -m core build {exp}",
        "project": f"{env}python -m core project {exp}{run_arg}",
        "explain": f"python -m core explain {shown}",
    }


# --------------------------------------------------------------------------- predictions


FILTER_ALL = "All"


def dominant_modality(shares: pd.DataFrame, modalities: Sequence[str]) -> pd.Series:
    """Per row, the modality with the largest ``share_<m>`` (None where no share is known)."""
    cols = [f"share_{m}" for m in modalities if f"share_{m}" in shares.columns]
    if not cols:
        return pd.Series([None] * len(shares), index=shares.index, dtype=object)
    values = shares[cols].to_numpy(dtype=float)
    known = np.isfinite(values).any(axis=1)
    filled = np.where(np.isfinite(values), values, -np.inf)
    idx = filled.argmax(axis=1)
    names = np.asarray([c[len("share_"):] for c in cols], dtype=object)
    out = np.where(known, names[idx], None)
    return pd.Series(out, index=shares.index, dtype=object)


def predictions_view(
    predictions: pd.DataFrame,
    modalities: Sequence[str],
    shares: pd.DataFrame | None = None,
    texts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per test sample: id, label, pred, confidence, correct, dominant, share_<m>..., texts.

    ``shares`` is :func:`share_frame` output (keyed by ``id``); ``texts`` has ``id``
    and one column per text modality (for the text search and the table).
    """
    base = ["id", "label", "pred", "confidence", "correct"]
    view = predictions[[c for c in base if c in predictions.columns]].copy()
    view["id"] = view["id"].astype(str)
    share_cols = [f"share_{m}" for m in modalities]
    if shares is not None and not shares.empty:
        keep = ["id", *[c for c in share_cols if c in shares.columns]]
        s = shares[keep].copy()
        s["id"] = s["id"].astype(str)
        view = view.merge(s.drop_duplicates("id"), on="id", how="left")
    for c in share_cols:
        if c not in view.columns:
            view[c] = np.nan
    view["dominant"] = dominant_modality(view, modalities)
    if texts is not None and not texts.empty:
        t = texts.copy()
        t["id"] = t["id"].astype(str)
        view = view.merge(t, on="id", how="left")
    return view


def filter_predictions(
    view: pd.DataFrame,
    *,
    true_classes: Iterable[str] = (),
    pred_classes: Iterable[str] = (),
    correctness: str = FILTER_ALL,
    confidence: tuple[float, float] = (0.0, 1.0),
    dominant: Iterable[str] = (),
    search: str = "",
    search_columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Rows of :func:`predictions_view` matching every given filter (empty filters match all).

    ``correctness``: ``All`` / ``Correct`` / ``Incorrect``; ``search``: case-insensitive
    substring of the id, classes or any text column (plain text, not a regex).
    """
    mask = np.ones(len(view), dtype=bool)
    true_classes, pred_classes, dominant = list(true_classes), list(pred_classes), list(dominant)
    if true_classes:
        mask &= view["label"].astype(str).isin(true_classes).to_numpy()
    if pred_classes:
        mask &= view["pred"].astype(str).isin(pred_classes).to_numpy()
    if correctness in ("Correct", "Incorrect"):
        mask &= (view["correct"].astype(bool) == (correctness == "Correct")).to_numpy()
    lo, hi = confidence
    if lo > 0.0 or hi < 1.0:
        conf = view["confidence"].to_numpy(dtype=float)
        mask &= (conf >= lo) & (conf <= hi)
    if dominant:
        mask &= view["dominant"].isin(dominant).to_numpy()
    needle = (search or "").strip().lower()
    if needle:
        cols = list(search_columns) if search_columns is not None else ["id", "label", "pred"]
        hit = np.zeros(len(view), dtype=bool)
        for c in cols:
            if c in view.columns:
                hit |= view[c].astype(str).str.lower().str.contains(needle, regex=False, na=False).to_numpy()
        mask &= hit
    return view.loc[mask]


def sample_across_runs(predictions_by_run: Mapping[str, pd.DataFrame], sample_id: str) -> pd.DataFrame:
    """The same sample under every run: run, pred, confidence, correct, rank of the true class."""
    rows = []
    for run, preds in predictions_by_run.items():
        hit = preds[preds["id"].astype(str) == str(sample_id)]
        if hit.empty:
            continue
        r = hit.iloc[0]
        rank = None
        for k in range(1, 6):
            if f"top{k}_label" in r.index and str(r[f"top{k}_label"]) == str(r["label"]):
                rank = k
                break
        rows.append({"run": run, "pred": str(r["pred"]), "confidence": float(r["confidence"]),
                     "correct": bool(r["correct"]), "true class rank": rank})
    frame = pd.DataFrame(rows, columns=["run", "pred", "confidence", "correct", "true class rank"])
    return frame.sort_values(["correct", "confidence"], ascending=[False, False]).reset_index(drop=True)


def filter_results(
    results: pd.DataFrame,
    *,
    strategies: Iterable[str] = (),
    fusions: Iterable[str] = (),
    modalities: Iterable[str] = (),
    encoders: Iterable[str] = (),
    search: str = "",
) -> pd.DataFrame:
    """Rows of the results table matching every given filter (empty filters match all)."""
    mask = np.ones(len(results), dtype=bool)
    for col, values in (("strategy", strategies), ("fusion", fusions), ("modalities", modalities),
                        ("encoders", encoders)):
        values = list(values)
        if values and col in results.columns:
            mask &= results[col].astype(str).isin(values).to_numpy()
    needle = (search or "").strip().lower()
    if needle:
        mask &= results["run"].astype(str).str.lower().str.contains(needle, regex=False).to_numpy()
    return results.loc[mask]


# --------------------------------------------------------------------------- projections


def expected_projections(embeddings: Sequence[str],
                         methods: Sequence[str] = ("pca", "tsne", "umap")) -> list[tuple[str, str]]:
    """Every (embedding, method) pair the build stores for a run."""
    return [(e, m) for e in embeddings for m in methods]


def precompute_status(run_dir: Path, modalities: Sequence[str],
                      store: "ExplanationStore | None" = None) -> dict[str, Any]:
    """What is stored for a run: projections (frame + missing pairs) and explanations (count)."""
    from core.projection import list_projections

    stored = list_projections(run_dir)
    embeddings = [*modalities, "fused"]
    usable = stored[stored["error"].isna()] if not stored.empty else stored
    have = set(zip(usable["embedding"], usable["method"])) if not usable.empty else set()
    missing = [p for p in expected_projections(embeddings) if p not in have]
    n_expl = None
    if store is not None and store.available:
        frame = store.summaries(run_dir)
        n_expl = 0 if frame is None else int(len(frame))
    return {"projections": stored, "missing_projections": missing, "n_explained": n_expl,
            "explain_available": bool(store is not None and store.available)}


def projection_frame(ids: Sequence[Any], coords: np.ndarray, view: pd.DataFrame) -> pd.DataFrame:
    """Coordinates (id, x, y) joined with the prediction view's columns for colour and hover."""
    frame = pd.DataFrame({"id": np.asarray(ids).astype(str), "x": coords[:, 0], "y": coords[:, 1]})
    return frame.merge(view, on="id", how="left")


def selected_ids(event: Any) -> list[str]:
    """Sample ids (customdata) of the points of a plotly selection event, in order, deduplicated."""
    if event is None:
        return []
    selection = event.get("selection") if isinstance(event, Mapping) else getattr(event, "selection", None)
    if selection is None:
        return []
    points = selection.get("points", []) if isinstance(selection, Mapping) else getattr(selection, "points", [])
    out: list[str] = []
    for p in points or []:
        cd = p.get("customdata") if isinstance(p, Mapping) else None
        if isinstance(cd, (list, tuple)):
            cd = cd[0] if cd else None
        if cd is not None:
            out.append(str(cd))
    return list(dict.fromkeys(out))


# --------------------------------------------------------------------------- explanations


@dataclass
class ExplanationStore:
    """The stored-explanation API of :mod:`core.explain`, where it exists.

    The MM-SHAP engine writes ``<run>/explanations/`` (see ``docs/FORMATS.md``);
    this adapter calls its loader and its explain-one-sample function when they
    are there, and otherwise says so (``available`` False, ``missing`` names the
    functions), so pages show an empty state instead of inventing data.
    """

    load_summaries: Any = None       # (run_dir) -> DataFrame of Explanation.summary_row() rows, or None
    load_one: Any = None             # (run_dir, sample_id) -> Explanation | None
    explain_one: Any = None          # (run or run_dir, sample_id, progress=callable(done, total)) -> Explanation, stored
    missing: list[str] = field(default_factory=list)

    @property
    def available(self) -> bool:
        return self.load_summaries is not None

    @property
    def can_explain(self) -> bool:
        return self.explain_one is not None

    def summaries(self, run_dir: Path) -> pd.DataFrame | None:
        if self.load_summaries is None:
            return None
        frame = self.load_summaries(Path(run_dir))
        if frame is None or len(frame) == 0:
            return None
        return frame

    def one(self, run_dir: Path, sample_id: str) -> Any:
        if self.load_one is None:
            return None
        return self.load_one(Path(run_dir), str(sample_id))


# The public names of core.explain that the pages use.
_LOAD_SUMMARY_NAMES = ("load_explanation_summaries",)
_LOAD_ONE_NAMES = ("load_explanation",)
_EXPLAIN_ONE_NAMES = ("explain_sample",)


def explanation_store() -> ExplanationStore:
    """The adapter over whatever :mod:`core.explain` provides today."""
    try:
        import core.explain as E
    except Exception:  # the engine failing to import must not take the dashboard down
        E = None

    def pick(names: Sequence[str]) -> Any:
        for n in names:
            fn = getattr(E, n, None) if E is not None else None
            if callable(fn):
                return fn
        return None

    store = ExplanationStore(pick(_LOAD_SUMMARY_NAMES), pick(_LOAD_ONE_NAMES), pick(_EXPLAIN_ONE_NAMES))
    if store.load_summaries is None:
        store.missing.append("core.explain.load_explanation_summaries(run_dir) -> pd.DataFrame | None")
    if store.load_one is None:
        store.missing.append("core.explain.load_explanation(run_dir, sample_id) -> Explanation | None")
    if store.explain_one is None:
        store.missing.append("core.explain.explain_sample(run, sample_id, *, progress=None, store=True) -> Explanation")
    return store


def share_frame(summaries: pd.DataFrame | None, modalities: Sequence[str]) -> pd.DataFrame:
    """Per-sample shares keyed by ``id`` (core.figures' convention) from the engine's ``sample_id`` rows."""
    cols = [f"share_{m}" for m in modalities]
    if summaries is None or len(summaries) == 0:
        return pd.DataFrame(columns=["id", *cols])
    frame = summaries.rename(columns={"sample_id": "id"})
    for c in cols:
        if c not in frame.columns:
            frame[c] = np.nan
    frame = frame[["id", *cols]].copy()
    frame["id"] = frame["id"].astype(str)
    return frame.drop_duplicates("id", keep="last").reset_index(drop=True)


def _feature_rows(explanation: Any, modality: str) -> pd.DataFrame:
    frame = explanation.per_feature_frame()
    return frame[frame["modality"] == modality]


def patch_grid(explanation: Any, modality: str) -> np.ndarray | None:
    """(rows, cols) Shapley values of an image modality's patches, or None when it has none."""
    rows = _feature_rows(explanation, modality)
    if rows.empty or rows["row"].isna().all():
        return None
    r = rows["row"].astype(int).to_numpy()
    c = rows["col"].astype(int).to_numpy()
    grid = np.full((r.max() + 1, c.max() + 1), np.nan)
    grid[r, c] = rows["phi"].to_numpy(dtype=float)
    return grid


def tube_values(explanation: Any, modality: str) -> np.ndarray | None:
    """(segments, rows, cols) Shapley values of a video modality's tubes, or None."""
    rows = _feature_rows(explanation, modality)
    if rows.empty or rows["row"].isna().all():
        return None
    seg = rows["segment"].fillna(0).astype(int).to_numpy()
    r = rows["row"].astype(int).to_numpy()
    c = rows["col"].astype(int).to_numpy()
    values = np.full((seg.max() + 1, r.max() + 1, c.max() + 1), np.nan)
    values[seg, r, c] = rows["phi"].to_numpy(dtype=float)
    return values


def token_values(explanation: Any, modality: str) -> tuple[list[str], list[float]] | None:
    """Tokens and their Shapley values of a text modality, or None."""
    rows = _feature_rows(explanation, modality)
    if rows.empty or rows["token"].isna().all():
        return None
    return rows["token"].astype(str).tolist(), rows["phi"].astype(float).tolist()


def describe_error(exc: BaseException) -> tuple[str, str | None]:
    """(problem, fix) of an error, for a message on the page."""
    if isinstance(exc, FusionLensError):
        return exc.problem, exc.fix
    return f"{type(exc).__name__}: {exc}", None


_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


def slug(text: str) -> str:
    """A file-name-safe version of ``text`` (for download names)."""
    return _SLUG.sub("-", str(text)).strip("-") or "table"


def read_dataset_info(root: str | Path, experiment: str) -> dict[str, Any] | None:
    """``dataset.json`` of an experiment, or None if it has none yet."""
    path = safe_join(root, experiment) / "dataset.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"dataset description {path} is corrupted ({exc})",
                          fix=f"rerun `python -m core prepare {experiment}`") from exc


def require_sample(predictions: pd.DataFrame, sample_id: str) -> pd.Series:
    """The predictions row of ``sample_id``; DataError naming the run's ids when absent."""
    hit = predictions[predictions["id"].astype(str) == str(sample_id)]
    if hit.empty:
        raise DataError(f"sample {sample_id!r} is not in this run's test predictions",
                        fix="pick a sample from the table")
    return hit.iloc[0]
