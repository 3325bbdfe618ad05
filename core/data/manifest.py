"""Datasets described by a manifest table (CSV or Parquet).

Columns: ``id``, ``label``, optional ``split`` and ``group``, and the columns of
each modality. The experiment file declares each modality's kind; what a cell
holds, how it is checked and how it is loaded belong to that kind
(:mod:`core.kinds`: text, image, video, tabular; see docs/FORMATS.md), and this
module loops over them. ``load_manifest`` validates everything a training run
would otherwise trip over later (every image file is opened, empty text follows
the modality's rule, numeric columns hold numbers, too-small classes and splits
are refused or reported), names the fix, and records what it changed in
``Dataset.report``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from core.errors import ConfigError, DataError, choices
from core.kinds import get_kind, list_kinds
from core.kinds.image_files import load_image  # noqa: F401 (re-exported: core.data.load_image)

SPLITS = ("train", "val", "test")
#: ids named in a message before "and N more"
PREVIEW = 10
#: per-sample descriptive columns beside a manifest, keyed by ``id`` (the RGB-D and site simulators write
#: the clip's variant, designed reliance and actor summary there; a user's data may have one too)
SAMPLE_METADATA = "clips_meta.parquet"


def _preview(values: Sequence[Any], n: int = 5) -> str:
    vals = list(values)
    more = f" and {len(vals) - n} more" if len(vals) > n else ""
    return ", ".join(map(str, vals[:n])) + more


def stratified_group_split(labels: Sequence[str], groups: Sequence[str], fractions: dict[str, float],
                           seed: int) -> np.ndarray:
    """Assign ``train``/``val``/``test`` per group, stratified by label.

    Every member of a group lands in the same split; each class with at least
    three groups gets at least one group in val and in test, and keeps at least
    one in train whatever the fractions. A class with fewer than three groups is
    in train only.
    """
    labels = np.asarray(labels, dtype=object)
    groups = np.asarray(groups, dtype=object)
    total = sum(fractions.get(s, 0.0) for s in SPLITS)
    frac = {s: fractions.get(s, 0.0) / total for s in SPLITS}
    rng = np.random.default_rng(seed)
    group_label = pd.Series(labels).groupby(pd.Series(groups), sort=True).agg(lambda s: s.mode().iloc[0])
    assign: dict[str, str] = {}
    for label in sorted(group_label.unique()):
        gs = np.array(sorted(group_label.index[group_label == label]), dtype=object)
        rng.shuffle(gs)
        n = len(gs)
        n_test = max(1, int(round(frac["test"] * n))) if n >= 3 and frac["test"] > 0 else 0
        n_val = max(1, int(round(frac["val"] * n))) if n >= 3 and frac["val"] > 0 else 0
        while n_test + n_val > n - 1:  # train keeps a group (both stay >= 1: n >= 3 here)
            if n_test >= n_val:
                n_test -= 1
            else:
                n_val -= 1
        for i, g in enumerate(gs):
            assign[g] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return np.array([assign[g] for g in groups], dtype=object)


@dataclass
class Dataset:
    """A validated manifest: one row per sample, raw items loaded on demand."""

    name: str
    root: Path
    frame: pd.DataFrame
    modalities: dict[str, str]
    classes: list[str] = field(default_factory=list)
    #: ``(rgb, depth)`` modality pairs checked with ``core.kinds.video_files.validate_pair``
    #: on load; with ``repair_video`` mismatches are repaired (documented there), not refused.
    video_pairs: list[tuple[str, str]] = field(default_factory=list)
    repair_video: bool = False
    #: image modality -> side in pixels its SVG files are rasterised at (the encoder's image size)
    raster_sizes: dict[str, int] = field(default_factory=dict)
    #: modality -> the kind's keys of ``[modalities.<name>]`` (``empty``, ``columns``, ...)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: what preparation changed (empty text, dropped classes, ...): see :func:`describe_preparation`
    report: dict[str, Any] = field(default_factory=dict)
    _indexed: Any = field(default=None, init=False, repr=False, compare=False)  # (frame, frame by id)
    _metadata: Any = field(default=None, init=False, repr=False, compare=False)  # (frame, joined frame)

    def ids(self, split: str | None = None) -> list[str]:
        f = self.frame if split is None else self.frame[self.frame["split"] == split]
        return f["id"].tolist()

    def rows(self, ids: Sequence[str]) -> pd.DataFrame:
        if self._indexed is None or self._indexed[0] is not self.frame:  # built once per frame
            self._indexed = (self.frame, _one_chunk(self.frame.set_index("id", drop=False)))
        f = self._indexed[1]
        missing = [i for i in ids if i not in f.index]
        if missing:
            raise DataError(f"sample id(s) not in dataset {self.name!r}: {_preview(missing)}",
                            fix="pick ids from the run's predictions table")
        return f.loc[list(ids)]

    def sample_metadata(self) -> pd.DataFrame:
        """Every descriptive column of each sample: the manifest's rows (``frame``) with the columns of
        :data:`SAMPLE_METADATA` beside the manifest (in ``root``) joined on ``id``; a column in both keeps
        the manifest's values. Without that file, ``frame`` itself. Read once per frame (Parquet only);
        a damaged or id-less file is a DataError naming it."""
        if self._metadata is not None and self._metadata[0] is self.frame:
            return self._metadata[1]
        path = Path(self.root) / SAMPLE_METADATA
        joined = self.frame
        if path.is_file():
            try:
                extra = pd.read_parquet(path)
            except Exception as exc:  # pyarrow raises several types for damaged files
                raise DataError(f"the per-sample metadata {path} is unreadable ({type(exc).__name__})",
                                fix="delete it (or render the simulator's data again) to use the manifest alone")
            if "id" not in extra.columns:
                raise DataError(f"the per-sample metadata {path} has no 'id' column",
                                fix="add the sample ids as an 'id' column, or delete the file")
            extra = extra.assign(id=extra["id"].astype(str)).drop_duplicates("id")
            extra = extra[["id", *[c for c in extra.columns if c not in self.frame.columns]]]
            joined = self.frame.assign(id=self.frame["id"].astype(str)).merge(extra, on="id", how="left")
        self._metadata = (self.frame, joined)
        return joined

    def label_indices(self, ids: Sequence[str]) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[l] for l in self.rows(ids)["label"]], dtype=np.int64)

    def items(self, modality: str, ids: Sequence[str]) -> list[Any]:
        """Raw items of one modality, loaded by its kind: strings, ``HxWx3`` uint8 images, clips, vectors."""
        if modality not in self.modalities:
            raise DataError(f"dataset {self.name!r} has no modality {modality!r}",
                            fix=f"use one of: {choices(self.modalities)}")
        return get_kind(self.modalities[modality]).load(self, modality, self.rows(ids))


def _one_chunk(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every Arrow-backed column in one chunk (same dtypes): taking a few rows of a chunked
    column costs time in proportion to the column (3.7 ms a row of a 1,041,667-row manifest read in 8
    chunks, 0.2 ms in one), and the explain engine takes one sample's rows at a time."""
    out = frame.copy(deep=False)
    for col in out.columns:
        arr = out[col].array
        if not hasattr(arr, "__arrow_array__"):
            continue
        chunked = arr.__arrow_array__()
        if getattr(chunked, "num_chunks", 1) > 1:
            out[col] = pd.Series(pd.array(chunked.combine_chunks(), dtype=out[col].dtype), index=out.index,
                                 name=col)
    return out


