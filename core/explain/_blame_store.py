"""``<run>/blame.parquet`` and ``<run>/blame.json``: each test prediction's modality blame, stored and checked.

``blame.parquet`` holds one row per test prediction (the run's ``predictions.parquet`` order):

=====================  ==============================================================================
``id``                 sample id
``label``, ``pred``    true and predicted class
``correct``            whether the prediction is right
``against``            the rival class of the margin game: the prediction when wrong, the runner-up
                       (second-highest logit) when right
``margin_full``        ``logit_against - logit_label`` with every modality present (> 0 for an error)
``margin_empty``       the same with every modality masked
``blame_<m>``          modality ``m``'s exact Shapley value of the margin game (logit units); > 0: it
                       pushed toward the rival class ("misled"), < 0: toward the true class
``culprit``            for an error, the modality with the largest positive ``blame_<m>``; None for a
                       correct prediction or when no modality is positive
=====================  ==============================================================================

``modality_game.parquet`` holds, for the same rows, the **modality game of the predicted class's
probability** that the explanations' modality game plays (the same masking, the output ``pred_prob``;
``docs/EXPLAIN.md``, "Every test prediction, at the modality level"): ``id``, ``label``, ``pred``,
``correct``, ``explained_class`` (the prediction), ``output_kind``, ``base_value`` (every modality
masked), ``full_value``, ``shapley_<m>`` (each modality's exact Shapley value), ``exact_share_<m>``
(``|Phi_m| / sum |Phi|``), ``interaction_<a>__<b>`` (the pairwise Shapley interaction index),
``coalition_values`` (the ``2^M`` values, JSON) and ``flat`` (the prediction barely depends on its
inputs: ``|f(x) - base|`` or ``sum_m |Phi_m|`` below the threshold, so it gets no share): exact values,
computed from the same coalition logits as the blame at no extra encoder cost.

``blame.json`` records how it was computed (the engine version, the run's fingerprint and the
SHA-256 of its ``model.safetensors``, the masking, the engine path, n, seconds and the command that
recomputes it); :func:`blame_is_current` compares it with the run, so a retrained run is blamed
again. Writes are atomic (:mod:`core.io`), the table first and the JSON last. Nothing here imports
torch: the dashboard reads these files.
"""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from core.errors import BundleError, cli_command
from core.explain._interactions import exact_share_column, interaction_column, interaction_pairs
from core.io import file_sha256, plain_json, read_checked_report, read_json, read_parquet, write_json, write_parquet

BLAME_FILE = "blame.parquet"
BLAME_META_FILE = "blame.json"
MODALITY_GAME_FILE = "modality_game.parquet"
#: Bumped when what is computed or stored changes; a file of another version is computed again. (A blame
#: stored before ``modality_game.parquet`` existed is still read; it is not current, so a build adds the game.)
BLAME_VERSION = 1
#: The columns before the per-modality ``blame_<m>`` ones, and the one after.
BLAME_BASE_COLUMNS = ("id", "label", "pred", "correct", "against", "margin_full", "margin_empty")
_TEXT_COLUMNS = ("id", "label", "pred", "against")
_NUMBER_COLUMNS = ("margin_full", "margin_empty")
#: The columns of ``modality_game.parquet`` before the per-modality ones.
GAME_BASE_COLUMNS = ("id", "label", "pred", "correct", "explained_class", "output_kind", "base_value", "full_value")


def blame_column(modality: str) -> str:
    """``blame_<modality>``: the per-sample column of one modality's Shapley value of the margin game."""
    return f"blame_{modality}"


def blame_columns(modalities: Sequence[str]) -> list[str]:
    """Every column of ``blame.parquet`` for these modalities, in order."""
    return [*BLAME_BASE_COLUMNS, *(blame_column(m) for m in modalities), "culprit"]


def modality_game_columns(modalities: Sequence[str]) -> list[str]:
    """Every column of ``modality_game.parquet`` for these modalities, in order."""
    mods = [str(m) for m in modalities]
    return [*GAME_BASE_COLUMNS, *(f"shapley_{m}" for m in mods), *(exact_share_column(m) for m in mods),
            *(interaction_column(a, b) for a, b in interaction_pairs(mods)), "coalition_values", "flat"]


def modality_game_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / MODALITY_GAME_FILE


def blame_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / BLAME_FILE


def blame_meta_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / BLAME_META_FILE


def blame_command(run_dir: str | Path, force: bool = True) -> str:
    """The command that (re)computes one run's blame."""
    return f"{cli_command()} blame {shlex.quote(str(run_dir))}" + (" --force" if force else "")


