"""Page queries over run files: plain functions the pages call (through :mod:`ui.loaders`).

The predictions view of a run (predictions + modality shares + dominant modality +
texts) and its filters, one sample across runs, the results-table filter, the
Overview's split counts and gallery, projections joined with predictions, and
the ids of a plotly selection. Everything here is plain Python over the formats
of ``docs/FORMATS.md`` and is tested without a server.

Safety: names from the URL or a widget go through :func:`core.catalog.safe_join`;
sample ids are looked up as keys in a run's tables, never used as paths; raw
items are read from the data folder that the build recorded in ``dataset.json``,
and only within it (:func:`safe_items`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from core.catalog import PathRefused, is_inside, safe_join
from core.data import read_dataset_info
from core.errors import DataError, FusionLensError
from core.explain import flat_mask
from core.kinds import get_kind
from core.ranking import has_explanations

__all__ = [
    "FILTER_ALL",
    "dataset_info",
    "safe_items",
    "text_modalities",
    "split_counts",
    "gallery_ids",
    "explained_runs",
    "share_frame",
    "dominant_modality",
    "predictions_view",
    "filter_predictions",
    "require_sample",
    "sample_across_runs",
    "filter_results",
    "projection_frame",
    "ids_in_selection",
    "selected_ids",
]

FILTER_ALL = "All"


# --------------------------------------------------------------------------- the dataset


def dataset_info(root: str | Path, experiment: str) -> dict[str, Any] | None:
    """``dataset.json`` of an experiment of the runs root (keys and types checked by
    :func:`core.data.read_dataset_info`), or None when it has none yet."""
    exp_dir = safe_join(root, experiment)
    if not (exp_dir / "dataset.json").is_file():
        return None
    return read_dataset_info(exp_dir)


def safe_items(dataset: Any, modality: str, ids: Sequence[str]) -> list[Any]:
    """Raw items like ``Dataset.items``, refusing file cells that resolve outside the data folder.

    Which cells are file paths is the modality kind's to say (``ModalityKind.file_columns``);
    an unknown kind is a :class:`core.errors.ConfigError` naming the known ones.
    """
    kind = get_kind(dataset.modalities.get(modality, ""))
    columns = kind.file_columns(modality, dataset.options.get(modality, {}))
    root = Path(dataset.root)
    rows = dataset.rows(list(ids)) if columns else None
    for column in columns:
        for cell in rows[column].tolist():
            if os.path.isabs(str(cell)) or not is_inside(root / str(cell), root):
                raise PathRefused(
                    f"refused item {cell!r} of modality {modality!r}: outside the data folder {root}",
                    fix="rebuild the experiment from a manifest whose paths stay inside its folder",
                )
    return dataset.items(modality, list(ids))


def text_modalities(modalities: Mapping[str, str], among: Iterable[str] | None = None) -> list[str]:
    """The modalities (name -> kind) whose manifest cells are readable text, as their kind says
    (``ModalityKind.text_cells``), in the order of ``among`` (default: of ``modalities``). A kind
    this version does not know (an older or newer ``dataset.json``) has none."""
    def has_text(kind: Any) -> bool:
        try:
            return get_kind(str(kind)).text_cells
        except FusionLensError:
            return False

    names = list(modalities) if among is None else list(among)
    return [m for m in names if m in modalities and has_text(modalities[m])]


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


def explained_runs(root: str | Path, experiment: str, runs: Iterable[str]) -> list[str]:
    """The runs of ``runs`` that have stored explanations (a cheap look at their folders)."""
    out = []
    for run in runs:
        try:
            if has_explanations(safe_join(root, experiment, run)):
                out.append(run)
        except PathRefused:
            continue
    return out


# --------------------------------------------------------------------------- predictions


#: per-sample columns of the modality game carried beside the shares (``core.explain``'s stored rows)
GAME_COLUMNS = ("sum_abs_phi", "flat", "output_kind", "base_value", "full_value")


def share_frame(summaries: pd.DataFrame | None, modalities: Sequence[str]) -> pd.DataFrame:
    """Per-sample shares keyed by ``id`` (the pages' convention) from the stored ``sample_id`` rows
    (:func:`core.explain.load_explanation_summaries`), with the modality game's columns where
    stored (``exact_share_<m>``, ``interaction_<a>__<b>``, ``flat`` ...)."""
    cols = [f"share_{m}" for m in modalities]
    if summaries is None or len(summaries) == 0:
        return pd.DataFrame(columns=["id", *cols])
    frame = summaries.rename(columns={"sample_id": "id"})
    for c in cols:
        if c not in frame.columns:
            frame[c] = np.nan
    extra = [c for c in frame.columns if c.startswith(("exact_share_", "interaction_")) or c in GAME_COLUMNS]
    frame = frame[["id", *cols, *extra]].copy()
    frame["id"] = frame["id"].astype(str)
    return frame.drop_duplicates("id", keep="last").reset_index(drop=True)


def dominant_modality(shares: pd.DataFrame, modalities: Sequence[str]) -> pd.Series:
    """Per row, the modality with the largest ``share_<m>`` (None where no share is known, or where the
    prediction barely depends on its inputs: ``core.explain.flat_mask``, whose shares are noise)."""
    cols = [f"share_{m}" for m in modalities if f"share_{m}" in shares.columns]
    if not cols:
        return pd.Series([None] * len(shares), index=shares.index, dtype=object)
    values = shares[cols].to_numpy(dtype=float)
    known = np.isfinite(values).any(axis=1) & ~np.asarray(flat_mask(shares), dtype=bool)
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
        flags = [c for c in GAME_COLUMNS if c in shares.columns]
        keep = ["id", *[c for c in share_cols if c in shares.columns], *flags]
        s = shares[keep].copy()
        s["id"] = s["id"].astype(str)
        view = view.merge(s.drop_duplicates("id"), on="id", how="left")
    for c in share_cols:
        if c not in view.columns:
            view[c] = np.nan
    view["dominant"] = dominant_modality(view, modalities)
    view = view.drop(columns=[c for c in GAME_COLUMNS if c in view.columns])  # used for the flag only
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


def require_sample(predictions: pd.DataFrame, sample_id: str) -> pd.Series:
    """The predictions row of ``sample_id``; DataError naming the run's ids when absent."""
    hit = predictions[predictions["id"].astype(str) == str(sample_id)]
    if hit.empty:
        raise DataError(f"sample {sample_id!r} is not in this run's test predictions",
                        fix="pick a sample from the table")
    return hit.iloc[0]


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


def projection_frame(ids: Sequence[Any], coords: np.ndarray, view: pd.DataFrame) -> pd.DataFrame:
    """Coordinates (id, x, y) joined with the prediction view's columns for colour and hover."""
    frame = pd.DataFrame({"id": np.asarray(ids).astype(str), "x": coords[:, 0], "y": coords[:, 1]})
    return frame.merge(view, on="id", how="left")


def _inside_polygon(x: np.ndarray, y: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Even-odd rule: which points (x, y) lie inside the polygon (px, py) (one pass per edge, vectorised)."""
    inside = np.zeros(x.shape, dtype=bool)
    j = len(px) - 1
    for i in range(len(px)):
        crosses = (py[i] > y) != (py[j] > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = (px[j] - px[i]) * (y - py[i]) / (py[j] - py[i]) + px[i]
        inside ^= crosses & (x < x_cross)
        j = i
    return inside


def _regions(event: Any) -> tuple[list[Any], list[Any]]:
    if event is None:
        return [], []
    selection = event.get("selection") if isinstance(event, Mapping) else getattr(event, "selection", None)
    if selection is None:
        return [], []
    get = (lambda k: selection.get(k) or []) if isinstance(selection, Mapping) else \
        (lambda k: getattr(selection, k, None) or [])
    return list(get("box")), list(get("lasso"))


def ids_in_selection(event: Any, ids: Sequence[Any], coords: np.ndarray) -> list[str]:
    """Ids of every point inside the event's box or lasso regions, plus the points it names.

    The density view draws only a sample of the points, so the selection is
    taken from the drawn regions (plotly's ``box`` / ``lasso`` in data
    coordinates), over all ``coords`` (n, 2) rows, not from the points plotly
    reports.
    """
    ids_arr = np.asarray(ids).astype(str)
    x = np.asarray(coords[:, 0], dtype=np.float64)
    y = np.asarray(coords[:, 1], dtype=np.float64)
    mask = np.zeros(len(ids_arr), dtype=bool)
    boxes, lassos = _regions(event)
    for box in boxes:
        bx, by = box.get("x") or [], box.get("y") or []
        if len(bx) >= 2 and len(by) >= 2:
            mask |= (x >= min(bx)) & (x <= max(bx)) & (y >= min(by)) & (y <= max(by))
    for lasso in lassos:
        lx, ly = np.asarray(lasso.get("x") or [], float), np.asarray(lasso.get("y") or [], float)
        if len(lx) >= 3 and len(lx) == len(ly):
            mask |= _inside_polygon(x, y, lx, ly)
    return list(dict.fromkeys([*ids_arr[mask].tolist(), *selected_ids(event)]))


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
