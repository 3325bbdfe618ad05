"""Slices of a run's test predictions where the model errs most, found by SliceLine.

A slice is a group of test samples that share a few readable conditions
("true class = cat AND dominant modality = image"). :func:`slice_features`
turns a run's predictions view (``ui.queries.predictions_view``'s columns: id,
label, pred, confidence, correct, dominant, share_<m>) and the dataset's
per-sample columns (manifest and ``clips_meta.parquet``) into categorical
columns; :func:`find_slices` searches them with
SliceLine (Sagadeeva & Boehm, "SliceLine: Fast, Linear-Algebra-based Slice
Finding for ML Model Debugging", SIGMOD 2021), as implemented by the maintained
PyPI package ``sliceline`` (``sliceline.slicefinder.Slicefinder``), and tests
each slice's error rate against the overall one; :func:`slice_ids` gives the
samples of a slice.

Plain pandas/numpy/scipy: no torch, no streamlit. ``sliceline`` (and the numba
it uses) is imported on the first search, so reading stored results imports
neither.
"""
from __future__ import annotations

import logging
import math
import warnings
from pathlib import PurePath
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from core.errors import ConfigError, DataError, FusionLensError, choices
from core.kinds import get_kind

__all__ = [
    "TRUE_CLASS",
    "PREDICTED_CLASS",
    "DOMINANT",
    "CONFIDENCE",
    "NOT_EXPLAINED",
    "MISSING",
    "OTHER",
    "SHARE_LEVELS",
    "CONFIDENCE_LEVELS",
    "SLICE_COLUMNS",
    "METHOD",
    "share_feature",
    "default_min_size",
    "slice_features",
    "describe_slice",
    "slice_mask",
    "slice_ids",
    "find_slices",
    "count_candidates",
    "benjamini_hochberg",
]

TRUE_CLASS, PREDICTED_CLASS, DOMINANT, CONFIDENCE = "true class", "predicted class", "dominant modality", "confidence"
#: the level of a sample without an explanation (no dominant modality, no share)
NOT_EXPLAINED = "not explained"
#: the level of an empty manifest cell
MISSING = "missing"
#: the level that gathers a categorical column's rare values
OTHER = "other"
#: share bins by fixed edges 1/3 and 2/3 (a share is a fraction of the prediction's attribution)
SHARE_EDGES = (1 / 3, 2 / 3)
SHARE_LEVELS = ("low (below 1/3)", "mid (1/3 to 2/3)", "high (above 2/3)")
#: confidence bins by fixed edges 0.5 and 0.8
CONFIDENCE_EDGES = (0.5, 0.8)
CONFIDENCE_LEVELS = ("below 0.5", "0.5 to 0.8", "0.8 and above")
#: manifest columns that are not slice features (the sample's identity, its label and split)
RESERVED = ("id", "label", "split", "group")
#: a categorical column keeps its most frequent levels up to this many (the rest become ``other``)
MAX_LEVELS = 8
#: numeric manifest columns with more distinct values than MAX_LEVELS are cut into this many quantile bins
NUMERIC_BINS = 4
#: a text column with more distinct values than this fraction of the rows is an id or free text: skipped
ID_LIKE = 0.5
#: whole numbers with more distinct values than this fraction of the rows are an index or a seed: skipped
NEARLY_UNIQUE = 0.9
#: column names (or name endings ``_<name>``) of identifiers, not groups
ID_NAMES = ("id", "uid", "uuid", "seed", "index", "idx", "path", "file")
#: how the slices were found, for captions and reports
METHOD = "SliceLine (Sagadeeva & Boehm, SIGMOD 2021; PyPI package sliceline)"
#: the columns of :func:`find_slices`' table, in order
SLICE_COLUMNS = ("rank", "description", "conditions", "size", "errors", "error_rate", "ci_low", "ci_high",
                 "overall_error_rate", "lift", "score", "p_value", "q_value", "significant")


def share_feature(modality: str) -> str:
    """The slice column of a modality's share bins: ``"<modality> share"``."""
    return f"{modality} share"


def default_min_size(n: int) -> int:
    """The default smallest slice: 1 % of the ``n`` samples, at least 5."""
    return max(5, math.ceil(0.01 * int(n)))


