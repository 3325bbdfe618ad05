"""The modality-level game: exact modality shares, pairwise interactions, flat predictions.

Each explained modality is one player. The game's ``2^M`` coalition values
``v(S)`` (``S`` a subset of the explained modalities; the others masked, the
modalities not explained always present) are evaluated once per explanation
(:func:`coalition_values`, one head pass per coalition on a factorised game) and
kept with it; everything else here is exact arithmetic on those values:

* the modality Shapley values ``Phi_m`` (:func:`coalition_shapley`), efficient:
  ``sum_m Phi_m = v(N) - v(empty)``;
* the **exact modality share** ``|Phi_m| / sum_m' |Phi_m'|`` (:func:`exact_shares`):
  the modality as one player, so positive and negative parts inside it cancel,
  where the MM-SHAP share adds ``|phi_j|`` over the modality's tokens / patches;
* the **pairwise Shapley interaction index** (Grabisch & Roubens 1999) of every
  pair of modalities (:func:`pairwise_interactions`)::

      I_ab = sum_{S subset of N - {a, b}} |S|! (M - |S| - 2)! / (M - 1)!
                                         * [v(S+a+b) - v(S+a) - v(S+b) + v(S)]

  With two modalities ``I = v(both) - v(a only) - v(b only) + v(none)``: the part of
  the output that exists only when both are seen together. Positive: the pair
  adds up to more than its parts (synergy); negative: each alone already gives
  what the pair gives (redundancy, either modality suffices);
* the flag of a prediction that barely depends on its inputs (:func:`is_flat`):
  its shares, in both meanings, are noise and are treated as absent.

Coalition order: entry ``k`` (``0 <= k < 2^M``) holds ``v(S)`` with
``S = {modalities[i] : bit i of k set}``; ``k = 0`` is the empty coalition (the
base value), ``k = 2^M - 1`` the full input. Column names of the per-sample
rows (:func:`exact_share_column`, :func:`interaction_column`) are always made from
the modality list, never parsed back.
"""
from __future__ import annotations

import json
import math
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from core.errors import ConfigError, DataError

#: A prediction is *flat* (barely depends on its inputs) when ``sum_j |phi_j|`` or
#: ``|f(x) - base|`` is below this, for a probability output: 1 point of probability.
FLAT_PROB_THRESHOLD = 0.01
#: The same for ``output="logit"``: a probability moves at most 1/4 as much as its logit
#: (the sigmoid's slope is at most 1/4), so 0.04 in logit is at most 0.01 in probability.
FLAT_LOGIT_THRESHOLD = 0.04
#: Most modality players of one modality game (``2^12`` coalitions); the engine explains far fewer.
MAX_MODALITY_PLAYERS = 12

#: separator of the two modality names in an interaction column
PAIR_SEPARATOR = "__"


# --------------------------------------------------------------------------- column names


def exact_share_column(modality: str) -> str:
    """``exact_share_<modality>``."""
    return f"exact_share_{modality}"


def interaction_column(a: str, b: str) -> str:
    """``interaction_<a>__<b>``, ``a`` before ``b`` in the explanation's modality order."""
    return f"interaction_{a}{PAIR_SEPARATOR}{b}"


def interaction_pairs(modalities: Sequence[str]) -> list[tuple[str, str]]:
    """Every pair of modalities, in the order of ``modalities`` (``(m0, m1), (m0, m2), (m1, m2)``...).

    Refuses names that would make two pairs one column (only possible with ``__`` in a name)."""
    mods = [str(m) for m in modalities]
    pairs = [(mods[i], mods[j]) for i in range(len(mods)) for j in range(i + 1, len(mods))]
    columns = [interaction_column(a, b) for a, b in pairs]
    if len(set(columns)) != len(columns):
        raise ConfigError(f"modalities {mods} give two pairs one interaction column",
                          fix=f"rename the modalities so that no name contains {PAIR_SEPARATOR!r}")
    return pairs


