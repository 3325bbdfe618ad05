"""The one result object of an explanation, and its table form.

An :class:`Explanation` holds the Shapley values of every feature of every
modality of one sample (features concatenated modality by modality, in the
order of ``modalities``), the MM-SHAP share of each modality, the exact
modality-level Shapley values when computed, and what was explained and how.

Stored as two tables (see ``docs/FORMATS.md``, ``explanations/``):

* per sample, :meth:`Explanation.summary_row`: ``sample_id``,
  ``explained_class``, ``output_kind``, ``base_value``, ``full_value``,
  ``share_<modality>``..., ``share_stderr_<modality>``... (the shares' standard
  errors, :func:`core.explain.share_stderr`; NaN when unknown),
  ``shapley_<modality>``... (NaN when not computed),
  the modality game's ``exact_share_<modality>``..., ``interaction_<a>__<b>``...
  (every pair, :mod:`core.explain._interactions`), ``coalition_values`` (JSON,
  its ``2^M`` values; null when not computed), ``sum_abs_phi`` and ``flat``,
  ``method``, ``n_permutations``, ``seed``, plus ``modalities`` and
  ``settings`` (JSON strings, so a row rebuilds the object exactly);
* per feature, :meth:`Explanation.per_feature_frame`: ``sample_id``,
  ``modality``, ``feature_index`` (within the modality), ``token``, ``row``,
  ``col``, ``frame_start``, ``frame_end``, ``phi``, ``stderr``, plus the rest
  of the masker's description (``position``, ``segment``, ``y0``, ``y1``,
  ``x0``, ``x1``, ``name`` (read from older parts only), ``column``); columns
  that do not apply are null. Which description keys are stored, and as int or
  string, is the union of the registered kinds' ``feature_columns``
  (:mod:`core.kinds`): a kind registered later adds its keys after these.

:meth:`Explanation.from_rows` rebuilds the object from those rows.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from core.errors import ConfigError, DataError
from core.explain._interactions import (
    coalition_json,
    coalition_shapley,
    exact_share_column,
    exact_shares,
    interaction_column,
    interaction_pairs,
    interaction_values,
    is_flat,
    parse_coalitions,
)
from core.explain._estimators import share_stderr
from core.explain._settings import OUTPUT_KINDS
from core.explain._shapley import modality_shares
from core.kinds import KINDS, get_kind, list_kinds

#: the per-feature columns, in order (a kind's description keys not named here follow them)
FEATURE_COLUMNS = (
    "sample_id", "modality", "feature_index", "token", "row", "col", "frame_start", "frame_end",
    "phi", "stderr", "position", "segment", "y0", "y1", "x0", "x1", "name", "column",
)
#: per-feature columns that are not a kind's description keys
_BASE_COLUMNS = ("sample_id", "modality", "feature_index", "phi", "stderr", "settings_hash", "part")
#: description keys of players of older versions, still read from stored parts (the ``features``
#: masker's entry name, now the tabular kind's ``column``)
_LEGACY_KEYS = {"name": "str"}


def info_keys() -> dict[str, str]:
    """Description key -> ``"int"`` or ``"str"``: the union of the registered kinds'
    ``feature_columns`` (and the keys older parts hold). Two kinds that give one key two
    types, or a key that is a base column, are refused."""
    keys: dict[str, str] = dict(_LEGACY_KEYS)
    owner: dict[str, str] = {k: "an older version" for k in keys}
    for name in list_kinds():
        for key, typ in get_kind(name).feature_columns.items():
            if key in _BASE_COLUMNS:
                raise ConfigError(f"modality kind {name!r} names a feature column {key!r}, a column every "
                                  "explanation row has", fix="rename it in the kind's feature_columns")
            if keys.get(key, typ) != typ:
                raise ConfigError(f"modality kinds {owner[key]!r} and {name!r} store feature column {key!r} as "
                                  f"{keys[key]} and {typ}", fix="rename the key in one kind's feature_columns")
            keys.setdefault(key, typ)
            owner.setdefault(key, name)
    return keys


def feature_columns() -> list[str]:
    """The per-feature columns: :data:`FEATURE_COLUMNS`, then the keys of kinds registered since."""
    return [*FEATURE_COLUMNS, *(k for k in info_keys() if k not in FEATURE_COLUMNS)]


def row_kind(info: Mapping[str, Any]) -> str | None:
    """The registered kind whose feature columns one description row has (the one with the most
    such columns: a video tube row also has an image patch row's), or None."""
    fits = [name for name in list_kinds()
            if all(info.get(k) is not None for k in get_kind(name).feature_columns)]
    return max(fits, key=lambda n: len(get_kind(n).feature_columns), default=None)


def feature_label(info: Mapping[str, Any], index: int, kind: str | None = None) -> str:
    """Short label of a player, as its kind writes it (the token, ``r1c2`` for a patch, ``r1c2s0``
    for a tube, the column's name); ``kind`` None: the kind the row's keys fit; none: the index."""
    fits = kind is not None and kind in KINDS and all(info.get(k) is not None for k in get_kind(kind).feature_columns)
    name = kind if fits else row_kind(info)
    if name is None:
        return str(index)
    return get_kind(name).feature_label(info)


def _nan_to_none(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def features_table(explanations: Sequence["Explanation"], **constant: Sequence[Any]) -> pd.DataFrame:
    """The per-feature rows of several explanations in one frame (columns :func:`feature_columns`, then
    ``constant``'s keys: one value per explanation, repeated on its rows): built column by column once,
    so a precompute's part costs one frame, not one per explanation."""
    keys = info_keys()
    ids: list[str] = []
    modalities: list[str] = []
    info: dict[str, list[Any]] = {k: [] for k in keys}
    within, phi, stderr = [], [], []
    extra: dict[str, list[Any]] = {k: [] for k in constant}
    for i, e in enumerate(explanations):
        n = e.n_features
        ids.extend([e.sample_id] * n)
        modalities.extend(e.modalities[m] for m in e.feature_modality)
        within.append(e._within)
        for key, values in info.items():
            values.extend(_nan_to_none(d.get(key)) for d in e.feature_info)
        phi.append(np.asarray(e.values, dtype=np.float64))
        stderr.append(np.full(n, np.nan) if e.stderr is None else np.asarray(e.stderr, dtype=np.float64))
        for key, values in constant.items():
            extra[key].extend([values[i]] * n)
    cols: dict[str, Any] = {
        "sample_id": ids,
        "modality": modalities,
        "feature_index": np.concatenate(within) if within else np.zeros(0, dtype=np.int64),
    }
    for key, typ in keys.items():
        cols[key] = pd.array(info[key], dtype="Int64" if typ == "int" else "string")
    cols["phi"] = np.concatenate(phi) if phi else np.zeros(0)
    cols["stderr"] = np.concatenate(stderr) if stderr else np.zeros(0)
    frame = pd.DataFrame(cols)[feature_columns()]
    for key, values in extra.items():
        frame[key] = values
    return frame


@dataclass(frozen=True, eq=False)
class Explanation:
    """Shapley values of one sample's features across all its modalities."""

    sample_id: str
    modalities: list[str]
    values: np.ndarray
    feature_modality: np.ndarray
    feature_info: list[dict[str, Any]]
    base_value: float
    full_value: float
    stderr: np.ndarray | None
    shares: dict[str, float]
    modality_shapley: dict[str, float] | None
    output_kind: str
    explained_class: str
    method: str
    settings: dict[str, Any] = field(default_factory=dict)
    #: the modality game's ``2^M`` values ``v(S)`` (entry ``k``: the modalities of ``k``'s bits present,
    #: in the order of ``modalities``); None when not computed (results stored before they were kept)
    coalition_values: np.ndarray | None = None
    #: the standard error of each modality's share (0 for exact values, NaN where unknown); None when
    #: not computed (results stored before engine version 2)
    share_stderr: dict[str, float] | None = None

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float64).reshape(-1)
        fm = np.asarray(self.feature_modality, dtype=np.int64).reshape(-1)
        n = len(values)
        if len(fm) != n or len(self.feature_info) != n:
            raise ConfigError(
                f"explanation of {self.sample_id!r}: {n} values, {len(fm)} feature modalities, "
                f"{len(self.feature_info)} feature descriptions",
                fix="pass one entry per feature in each",
            )
        if n and (fm.min() < 0 or fm.max() >= len(self.modalities) or np.any(np.diff(fm) < 0)):
            raise ConfigError(
                "feature_modality must index modalities and list the features modality by modality",
                fix="concatenate the features in the order of modalities",
            )
        if self.output_kind not in OUTPUT_KINDS:
            raise ConfigError(
                f"unknown output kind {self.output_kind!r}", fix=f"use one of: {', '.join(OUTPUT_KINDS)}"
            )
        stderr = None if self.stderr is None else np.asarray(self.stderr, dtype=np.float64).reshape(-1)
        if stderr is not None and len(stderr) != n:
            raise ConfigError(f"stderr has {len(stderr)} entries for {n} features", fix="pass one per feature")
        object.__setattr__(self, "sample_id", str(self.sample_id))
        object.__setattr__(self, "modalities", [str(m) for m in self.modalities])
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "feature_modality", fm)
        object.__setattr__(self, "feature_info", [dict(i) for i in self.feature_info])
        object.__setattr__(self, "stderr", stderr)
        object.__setattr__(self, "base_value", float(self.base_value))
        object.__setattr__(self, "full_value", float(self.full_value))
        object.__setattr__(self, "shares", {m: float(self.shares.get(m, 0.0)) for m in self.modalities})
        if self.modality_shapley is not None:
            missing = [m for m in self.modalities if m not in self.modality_shapley]
            if missing:
                raise ConfigError(
                    f"modality_shapley lacks {missing}", fix="pass one value per modality, or None"
                )
            object.__setattr__(
                self, "modality_shapley", {m: float(self.modality_shapley[m]) for m in self.modalities}
            )
        object.__setattr__(self, "settings", dict(self.settings))
        if self.share_stderr is not None:
            object.__setattr__(self, "share_stderr",
                               {m: float(self.share_stderr.get(m, float("nan"))) for m in self.modalities})
        if self.coalition_values is not None:
            coalitions = np.asarray(self.coalition_values, dtype=np.float64).reshape(-1)
            if len(coalitions) != 2 ** len(self.modalities):
                raise ConfigError(
                    f"{len(coalitions)} coalition values for {len(self.modalities)} modalities",
                    fix="pass the 2^M values of the modality game, or None",
                )
            object.__setattr__(self, "coalition_values", coalitions)

    # ------------------------------------------------------------------ building

    @classmethod
    def from_shapley(
        cls,
        shapley: Any,
        *,
        sample_id: str,
        modalities: Sequence[str],
        feature_modality: Sequence[int],
        feature_info: Sequence[Mapping[str, Any]],
        output_kind: str,
        explained_class: str,
        modality_shapley: Mapping[str, float] | None = None,
        settings: Mapping[str, Any] | None = None,
        coalition_values: Any = None,
    ) -> "Explanation":
        """Wrap a :class:`~core.explain.ShapleyValues` over all features, computing the shares.

        ``coalition_values``: the modality game's ``2^M`` values; with them and no
        ``modality_shapley`` the modality Shapley values are computed from them."""
        fm = np.asarray(feature_modality, dtype=np.int64)
        groups = [np.flatnonzero(fm == i) for i in range(len(modalities))]
        shares = modality_shares(shapley.values, groups)
        shares_se = share_stderr(shapley, groups)
        merged = dict(shapley.settings)
        merged.update(settings or {})
        merged.setdefault("n_evals", int(shapley.n_evals))
        if modality_shapley is None and coalition_values is not None:
            modality_shapley = dict(zip(modalities, coalition_shapley(coalition_values).tolist()))
        return cls(
            sample_id=sample_id,
            modalities=list(modalities),
            values=shapley.values,
            feature_modality=fm,
            feature_info=[dict(i) for i in feature_info],
            base_value=shapley.base_value,
            full_value=shapley.full_value,
            stderr=shapley.stderr,
            shares={m: float(s) for m, s in zip(modalities, shares)},
            modality_shapley=None if modality_shapley is None else dict(modality_shapley),
            output_kind=output_kind,
            explained_class=explained_class,
            method=shapley.method,
            settings=merged,
            coalition_values=None if coalition_values is None else np.asarray(coalition_values, dtype=np.float64),
            share_stderr={m: float(v) for m, v in zip(modalities, shares_se)},
        )

    # ------------------------------------------------------------------ views

    @property
    def n_features(self) -> int:
        return len(self.values)

    def feature_indices(self, modality: str) -> np.ndarray:
        """Positions in ``values`` of one modality's features."""
        if modality not in self.modalities:
            raise ConfigError(
                f"explanation has no modality {modality!r}", fix=f"use one of: {', '.join(self.modalities)}"
            )
        return np.flatnonzero(self.feature_modality == self.modalities.index(modality))

    def modality_values(self, modality: str) -> np.ndarray:
        return self.values[self.feature_indices(modality)]

    @property
    def exact_shares(self) -> dict[str, float] | None:
        """The exact modality share ``|Phi_m| / sum |Phi|`` of each modality (each modality one
        player, so its positive and negative parts cancel); None when not computed, NaN when
        every ``Phi`` is 0."""
        if self.modality_shapley is None:
            return None
        values = exact_shares([self.modality_shapley[m] for m in self.modalities])
        return {m: float(v) for m, v in zip(self.modalities, values)}

    @property
    def interactions(self) -> dict[tuple[str, str], float] | None:
        """The pairwise Shapley interaction index of every pair of modalities (``(a, b)``, ``a``
        first in ``modalities``), in output units; None when the coalition values were not kept."""
        if self.coalition_values is None:
            return None
        return interaction_values(self.coalition_values, self.modalities)

    @property
    def sum_abs_phi(self) -> float:
        """``sum_j |phi_j|`` over every feature (the MM-SHAP shares' denominator)."""
        return float(np.abs(self.values).sum())

    @property
    def flat(self) -> bool:
        """The prediction barely depends on its inputs (``core.explain.is_flat``): no share, in
        either meaning."""
        return is_flat(self.sum_abs_phi, self.full_value - self.base_value, self.output_kind)

    def feature_names(self) -> list[str]:
        """``<modality>:<label>``, for example ``title:cat`` or ``image:r1c2``."""
        return [f"{self.modalities[m]}:{label}" for m, label in zip(self.feature_modality, self.feature_labels())]

    def feature_labels(self) -> list[str]:
        """Each player's short label, as its modality's kind writes it (:func:`feature_label`)."""
        within = self._within
        kinds = self.settings.get("modality_kinds") or {}
        return [feature_label(info, int(within[j]), kinds.get(self.modalities[m]))
                for j, (m, info) in enumerate(zip(self.feature_modality, self.feature_info))]

    @property
    def _within(self) -> np.ndarray:
        """Index of each feature within its modality."""
        out = np.zeros(self.n_features, dtype=np.int64)
        for i in range(len(self.modalities)):
            idx = np.flatnonzero(self.feature_modality == i)
            out[idx] = np.arange(len(idx))
        return out

    def to_shap(self) -> Any:
        """A ``shap.Explanation`` (values, base value, labels as data, feature names), for shap's plots."""
        import shap

        labels = np.array(self.feature_labels(), dtype=object)
        return shap.Explanation(
            values=self.values.copy(),
            base_values=self.base_value,
            data=labels,
            feature_names=self.feature_names(),
            error_std=None if self.stderr is None else self.stderr.copy(),
        )

    # ------------------------------------------------------------------ tables

    def per_feature_frame(self) -> pd.DataFrame:
        """One row per feature, columns :func:`feature_columns`."""
        return features_table([self])

    def summary_row(self) -> dict[str, Any]:
        """One dict per sample (see the module docstring for the keys)."""
        row: dict[str, Any] = {
            "sample_id": self.sample_id,
            "explained_class": self.explained_class,
            "output_kind": self.output_kind,
            "base_value": self.base_value,
            "full_value": self.full_value,
        }
        for m in self.modalities:
            row[f"share_{m}"] = self.shares[m]
        for m in self.modalities:
            row[f"share_stderr_{m}"] = float("nan") if self.share_stderr is None else self.share_stderr[m]
        for m in self.modalities:
            row[f"shapley_{m}"] = float("nan") if self.modality_shapley is None else self.modality_shapley[m]
        exact = self.exact_shares
        for m in self.modalities:
            row[exact_share_column(m)] = float("nan") if exact is None else exact[m]
        interactions = self.interactions
        for a, b in interaction_pairs(self.modalities):
            row[interaction_column(a, b)] = float("nan") if interactions is None else interactions[(a, b)]
        row["coalition_values"] = None if self.coalition_values is None \
            else coalition_json(self.coalition_values, self.modalities)
        row["sum_abs_phi"] = self.sum_abs_phi
        row["flat"] = self.flat
        row["method"] = self.method
        row["n_permutations"] = self.settings.get("n_permutations")
        row["seed"] = self.settings.get("seed")
        row["modalities"] = json.dumps(self.modalities)
        row["settings"] = json.dumps(self.settings, sort_keys=True, default=_json_default)
        return row

    @classmethod
    def from_rows(cls, summary_row: Mapping[str, Any], feature_frame: pd.DataFrame) -> "Explanation":
        """Rebuild an explanation from its :meth:`summary_row` and :meth:`per_feature_frame` rows.

        ``feature_frame`` may hold other samples' rows too; only this sample's are used.
        """
        row = dict(summary_row)
        try:
            sample_id = str(row["sample_id"])
            modalities = json.loads(row["modalities"])
            settings = json.loads(row["settings"]) if _nan_to_none(row.get("settings")) else {}
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise DataError(
                f"explanation summary row is incomplete ({exc})",
                fix="pass a row written by Explanation.summary_row()",
            ) from exc
        frame = feature_frame[feature_frame["sample_id"].astype(str) == sample_id]
        unknown = set(frame["modality"]) - set(modalities)
        if unknown:
            raise DataError(
                f"feature rows of {sample_id!r} name modalities {sorted(unknown)} not in its summary",
                fix="rebuild the explanation tables with the same run",
            )
        rank = frame["modality"].map({m: i for i, m in enumerate(modalities)})
        frame = frame.assign(_rank=rank.to_numpy()).sort_values(["_rank", "feature_index"], kind="stable")
        info: list[dict[str, Any]] = []
        columns = set(frame.columns)
        keys = {k: t for k, t in info_keys().items() if k in columns}
        for rec in frame.to_dict("records"):
            d: dict[str, Any] = {}
            for key, typ in keys.items():
                if _nan_to_none(rec[key]) is not None:
                    d[key] = int(rec[key]) if typ == "int" else str(rec[key])
            if "name" in d and "column" not in d:  # an older features row: today's tabular column
                d["column"] = d.pop("name")
            info.append(d)
        stderr = frame["stderr"].to_numpy(dtype=np.float64) if "stderr" in columns else None
        if stderr is not None and np.all(np.isnan(stderr)):
            stderr = None
        shapley = {m: _nan_to_none(row.get(f"shapley_{m}")) for m in modalities}
        modality_shapley = None if any(v is None for v in shapley.values()) else shapley
        shares_se = {m: _nan_to_none(row.get(f"share_stderr_{m}")) for m in modalities}
        parsed = parse_coalitions(row.get("coalition_values"))
        coalitions = parsed[1] if parsed is not None and parsed[0] == list(modalities) else None
        return cls(
            sample_id=sample_id,
            modalities=modalities,
            values=frame["phi"].to_numpy(dtype=np.float64),
            feature_modality=frame["_rank"].to_numpy(dtype=np.int64),
            feature_info=info,
            base_value=float(row["base_value"]),
            full_value=float(row["full_value"]),
            stderr=stderr,
            shares={m: float(row.get(f"share_{m}", 0.0)) for m in modalities},
            modality_shapley=modality_shapley,
            output_kind=str(row["output_kind"]),
            explained_class=str(row["explained_class"]),
            method=str(row["method"]),
            settings=settings,
            coalition_values=coalitions,
            share_stderr=None if all(v is None for v in shares_se.values())
            else {m: float("nan") if v is None else float(v) for m, v in shares_se.items()},
        )


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")
