"""Stored explanations: Parquet parts under ``<run>/explanations/``.

Files (``<hash>`` = :meth:`ExplainSettings.hash`, 12 hex digits, so results
with different settings never mix):

* ``samples-<hash>-part<i>of<n>.parquet`` / ``features-<hash>-part<i>of<n>.parquet``:
  the rows of one precompute shard (``fusionlens explain --shard i/n``),
  rewritten atomically every few samples while it runs (features first, then
  samples, so every stored sample has its features);
* ``samples-<hash>-one-<id hash>.parquet`` / ``features-...``: one sample
  explained on demand (:func:`core.explain.explain_sample`);
* ``settings-<hash>.json``: the settings behind a hash;
* ``request-<hash>-part<i>of<n>.json``: the sample ids a shard was asked for,
  so :func:`explanation_status` can tell an interrupted precompute;
* ``class_shares-<hash>.csv``, ``class_exact_shares-<hash>.csv``: :func:`core.explain.class_share_table`;
  ``class_interactions-<hash>.csv``: :func:`core.explain.class_interaction_table`.

Crash safety: every file is written to a hidden ``.<name>...tmp`` and renamed
when complete (:mod:`core.io`), and a part's features are written before its
samples, so the samples file only lists samples whose features are stored.
``kill -9`` between the two writes leaves feature rows of unlisted samples,
which readers (an inner join on the listed samples) and a resumed precompute
(:func:`read_part`) ignore; the resumed precompute also deletes the
temporary files the killed one left (:func:`core.io.remove_stale_tmp`).

Per-sample rows are :meth:`Explanation.summary_row` plus ``label``, ``pred``,
``correct``, ``settings_hash``, ``output``, ``run``, ``computed_at``,
``seconds``, ``n_evals``, ``part``; per-feature rows are
:meth:`Explanation.per_feature_frame` plus ``settings_hash`` and ``part``.
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
import shlex
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from core import io
from core.errors import BundleError, ConfigError, cli_command
from core.explain._interactions import (
    add_modality_game_columns,
    exact_share_column,
    interaction_column,
    interaction_pairs,
)
from core.explain._result import FEATURE_COLUMNS, Explanation, features_table
from core.explain._settings import ENGINE_VERSION, ExplainSettings
from core.io import read_json, write_json

EXPLANATIONS_DIR = "explanations"
_PART = re.compile(r"^(samples|features)-([0-9a-f]{12})-((?:part\d+of\d+)|(?:one-[0-9a-f]{12}))\.parquet$")

SAMPLE_BASE_COLUMNS = (
    "sample_id", "explained_class", "output_kind", "base_value", "full_value",
)
SAMPLE_TAIL_COLUMNS = (
    "method", "n_permutations", "seed", "modalities", "settings",
    "label", "pred", "correct", "settings_hash", "output", "run", "computed_at", "seconds", "n_evals", "part",
)
FEATURE_STORE_COLUMNS = (*FEATURE_COLUMNS, "settings_hash", "part")


def explanations_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / EXPLANATIONS_DIR


def part_label(part: int, n_parts: int) -> str:
    return f"part{int(part)}of{int(n_parts)}"


def one_label(sample_id: str) -> str:
    return "one-" + hashlib.sha256(str(sample_id).encode()).hexdigest()[:12]


def part_paths(run_dir: str | Path, settings_hash: str, label: str) -> tuple[Path, Path]:
    d = explanations_dir(run_dir)
    return d / f"samples-{settings_hash}-{label}.parquet", d / f"features-{settings_hash}-{label}.parquet"


#: the modality game's per-sample columns after the per-modality and per-pair ones (``_interactions``)
SAMPLE_GAME_COLUMNS = ("coalition_values", "sum_abs_phi", "flat")


def sample_columns(modalities: Sequence[str]) -> list[str]:
    return [*SAMPLE_BASE_COLUMNS, *(f"share_{m}" for m in modalities), *(f"share_stderr_{m}" for m in modalities),
            *(f"shapley_{m}" for m in modalities),
            *(exact_share_column(m) for m in modalities),
            *(interaction_column(a, b) for a, b in interaction_pairs(modalities)),
            *SAMPLE_GAME_COLUMNS, *SAMPLE_TAIL_COLUMNS]


def empty_frames(modalities: Sequence[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Empty (samples, features) frames with the stored columns."""
    return pd.DataFrame(columns=sample_columns(modalities)), pd.DataFrame(columns=list(FEATURE_STORE_COLUMNS))