# --------------------------------------------------------------------------- features


def _bins(values: pd.Series, edges: Sequence[float], levels: Sequence[str], missing: str) -> pd.Series:
    """Fixed-edge bins: below ``edges[0]`` is ``levels[0]``, at or above ``edges[-1]`` the last level."""
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    idx = np.searchsorted(np.asarray(edges, dtype=float), x, side="right")
    out = np.asarray(levels, dtype=object)[np.clip(idx, 0, len(levels) - 1)]
    return pd.Series(np.where(np.isfinite(x), out, missing), index=values.index, dtype=object)


def _number(value: float) -> str:
    return f"{value:.3g}"


def _manifest_feature(values: pd.Series, max_levels: int, numeric_bins: int) -> tuple[pd.Series | None, str | None]:
    """One manifest column as slice levels, or ``(None, why it is skipped)``."""
    n = len(values)
    raw = values.astype(object).where(values.notna(), None)
    text = raw.map(lambda v: "" if v is None else str(v).strip())
    present = text != ""
    numbers = pd.to_numeric(text.where(present, None), errors="coerce")
    numeric = bool(present.any()) and bool(numbers[present].notna().all())
    distinct = int(numbers[present].nunique()) if numeric else int(text[present].nunique())
    if numeric and distinct > max_levels and distinct > NEARLY_UNIQUE * int(present.sum()) \
            and bool((numbers[present] % 1 == 0).all()):
        return None, f"whole numbers nearly unique per sample ({distinct} distinct in {n} rows): an index or seed"
    if not numeric and bool(present.any()) and bool(text[present].map(_path_like).mean() > 0.5):
        return None, "file paths"
    if numeric and numbers[present].nunique() > max_levels:
        try:
            bins = pd.qcut(numbers[present], q=numeric_bins, duplicates="drop")
        except ValueError:  # too few distinct values for quantiles: read as levels below
            bins = None
        if bins is not None and len(bins.cat.categories) >= 2:
            lowest = float(numbers[present].min())  # qcut moves the first edge a little below it
            names = {c: f"[{_number(lowest)}, {_number(c.right)}]" if i == 0 else f"({_number(c.left)}, "
                        f"{_number(c.right)}]" for i, c in enumerate(bins.cat.categories)}
            out = pd.Series(MISSING, index=values.index, dtype=object)
            out[present] = bins.map(names).astype(object)
            return out, None
    if numeric:  # few distinct numbers: each is a level (1 and 1.0 alike)
        levels = text.where(~present, numbers.map(lambda v: _number(v) if pd.notna(v) else ""))
    else:
        levels = text
    levels = levels.where(present, MISSING)
    distinct = levels.nunique()
    if not numeric and distinct > max_levels and distinct > ID_LIKE * n:
        return None, f"id-like or free text ({distinct} distinct values in {n} rows)"
    counts = levels.value_counts()
    if len(counts) > max_levels:  # the most frequent levels stay; the rest are one level
        keep = set(counts.index[: max_levels - 1])
        levels = levels.where(levels.isin(keep), OTHER)
    return levels.astype(object), None


def _id_name(name: str) -> bool:
    """A column named as an identifier or a seed (``sample_id``, ``clip_seed``, ``clip_index``)."""
    low = name.strip().lower().replace(" ", "_").replace("-", "_")
    return low in ID_NAMES or low.endswith(tuple(f"_{n}" for n in ID_NAMES))


def _path_like(value: str) -> bool:
    """A cell that names a file: a folder separator and a file suffix (``clips/clip_00001.npz``)."""
    return ("/" in value or "\\" in value) and bool(PurePath(value.replace("\\", "/")).suffix) and " " not in value


def _modality_columns(dataset: Any) -> set[str]:
    """The manifest columns a dataset's modalities read (file paths, text, numbers): not slice features."""
    out: set[str] = set()
    for modality, kind in (getattr(dataset, "modalities", None) or {}).items():
        out.add(str(modality))
        options = (getattr(dataset, "options", None) or {}).get(modality, {}) or {}
        try:
            k = get_kind(str(kind))
            out.update(k.manifest_columns(modality, options))
            out.update(k.file_columns(modality, options))
        except FusionLensError:  # a kind this version does not know: its own column at least
            continue
    return out


