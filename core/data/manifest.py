"""Datasets described by a manifest table (CSV or Parquet).

Columns: ``id``, ``label``, optional ``split`` and ``group``, and one column per
modality. The experiment file declares each modality's kind (text, image,
video, features); see docs/FORMATS.md. ``load_manifest`` validates everything a
training run would otherwise trip over later (every image file is opened, empty
text follows the modality's rule, too-small classes and splits are refused or
reported), names the fix, and records what it changed in ``Dataset.report``.
"""
from __future__ import annotations

import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from core.errors import DataError, choices

MODALITY_KINDS = ("text", "image", "video", "features")
SPLITS = ("train", "val", "test")
EMPTY_TEXT_RULES = ("refuse", "drop", "keep")
#: the common raster formats named in messages (Pillow opens more; any it opens is accepted)
COMMON_IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WebP")
SVG_SUFFIXES = (".svg", ".svgz")
#: side in pixels an SVG is rasterised at when no encoder size is known
DEFAULT_SVG_SIZE = 256
MAX_SVG_BYTES = 20_000_000
SVG_FIX = ("install the optional SVG support with `pip install -r requirements-extra.txt` (the package resvg-py; "
           "no system library needed), or convert the files to PNG, e.g. `rsvg-convert -w 256 in.svg -o in.png` "
           "(Debian package librsvg2-bin), and point the manifest at the PNGs")
#: ids named in a message before "and N more"
PREVIEW = 10


def _preview(values: Sequence[Any], n: int = 5) -> str:
    vals = list(values)
    more = f" and {len(vals) - n} more" if len(vals) > n else ""
    return ", ".join(map(str, vals[:n])) + more


def supported_image_formats() -> str:
    """The image formats readable here, for messages: the common raster ones, and SVG when resvg-py is installed."""
    from PIL import Image

    Image.init()
    opened = set(Image.OPEN)
    names = [f for f in COMMON_IMAGE_FORMATS if f.upper() in opened]
    return ", ".join(names) + (", SVG" if svg_support() else "") + " (and the other formats Pillow opens)"


def svg_support() -> bool:
    """Whether the optional SVG rasteriser (resvg-py) is installed."""
    import importlib.util

    return importlib.util.find_spec("resvg_py") is not None


def is_svg(path: Path) -> bool:
    """An SVG file, by suffix or by content (``<svg`` near the start)."""
    if path.suffix.lower() in SVG_SUFFIXES:
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(1024).lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    except OSError:
        return False
    return head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head)


def _svg_text(path: Path) -> str:
    with open(path, "rb") as fh:
        data = fh.read(MAX_SVG_BYTES + 1)
    if data[:2] == b"\x1f\x8b":  # .svgz
        with gzip.open(io.BytesIO(data)) as gz:
            data = gz.read(MAX_SVG_BYTES + 1)
    if len(data) > MAX_SVG_BYTES:
        raise ValueError(f"larger than {MAX_SVG_BYTES // 1_000_000} MB")
    return data.decode("utf-8")


def rasterise_svg(path: str | Path, size: int = DEFAULT_SVG_SIZE) -> np.ndarray:
    """Rasterise an SVG file with resvg-py so that its longer side is ``size`` pixels; ``HxWx3`` uint8
    with transparency composited on white. Nothing in the file is executed (resvg renders static SVG)."""
    from PIL import Image

    path = Path(path)
    try:
        import resvg_py
    except ImportError as exc:
        raise DataError(f"image file {path} is an SVG (vector) image, and the optional package resvg-py that "
                        "rasterises it is not installed", fix=SVG_FIX) from exc
    try:
        text = _svg_text(path)
        png = resvg_py.svg_to_bytes(svg_string=text, width=int(size))
        with Image.open(io.BytesIO(bytes(png))) as im:
            if im.height > im.width:  # taller than wide: the height is the longer side
                png = resvg_py.svg_to_bytes(svg_string=text, height=int(size))
        with Image.open(io.BytesIO(bytes(png))) as im:
            return _to_rgb(im)
    except (ValueError, OSError, UnicodeDecodeError, RuntimeError) as exc:
        raise DataError(f"image file {path} is an SVG that cannot be rasterised ({exc})",
                        fix="check that it is a valid SVG (open it in a browser), or convert it to PNG") from exc