def interaction_columns(modalities: Sequence[str]) -> dict[tuple[str, str], str]:
    """Pair -> its per-sample column, for every pair of :func:`interaction_pairs`."""
    return {(a, b): interaction_column(a, b) for a, b in interaction_pairs(modalities)}


# --------------------------------------------------------------------------- the game


def _players(n_values: int) -> int:
    m = int(round(math.log2(n_values))) if n_values > 0 else -1
    if m < 1 or 2 ** m != n_values:
        raise DataError(f"a modality game has 2^M coalition values (M >= 1 players), got {n_values}",
                        fix="pass the 2^M values v(S), entry k holding the coalition of k's bits")
    return m


def _as_values(values: Any) -> tuple[np.ndarray, int]:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    return v, _players(len(v))


def _sizes(m: int) -> np.ndarray:
    k = np.arange(2 ** m, dtype=np.int64)
    return ((k[:, None] >> np.arange(m)) & 1).sum(axis=1)


def _outputs(out: Any, n_rows: int) -> np.ndarray:
    if hasattr(out, "detach"):  # a torch tensor
        out = out.detach().cpu().numpy()
    arr = np.asarray(out, dtype=np.float64).reshape(-1)
    if arr.shape != (n_rows,):
        raise ConfigError(f"value_fn returned {arr.size} outputs for {n_rows} masks",
                          fix="return one scalar per mask row, shape (B,)")
    return arr


def coalition_values(
    value_fn: Callable[[np.ndarray], Any],
    groups: Sequence[Any],
    n_features: int,
    *,
    batch_size: int = 256,
) -> np.ndarray:
    """The ``2^M`` values of the game whose players are the ``M`` feature groups (modalities).

    ``value_fn(mask)`` plays boolean masks ``(B, n_features)`` (True = present); a
    group's features are all present or all masked, features in no group always
    present. Entry ``k`` is the coalition of the groups whose bit is set in ``k``.
    ``2^M`` evaluations, in batches of ``batch_size``.
    """
    arrs = [np.atleast_1d(np.asarray(g, dtype=np.int64)).reshape(-1) for g in groups]
    m = len(arrs)
    if not 1 <= m <= MAX_MODALITY_PLAYERS:
        raise ConfigError(f"a modality game needs 1 to {MAX_MODALITY_PLAYERS} groups, got {m}",
                          fix="explain fewer modalities at once (ExplainSettings(modalities=...))")
    flat = np.concatenate(arrs)
    if len(flat) and (flat.min() < 0 or flat.max() >= n_features):
        raise ConfigError(f"group indices must lie in 0..{n_features - 1}", fix="pass feature indices of the game")
    if len(np.unique(flat)) != len(flat):
        raise ConfigError("a feature belongs to more than one group", fix="make the groups disjoint")
    member = np.zeros((m, n_features), dtype=bool)
    for g, idx in enumerate(arrs):
        member[g, idx] = True
    k = np.arange(2 ** m, dtype=np.int64)
    present = ((k[:, None] >> np.arange(m)) & 1).astype(bool)
    masks = (present.astype(np.int64) @ member.astype(np.int64)).astype(bool) | ~member.any(axis=0)
    out = np.empty(2 ** m, dtype=np.float64)
    step = max(1, int(batch_size))
    for start in range(0, 2 ** m, step):
        chunk = masks[start:start + step]
        out[start:start + len(chunk)] = _outputs(value_fn(chunk), len(chunk))
    return out


def coalition_shapley(values: Any) -> np.ndarray:
    """Exact Shapley values of the ``M`` players of a game given by its ``2^M`` coalition values:
    ``Phi_i = sum_{S not containing i} |S|! (M - |S| - 1)! / M! [v(S + i) - v(S)]``."""
    v, m = _as_values(values)
    size = _sizes(m)
    k = np.arange(2 ** m, dtype=np.int64)
    weight = np.array([math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) for s in range(m)])
    phi = np.zeros(m)
    for i in range(m):
        without = k[((k >> i) & 1) == 0]
        phi[i] = float(np.sum(weight[size[without]] * (v[without | (1 << i)] - v[without])))
    return phi