def model_digest(run_dir: str | Path) -> str | None:
    """SHA-256 of the run's ``model.safetensors`` (None when it cannot be read): a retrained run differs."""
    try:
        return file_sha256(Path(run_dir) / "model.safetensors")
    except OSError:
        return None


def write_blame(run_dir: str | Path, frame: pd.DataFrame, meta: Mapping[str, Any],
                game: pd.DataFrame | None = None) -> Path:
    """Write ``blame.parquet``, the modality game ``game`` (``modality_game.parquet``) when given, then
    ``blame.json``, each atomically; returns the blame table's path."""
    path = blame_path(run_dir)
    write_parquet(path, frame)
    if game is not None:
        write_parquet(modality_game_path(run_dir), game)
    write_json(blame_meta_path(run_dir), plain_json(dict(meta)))
    return path


def _meta_problems(meta: Any) -> list[str]:
    if not isinstance(meta, dict):
        return [f"it holds a {type(meta).__name__}, not an object"]
    out = []
    if meta.get("engine_version") != BLAME_VERSION:
        out.append(f"it has engine version {meta.get('engine_version')!r}; this FusionLens reads version "
                   f"{BLAME_VERSION}")
    mods = meta.get("modalities")
    if not isinstance(mods, list) or not mods or not all(isinstance(m, str) for m in mods):
        out.append("it names no modalities")
    n = meta.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        out.append(f"n = {n!r} is not a count")
    return out


def load_blame_meta(run_dir: str | Path) -> dict[str, Any] | None:
    """A run's ``blame.json``, checked; None when it was never written. Damaged: a BundleError naming
    the file and the fix."""
    return read_checked_report(blame_meta_path(run_dir), what="blame settings", command=blame_command(run_dir),
                               problems=_meta_problems)


def blame_problems(frame: pd.DataFrame, modalities: Sequence[str], n: int | None = None) -> list[str]:
    """What is wrong with a blame table for these modalities: missing columns, wrong types, a row count
    other than the recorded ``n``; empty when it can be shown."""
    expected = blame_columns(modalities)
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        return [f"it lacks column(s) {', '.join(missing)}"]
    out = []
    for c in _TEXT_COLUMNS:
        if not (pd.api.types.is_object_dtype(frame[c]) or pd.api.types.is_string_dtype(frame[c])):
            out.append(f"column {c!r} is {frame[c].dtype}, not text")
    if not pd.api.types.is_bool_dtype(frame["correct"]):
        out.append(f"column 'correct' is {frame['correct'].dtype}, not boolean")
    for c in [*_NUMBER_COLUMNS, *(blame_column(m) for m in modalities)]:
        if not pd.api.types.is_float_dtype(frame[c]):
            out.append(f"column {c!r} is {frame[c].dtype}, not a float")
    culprits = frame["culprit"].dropna()
    unknown = sorted(set(culprits.astype(str)) - set(modalities))
    if not (pd.api.types.is_object_dtype(frame["culprit"]) or pd.api.types.is_string_dtype(frame["culprit"])) \
            or unknown:
        out.append("column 'culprit' holds values that are not modalities of the run"
                   + (f" ({', '.join(unknown[:3])})" if unknown else ""))
    if n is not None and len(frame) != n:
        out.append(f"it has {len(frame)} rows, its blame.json records n = {n}")
    return out


def _load_checked(run_dir: Path, path: Path, what: str, problems: Any, columns: Any) -> pd.DataFrame | None:
    """One of the tables ``blame.json`` describes, checked (``problems(frame, modalities, n)``) and cut to
    ``columns(modalities)``; None when absent; damaged: a BundleError naming it, with the command as the fix."""
    if not path.is_file():
        return None
    fix = f"delete it and rerun `{blame_command(run_dir)}`"
    meta = load_blame_meta(run_dir)
    if meta is None:
        raise BundleError(f"{what} {path} has no {BLAME_META_FILE} beside it", fix=fix)
    try:
        frame = read_parquet(path, what=what)
    except BundleError as exc:
        raise BundleError(exc.problem, fix=fix) from exc
    modalities = [str(m) for m in meta["modalities"]]
    found = problems(frame, modalities, meta["n"])
    if found:
        raise BundleError(f"{what} {path} is damaged: {'; '.join(found)}", fix=fix)
    frame = frame[columns(modalities)].reset_index(drop=True)
    frame.attrs.update(modalities=modalities, meta=meta)
    return frame