def _to_rgb(im: Any) -> np.ndarray:
    from PIL import Image

    im.load()
    if im.mode in ("RGBA", "LA", "P", "PA"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def load_image(path: str | Path, size: int | None = None) -> np.ndarray:
    """Read an image file as ``HxWx3`` uint8; transparency is composited on white.

    SVG files are rasterised (with the optional resvg-py) so that their longer side is
    ``size`` pixels (the encoder's image size; :data:`DEFAULT_SVG_SIZE` when not given).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file {path} does not exist", fix="fix the path in the manifest (paths are relative to it)")
    if is_svg(path):
        return rasterise_svg(path, size or DEFAULT_SVG_SIZE)
    try:
        with Image.open(path) as im:
            return _to_rgb(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"image file {path} is unreadable ({exc})",
                        fix=f"replace or remove that file from the manifest; readable formats: "
                            f"{supported_image_formats()}") from exc


def image_problem(path: Path) -> str | None:
    """Why ``path`` cannot be used as an image (None when it can): a cheap check run at prepare.

    Raster files are opened with Pillow and verified (header and, for PNG, chunk checksums)
    without decoding; SVG files are rasterised at a small size.
    """
    from PIL import Image, UnidentifiedImageError

    if is_svg(path):
        if not svg_support():
            return "SVG, and resvg-py is not installed"
        try:
            rasterise_svg(path, 16)
        except DataError as exc:
            return str(exc.problem).rsplit("(", 1)[-1].rstrip(")")
        return None
    try:
        with Image.open(path) as im:
            im.verify()
    except UnidentifiedImageError:
        return "not an image format Pillow reads"
    except Exception as exc:  # Pillow raises many types for a damaged file
        text = str(exc).replace(str(path), "").strip(" :'\"") or type(exc).__name__
        return f"damaged ({text[:80]})"
    return None


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
    #: ``(rgb, depth)`` modality pairs checked with ``core.data.video.validate_pair``
    #: on load; with ``repair_video`` mismatches are repaired (documented there), not refused.
    video_pairs: list[tuple[str, str]] = field(default_factory=list)
    repair_video: bool = False
    #: image modality -> side in pixels its SVG files are rasterised at (the encoder's image size)
    raster_sizes: dict[str, int] = field(default_factory=dict)
    #: what preparation changed (empty text, dropped classes, ...): see :func:`describe_preparation`
    report: dict[str, Any] = field(default_factory=dict)
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
                            fix=f"use one of: {choices(self.modalities)}")
        kind = self.modalities[modality]
        rows = self.rows(ids)
        cells = rows[modality].tolist()
        if kind == "text":  # a missing cell (kept by the rule empty = "keep") is the empty string
            return ["" if c is None or (isinstance(c, float) and np.isnan(c)) else str(c) for c in cells]
        if kind == "image":
            return [load_image(self.root / c, self.raster_sizes.get(modality)) for c in cells]
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


def _check_images(frame: pd.DataFrame, modality: str, root: Path, progress: bool) -> None:
    """Open every image file of ``modality``; one DataError naming all that cannot be read."""
    from tqdm.auto import tqdm

    bad: list[tuple[str, str, str]] = []
    cells = list(zip(frame["id"], frame[modality].astype(str)))
    for sid, cell in tqdm(cells, desc=f"checking {modality} images", disable=not progress, leave=False):
        why = image_problem(root / cell)
        if why:
            bad.append((sid, cell, why))
    if not bad:
        return
    shown = "; ".join(f"{sid} ({cell}: {why})" for sid, cell, why in bad[:PREVIEW])
    more = f"; and {len(bad) - PREVIEW} more" if len(bad) > PREVIEW else ""
    fix = (f"convert or replace those files (readable here: {supported_image_formats()}), or drop those rows "
           "from the manifest")
    n_svg = sum(why.startswith("SVG, and resvg-py") for _, _, why in bad)
    if n_svg:
        fix = SVG_FIX + ("" if n_svg == len(bad) else f"; for the others: {fix}")
    raise DataError(f"modality {modality!r}: {len(bad)} of {len(frame)} image file(s) cannot be used: {shown}{more}",
                    fix=fix)


def load_manifest(path: str | Path, modalities: dict[str, str], *, name: str | None = None,
                  fractions: dict[str, float] | None = None, seed: int = 0, min_per_class: int = 1,
                  check_files: bool = True, empty: dict[str, str] | None = None,
                  progress: bool = False) -> Dataset:
    """Read and validate a manifest; add a seeded stratified split when it has none.

    ``empty``: text modality -> rule for empty cells (``refuse``, the default, ``drop`` or
    ``keep``). ``min_per_class`` counts samples (rows): smaller classes are dropped and
    reported. With ``check_files``, every referenced file must exist and every image file
    must open. What was changed is recorded in ``Dataset.report``.
    """
    path = Path(path)
    frame = read_table(path).copy()
    for m, kind in modalities.items():
        if kind not in MODALITY_KINDS:
            raise DataError(f"modality {m!r} has unknown kind {kind!r}", fix=f"use one of: {choices(MODALITY_KINDS)}")
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
    report: dict[str, Any] = {"samples_in_manifest": int(len(frame)), "empty_text": {}}
    rules = dict(empty or {})
    for m, kind in modalities.items():
        blank = frame[m].isna() | (frame[m].astype(str).str.strip() == "")
        blank_ids = frame["id"][blank].tolist()
        if kind != "text":
            if blank_ids:
                raise DataError(f"modality {m!r}: sample(s) {_preview(blank_ids)} have no file path",
                                fix="fill them in or drop those rows from the manifest")
            continue
        rule = rules.get(m, "refuse")
        if rule not in EMPTY_TEXT_RULES:
            raise DataError(f"unknown empty-text rule {rule!r} for modality {m!r}",
                            fix=f"use one of: {', '.join(EMPTY_TEXT_RULES)}")
        if blank_ids and rule == "refuse":
            raise DataError(f"modality {m!r}: sample(s) {_preview(blank_ids)} have empty text ({len(blank_ids)} of "
                            f"{len(frame)})", fix=f'fill them in, or set a rule in [modalities.{m}] of the experiment '
                            'file: empty = "drop" (remove those samples) or empty = "keep" (the encoder sees an '
                            'empty string)')
        if rule == "drop":
            frame = frame[~blank].reset_index(drop=True)
        elif rule == "keep" and blank_ids:
            frame[m] = frame[m].astype(object).where(~blank, "")
        report["empty_text"][m] = {"rule": rule, "samples": len(blank_ids), "ids": blank_ids[:PREVIEW]}

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
    if check_files:
        for m, kind in modalities.items():
            if kind == "text":
                continue
            paths = [path.parent / str(c) for c in frame[m]]
            absent = [(i, p) for i, p in zip(frame["id"], paths) if not p.exists()]
            if absent:
                raise DataError(f"modality {m!r}: file(s) missing for sample(s) {_preview([i for i, _ in absent])} "
                                f"(e.g. {absent[0][1]})",
                                fix="fix the paths (relative to the manifest) or drop those rows")
            if kind == "image":
                _check_images(frame, m, path.parent, progress)

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
                   modalities=dict(modalities), classes=classes, report=report)


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
    return lines
