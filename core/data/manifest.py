"""Datasets described by a manifest table (CSV or Parquet).

Columns: ``id``, ``label``, optional ``split`` and ``group``, and one column per
modality. The experiment file declares each modality's kind (text, image,
video, features); see docs/FORMATS.md. ``load_manifest`` validates everything a
training run would otherwise trip over later, and names the fix.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from core.errors import DataError

MODALITY_KINDS = ("text", "image", "video", "features")
SPLITS = ("train", "val", "test")


def _preview(values: Sequence[Any], n: int = 5) -> str:
    vals = list(values)
    more = f" and {len(vals) - n} more" if len(vals) > n else ""
    return ", ".join(map(str, vals[:n])) + more


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as ``HxWx3`` uint8; transparency is composited on white."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file {path} does not exist", fix="fix the path in the manifest (paths are relative to it)")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA", "P"):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataError(f"image file {path} is unreadable ({exc})", fix="replace or remove that file from the manifest") from exc


def stratified_group_split(labels: Sequence[str], groups: Sequence[str], fractions: dict[str, float],
                           seed: int) -> np.ndarray:
    """Assign ``train``/``val``/``test`` per group, stratified by label.

    Every member of a group lands in the same split; each class with at least
    three groups gets at least one group in val and in test.
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
    #: ``(rgb, depth)`` modality pairs checked with ``core.data.video.validate_pair``
    #: on load; with ``repair_video`` mismatches are repaired (documented there), not refused.
    video_pairs: list[tuple[str, str]] = field(default_factory=list)
    repair_video: bool = False
    _indexed: Any = field(default=None, init=False, repr=False, compare=False)  # (frame, frame by id)

    def ids(self, split: str | None = None) -> list[str]:
        f = self.frame if split is None else self.frame[self.frame["split"] == split]
        return f["id"].tolist()

    def rows(self, ids: Sequence[str]) -> pd.DataFrame:
        if self._indexed is None or self._indexed[0] is not self.frame:  # built once per frame
            self._indexed = (self.frame, self.frame.set_index("id", drop=False))
        f = self._indexed[1]
        missing = [i for i in ids if i not in f.index]
        if missing:
            raise DataError(f"sample id(s) not in dataset {self.name!r}: {_preview(missing)}",
                            fix="pick ids from the run's predictions table")
        return f.loc[list(ids)]

    def label_indices(self, ids: Sequence[str]) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[l] for l in self.rows(ids)["label"]], dtype=np.int64)

    def items(self, modality: str, ids: Sequence[str]) -> list[Any]:
        """Raw items of one modality: strings, ``HxWx3`` uint8 images, clips or vectors."""
        if modality not in self.modalities:
            raise DataError(f"dataset {self.name!r} has no modality {modality!r}",
                            fix=f"use one of: {', '.join(self.modalities)}")
        kind = self.modalities[modality]
        rows = self.rows(ids)
        cells = rows[modality].tolist()
        if kind == "text":
            return [str(c) for c in cells]
        if kind == "image":
            return [load_image(self.root / c) for c in cells]
        if kind == "video":
            return self._video_items(modality, rows)
        return [_load_vector(self.root / c) for c in cells]

    def _video_items(self, modality: str, rows: pd.DataFrame) -> list[Any]:
        from core.data.video import load_clip, validate_pair

        ids = rows["id"].tolist()
        clips = [load_clip(self.root / c, modality, clip_id=i) for i, c in zip(ids, rows[modality])]
        pair = next((p for p in self.video_pairs if modality in p), None)
        if pair is None:
            return clips
        other = pair[1] if modality == pair[0] else pair[0]
        out = []
        for i, clip, cell in zip(ids, clips, rows[other]):
            partner = load_clip(self.root / cell, other, clip_id=i)
            rgb, depth = (clip, partner) if modality == pair[0] else (partner, clip)
            rgb, depth = validate_pair(rgb, depth, i, repair=self.repair_video)
            out.append(rgb if modality == pair[0] else depth)
        return out

    def check_video_pairs(self, progress: bool = False) -> None:
        """Load every paired clip once and raise on the first mismatch (names the clip and the fix)."""
        from tqdm.auto import tqdm

        ids = self.frame["id"].tolist()
        for rgb_m, _ in self.video_pairs:
            for start in tqdm(range(0, len(ids), 64), desc="checking RGB-D pairs", disable=not progress, leave=False):
                self.items(rgb_m, ids[start:start + 64])


def _load_vector(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"feature file {path} does not exist", fix="fix the path in the manifest")
    try:
        v = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"feature file {path} is not a plain .npy array ({exc})", fix="save it with numpy.save") from exc
    if v.ndim != 1 or not np.isfinite(v).all():
        raise DataError(f"feature file {path} must hold a finite 1-D vector, got shape {v.shape}",
                        fix="store one flat vector per sample")
    return v.astype(np.float32)


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
                  check_files: bool = True) -> Dataset:
    """Read and validate a manifest; add a seeded stratified split when it has none."""
    path = Path(path)
    frame = read_table(path).copy()
    for m, kind in modalities.items():
        if kind not in MODALITY_KINDS:
            raise DataError(f"modality {m!r} has unknown kind {kind!r}", fix=f"use one of: {', '.join(MODALITY_KINDS)}")
    required = ["id", "label", *modalities]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"manifest {path} lacks column(s) {', '.join(missing)} (it has {', '.join(map(str, frame.columns))})",
            fix="add the columns, or rename the modalities in the experiment file to match the manifest",
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
    for m, kind in modalities.items():
        col = frame[m]
        blank = frame["id"][col.isna() | (col.astype(str).str.strip() == "")]
        if len(blank):
            what = "empty text" if kind == "text" else "no file path"
            raise DataError(f"modality {m!r}: sample(s) {_preview(blank)} have {what}",
                            fix="fill them in or drop those rows from the manifest")
        if kind != "text" and check_files:
            paths = [path.parent / str(c) for c in col]
            absent = [i for i, p in zip(frame["id"], paths) if not p.exists()]
            if absent:
                raise DataError(f"modality {m!r}: file(s) missing for sample(s) {_preview(absent)} "
                                f"(e.g. {paths[list(frame['id']).index(absent[0])]})",
                                fix="fix the paths (relative to the manifest) or drop those rows")
    if min_per_class > 1:
        counts = frame.groupby("label")["group" if "group" in frame else "id"].nunique()
        keep = counts.index[counts >= min_per_class]
        frame = frame[frame["label"].isin(keep)].reset_index(drop=True)
        if frame.empty:
            raise DataError(f"no class has {min_per_class} or more samples", fix="lower min_per_class")
    if "group" not in frame.columns:
        frame["group"] = frame["id"]
    frame["group"] = frame["group"].astype(str)
    if "split" in frame.columns and (frame["split"].astype(str).str.strip() != "").all():
        frame["split"] = frame["split"].astype(str).str.strip().str.lower()
        bad = sorted(set(frame["split"]) - set(SPLITS))
        if bad:
            raise DataError(f"manifest {path} has unknown split value(s) {bad}", fix="use train, val or test")
    else:
        frame["split"] = stratified_group_split(frame["label"], frame["group"],
                                                fractions or {"train": 0.7, "val": 0.15, "test": 0.15}, seed)
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
    classes = sorted(train_labels)
    return Dataset(name=name or path.stem, root=path.parent, frame=frame.reset_index(drop=True),
                   modalities=dict(modalities), classes=classes)
