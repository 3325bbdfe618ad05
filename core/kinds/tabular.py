"""The tabular kind: a numeric vector per sample; players are its columns.

The vector comes from one of two places (``[modalities.<name>]``):

* ``columns = ["age", "height", ...]``: those numeric manifest columns, in that
  order (the modality's own name need not be a column);
* no ``columns``: the modality's column holds a path (relative to the manifest)
  to a ``.npy`` file with a 1-D float vector, the same length for every sample.

Prepare refuses missing columns, cells that are not numbers and infinite
values (naming the samples and the fix), and for ``.npy`` files every file that
is missing, pickled, not 1-D, not finite or of another length. Empty or NaN
cells of the manifest columns follow the ``missing`` option: ``"refuse"`` (the
default: an error naming the samples) or ``"mean"`` (kept as NaN, which the
encoder sets to the column's training mean, computed on the non-missing
training values; the count per column goes to the preparation report,
``missing_values``; no indicator column is added). The default encoder ``mlp``
standardises each column with the training split's mean and standard deviation
(stored with the run's weights), so a masked player, set to 0, is the training
mean of its column.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from core.errors import ConfigError, DataError
from core.kinds.base import PREVIEW, DatasetLike, MaskerContext, ModalityKind, OptionKey, preview
from core.kinds.masking import Masker, single_input
from core.kinds.registry import KINDS

if TYPE_CHECKING:
    import torch

#: manifest columns that are never features
RESERVED_COLUMNS = ("id", "label", "split", "group")
#: what an empty or NaN cell of a tabular column becomes: refused, or the column's training mean
MISSING_RULES = ("refuse", "mean")


@KINDS.register("tabular")
class TabularKind(ModalityKind):
    """Numeric vectors (manifest columns or ``.npy`` files); one player per column."""

    name = "tabular"
    default_encoder = "mlp"
    input_keys = ("features",)
    fill = 0.0  # after standardisation: the training mean of the column
    feature_columns = {"column": "str"}
    cell_doc = ("numeric manifest columns named by `columns = [...]`, or else a path relative to the manifest to a "
                "`.npy` 1-D float vector (the same length for every sample)")
    options = {
        "columns": OptionKey("list[str]", "numeric manifest columns that make up the vector, in order; without it the "
                             "modality's column holds the path of a `.npy` vector per sample",
                             default_doc="a `.npy` path per sample"),
        "missing": OptionKey("str", "empty or NaN cells of the `columns`: `refuse` (an error naming the samples) or "
                             "`mean` (the column's training mean; prepare reports the count per column)",
                             default_doc='`"refuse"`', choices=MISSING_RULES),
    }

    def manifest_columns(self, modality: str, options: Mapping[str, Any]) -> list[str]:
        return list(options.get("columns") or [modality])

    def file_columns(self, modality: str, options: Mapping[str, Any]) -> list[str]:
        return [] if options.get("columns") else [modality]

    def missing_columns_fix(self, modality: str, options: Mapping[str, Any]) -> str | None:
        if options.get("columns"):
            return f"or correct columns = [...] in [modalities.{modality}] of the experiment file"
        return None

    def check_cells(self, frame: pd.DataFrame, modality: str, options: Mapping[str, Any],
                    report: dict[str, Any]) -> pd.DataFrame:
        """Numeric columns: every cell a finite number (stored as float64), or empty / NaN with
        ``missing = "mean"`` (counted per column in ``report["missing_values"]``); ``.npy`` paths: none empty."""
        columns = options.get("columns")
        missing = options.get("missing") or "refuse"
        if missing not in MISSING_RULES:
            raise ConfigError(f"[modalities.{modality}] missing = {missing!r} is not a rule",
                              fix=f"use one of: {', '.join(MISSING_RULES)}")
        if not columns:
            if missing != "refuse":
                raise ConfigError(f"[modalities.{modality}] missing = {missing!r} applies to manifest columns only",
                                  fix="name the columns with columns = [...], or store finite .npy vectors and "
                                      "leave missing out")
            return super().check_cells(frame, modality, options, report)
        reserved = [c for c in columns if c in RESERVED_COLUMNS]
        repeated = sorted({c for c in columns if list(columns).count(c) > 1})
        if reserved or repeated:
            what = f"names {', '.join(reserved)}, which {'is' if len(reserved) == 1 else 'are'} not a feature" \
                if reserved else f"names {', '.join(repeated)} more than once"
            raise DataError(f"[modalities.{modality}] columns {what}",
                            fix=f"list each numeric feature column once, without {', '.join(RESERVED_COLUMNS)}")
        problems: list[str] = []
        bad_ids: list[str] = []
        counts: dict[str, int] = {}
        gaps = pd.Series(False, index=frame.index)
        for col in columns:
            raw = frame[col]
            text = raw.astype(str).str.strip()
            blank = raw.isna() | text.isin(["", "nan", "NaN", "None"])
            values = pd.to_numeric(raw.where(~blank), errors="coerce")
            not_number = values.isna() & ~blank
            infinite = values.notna() & ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=0.0))
            checks = [(not_number, "not a number"), (blank, "empty or NaN"), (infinite, "infinite")]
            if missing == "mean":  # kept as NaN: the encoder fills in the column's training mean
                checks.pop(1)
                counts[col] = int(blank.sum())
                gaps |= blank
            for mask, what in checks:
                if mask.any():
                    ids = frame["id"][mask].tolist()
                    shown = ", ".join(f"{i} ({raw[mask].iloc[k]!r})" if what == "not a number" else str(i)
                                      for k, i in enumerate(ids[:5]))
                    more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
                    problems.append(f"column {col!r} is {what} for sample(s) {shown}{more}")
                    bad_ids += ids
            frame[col] = values.astype(np.float64)
        if problems:
            n = len(set(bad_ids))
            raise DataError(f"modality {modality!r}: {n} sample(s) have unusable values: {'; '.join(problems[:PREVIEW])}",
                            fix="write a finite number in every cell of those columns (a decimal point, no units), "
                                "or drop those rows from the manifest"
                                + ("" if missing == "mean" else
                                   f'; or set missing = "mean" in [modalities.{modality}] to fill empty cells '
                                   "with the column's training mean"))
        if missing == "mean":
            report.setdefault("missing_values", {})[modality] = {
                "rule": missing, "columns": counts, "samples": int(gaps.sum()),
                "ids": frame["id"][gaps].astype(str).tolist()[:PREVIEW]}
        return frame

    def check_files(self, frame: pd.DataFrame, modality: str, root: Path, options: Mapping[str, Any], *,
                    progress: bool = False) -> None:
        """``.npy`` vectors: every file loads as a finite 1-D vector, all of one length."""
        if options.get("columns"):
            return
        super().check_files(frame, modality, root, options, progress=progress)
        lengths: dict[int, list[str]] = {}
        bad: list[str] = []
        for sid, cell in zip(frame["id"], frame[modality].astype(str)):
            try:
                lengths.setdefault(len(load_vector(root / cell)), []).append(sid)
            except DataError as exc:
                bad.append(f"{sid} ({exc.problem})")
        if bad:
            raise DataError(f"modality {modality!r}: {len(bad)} vector file(s) cannot be used: "
                            f"{'; '.join(bad[:PREVIEW])}{' and more' if len(bad) > PREVIEW else ''}",
                            fix="save one finite 1-D float vector per sample with numpy.save (no pickled objects)")
        if len(lengths) > 1:
            common = max(lengths, key=lambda n: len(lengths[n]))
            odd = [f"{n} ({preview(ids)})" for n, ids in lengths.items() if n != common]
            raise DataError(f"modality {modality!r}: the vectors differ in length: most have {common} values, "
                            f"others have {'; '.join(odd)}",
                            fix="give every sample a vector of the same length")

    def load(self, dataset: DatasetLike, modality: str, rows: pd.DataFrame) -> list[Any]:
        columns = dataset.options.get(modality, {}).get("columns")
        if columns:
            return list(rows[list(columns)].to_numpy(dtype=np.float32))
        return [load_vector(dataset.root / c) for c in rows[modality]]

    def encoder_kwargs(self, first_item: Any, modality: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """``in_features``: the vector's length; ``feature_names``: the column names (manifest columns);
        ``missing = "mean"`` when the experiment file says so (NaN cells become the training mean)."""
        n = int(np.shape(first_item)[0])
        kwargs: dict[str, Any] = {"in_features": n, "feature_names": column_names(modality, options, n)}
        if options.get("missing") == "mean":
            kwargs["missing"] = "mean"
        return kwargs

    def build_masker(self, inputs: dict[str, torch.Tensor], *, encoder: Any = None,
                     context: MaskerContext = MaskerContext()) -> ColumnMasker:
        return ColumnMasker(inputs, names=getattr(encoder, "feature_names", None), fill=self.fill)

    def feature_label(self, info: Mapping[str, Any]) -> str:
        return str(info.get("column"))

    def preparation_notes(self, report: Mapping[str, Any]) -> list[str]:
        """A line per modality whose empty cells became the training mean (``missing = "mean"``)."""
        lines = []
        for m, info in (report.get("missing_values") or {}).items():
            cols = {c: n for c, n in (info.get("columns") or {}).items() if n}
            if not cols:
                continue
            shown = list(info.get("ids") or [])
            more = int(info.get("samples") or 0) - len(shown)
            ids = f": {', '.join(map(str, shown))}{f' and {more} more' if more > 0 else ''}" if shown else ""
            lines.append(f"{m}: {sum(cols.values())} empty cell(s) in {info.get('samples')} sample(s) filled with the "
                         f"column's training mean, rule missing = \"mean\" ("
                         + ", ".join(f"{c}: {n}" for c, n in cols.items()) + f"){ids}")
        return lines


def column_names(modality: str, options: Mapping[str, Any], n: int) -> list[str]:
    """The names of a tabular modality's ``n`` columns: its manifest columns, or ``<modality>[i]``
    for the entries of a ``.npy`` vector."""
    return [str(c) for c in options.get("columns") or [f"{modality}[{i}]" for i in range(n)]]


def load_vector(path: Path) -> np.ndarray:
    """A ``.npy`` file holding one finite 1-D vector, as float32 (never unpickles)."""
    if not path.is_file():
        raise DataError(f"feature file {path} does not exist", fix="fix the path in the manifest")
    try:
        v = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"feature file {path} is not a plain .npy array ({exc})", fix="save it with numpy.save") from exc
    if not isinstance(v, np.ndarray) or v.ndim != 1 or not np.issubdtype(v.dtype, np.number) \
            or not np.isfinite(v).all():
        raise DataError(f"feature file {path} must hold a finite 1-D numeric vector, got "
                        f"{'shape ' + str(v.shape) if isinstance(v, np.ndarray) else type(v).__name__}",
                        fix="store one flat vector of finite numbers per sample")
    return v.astype(np.float32)


class ColumnMasker(Masker):
    """Each entry of ``features`` (1, D) is a player; a masked entry is set to ``fill``.

    Args:
        inputs: tabular inputs of one sample (``features``, standardised by the encoder).
        names: one name per column (default ``f0``, ``f1``, ...).
        fill: value of a masked entry: a scalar or a (D,) vector (default 0, the training mean
            after standardisation).
    """

    kind = "tabular"
    input_keys = ("features",)
    key = "features"

    def __init__(self, inputs: dict[str, torch.Tensor], *, names: Sequence[str] | None = None,
                 fill: Any = 0.0) -> None:
        import torch  # lazy: core.kinds is read without torch (see core.kinds.masking)

        feats = single_input(inputs, self.key, self.kind, 2)
        self.n_features = int(feats.shape[1])
        base = torch.as_tensor(np.asarray(fill, dtype=np.float64))
        if base.ndim == 0:
            base = base.expand(self.n_features)
        if tuple(base.shape) != (self.n_features,):
            raise ConfigError(f"fill has shape {tuple(base.shape)}, the vector has {self.n_features} entries",
                              fix=f"pass a scalar or a vector of length {self.n_features}")
        self.fill = base.clone()
        if names is not None and len(names) != self.n_features:
            raise ConfigError(f"got {len(names)} names for {self.n_features} columns", fix="pass one name per column")
        self.names = [str(n) for n in names] if names is not None else [f"f{i}" for i in range(self.n_features)]

    def apply(self, inputs: dict[str, torch.Tensor], mask: Any) -> dict[str, torch.Tensor]:
        import torch  # lazy: see core.kinds.masking

        feats = single_input(inputs, self.key, self.kind, 2)
        m = self._mask(mask, feats.device)
        out = self._repeat(inputs, m.shape[0], skip=(self.key,))
        fill = self.fill.to(device=feats.device, dtype=feats.dtype)
        out[self.key] = torch.where(m, feats, fill[None, :])
        return out

    def describe(self) -> list[dict[str, Any]]:
        return [{"column": name} for name in self.names]
