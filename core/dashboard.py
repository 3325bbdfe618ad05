"""What the dashboard needs from the run files, without streamlit.

The pages stay thin: they pick names with widgets and call these functions
(through ``st.cache_data`` keyed by :func:`run_stamp` / :func:`experiment_stamp`,
so a rebuilt run is read again). Everything here is plain Python over the
formats of ``docs/FORMATS.md`` and is tested without a server.

Safety: the dashboard reads only inside its runs root. Experiments and runs
come from the one run catalog (:mod:`core.catalog`, whose path checks are
re-exported here), and every experiment or run name that comes from the URL
or a widget goes through :func:`safe_join`, which refuses path separators,
``..``, absolute paths and anything that resolves (symlinks included) outside
the root. A bundle's model is rebuilt only under :func:`build_run_model`. Sample ids are looked up as keys in a
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

from core.bundle import REQUIRED_FILES, dataset_problems, is_complete
from core.catalog import (  # the dashboard's paths and run lists come from the one run catalog
    PathRefused,
    check_name,
    check_run_dir,
    is_inside,
    list_experiments,
    list_run_names,
    safe_join,
)
from core.errors import BundleError, ConfigError, DataError, FusionLensError, cli_command

__all__ = [
    "PathRefused",
    "check_name",
    "safe_join",
    "is_inside",
    "list_experiments",
    "list_run_names",
    "run_state",
    "model_roots",
    "build_run_model",
    "path_stamp",
    "run_stamp",
    "bundle_stamp",
    "experiment_stamp",
    "best_run",
    "explained_runs",
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
    "explanation_plan",
    "expected_projections",
    "ExplanationStore",
    "explanation_store",
    "share_frame",
    "patch_grid",
    "tube_values",
    "token_values",
    "filter_results",
    "build_commands",
    "experiment_file",
]

BUILD_COMMAND = "bash scripts/run.sh"


def run_state(run_dir: Path) -> str:
    """``"complete"`` or ``"incomplete"`` from the files present (cheap); the catalog's
    :func:`core.catalog.scan_runs` gives the full state (broken, refused) with the problem."""
    return "complete" if is_complete(run_dir) else "incomplete"


# --------------------------------------------------------------------------- models of bundles


def model_roots(root: str | Path) -> list[Path]:
    """Where a run bundle opened by the dashboard may name a local model folder: the project
    and the runs root (plus ``$FUSIONLENS_ALLOW_MODEL_DIRS``, added by the check). Not the data
    folder that ``dataset.json`` records: that file is no more trusted than ``config.json``."""
    from core.experiment import PROJECT_ROOT

    return [PROJECT_ROOT.resolve(), Path(root).resolve()]


def build_run_model(run: Any, root: str | Path) -> Any:
    """Rebuild the model of a bundle under the dashboard's rules: its local model folders must be
    inside :func:`model_roots` and hold safetensors weights, and Hugging Face ids load from the
    local cache only. Any refusal or failure is a :class:`BundleError` naming the model."""
    from core.model_sources import check_bundle_models, hub_cache_only

    try:
        check_bundle_models(run.config, model_roots(root), run=f"run {Path(run.path).name}")
    except ConfigError as exc:
        raise BundleError(exc.problem, fix=exc.fix) from exc
    with hub_cache_only():
        return run.model()


# --------------------------------------------------------------------------- cache keys


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


# --------------------------------------------------------------------------- overview


def best_run(results: pd.DataFrame, metric: str = "top1", explained: Iterable[str] = ()) -> str | None:
    """Name of the run with the highest ``metric``, or None.

    Ties follow :func:`core.ranking.run_rank_key` (the rule the build uses to pick the runs it
    explains): more modalities first, then a run named in ``explained`` (it has stored
    explanations), then the name.
    """
    from core.ranking import run_rank_key

    if results is None or results.empty or metric not in results.columns:
        return None
    values = pd.to_numeric(results[metric], errors="coerce")
    if values.notna().sum() == 0:
        return None
    explained = set(explained)
    n_mods = (results["modalities"].astype(str).str.split("+").str.len() if "modalities" in results.columns
              else pd.Series(1, index=results.index))
    keys = {i: run_rank_key(str(results.at[i, "run"]), values[i], int(n_mods[i]), str(results.at[i, "run"]) in explained)
            for i in results.index}
    return str(results.at[min(keys, key=keys.get), "run"])


def explained_runs(root: str | Path, experiment: str, runs: Iterable[str]) -> list[str]:
    """The runs of ``runs`` that have stored explanations (a cheap look at their folders)."""
    from core.ranking import has_explanations

    out = []
    for run in runs:
        try:
            if has_explanations(safe_join(root, experiment, run)):
                out.append(run)
        except PathRefused:
            continue
    return out


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


def experiment_file(root: str | Path, experiment: str) -> Path | None:
    """The experiment file recorded in the experiment's ``dataset.json`` at prepare, when it is
    still an existing ``.toml`` file; None otherwise (not built yet, an older build, a damaged or
    refused description). The path is only shown in commands, never read here."""
    try:
        info = read_dataset_info(root, experiment)
    except FusionLensError:
        return None
    value = info.get("experiment_file") if isinstance(info, dict) else None
    if not isinstance(value, str) or not value:
        return None
    path = Path(value)
    return path if path.is_absolute() and path.suffix == ".toml" and path.is_file() else None


def build_commands(experiment: str | None, run: str | None = None, root: str | Path | None = None) -> dict[str, str]:
    """Shell commands that produce what a page needs for the runs root ``root`` (default: this
    process's runs root), to run from the current folder (where the dashboard was started).

    CLI commands name ``--runs-dir`` unless ``root`` is ``./runs`` (the CLI's default there);
    ``scripts/run.sh`` gets ``FUSIONLENS_RUNS`` unless ``root`` is the repository's ``runs/``.
    ``build`` names the experiment file recorded at prepare (a user's own ``my.toml``) while it
    exists, else the experiment's name (a demo in ``experiments/``).
    """
    import shlex

    from core.experiment import EXPERIMENTS_DIR, PROJECT_ROOT, runs_root

    def shown(path: Path) -> str:  # relative to the current folder when inside it; quoted if the shell needs it
        try:
            text = str(path.relative_to(cwd))
        except ValueError:
            text = str(path)
        return text if re.fullmatch(r"[\w@%+=:,./<>-]+", text) else shlex.quote(text)

    cwd = Path.cwd().resolve()
    exp = experiment or "emoji"
    root_path = Path(root).resolve() if root is not None else runs_root()
    runs_arg = "" if root_path == cwd / "runs" else f" --runs-dir {shown(root_path)}"
    env = "" if root_path == (PROJECT_ROOT / "runs").resolve() else f"FUSIONLENS_RUNS={shlex.quote(str(root_path))} "
    script = BUILD_COMMAND if cwd == PROJECT_ROOT.resolve() else f"bash {shown(PROJECT_ROOT / 'scripts' / 'run.sh')}"
    run_arg = f" --run {run}" if run else ""
    cli = cli_command()
    file = experiment_file(root_path, exp)
    target = exp if file is None or file == (EXPERIMENTS_DIR / f"{exp}.toml").resolve() else shown(file)
    return {
        "everything": f"{env}{script}",
        "build": f"{cli} build {target}{runs_arg}",
        "project": f"{cli} project {exp}{run_arg}{runs_arg}",
        "explain": f"{cli} explain {shown(root_path / exp / (run or '<run>'))}",
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
    """What is stored for a run: projections (frame, missing pairs, damaged files) and
    explanations (count, or the error that says which stored file is damaged).

    Keys: ``projections``, ``missing_projections`` [(embedding, method)],
    ``damaged_projections`` [error text], ``n_explained``, ``explain_error``
    (a FusionLensError or None), ``explain_available``.
    """
    from core.projection import list_projections

    stored = list_projections(run_dir)
    embeddings = [*modalities, "fused"]
    usable = stored[stored["error"].isna()] if not stored.empty else stored
    have = set(zip(usable["embedding"], usable["method"])) if not usable.empty else set()
    missing = [p for p in expected_projections(embeddings) if p not in have]
    damaged = stored.loc[stored["error"].notna(), "error"].astype(str).tolist() if not stored.empty else []
    n_expl, explain_error = None, None
    if store is not None and store.available:
        try:
            frame = store.summaries(run_dir)
            n_expl = 0 if frame is None else int(len(frame))
        except FusionLensError as exc:  # a damaged part: reported as damage, not as "nothing stored"
            explain_error = exc
    return {"projections": stored, "missing_projections": missing, "damaged_projections": damaged,
            "n_explained": n_expl, "explain_error": explain_error,
            "explain_available": bool(store is not None and store.available)}


PLAN_COLUMNS = ["run", "requested", "stored", "missing", "command"]


def explanation_plan(root: str | Path, experiment: str, stored_ids: Any) -> pd.DataFrame:
    """What the build explains in an experiment, and how much of it is stored.

    One row per run the build's explain step picks (:func:`core.explain.select_build_runs`,
    in its order, with its sample sizes ``core.cli.EXPLAIN_BUILD_SAMPLES`` and the run's seed):
    ``run``, ``requested`` (samples in the build's seeded sample), ``stored`` (of those, how many
    have stored explanations), ``missing`` and ``command`` (the build's own command for that run,
    which skips what is stored). ``stored_ids(run_dir)`` gives the explained sample ids of a run.
    A run whose explanations ran out of the build's time budget shows up with ``missing > 0``.
    """
    from core.bundle import load_run
    from core.cli import EXPLAIN_BUILD_SAMPLES
    from core.explain import select_build_runs, select_samples

    rows = []
    for i, run_dir in enumerate(select_build_runs(safe_join(root, experiment))):
        try:
            run = load_run(run_dir)
        except BundleError:  # the catalog verified it a moment ago; a run rebuilt meanwhile is left out
            continue
        n = EXPLAIN_BUILD_SAMPLES[min(i, len(EXPLAIN_BUILD_SAMPLES) - 1)]
        seed = int(run.config.get("seed", 0))
        wanted = set(select_samples(run, n, seed))
        have = len(wanted & {str(x) for x in (stored_ids(run_dir) or ())})
        command = build_commands(experiment, run_dir.name, root=root)["explain"] + f" --n {n} --seed {seed}"
        rows.append({"run": run_dir.name, "requested": len(wanted), "stored": have,
                     "missing": len(wanted) - have, "command": command})
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


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
    """``dataset.json`` of an experiment (keys and types checked), or None if it has none yet."""
    path = safe_join(root, experiment) / "dataset.json"
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:  # ValueError: not JSON, or not UTF-8 text
        raise BundleError(f"dataset description {path} is corrupted ({type(exc).__name__}: {exc})",
                          fix=f"rerun `{cli_command()} prepare {experiment}`") from exc
    problems = dataset_problems(info)
    if problems:
        raise BundleError(f"dataset description {path} is damaged: {'; '.join(problems)}",
                          fix=f"rerun `{cli_command()} prepare {experiment}`")
    return info


def require_sample(predictions: pd.DataFrame, sample_id: str) -> pd.Series:
    """The predictions row of ``sample_id``; DataError naming the run's ids when absent."""
    hit = predictions[predictions["id"].astype(str) == str(sample_id)]
    if hit.empty:
        raise DataError(f"sample {sample_id!r} is not in this run's test predictions",
                        fix="pick a sample from the table")
    return hit.iloc[0]