def slice_features(view: pd.DataFrame, modalities: Sequence[str], dataset: Any = None, *,
                   max_levels: int = MAX_LEVELS, numeric_bins: int = NUMERIC_BINS) -> pd.DataFrame:
    """The slice features of a run's test predictions: one row per sample (index = id), string levels.

    Columns, named for people: ``true class``, ``predicted class``, ``dominant modality`` (``not
    explained`` where no share is known), ``<m> share`` (low / mid / high by the fixed edges 1/3 and
    2/3), ``confidence`` (below 0.5, 0.5 to 0.8, 0.8 and above) and every usable per-sample column of
    ``dataset`` (a :class:`core.data.Dataset`: its :meth:`~core.data.Dataset.sample_metadata`, the manifest
    plus the data's ``clips_meta.parquet`` such as the simulators' ``variant``; any object with a ``frame``;
    joined on ``id``): text columns with at most ``max_levels`` levels (rarer levels become ``other``),
    numbers with many values cut into ``numeric_bins`` quantile bins.
    Left out: the sample's id, label, split and group, every column a modality reads (file paths,
    free text), columns named as ids or seeds (``clip_seed``), nearly unique whole numbers, file paths,
    id-like text columns and columns with one value; ``frame.attrs["skipped"]`` maps each left-out
    feature to why (for the page to say).
    """
    missing = [c for c in ("id", "label", "pred", "confidence", "correct") if c not in view.columns]
    if missing:
        raise DataError(f"the predictions view lacks column(s) {', '.join(missing)}",
                        fix="pass ui.queries.predictions_view of a run (id, label, pred, confidence, correct)")
    if max_levels < 2 or numeric_bins < 2:
        raise ConfigError(f"max_levels={max_levels}, numeric_bins={numeric_bins}", fix="use 2 or more of each")
    ids = view["id"].astype(str)
    index = pd.Index(ids.to_numpy(), name="id")
    if index.has_duplicates:
        raise DataError(f"the predictions repeat sample id(s) {list(index[index.duplicated()][:5])}",
                        fix="rebuild the run: each test sample has one prediction")
    columns: dict[str, pd.Series] = {}
    skipped: dict[str, str] = {}
    columns[TRUE_CLASS] = pd.Series(view["label"].astype(str).to_numpy(), index=index, dtype=object)
    columns[PREDICTED_CLASS] = pd.Series(view["pred"].astype(str).to_numpy(), index=index, dtype=object)
    dominant = view["dominant"] if "dominant" in view.columns else pd.Series([None] * len(view))
    dominant = pd.Series(dominant.to_numpy(dtype=object), index=index)
    explained = dominant.notna() & (dominant.astype(str) != "None")
    if explained.any():
        columns[DOMINANT] = dominant.where(explained, NOT_EXPLAINED).astype(str).astype(object)
    else:
        skipped[DOMINANT] = "needs explanations (no sample of this run is explained)"
    for m in modalities:
        col = f"share_{m}"
        values = pd.Series(view[col].to_numpy(), index=index) if col in view.columns else None
        if values is None or not pd.to_numeric(values, errors="coerce").notna().any():
            skipped[share_feature(m)] = "needs explanations (no share of this modality is stored)"
            continue
        columns[share_feature(m)] = _bins(values, SHARE_EDGES, SHARE_LEVELS, NOT_EXPLAINED)
    columns[CONFIDENCE] = _bins(pd.Series(view["confidence"].to_numpy(), index=index), CONFIDENCE_EDGES,
                                CONFIDENCE_LEVELS, MISSING)
    frame = getattr(dataset, "frame", None)
    if callable(getattr(dataset, "sample_metadata", None)):  # the manifest and the data's per-sample metadata
        try:
            frame = dataset.sample_metadata()
        except DataError as exc:  # a damaged metadata file: the manifest's columns still make slices
            skipped["per-sample metadata"] = str(exc)
    if isinstance(frame, pd.DataFrame) and "id" in frame.columns:
        leave = set(RESERVED) | _modality_columns(dataset)
        manifest = frame.assign(id=frame["id"].astype(str)).drop_duplicates("id").set_index("id")
        manifest = manifest.reindex(index)
        for name in manifest.columns:
            if name in leave:
                continue
            if _id_name(str(name)):
                skipped[str(name)] = "an identifier or seed (one value per sample), not a group"
                continue
            levels, why = _manifest_feature(manifest[name], max_levels, numeric_bins)
            label = str(name) if str(name) not in columns else f"{name} (manifest)"
            if levels is None:
                skipped[label] = why or "not usable"
            else:
                columns[label] = levels
    out = pd.DataFrame(columns, index=index)
    for name in list(out.columns):
        if out[name].nunique() < 2 and name not in skipped:
            value = out[name].iloc[0] if len(out) else "-"
            skipped[name] = f"one value ({value}) for every sample"
            out = out.drop(columns=name)
    out.attrs["skipped"] = skipped
    return out