# --------------------------------------------------------------------------- rows


def samples_frame(explanations: Iterable[Explanation], part: str) -> pd.DataFrame:
    rows = []
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for e in explanations:
        s = e.settings
        row = e.summary_row()
        row.update(
            label=s.get("label"), pred=s.get("pred"), correct=s.get("correct"),
            settings_hash=s.get("settings_hash"), output=s.get("output"), run=s.get("run"),
            computed_at=s.get("computed_at", now), seconds=s.get("seconds"), n_evals=s.get("n_evals"), part=part,
        )
        rows.append(row)
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["correct"] = pd.array([None if v is None else bool(v) for v in frame["correct"]], dtype="boolean")
        for col in ("label", "pred", "run", "output"):
            frame[col] = frame[col].astype("string")
    return frame


def features_frame(explanations: Iterable[Explanation], part: str) -> pd.DataFrame:
    explanations = list(explanations)
    if not explanations:
        return pd.DataFrame(columns=list(FEATURE_STORE_COLUMNS))
    return features_table(explanations, settings_hash=[e.settings.get("settings_hash") for e in explanations],
                          part=[part] * len(explanations))


def write_part(run_dir: str | Path, settings_hash: str, label: str, samples: pd.DataFrame,
               features: pd.DataFrame) -> Path:
    """Write one part atomically: features first, then samples (which mark the samples stored)."""
    s_path, f_path = part_paths(run_dir, settings_hash, label)
    # through the module, so a fault-injection test can kill the process between the two writes
    io.write_parquet(f_path, features.reset_index(drop=True))
    io.write_parquet(s_path, samples.reset_index(drop=True))
    _read_cached.cache_clear()
    return s_path


def write_settings(run_dir: str | Path, settings: ExplainSettings) -> None:
    path = explanations_dir(run_dir) / f"settings-{settings.hash()}.json"
    if not path.is_file():
        write_json(path, settings.as_dict())


def store_explanation(run_dir: str | Path, explanation: Explanation, settings: ExplainSettings) -> Path:
    """Store one on-demand explanation as its own part."""
    label = one_label(explanation.sample_id)
    write_settings(run_dir, settings)
    return write_part(run_dir, settings.hash(), label, samples_frame([explanation], label),
                      features_frame([explanation], label))


# --------------------------------------------------------------------------- reading


@functools.lru_cache(maxsize=256)
def _read_cached(path: str, mtime_ns: int, size: int) -> pd.DataFrame:
    return pd.read_parquet(path)


def _read(path: Path) -> pd.DataFrame:
    st = path.stat()
    return _read_cached(str(path), st.st_mtime_ns, st.st_size).copy()


def _parts(run_dir: str | Path) -> list[tuple[str, str, Path, Path]]:
    """(settings hash, part label, samples path, features path) of every samples part on disk."""
    d = explanations_dir(run_dir)
    if not d.is_dir():
        return []
    out = []
    for path in sorted(d.iterdir()):
        match = _PART.match(path.name)
        if match and match.group(1) == "samples":
            h, label = match.group(2), match.group(3)
            out.append((h, label, path, d / f"features-{h}-{label}.parquet"))
    return out


def run_modalities(run_dir: str | Path) -> list[str]:
    """The modalities in a run's ``config.json`` (empty when it cannot be read)."""
    try:
        cfg = read_json(Path(run_dir) / "config.json", what="run config")
        return [str(m) for m in cfg.get("modalities", [])]
    except BundleError:
        return []


def _part_command(run_dir: Path, settings_hash: str, label: str) -> str:
    """The command that recomputes a part: the one its request recorded, else a plain precompute."""
    request = explanations_dir(run_dir) / f"request-{settings_hash}-{label}.json"
    try:
        command = json.loads(request.read_text()).get("command")
    except (OSError, ValueError, AttributeError):
        command = None
    return _safe_command(command, run_dir)


