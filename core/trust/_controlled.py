"""The controlled-variant test: shuffle one modality across samples, retrain, and its share must drop.

The run's configuration is trained again on a copy of its experiment's dataset
in which modality ``m``'s content is moved between samples (a seeded
derangement within each split: every sample gets another sample's ``m``,
labels and the other modalities untouched). ``m`` then carries no information
about the label, so a faithful explanation gives it a share near 0.

The copy is a sibling experiment ``<experiment>--controlled-<m>`` under the
same runs root (never inside the original experiment folder): its
``dataset.parquet`` is the original table with ``m``'s manifest columns
permuted (and a ``shuffled_from`` column naming whose content each sample
got), its ``dataset.json`` points at the original data folder, and
``controlled.json`` says what was shuffled. Training goes through
:func:`core.train.train_experiment`, so it is resumable and shares the
unimodal runs between the runs checked; the controlled run's explanations are
stored with it.
"""
from __future__ import annotations

import dataclasses
import math
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from core.bundle import load_run
from core.catalog import check_name
from core.data import load_experiment_dataset, read_dataset_info
from core.data.store import save_dataset
from core.errors import ConfigError
from core.experiment import Experiment, load_experiment
from core.explain import ExplainSettings, explain_sample, explanation_for
from core.io import write_json
from core.kinds import get_kind
from core.train import train_experiment
from core.trust._report import CheckResult
from core.trust._stats import summary
from core.trust._stored import pick
from core.trust._thresholds import CONTROLLED_PASS_FRACTION

#: What joins an experiment's name and the shuffled modality in the sibling experiment's name.
CONTROLLED_TAG = "--controlled-"
CONTROLLED_FILE = "controlled.json"


def controlled_name(experiment: str, modality: str) -> str:
    """``<experiment>--controlled-<modality>``: the sibling experiment of one shuffled modality."""
    return check_name(f"{experiment}{CONTROLLED_TAG}{modality}", "experiment")


def is_controlled(experiment: str) -> bool:
    return CONTROLLED_TAG in experiment


def shuffle_modality(frame: pd.DataFrame, columns: Sequence[str], seed: int) -> pd.DataFrame:
    """``frame`` with ``columns`` moved between rows: within each split, a seeded derangement (one
    cycle through the split's rows, so no row keeps its own). ``shuffled_from`` names the id whose
    content each row now has; every other column is untouched."""
    out = frame.reset_index(drop=True).copy()
    source = np.arange(len(out))
    for split, idx in out.groupby("split", sort=True).indices.items():
        idx = np.asarray(idx)
        if len(idx) < 2:
            continue
        rng = np.random.default_rng([int(seed), zlib.crc32(str(split).encode())])
        order = idx[rng.permutation(len(idx))]
        source[order] = np.roll(order, -1)
    for col in columns:
        out[col] = out[col].to_numpy()[source]
    out["shuffled_from"] = out["id"].astype(str).to_numpy()[source]
    return out


def experiment_of(exp_dir: Path) -> Experiment:
    """The experiment file an experiment folder was prepared from (recorded in ``dataset.json``),
    else the demo of the same name in ``experiments/``."""
    exp_dir = Path(exp_dir)
    info = read_dataset_info(exp_dir)
    recorded = info.get("experiment_file")
    for candidate in ([recorded] if isinstance(recorded, str) and Path(recorded).is_file() else []) + [exp_dir.name]:
        try:
            exp = load_experiment(candidate)
        except ConfigError:
            continue
        if exp.name == exp_dir.name:
            return exp
    raise ConfigError(f"the experiment file of {exp_dir.name!r} cannot be found (dataset.json names "
                      f"{recorded or 'none'})",
                      fix="keep the .toml the experiment was built from where it was, or put it in experiments/")


def prepare_controlled(exp_dir: Path, modality: str, seed: int) -> tuple[Experiment, Path]:
    """Write the sibling experiment with ``modality`` shuffled; returns it and its folder."""
    exp_dir = Path(exp_dir)
    exp = experiment_of(exp_dir)
    ds, info = load_experiment_dataset(exp_dir)
    if modality not in ds.modalities:
        raise ConfigError(f"experiment {exp.name!r} has no modality {modality!r}",
                          fix=f"shuffle one of: {', '.join(ds.modalities)}")
    columns = get_kind(ds.modalities[modality]).manifest_columns(modality, ds.options.get(modality, {}))
    name = controlled_name(exp.name, modality)
    sibling = exp_dir.parent / name
    shuffled = dataclasses.replace(ds, frame=shuffle_modality(ds.frame, columns, seed))
    save_dataset(sibling, shuffled, manifest=Path(info.get("manifest") or ds.root / "manifest.csv"),
                 source=str(info.get("source", "manifest")))
    write_json(sibling / CONTROLLED_FILE, {
        "source_experiment": exp.name, "shuffled_modality": modality, "columns": list(columns), "seed": int(seed),
        "what": "the source experiment's dataset with this modality's content moved between samples (a seeded "
                "derangement within each split); labels and the other modalities untouched (docs/TRUST.md)",
    })
    return dataclasses.replace(exp, name=name), sibling