def pairwise_interactions(values: Any) -> np.ndarray:
    """The Shapley interaction index of every pair of players, as a symmetric ``(M, M)`` matrix
    (NaN on the diagonal), from the ``2^M`` coalition values (module docstring)."""
    v, m = _as_values(values)
    out = np.full((m, m), np.nan)
    if m < 2:
        return out
    size = _sizes(m)
    k = np.arange(2 ** m, dtype=np.int64)
    weight = np.array([math.factorial(s) * math.factorial(m - s - 2) / math.factorial(m - 1)
                       for s in range(m - 1)])
    for i in range(m):
        for j in range(i + 1, m):
            bi, bj = 1 << i, 1 << j
            rest = k[((k & bi) == 0) & ((k & bj) == 0)]
            delta = v[rest | bi | bj] - v[rest | bi] - v[rest | bj] + v[rest]
            out[i, j] = out[j, i] = float(np.sum(weight[size[rest]] * delta))
    return out


def interaction_values(values: Any, modalities: Sequence[str]) -> dict[tuple[str, str], float]:
    """Pair -> interaction index (:func:`pairwise_interactions`), pairs of :func:`interaction_pairs`."""
    mods = [str(m) for m in modalities]
    v, m = _as_values(values)
    if m != len(mods):
        raise DataError(f"{len(v)} coalition values for {len(mods)} modalities",
                        fix="pass 2^M values for M modalities")
    matrix = pairwise_interactions(v)
    index = {name: i for i, name in enumerate(mods)}
    return {(a, b): float(matrix[index[a], index[b]]) for a, b in interaction_pairs(mods)}


def exact_shares(shapley: Any) -> np.ndarray:
    """``|Phi_m| / sum_m' |Phi_m'|`` per modality; all NaN when every ``Phi`` is 0 (or one is not finite)."""
    phi = np.abs(np.asarray(shapley, dtype=np.float64).reshape(-1))
    total = phi.sum()
    if not np.isfinite(total) or total <= 0:
        return np.full(len(phi), np.nan)
    return phi / total


# --------------------------------------------------------------------------- flat predictions


def flat_threshold(output_kind: str) -> float:
    """The threshold of :func:`is_flat` for an output kind (:data:`FLAT_PROB_THRESHOLD`, or
    :data:`FLAT_LOGIT_THRESHOLD` for ``"logit"``)."""
    return FLAT_LOGIT_THRESHOLD if str(output_kind) == "logit" else FLAT_PROB_THRESHOLD


def is_flat(sum_abs_phi: float, full_minus_base: float, output_kind: str = "pred_prob") -> bool:
    """Whether a prediction barely depends on its inputs: ``sum_j |phi_j|`` or ``|f(x) - base|``
    below :func:`flat_threshold`. Its shares, in both meanings, are then treated as absent.
    A value that is NaN (unknown) flags nothing."""
    t = flat_threshold(output_kind)
    return bool(abs(float(sum_abs_phi)) < t or abs(float(full_minus_base)) < t)


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)


def flat_mask(samples: pd.DataFrame) -> np.ndarray:
    """Per row of a per-sample frame, whether the prediction is flat: its ``flat`` column where
    known, else :func:`is_flat` of ``sum_abs_phi``, ``full_value - base_value`` and
    ``output_kind`` (whichever of them the frame has; none known: not flat)."""
    n = len(samples)
    if n == 0:
        return np.zeros(0, dtype=bool)
    kinds = samples["output_kind"].astype(str).to_numpy() if "output_kind" in samples.columns \
        else np.full(n, "pred_prob", dtype=object)
    threshold = np.where(kinds == "logit", FLAT_LOGIT_THRESHOLD, FLAT_PROB_THRESHOLD)
    with np.errstate(invalid="ignore"):
        derived = (np.abs(_numeric(samples, "sum_abs_phi")) < threshold) | \
            (np.abs(_numeric(samples, "full_value") - _numeric(samples, "base_value")) < threshold)
    if "flat" not in samples.columns:
        return derived
    stored = pd.array(samples["flat"], dtype="boolean")
    known = ~np.asarray(stored.isna())
    return np.where(known, np.asarray(stored.fillna(False), dtype=bool), derived)