_RECORDED = re.compile(r"^(?:\S*fusionlens|python -m core) explain \S+((?: --[a-z][a-z-]* [A-Za-z0-9_.:/+=-]+)*)$")


def _safe_command(command: Any, run_dir: Path) -> str:
    """The recorded command rebuilt for this machine: its options only when they are plain
    ``--flag value`` pairs (a tampered request file cannot put a shell command in a message),
    with today's CLI name and the run's current path (a runs root may have moved)."""
    base = f"{cli_command()} explain {shlex.quote(str(run_dir))}"
    match = _RECORDED.match(command) if isinstance(command, str) and len(command) < 2000 else None
    return base + (match.group(1) if match else "")


def damage_error(run_dir: str | Path, damaged: Sequence[tuple[str, str, Path, Path, str]]) -> BundleError:
    """One error for the damaged parts ``(hash, label, samples path, features path, what)`` of a run."""
    run_dir = Path(run_dir)
    what = "; ".join(d[4] for d in damaged)
    files = list(dict.fromkeys(str(p) for d in damaged for p in (d[2], d[3]) if p.exists()))
    commands = list(dict.fromkeys(_part_command(run_dir, h, label) for h, label, *_ in damaged
                                  if not label.startswith("one-")))
    redo = []
    if commands:
        redo.append(f"rerun `{'` and `'.join(commands)}`, which recomputes only the samples those files held")
    if any(label.startswith("one-") for _, label, *_ in damaged):
        redo.append("explain a sample explained on demand again (\"Explain this sample now\" in the sample explorer)")
    return BundleError(f"stored explanations of run {run_dir.name} are damaged: {what}",
                       fix=f"delete {' and '.join(files) or 'the damaged files'}, then {'; '.join(redo)}")