def _shares(run_dir: Path, ids: Sequence[str], settings: ExplainSettings, modality: str, *, store: bool,
            desc: str, progress: bool) -> dict[str, float]:
    out = {}
    for sid in tqdm(ids, desc=desc, disable=not progress, leave=False):
        stored = explanation_for(run_dir, sid, settings_hash=settings.hash())
        e = stored if stored is not None else explain_sample(run_dir, sid, settings, store=store)
        out[sid] = float(e.shares[modality])
    return out


def controlled_check(run_dir: str | Path, *, modalities: Sequence[str] | None = None, samples: int = 8, seed: int = 0,
                     settings: ExplainSettings | None = None, progress: bool = False) -> CheckResult:
    """Train the run's configuration with each of ``modalities`` (default: all of the run's) shuffled
    in turn, explain ``samples`` test samples of each controlled run with ``settings``, and compare
    the shuffled modality's mean share with the original run's on the same samples.

    Pass when every shuffled modality's mean share is below :data:`CONTROLLED_PASS_FRACTION` / M
    (M modalities); warn below 1 / M; fail otherwise.
    """
    run_dir = Path(run_dir).resolve()
    run = load_run(run_dir)
    mods = list(run.modalities)
    if len(mods) < 2:
        return CheckResult("controlled", "skip", "A single-modality run: there is no other modality to keep.")
    if is_controlled(run_dir.parent.name):
        return CheckResult("controlled", "skip", "This run is itself a controlled copy.")
    wanted = list(modalities or mods)
    unknown = [m for m in wanted if m not in mods]
    if unknown:
        raise ConfigError(f"run {run.name!r} has no modality {', '.join(map(repr, unknown))}",
                          fix=f"shuffle some of: {', '.join(mods)}")
    settings = ExplainSettings.build(settings)
    ids = pick(run.predictions["id"].astype(str), samples, seed)
    uniform = 1.0 / len(mods)
    results: dict[str, Any] = {}
    statuses, parts = [], []
    for m in wanted:
        exp, sibling = prepare_controlled(run_dir.parent, m, seed)
        train_experiment(exp, sibling.parent, only=[run.name], progress=progress)
        controlled_dir = sibling / run.name
        shuffled = _shares(controlled_dir, ids, settings, m, store=True, desc=f"trust: explain {m} shuffled",
                           progress=progress)
        original = _shares(run_dir, ids, settings, m, store=False, desc="trust: explain original", progress=progress)
        mean, before = float(np.mean(list(shuffled.values()))), float(np.mean(list(original.values())))
        status = "pass" if mean < CONTROLLED_PASS_FRACTION * uniform else "warn" if mean < uniform else "fail"
        statuses.append(status)
        results[m] = {
            "status": status, "experiment": sibling.name, "run_dir": str(controlled_dir),
            "shuffled_share": summary(list(shuffled.values())), "original_share": summary(list(original.values())),
            "top1": load_run(controlled_dir).metrics.get("top1"), "original_top1": run.metrics.get("top1"),
            "per_sample": {sid: {"controlled": shuffled[sid], "original": original[sid]} for sid in ids},
        }
        parts.append(f"shuffling {m} moves its mean share from {before:.2f} to {mean:.2f}")
    status = "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"
    bound = CONTROLLED_PASS_FRACTION * uniform
    verdict = {"pass": "the explanations follow where the information is",
               "warn": "the shuffled modality keeps more share than a faithful explanation would",
               "fail": "the explanations credit a modality that carries no information"}[status]
    told = "; ".join(parts)
    reason = f"{told[0].upper()}{told[1:]} (n = {len(ids)}, pass below {bound:.2f}): {verdict}."
    numbers = {"modalities": results, "pass_below": bound, "uniform_share": uniform, "seed": int(seed),
               "samples": ids, "explain_settings_hash": settings.hash()}
    if any(math.isnan(r["shuffled_share"]["mean"]) for r in results.values()):
        status = "warn"
    return CheckResult("controlled", status, reason, n=len(ids), numbers=numbers)