# --------------------------------------------------------------------------- per-sample rows


def coalition_json(values: Any, modalities: Sequence[str]) -> str:
    """The ``coalition_values`` cell: ``{"modalities": [...], "values": [v(S) for k in 0..2^M-1]}``."""
    return json.dumps({"modalities": [str(m) for m in modalities],
                       "values": [float(x) for x in np.asarray(values, dtype=np.float64).reshape(-1)]})


def parse_coalitions(cell: Any) -> tuple[list[str], np.ndarray] | None:
    """``(modalities, values)`` of a ``coalition_values`` cell; None when absent or unreadable."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)) or cell is pd.NA:
        return None
    try:
        d = json.loads(cell) if isinstance(cell, str) else dict(cell)
        mods = [str(m) for m in d["modalities"]]
        values = np.asarray(d["values"], dtype=np.float64)
    except (TypeError, ValueError, KeyError):
        return None
    if len(values) != 2 ** len(mods) or not mods:
        return None
    return mods, values


def add_modality_game_columns(
    samples: pd.DataFrame,
    modalities: Sequence[str],
    features: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """A per-sample frame with the modality game's columns filled in where missing (rows stored
    before they existed): ``exact_share_<m>`` from the ``shapley_<m>`` columns,
    ``interaction_<a>__<b>`` from ``coalition_values`` (NaN, "not computed", without it),
    ``sum_abs_phi`` from the feature rows (``features``: the frame's per-feature rows,
    matched on ``sample_id``, and ``settings_hash`` / ``part`` where both frames have them),
    and ``flat`` (:func:`flat_mask`). Values already stored are kept."""
    out = samples.copy()
    mods = [str(m) for m in modalities]
    n = len(out)
    # exact shares from the exact modality Shapley values of each row's explained modalities
    shapley = np.stack([_numeric(out, f"shapley_{m}") for m in mods], axis=1) if mods else np.zeros((n, 0))
    absval = np.abs(shapley)
    total = np.nansum(absval, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        derived = np.where((total > 0) & np.isfinite(total), absval / total, np.nan)
    for i, m in enumerate(mods):
        col = exact_share_column(m)
        have = _numeric(out, col)
        out[col] = np.where(np.isfinite(have), have, derived[:, i])
    # interactions from the stored coalition values
    pairs = interaction_columns(mods)
    for col in pairs.values():
        if col not in out.columns:
            out[col] = np.nan
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    if pairs and "coalition_values" in out.columns and n:
        cols = list(pairs.values())
        missing = out[cols].isna().all(axis=1).to_numpy() & out["coalition_values"].notna().to_numpy()
        for pos in np.flatnonzero(missing):
            parsed = parse_coalitions(out["coalition_values"].iloc[pos])
            if parsed is None:
                continue
            for (a, b), value in interaction_values(parsed[1], parsed[0]).items():
                if (a, b) in pairs:
                    out.iloc[pos, out.columns.get_loc(pairs[(a, b)])] = value
    elif "coalition_values" not in out.columns:
        out["coalition_values"] = None
    # sum of |phi| from the feature rows
    have = _numeric(out, "sum_abs_phi")
    if features is not None and "phi" in features.columns and len(features) and n and not np.isfinite(have).all():
        keys = [k for k in ("sample_id", "settings_hash", "part") if k in out.columns and k in features.columns]
        sums = features.assign(_a=pd.to_numeric(features["phi"], errors="coerce").abs()) \
            .groupby(keys, dropna=False)["_a"].sum().rename("_sum").reset_index()
        looked = out[keys].merge(sums, on=keys, how="left")["_sum"].to_numpy(dtype=float)
        have = np.where(np.isfinite(have), have, looked)
    out["sum_abs_phi"] = have
    out["flat"] = pd.array(flat_mask(out) if n else [], dtype="boolean")
    return out
