"""Experiment files (TOML): dataset, encoders, fusion methods, subsets, seed.

An experiment is named by a file in ``experiments/`` (``emoji`` ->
``experiments/emoji.toml``) or by a path. Validation happens here, before any
training, so a typo in a fusion name fails in a second with the known names.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS_DIR = PROJECT_ROOT / "experiments"
LATE_FUSIONS = ("late-average", "late-weighted")
DATASET_SOURCES = ("manifest", "emoji", "rgbd-sim")

DEFAULT_TRAIN = {
    "unimodal": {"epochs": 15, "lr": 2e-3, "batch_size": 64, "weight_decay": 1e-4, "hidden": 256, "dropout": 0.2,
                 "patience": 5},
    "fusion": {"epochs": 60, "lr": 2e-3, "batch_size": 128, "weight_decay": 1e-4, "dim": 128, "dropout": 0.2,
               "patience": 10},
}


def runs_root(override: str | Path | None = None) -> Path:
    """The runs directory: ``--runs-dir``, else ``$FUSIONLENS_RUNS``, else ``./runs``."""
    return Path(override or os.environ.get("FUSIONLENS_RUNS") or PROJECT_ROOT / "runs").resolve()


@dataclass(frozen=True)
class EncoderSet:
    """One encoder per modality; ``tag`` prefixes run names when an experiment has several."""

    tag: str
    specs: dict[str, dict[str, Any]]


@dataclass
class Experiment:
    name: str
    path: Path | None
    seed: int
    dataset: dict[str, Any]
    modalities: dict[str, str]                      # name -> kind, in order
    encoder_sets: list[EncoderSet]                 # every set of the grid (``--full``)
    default_tags: list[str]                        # the sets a default build trains
    fusion_methods: list[str]
    late_methods: list[str]
    early: bool
    subsets: list[list[str]]
    train: dict[str, dict[str, Any]]
    raw: dict[str, Any] = field(default_factory=dict)

    def selected_sets(self, full: bool = False) -> list[EncoderSet]:
        return self.encoder_sets if full else [e for e in self.encoder_sets if e.tag in self.default_tags]

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def run_dir(self, root: Path, run: str) -> Path:
        return root / self.name / run


def resolve_experiment_path(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise ConfigError(f"experiment file {p} does not exist", fix="check the path")
        return p.resolve()
    candidate = EXPERIMENTS_DIR / f"{name_or_path}.toml"
    if candidate.is_file():
        return candidate
    known = ", ".join(sorted(x.stem for x in EXPERIMENTS_DIR.glob("*.toml"))) or "(none)"
    raise ConfigError(f"no experiment named {name_or_path!r}", fix=f"use one of: {known}, or a path to a .toml file")


def load_experiment(name_or_path: str | Path) -> Experiment:
    path = resolve_experiment_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"experiment file {path} is not valid TOML ({exc})", fix="fix the syntax at that line") from exc
    return parse_experiment(raw, path)


def parse_experiment(raw: dict[str, Any], path: Path | None = None) -> Experiment:
    """Validate an experiment dict (the parsed TOML) and fill in defaults."""
    from core.encoders import ENCODERS
    from core.fusion import FUSIONS

    where = f"experiment file {path}" if path else "experiment"
    name = raw.get("name") or (path.stem if path else None)
    if not name or "/" in str(name) or str(name).startswith("."):
        raise ConfigError(f"{where} needs a plain `name`", fix='add name = "my-experiment" at the top')
    dataset = dict(raw.get("dataset") or {})
    source = dataset.get("source", "manifest")
    if source not in DATASET_SOURCES:
        raise ConfigError(f"{where}: unknown dataset source {source!r}", fix=f"use one of: {', '.join(DATASET_SOURCES)}")
    if source == "manifest":
        if "manifest" not in dataset:
            raise ConfigError(f"{where}: [dataset] needs `manifest` (path to a CSV/Parquet table)",
                              fix='add manifest = "data/manifest.csv" (relative to the experiment file)')
        mp = Path(dataset["manifest"])
        if not mp.is_absolute() and path is not None:
            mp = path.parent / mp
        dataset["manifest"] = str(mp)
    dataset["source"] = source

    mods = raw.get("modalities") or {}
    if not mods:
        raise ConfigError(f"{where} declares no modalities", fix="add [modalities.<name>] tables with kind and encoder")
    modalities: dict[str, str] = {}
    specs: dict[str, dict[str, Any]] = {}
    for m, table in mods.items():
        kind = table.get("kind")
        if kind not in ("text", "image", "video", "features"):
            raise ConfigError(f"{where}: modality {m!r} has unknown kind {kind!r}",
                              fix="use kind = one of text, image, video, features")
        enc = table.get("encoder")
        if enc is None:
            raise ConfigError(f"{where}: modality {m!r} names no encoder",
                              fix=f"add encoder = one of {', '.join(ENCODERS.names(kind=kind))}")
        ENCODERS.get(enc)
        if ENCODERS.meta(enc).get("kind") != kind:
            raise ConfigError(f"{where}: encoder {enc!r} is not for {kind} data (modality {m!r})",
                              fix=f"use one of {', '.join(ENCODERS.names(kind=kind))}")
        modalities[m] = kind
        specs[m] = {"name": enc, "kwargs": dict(table.get("encoder_kwargs") or {})}

    encoder_sets = [EncoderSet("", specs)]
    grid = raw.get("encoder_grid")
    if grid:
        encoder_sets = []
        for tag, per_kind in grid.items():
            set_specs = copy.deepcopy(specs)
            for m, kind in modalities.items():
                choice = per_kind.get(m) or per_kind.get(kind)
                if choice:
                    ENCODERS.get(choice)
                    set_specs[m] = {"name": choice, "kwargs": {**specs[m]["kwargs"], **(per_kind.get("kwargs") or {})}}
            encoder_sets.append(EncoderSet(tag, set_specs))
        default_tags = list(raw.get("grid_default") or [encoder_sets[0].tag])
        unknown = [t for t in default_tags if t not in grid]
        if unknown:
            raise ConfigError(f"{where}: grid_default names unknown encoder set(s) {unknown}",
                              fix=f"use tags from [encoder_grid]: {', '.join(grid)}")
    else:
        default_tags = [""]

    fusion = raw.get("fusion") or {}
    methods = list(fusion.get("methods", FUSIONS.names(strategy="intermediate")))
    for f in methods:
        FUSIONS.get(f)
    late = list(fusion.get("late", LATE_FUSIONS))
    for f in late:
        if f not in LATE_FUSIONS:
            raise ConfigError(f"{where}: unknown late fusion {f!r}", fix=f"use one of: {', '.join(LATE_FUSIONS)}")
    subsets = [list(s) for s in fusion.get("subsets", [list(modalities)])]
    for s in subsets:
        unknown = [m for m in s if m not in modalities]
        if unknown or len(s) < 2 or len(set(s)) != len(s):
            raise ConfigError(f"{where}: fusion subset {s} must name two or more distinct declared modalities",
                              fix=f"use names from: {', '.join(modalities)}")
    train = copy.deepcopy(DEFAULT_TRAIN)
    for stage, values in (raw.get("train") or {}).items():
        if stage not in train:
            raise ConfigError(f"{where}: unknown [train.{stage}]", fix="use [train.unimodal] and [train.fusion]")
        unknown = set(values) - set(train[stage]) - {"max_train_batches"}
        if unknown:
            raise ConfigError(f"{where}: unknown [train.{stage}] key(s) {sorted(unknown)}",
                              fix=f"use: {', '.join(sorted(train[stage]))}")
        train[stage].update(values)
    return Experiment(
        name=str(name), path=path, seed=int(raw.get("seed", 0)), dataset=dataset, modalities=modalities,
        encoder_sets=encoder_sets, default_tags=default_tags, fusion_methods=methods, late_methods=late,
        early=bool(fusion.get("early", False)), subsets=subsets, train=train, raw=raw,
    )