def load_explanations(
    run_dir: str | Path, *, settings_hash: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every stored explanation of a run: ``(samples_df, features_df)``.

    One row per (sample, settings) in ``samples_df`` (the latest where several
    parts hold it) and its feature rows in ``features_df``. ``settings_hash``
    keeps one setting only. With nothing stored both frames are empty but have
    the stored columns (genuinely absent). A part that is present but damaged
    (unreadable, its features file missing, no ``sample_id`` column) is a
    :class:`BundleError` naming every damaged file and the repair: delete the
    files and rerun the precompute, which recomputes only their samples.
    """
    modalities = run_modalities(run_dir)
    damaged: list[tuple[str, str, Path, Path, str]] = []
    samples_parts, feature_parts = [], []
    for h, label, s_path, f_path in _parts(run_dir):
        if settings_hash is not None and h != settings_hash:
            continue
        try:
            s = _read(s_path)
        except Exception as exc:  # pyarrow raises several types for corrupted files
            damaged.append((h, label, s_path, f_path, f"{s_path.name} is corrupted or unreadable ({type(exc).__name__})"))
            continue
        try:
            f = _read(f_path)
        except FileNotFoundError:  # features are written before samples: a listed sample lost its features
            damaged.append((h, label, s_path, f_path, f"{f_path.name} is missing while {s_path.name} lists samples"))
            continue
        except Exception as exc:
            damaged.append((h, label, s_path, f_path, f"{f_path.name} is corrupted or unreadable ({type(exc).__name__})"))
            continue
        if "sample_id" not in s.columns or "sample_id" not in f.columns:
            bad = s_path if "sample_id" not in s.columns else f_path
            damaged.append((h, label, s_path, f_path, f"{bad.name} is not an explanation part (no sample_id column)"))
            continue
        s["part"] = label
        s["settings_hash"] = h
        f["part"] = label
        f["settings_hash"] = h
        samples_parts.append(s)
        feature_parts.append(f)
    if damaged:
        raise damage_error(run_dir, damaged)
    problems: list[str] = []
    if not samples_parts:
        samples, features = empty_frames(modalities)
        samples.attrs["warnings"] = problems
        return samples, features
    samples = pd.concat(samples_parts, ignore_index=True)
    features = pd.concat(feature_parts, ignore_index=True)
    samples["sample_id"] = samples["sample_id"].astype(str)
    features["sample_id"] = features["sample_id"].astype(str)
    order = samples["computed_at"].astype(str) if "computed_at" in samples.columns \
        else pd.Series("", index=samples.index)
    samples = samples.assign(_order=order).sort_values("_order", kind="stable").drop(columns="_order")
    samples = samples.drop_duplicates(["sample_id", "settings_hash"], keep="last")
    keep = samples[["sample_id", "settings_hash", "part"]]
    features = features.merge(keep, on=["sample_id", "settings_hash", "part"], how="inner")
    # parts stored before the modality game was kept: exact shares, sum |phi| and the flag derived,
    # interactions NaN (not computed)
    samples = add_modality_game_columns(samples, modalities or _row_modalities(samples), features)
    for col in sample_columns(modalities):
        if col not in samples.columns:
            samples[col] = np.nan
    front = [c for c in sample_columns(modalities) if c in samples.columns]
    samples = samples[front + [c for c in samples.columns if c not in front]].reset_index(drop=True)
    features = features[[c for c in FEATURE_STORE_COLUMNS if c in features.columns]
                        + [c for c in features.columns if c not in FEATURE_STORE_COLUMNS]].reset_index(drop=True)
    samples.attrs["warnings"] = problems
    return samples, features


def _row_modalities(samples: pd.DataFrame) -> list[str]:
    """The modalities the rows' ``modalities`` JSON cells name (a run whose config is unreadable)."""
    out: dict[str, None] = {}
    for cell in samples.get("modalities", pd.Series(dtype=object)).dropna().unique():
        try:
            out.update(dict.fromkeys(str(m) for m in json.loads(cell)))
        except (TypeError, ValueError):
            continue
    return list(out)


def default_settings_hash() -> str:
    """The hash of the default :class:`ExplainSettings` (what the build and the dashboard store)."""
    return ExplainSettings().hash()


def _current_engine(samples: pd.DataFrame) -> set[str]:
    """The settings hashes whose rows were computed by this engine version (their ``settings`` JSON)."""
    if "settings" not in samples.columns:
        return set()
    out = set()
    for h, cell in samples.drop_duplicates("settings_hash")[["settings_hash", "settings"]].itertuples(index=False):
        try:
            version = json.loads(cell)["explain_settings"]["engine_version"]
        except (TypeError, ValueError, KeyError):
            continue
        if version == ENGINE_VERSION:
            out.add(h)
    return out


def main_settings_hash(samples: pd.DataFrame) -> str | None:
    """The settings most stored samples were explained with, among those of the current engine
    version where there are any (results of an older engine, whose values meant something else,
    never outrank a newer precompute that is still partial); ties: the default settings, then
    the latest; None for an empty frame."""
    if samples is None or len(samples) == 0 or "settings_hash" not in samples.columns:
        return None
    default = default_settings_hash()
    current = _current_engine(samples)
    latest = samples.groupby("settings_hash")["computed_at"].max().astype(str) \
        if "computed_at" in samples.columns else pd.Series(dtype=str)
    counts = samples.groupby("settings_hash")["sample_id"].nunique()
    return max(counts.index, key=lambda h: (h in current, int(counts[h]), h == default, str(latest.get(h, ""))))


def preferred_rows(samples: pd.DataFrame) -> pd.DataFrame:
    """One row per sample without mixing settings: the rows of :func:`main_settings_hash`."""
    if samples is None or len(samples) == 0 or "settings_hash" not in samples.columns:
        return samples
    rows = samples[samples["settings_hash"] == main_settings_hash(samples)]
    return rows.drop_duplicates("sample_id", keep="last").reset_index(drop=True)


def explanation_for(run_dir: str | Path, sample_id: str, *, settings_hash: str | None = None) -> Explanation | None:
    """The stored explanation of one sample (None when there is none).

    Without ``settings_hash``: the sample's result with the default settings where
    stored, else with the settings most samples of the run use
    (:func:`main_settings_hash`), else its latest.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        samples, features = load_explanations(run_dir, settings_hash=settings_hash)
    mine = samples["sample_id"].astype(str) == str(sample_id)
    if not mine.any():
        return None
    main = main_settings_hash(samples)
    rows = samples[mine]
    default = default_settings_hash()
    rank = np.where(rows["settings_hash"] == default, 0, np.where(rows["settings_hash"] == main, 1, 2))
    order = rows.assign(_r=rank, _t=rows["computed_at"].astype(str)).sort_values(["_r", "_t"],
                                                                                ascending=[True, False])
    row = order.drop(columns=["_r", "_t"]).iloc[0]
    feats = features[(features["sample_id"] == str(sample_id)) & (features["settings_hash"] == row["settings_hash"])]
    exp = Explanation.from_rows(row.to_dict(), feats)
    for key in ("label", "pred", "correct", "settings_hash", "part", "computed_at"):
        value = row.get(key)
        if value is not None and not (isinstance(value, float) and np.isnan(value)) and value is not pd.NA:
            exp.settings.setdefault(key, value.item() if isinstance(value, np.generic) else value)
    return exp


def load_explanation_summaries(run_dir: str | Path) -> pd.DataFrame | None:
    """One row per explained sample (one settings hash, see :func:`preferred_rows`), or None."""
    samples, _ = load_explanations(run_dir)
    return None if samples.empty else preferred_rows(samples)


def load_explanation(run_dir: str | Path, sample_id: str) -> Explanation | None:
    """Alias of :func:`explanation_for` (the name the dashboard calls)."""
    return explanation_for(run_dir, sample_id)


def stored_sample_ids(run_dir: str | Path, settings_hash: str) -> set[str]:
    """Samples already explained with these settings, in any readable part."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        samples, _ = load_explanations(run_dir, settings_hash=settings_hash)
    return set(samples["sample_id"].astype(str))


def read_part(run_dir: str | Path, settings_hash: str, label: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The rows of one part, or None when it is missing or unreadable.

    The feature rows are those of the samples the samples file lists: a precompute
    killed between the two writes of :func:`write_part` leaves features of samples
    that are not stored yet, which a resumed run computes again and must not keep twice.
    """
    s_path, f_path = part_paths(run_dir, settings_hash, label)
    if not s_path.is_file() or not f_path.is_file():
        return None
    try:
        samples, features = _read(s_path), _read(f_path)
    except Exception:
        return None
    if "sample_id" not in samples.columns or "sample_id" not in features.columns:
        return None
    stored = set(samples["sample_id"].astype(str))
    features = features[features["sample_id"].astype(str).isin(stored)].reset_index(drop=True)
    return samples, features


def write_request(run_dir: str | Path, settings: ExplainSettings, label: str, ids: Sequence[str],
                  meta: dict[str, Any]) -> None:
    path = explanations_dir(run_dir) / f"request-{settings.hash()}-{label}.json"
    write_json(path, {"settings_hash": settings.hash(), "part": label, "requested": list(map(str, ids)), **meta})


def explanation_status(run_dir: str | Path) -> pd.DataFrame:
    """One row per precompute shard ever started: settings hash, part, requested and stored
    counts, ``complete``; an incomplete row is an interrupted (or running) precompute."""
    d = explanations_dir(run_dir)
    rows = []
    if d.is_dir():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            samples, _ = load_explanations(run_dir)
        for path in sorted(d.glob("request-*.json")):
            try:
                req = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            h = req.get("settings_hash", "")
            have = set(samples.loc[samples["settings_hash"] == h, "sample_id"].astype(str))
            wanted = [str(i) for i in req.get("requested", [])]
            n_stored = sum(1 for i in wanted if i in have)
            rows.append({"settings_hash": h, "part": req.get("part"), "requested": len(wanted), "stored": n_stored,
                         "complete": n_stored == len(wanted), "command": req.get("command")})
    return pd.DataFrame(rows, columns=["settings_hash", "part", "requested", "stored", "complete", "command"])


def settings_of(run_dir: str | Path, settings_hash: str) -> dict[str, Any] | None:
    path = explanations_dir(run_dir) / f"settings-{settings_hash}.json"
    if not path.is_file():
        return None
    try:
        return read_json(path, what="explanation settings")
    except BundleError:
        return None


def check_modalities(modalities: Sequence[str], known: Sequence[str], what: str) -> None:
    unknown = [m for m in modalities if m not in known]
    if unknown:
        raise ConfigError(f"{what} has no modality {', '.join(map(repr, unknown))}",
                          fix=f"use some of: {', '.join(known) or '(none)'}")