# --------------------------------------------------------------------------- slices


def describe_slice(conditions: Iterable[Sequence[Any]]) -> str:
    """``"true class = cat AND dominant modality = image"``."""
    return " AND ".join(f"{column} = {value}" for column, value in conditions) or "every sample"


def slice_mask(features: pd.DataFrame, conditions: Iterable[Sequence[Any]]) -> np.ndarray:
    """Which rows of ``features`` meet every condition ``(column, value)``; ConfigError on an unknown column."""
    mask = np.ones(len(features), dtype=bool)
    for column, value in conditions:
        if column not in features.columns:
            raise ConfigError(f"slice condition on unknown column {column!r}",
                              fix=f"use one of: {choices(features.columns)}")
        mask &= (features[column].astype(str) == str(value)).to_numpy()
    return mask


def slice_ids(features: pd.DataFrame, conditions: Iterable[Sequence[Any]]) -> list[str]:
    """The sample ids (``features``' index, from :func:`slice_features`) of the slice ``conditions``
    (a row's ``conditions`` of :func:`find_slices`: ``[(column, value), ...]``)."""
    return [str(i) for i in features.index[slice_mask(features, conditions)]]


def _empty(reason: str, summary: Mapping[str, Any]) -> pd.DataFrame:
    table = pd.DataFrame({c: pd.Series(dtype=object) for c in SLICE_COLUMNS})
    table.attrs.update(summary, reason=reason)
    return table


def _errors(features: pd.DataFrame, correct: Any) -> np.ndarray:
    """``1 - correct`` as floats, aligned with ``features`` (by id when ``correct`` is a Series keyed by
    the same ids, else by position)."""
    if isinstance(correct, pd.Series):
        keyed = correct.set_axis(correct.index.astype(str))
        if not keyed.index.has_duplicates and set(keyed.index) == set(features.index):
            correct = keyed.reindex(features.index)
    values = np.asarray(correct)
    if values.shape != (len(features),):
        raise DataError(f"{values.size} correctness values for {len(features)} samples",
                        fix="pass one correct/incorrect value per row of the slice features")
    try:
        numbers = values.astype(float)
    except (TypeError, ValueError):
        raise DataError("correctness values are not true/false", fix="pass the predictions' `correct` column") from None
    if not np.isin(numbers, (0.0, 1.0)).all():
        raise DataError("correctness values other than true/false (0/1)",
                        fix="pass the predictions' `correct` column")
    return 1.0 - numbers