def load_blame(run_dir: str | Path) -> pd.DataFrame | None:
    """A run's blame table (``blame.parquet``), checked against ``blame.json``; None when it was never
    computed. ``frame.attrs``: ``modalities`` and ``meta`` (the JSON). An unreadable or damaged file is a
    :class:`~core.errors.BundleError` naming it, with the command that computes it again as the fix."""
    run_dir = Path(run_dir)
    return _load_checked(run_dir, blame_path(run_dir), "blame table", blame_problems, blame_columns)


def modality_game_problems(frame: pd.DataFrame, modalities: Sequence[str], n: int | None = None) -> list[str]:
    """What is wrong with a modality game table for these modalities (missing columns, wrong types, values
    that are not probabilities, a row count other than ``n``); empty when it can be shown."""
    expected = modality_game_columns(modalities)
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        return [f"it lacks column(s) {', '.join(missing)}"]
    out = []
    for c in ("id", "label", "pred", "explained_class", "output_kind", "coalition_values"):
        if not (pd.api.types.is_object_dtype(frame[c]) or pd.api.types.is_string_dtype(frame[c])):
            out.append(f"column {c!r} is {frame[c].dtype}, not text")
    for c in ("correct", "flat"):
        if not pd.api.types.is_bool_dtype(frame[c]):
            out.append(f"column {c!r} is {frame[c].dtype}, not boolean")
    numbers = [c for c in expected if c not in GAME_BASE_COLUMNS[:6] and c not in ("coalition_values", "flat")]
    for c in numbers:
        if not pd.api.types.is_float_dtype(frame[c]):
            out.append(f"column {c!r} is {frame[c].dtype}, not a float")
    if not out:
        probs = frame[["base_value", "full_value"]].to_numpy(dtype=float)
        if len(probs) and not (np.isfinite(probs).all() and (probs >= 0).all() and (probs <= 1).all()):
            out.append("base_value / full_value hold values that are not probabilities")
    if n is not None and len(frame) != n:
        out.append(f"it has {len(frame)} rows, its {BLAME_META_FILE} records n = {n}")
    return out


def load_modality_game(run_dir: str | Path) -> pd.DataFrame | None:
    """A run's modality game of every test prediction (``modality_game.parquet``), checked against
    ``blame.json``; None when it was never computed (or the stored blame predates it). ``frame.attrs``:
    ``modalities`` and ``meta``. A damaged file is a :class:`~core.errors.BundleError` naming it, with
    the command that computes it again as the fix."""
    run_dir = Path(run_dir)
    return _load_checked(run_dir, modality_game_path(run_dir), "modality game table", modality_game_problems,
                         modality_game_columns)


def current_modality_game(run_dir: str | Path, config: Mapping[str, Any] | None = None
                          ) -> tuple[pd.DataFrame | None, str]:
    """``(table, "")`` when the run's modality game of every test prediction is stored and of this training of
    the run (:func:`load_modality_game`, :func:`blame_is_current`), else ``(None, why)``: "is not computed yet"
    or "is of an earlier training of the run". A damaged file raises, as :func:`load_modality_game` does."""
    game = load_modality_game(run_dir)
    if game is None:
        return None, "is not computed yet"
    if not blame_is_current(run_dir, config):
        return None, "is of an earlier training of the run"
    return game, ""


def game_share_rows(game: pd.DataFrame) -> pd.DataFrame:
    """A modality game table (:func:`load_modality_game`) with its exact shares also in the ``share_<m>``
    columns, for code that reads per-sample shares there (the pages' figures, the trust checks)."""
    mods = game.attrs.get("modalities") or [c[len("shapley_"):] for c in game.columns if c.startswith("shapley_")]
    return game.assign(**{f"share_{m}": pd.to_numeric(game[f"exact_share_{m}"], errors="coerce") for m in mods})


def blame_is_current(run_dir: str | Path, config: Mapping[str, Any] | None = None) -> bool:
    """Whether the stored blame is readable and of this training of the run (its fingerprint and the
    SHA-256 of its weights) and of this engine version."""
    run_dir = Path(run_dir)
    try:
        meta = load_blame_meta(run_dir)
        if meta is None or not blame_path(run_dir).is_file() or not modality_game_path(run_dir).is_file():
            return False
        if config is None:
            config = read_json(run_dir / "config.json", what="run config")
    except BundleError:
        return False
    return meta.get("run_fingerprint") == (config or {}).get("fingerprint") \
        and meta.get("model_sha256") == model_digest(run_dir)