def read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"manifest {path} does not exist", fix="check the path given in the experiment file")
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        if path.suffix.lower() in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",", dtype=str, keep_default_na=False)
    except Exception as exc:
        raise DataError(f"manifest {path} is unreadable ({exc})", fix="save it as a valid CSV or Parquet table") from exc
    raise DataError(f"manifest {path} has suffix {path.suffix!r}", fix="use a .csv, .tsv or .parquet manifest")


def load_manifest(path: str | Path, modalities: dict[str, str], *, name: str | None = None,
                  fractions: dict[str, float] | None = None, seed: int = 0, min_per_class: int = 1,
                  check_files: bool = True, empty: dict[str, str] | None = None,
                  options: dict[str, dict[str, Any]] | None = None, progress: bool = False) -> Dataset:
    """Read and validate a manifest; add a seeded stratified split when it has none.

    ``modalities``: name -> kind (:mod:`core.kinds`; an old kind name is read as its new
    one). ``options``: modality -> the kind's keys of ``[modalities.<name>]`` (a text
    modality's ``empty`` rule, a tabular modality's ``columns``); ``empty`` (text modality
    -> rule) is the same as ``options[m]["empty"]``. ``min_per_class`` counts samples
    (rows): smaller classes are dropped and reported. With ``check_files``, every
    referenced file must exist and open (each kind's ``check_files``). What was changed
    is recorded in ``Dataset.report``.
    """
    path = Path(path)
    frame = read_table(path).copy()
    kinds = {}
    for m, kind in modalities.items():
        try:
            kinds[m] = get_kind(kind)
        except ConfigError:
            raise DataError(f"modality {m!r} has unknown kind {kind!r}",
                            fix=f"use one of: {choices(list_kinds())}") from None
    opts = {m: dict((options or {}).get(m) or {}) for m in modalities}
    for m, rule in (empty or {}).items():
        if m in opts:
            opts[m].setdefault("empty", rule)
    columns = {m: kinds[m].manifest_columns(m, opts[m]) for m in modalities}
    required = list(dict.fromkeys(["id", "label", *(c for m in modalities for c in columns[m])]))
    missing = [c for c in required if c not in frame.columns]
    if missing:
        hints = [h for m in modalities if set(columns[m]) & set(missing)
                 for h in [kinds[m].missing_columns_fix(m, opts[m])] if h]
        raise DataError(
            f"manifest {path} lacks column(s) {', '.join(missing)} (it has {', '.join(map(str, frame.columns))})",
            fix="add the columns, or rename the modalities in the experiment file to match the manifest"
                + "".join(f"; {h}" for h in hints),
        )
    if len(modalities) < 1:
        raise DataError("no modalities declared", fix="declare at least one [modalities.<name>] in the experiment file")
    frame["id"] = frame["id"].astype(str)
    dup = frame["id"][frame["id"].duplicated()].unique()
    if len(dup):
        raise DataError(f"manifest {path} repeats id(s) {_preview(dup)}", fix="make every id unique")
    frame["label"] = frame["label"].astype(str).str.strip()
    empty_label = frame["id"][frame["label"].isin(["", "nan", "None"])]
    if len(empty_label):
        raise DataError(f"sample(s) {_preview(empty_label)} have no label", fix="label them or drop them")
    report: dict[str, Any] = {"samples_in_manifest": int(len(frame)), "empty_text": {}}
    for m in modalities:  # each kind's cell rules (empty text, missing paths, numbers)
        frame = kinds[m].check_cells(frame, m, opts[m], report)

    if "group" in frame.columns:  # a sample without a group is a group of its own
        group = frame["group"].astype(str).str.strip()
        frame["group"] = group.where(~(frame["group"].isna() | (group == "")), frame["id"])
    else:
        frame["group"] = frame["id"]
    if frame.empty:
        raise DataError(f"manifest {path} has no samples left (empty text dropped every row)" if
                        report["samples_in_manifest"] else f"manifest {path} has no rows",
                        fix="add samples to the manifest")
    counts = frame.groupby("label").agg(samples=("id", "size"), groups=("group", "nunique"))
    small = counts[counts["samples"] < min_per_class]
    report["min_per_class"] = {
        "threshold": int(min_per_class), "unit": "samples",
        "dropped": [{"label": str(lab), "samples": int(r["samples"]), "groups": int(r["groups"])}
                    for lab, r in small.iterrows()],
    }
    if len(small):
        frame = frame[~frame["label"].isin(small.index)].reset_index(drop=True)
    if frame.empty:
        top = counts["samples"].idxmax()
        raise DataError(f"no class has {min_per_class} or more samples (the largest, {top!r}, has "
                        f"{int(counts['samples'].max())})",
                        fix="lower min_per_class in [dataset] of the experiment file (it counts samples)")
    labels = sorted(frame["label"].unique())
    if len(labels) < 2:
        detail = f", after min_per_class = {min_per_class} dropped {len(small)} smaller class(es)" if len(small) else ""
        raise DataError(f"training needs at least 2 classes; found 1 ({labels[0]!r}, {len(frame)} samples){detail}",
                        fix="add samples of other classes to the manifest"
                            + (", or lower min_per_class in [dataset] of the experiment file" if len(small) else ""))
    if check_files:  # each kind's file checks (files exist, images open, vectors load)
        for m in modalities:
            kinds[m].check_files(frame, m, path.parent, opts[m], progress=progress)

    if "split" in frame.columns and (frame["split"].astype(str).str.strip() != "").all():
        frame["split"] = frame["split"].astype(str).str.strip().str.lower()
        bad = sorted(set(frame["split"]) - set(SPLITS))
        if bad:
            raise DataError(f"manifest {path} has unknown split value(s) {bad}", fix="use train, val or test")
        report["split"] = "manifest"
    else:
        frame["split"] = stratified_group_split(frame["label"], frame["group"],
                                                fractions or {"train": 0.7, "val": 0.15, "test": 0.15}, seed)
        report["split"] = "seeded"
    train_labels = set(frame.loc[frame["split"] == "train", "label"])
    if not train_labels:
        raise DataError(f"manifest {path} has no training samples", fix="assign some rows to split 'train'")
    unseen = frame[(frame["split"] != "train") & ~frame["label"].isin(train_labels)]
    if len(unseen):
        raise DataError(
            f"label(s) {_preview(sorted(unseen['label'].unique()))} appear in val/test but never in train "
            f"(samples {_preview(unseen['id'])})",
            fix="move some of those samples to train, or drop the label",
        )
    per_split = {s: int((frame["split"] == s).sum()) for s in SPLITS}
    empty_splits = [s for s in SPLITS if per_split[s] == 0]
    if empty_splits:
        sizes = ", ".join(f"{s} {n}" for s, n in per_split.items())
        if report["split"] == "manifest":
            raise DataError(f"the manifest's split column puts no sample in {' and '.join(empty_splits)} ({sizes})",
                            fix=f"assign some rows to {' and '.join(empty_splits)} (val picks each run's best epoch, "
                                "test measures every run), or remove the split column for a seeded split")
        groups = frame.groupby("label")["group"].nunique().sort_values(ascending=False)
        raise DataError(
            f"the dataset is too small to split: {' and '.join(empty_splits)} would get no samples ({sizes}), because "
            f"a class needs 3 groups (one each for train, val and test) and the largest has {int(groups.iloc[0])} "
            f"(groups per class: {_preview([f'{k} {v}' for k, v in groups.items()], PREVIEW)})",
            fix="add samples (or, with a group column, more groups) per class, or give the manifest a split column")
    evaluated = set(frame.loc[frame["split"] != "train", "label"])
    train_only = frame[~frame["label"].isin(evaluated)].groupby("label").agg(samples=("id", "size"),
                                                                              groups=("group", "nunique"))
    report["train_only_classes"] = [{"label": str(lab), "samples": int(r["samples"]), "groups": int(r["groups"])}
                                    for lab, r in train_only.iterrows()]
    report.update(samples=int(len(frame)), classes=len(train_labels), splits=per_split)
    classes = sorted(train_labels)
    return Dataset(name=name or path.stem, root=path.parent, frame=frame.reset_index(drop=True),
                   modalities={m: k.name for m, k in kinds.items()}, classes=classes,
                   options={m: o for m, o in opts.items() if o}, report=report)