def find_slices(features: pd.DataFrame, correct: Any, *, columns: Sequence[str] | None = None,
                min_size: int | None = None, max_conditions: int = 2, alpha: float = 0.05, top: int = 10,
                error_weight: float = 0.95) -> pd.DataFrame:
    """The slices of ``features`` (:func:`slice_features`) where the model errs most, best first.

    SliceLine (``sliceline.slicefinder.Slicefinder``) searches conjunctions of at most
    ``max_conditions`` conditions over ``columns`` (default: all) among slices of at least
    ``min_size`` samples (default :func:`default_min_size`), with the error vector
    ``1 - correct``, and keeps the ``top`` best scores. Its score,
    ``w * (slice error rate / overall error rate - 1) - (1 - w) * (n / slice size - 1)`` with
    ``w = error_weight`` (SliceLine's alpha), weighs a high error rate against a large size;
    only slices that score above 0 are returned.

    One row per slice: ``rank``, ``description``, ``conditions`` (JSON-able ``[[column, value], ...]``),
    ``size``, ``errors``, ``error_rate`` with its Wilson 95 % interval (``ci_low``, ``ci_high``),
    ``overall_error_rate``, ``lift`` (error rate / overall), ``score``, ``p_value`` (one-sided exact
    binomial test of the slice's errors against the overall error rate, ``scipy.stats.binomtest``),
    ``q_value`` (Benjamini-Hochberg, :func:`benjamini_hochberg`) and ``significant`` (q < ``alpha``).
    Slices naming both the true and the predicted class are left out: they are confusion-matrix
    cells, wrong by definition (the Misclassifications page shows them); so are slices on the level
    ``not explained`` (they describe which samples the build explained, not the model); of slices
    with the same samples, the one with the fewest conditions stays.

    Honest numbers: the p-values are computed on the same data the slices were chosen from, so the
    selection makes each one optimistic. Benjamini-Hochberg over the returned slices alone would not
    see that (on predictions whose errors fall at random it calls most of the ten best slices
    significant), so the q-values count the whole searched family, every slice of at most
    ``max_conditions`` conditions (:func:`count_candidates`), with the slices not returned as p = 1.
    That is conservative, not exact: read ``significant`` as "unlikely to be chance alone", and
    confirm a slice on new data.

    ``table.attrs`` holds the summary: ``reason`` (None, or why nothing could be searched: no
    predictions, no error to explain, every prediction wrong, no usable column, no slice scored),
    ``n``, ``n_errors``, ``error_rate``, ``min_size``, ``max_conditions``, ``alpha``, ``columns``
    (searched), ``skipped`` (column -> why), ``method``, and once searched ``family`` (the number of
    candidate slices the q-values count), ``confusion_cells_dropped`` and ``not_explained_dropped``.
    Bad parameters are a ConfigError.
    """
    if not isinstance(features, pd.DataFrame):
        raise DataError("slice features are not a table", fix="pass core.slices.slice_features(...)")
    skipped = dict(features.attrs.get("skipped") or {})
    n = len(features)
    known = list(features.columns)
    wanted = known if columns is None else list(columns)
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise ConfigError(f"no slice feature named {', '.join(map(repr, unknown))}",
                          fix=f"search among: {choices(known)}")
    if int(max_conditions) < 1:
        raise ConfigError(f"max_conditions={max_conditions}", fix="allow at least 1 condition per slice")
    if not 0.0 < float(alpha) < 1.0:
        raise ConfigError(f"alpha={alpha}", fix="use a significance level between 0 and 1, e.g. 0.05")
    if not 0.0 < float(error_weight) <= 1.0:
        raise ConfigError(f"error_weight={error_weight}", fix="use a weight in (0, 1], e.g. 0.95")
    if int(top) < 1:
        raise ConfigError(f"top={top}", fix="ask for at least 1 slice")
    size = default_min_size(n) if min_size is None else int(min_size)
    if size < 1:
        raise ConfigError(f"min_size={min_size}", fix="use a smallest slice of 1 sample or more")
    summary: dict[str, Any] = {"n": n, "n_errors": 0, "error_rate": float("nan"), "min_size": size,
                               "max_conditions": int(max_conditions), "alpha": float(alpha), "columns": [],
                               "skipped": skipped, "method": METHOD}
    if n == 0:
        return _empty("no test predictions: nothing to search", summary)
    errors = _errors(features, correct)
    n_errors = int(errors.sum())
    overall = n_errors / n
    summary.update(n_errors=n_errors, error_rate=overall)
    if n_errors == 0:
        return _empty(f"no error to explain: all {n} test predictions are right", summary)
    if n_errors == n:
        return _empty(f"every one of the {n} test predictions is wrong: no group can be worse than the whole",
                      summary)
    searched = []
    for c in wanted:
        if features[c].nunique() < 2:
            skipped[c] = f"one value ({features[c].iloc[0]}) for every sample"
        else:
            searched.append(c)
    summary["columns"] = searched
    if not searched:
        return _empty("no column to search: every chosen column has one value for every sample", summary)
    if size > n:
        return _empty(f"the smallest slice ({size} samples) is larger than the {n} test samples", summary)

    from sliceline.slicefinder import Slicefinder  # imported here: it brings numba, which a page view never needs

    levels = min(int(max_conditions), len(searched))
    family = count_candidates([features[c].nunique() for c in searched], levels)
    x = features[searched].astype(str).to_numpy(dtype=object)
    # asked for more than ``top``: below, a slice naming both classes (a confusion-matrix cell, wrong by
    # definition) is dropped, and so is one with the same samples as a slice of fewer conditions
    finder = Slicefinder(alpha=float(error_weight), k=5 * int(top), max_l=levels, min_sup=size, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("sliceline").setLevel(logging.WARNING)
        finder.fit(x, errors)
    found = finder.top_slices_
    if found is None or len(found) == 0:
        return _empty(f"no slice of {size} or more samples has an error rate far enough above the overall "
                      f"{overall:.1%} to score (SliceLine keeps slices that score above 0)", summary)
    rows = []
    dropped = unexplained = 0
    members: dict[bytes, int] = {}  # the same samples under more conditions: the simplest description stays
    for slice_values, statistics in zip(found, finder.top_slices_statistics_):
        conditions = [[c, str(v)] for c, v in zip(searched, slice_values) if v is not None]
        if {TRUE_CLASS, PREDICTED_CLASS} <= {c for c, _ in conditions}:
            dropped += 1
            continue
        if any(v == NOT_EXPLAINED for _, v in conditions):  # which samples the build explained, not the model
            unexplained += 1
            continue
        mask = slice_mask(features, conditions)
        same = members.get(np.packbits(mask).tobytes())
        if same is not None:
            if len(conditions) < len(rows[same]["conditions"]):
                rows[same].update(description=describe_slice(conditions), conditions=conditions)
            continue
        members[np.packbits(mask).tobytes()] = len(rows)
        k, s = int(errors[mask].sum()), int(mask.sum())
        test = stats.binomtest(k, s, overall, alternative="greater")
        ci = stats.binomtest(k, s, overall).proportion_ci(0.95, method="wilson")
        rows.append({"description": describe_slice(conditions), "conditions": conditions, "size": s, "errors": k,
                     "error_rate": k / s, "ci_low": float(ci.low), "ci_high": float(ci.high),
                     "overall_error_rate": overall, "lift": (k / s) / overall,
                     "score": float(statistics["slice_score"]), "p_value": float(test.pvalue)})
    summary.update(family=family, confusion_cells_dropped=dropped, not_explained_dropped=unexplained)
    if not rows:
        return _empty("every slice found names both the true and the predicted class (a confusion-matrix cell, "
                      f"wrong by definition) or the level {NOT_EXPLAINED!r}: leave the true or the predicted "
                      "class out, or see Misclassifications", summary)
    table = pd.DataFrame(rows).sort_values(["score", "size"], ascending=[False, False], kind="stable")
    table = table.head(int(top))
    table["q_value"] = benjamini_hochberg(table["p_value"].to_numpy(), family)
    table["significant"] = table["q_value"] < float(alpha)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table = table.reset_index(drop=True)[list(SLICE_COLUMNS)]
    table.attrs.update(summary, reason=None)
    return table


def count_candidates(levels: Sequence[int], max_conditions: int) -> int:
    """How many slices of at most ``max_conditions`` conditions (on distinct columns) columns with
    ``levels`` distinct values each make: the sum of the elementary symmetric polynomials of ``levels``
    up to that degree (``[3, 4]``, 2 conditions: 3 + 4 + 3 * 4 = 19)."""
    e = [1] + [0] * int(max_conditions)
    for d in levels:
        for k in range(int(max_conditions), 0, -1):
            e[k] += e[k - 1] * int(d)
    return int(sum(e[1:]))


def benjamini_hochberg(p_values: Sequence[float], family: int) -> np.ndarray:
    """Benjamini-Hochberg adjusted q-values of ``p_values``, within a family of ``family`` tests.

    The ``family - len(p_values)`` tests not given (the slices not returned) count as p = 1. A BH
    q-value never falls when any p-value rises, so these q-values are never below what BH over the
    true p-values of every candidate would give.
    """
    p = np.asarray(p_values, dtype=float)
    m = max(int(family), len(p))
    if len(p) == 0:
        return p
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, len(p) + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(p)
    out[order] = np.minimum(q, 1.0)
    return out