def describe_preparation(report: dict[str, Any]) -> list[str]:
    """One line per thing preparation changed or noticed (empty text, dropped classes, ...), for the CLI."""
    lines = []
    for m, info in (report.get("empty_text") or {}).items():
        if info.get("rule") == "refuse":
            continue
        what = "dropped (removed from the dataset)" if info["rule"] == "drop" else "kept as empty strings"
        shown = list(info.get("ids") or [])
        more = int(info.get("samples") or 0) - len(shown)
        ids = f": {', '.join(map(str, shown))}{f' and {more} more' if more > 0 else ''}" if shown else ""
        lines.append(f"{m}: {info['samples']} sample(s) with empty text {what}, rule empty = \"{info['rule']}\"{ids}")
    mpc = report.get("min_per_class") or {}
    if mpc.get("dropped"):
        listed = _preview([f"{d['label']} ({d['samples']})" for d in mpc["dropped"]], PREVIEW)
        lines.append(f"min_per_class = {mpc['threshold']} samples: dropped {len(mpc['dropped'])} class(es) with fewer "
                     f"samples: {listed}")
    if report.get("max_per_class"):
        cap = report["max_per_class"]
        lines.append(f"max_per_class = {cap['limit']}: kept at most {cap['limit']} samples per class and split, "
                     f"{cap['removed']} sample(s) left out")
    if report.get("train_only_classes"):
        listed = _preview([f"{d['label']} ({d['groups']} group(s))" for d in report["train_only_classes"]], PREVIEW)
        lines.append(f"{len(report['train_only_classes'])} class(es) are in train only (fewer than 3 groups, so never "
                     f"validated or tested): {listed}")
    for name in list_kinds():  # what each kind noticed (an audio modality's clipped and silent clips, ...)
        lines += get_kind(name).preparation_notes(report)
    return lines
