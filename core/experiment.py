"""Experiment files (TOML): dataset, encoders, fusion methods, subsets, seed.

An experiment is named by a path or by a name: ``./<name>.toml`` of the
current folder (a user's own experiment), else ``experiments/<name>.toml``
(``emoji`` -> ``experiments/emoji.toml``). Validation happens here, before any
training: every key is checked against the schema in
``core.experiment_schema`` (unknown keys, types, ranges), then against the
registries (encoders, fusion methods) and against each other (subsets, grid
tags); every problem found is reported at once, naming the key, the value,
what is allowed and the fix.
"""
from __future__ import annotations

import copy
import hashlib
import inspect
import json
import math
import os
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from core.errors import ConfigError, choices, did_you_mean
from core.kinds import KINDS, canonical_kind, get_kind, kind_alias_note, list_kinds
from core.experiment_schema import (
    DATASET_SOURCES,
    LATE_FUSIONS,
    NAME_PATTERN,
    SCHEMA,
    Problem,
    Table,
    check_schema,
    defaults,
    toml_value,
)

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS_DIR = PROJECT_ROOT / "experiments"
_TRAIN = SCHEMA.keys["train"]
assert isinstance(_TRAIN, Table)
#: per-stage training defaults, from the schema
DEFAULT_TRAIN = {stage: defaults(table) for stage, table in _TRAIN.keys.items() if isinstance(table, Table)}
_PRECOMPUTE = SCHEMA.keys["precompute"]
assert isinstance(_PRECOMPUTE, Table)
#: what ``build`` precomputes when the file has no ``[precompute]`` table, from the schema
DEFAULT_PRECOMPUTE = defaults(_PRECOMPUTE)


def runs_root(override: str | Path | None = None) -> Path:
    """The runs directory: ``--runs-dir``, else ``$FUSIONLENS_RUNS``, else ``runs/`` in the current
    folder (so ``fusionlens build my.toml`` in a data folder writes there; ``scripts/run.sh`` runs
    from the repository root and so uses the repository's ``runs/``)."""
    return Path(override or os.environ.get("FUSIONLENS_RUNS") or "runs").resolve()


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
    #: fusion methods (intermediate, late and classical) of every subset after the first; None: all of them
    subset_methods: list[str] | None = None
    #: classical heads, ``<estimator>-<aggregation>`` (``[fusion] classical``, core.fusion.list_classical)
    classical: list[str] = field(default_factory=list)
    #: intermediate methods that also get a modality-dropout twin run (``[fusion] dropout_runs``)
    dropout_runs: list[str] = field(default_factory=list)
    #: the twins' modality dropout: a probability, or one per modality (``[fusion] dropout_probability``)
    dropout_probability: Any = 0.3
    raw: dict[str, Any] = field(default_factory=dict)
    #: modality -> its kind's keys of ``[modalities.<name>]`` with their defaults (``empty``, ``columns``)
    modality_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: text modality -> rule for empty cells: "refuse", "drop" or "keep" (also in ``modality_options``)
    empty_text: dict[str, str] = field(default_factory=dict)
    #: ``[fusion.adaptive]`` with its defaults and ``cost`` as ``{policy modality: weight}``; None: no adaptive run
    adaptive: dict[str, Any] | None = None
    #: ``[precompute]`` with its defaults: what ``build`` computes after training (see core.pipeline)
    precompute: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(DEFAULT_PRECOMPUTE))

    def selected_sets(self, full: bool = False) -> list[EncoderSet]:
        return self.encoder_sets if full else [e for e in self.encoder_sets if e.tag in self.default_tags]

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def run_dir(self, root: Path, run: str) -> Path:
        return root / self.name / run

    def raster_sizes(self) -> dict[str, int]:
        """Modality -> the largest size its encoders use (over every encoder set) for a kind that
        rasterises (its ``raster_size_key``, an image's ``image_size``): the size vector images
        (SVG) are rasterised at."""
        from core.encoders import ENCODERS

        sizes: dict[str, int] = {}
        for es in self.encoder_sets:
            for m, spec in es.specs.items():
                key = get_kind(self.modalities[m]).raster_size_key if m in self.modalities else None
                if key is None:
                    continue
                size = spec["kwargs"].get(key, _parameters(ENCODERS.get(spec["name"])).get(key))
                if isinstance(size, int) and not isinstance(size, bool):
                    sizes[m] = max(sizes.get(m, 0), size)
        return sizes


def resolve_experiment_path(name_or_path: str | Path) -> Path:
    """The experiment file of a path, or of a name: ``./<name>.toml`` in the current folder (a
    user's own experiment, run from its data folder), else ``experiments/<name>.toml`` (a demo)."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise ConfigError(f"experiment file {p} does not exist", fix="check the path")
        return p.resolve()
    for candidate in (Path.cwd() / f"{name_or_path}.toml", EXPERIMENTS_DIR / f"{name_or_path}.toml"):
        if candidate.is_file():
            return candidate.resolve()
    known = sorted(x.stem for x in EXPERIMENTS_DIR.glob("*.toml"))
    raise ConfigError(f"no experiment named {name_or_path!r} (neither ./{name_or_path}.toml nor "
                      f"{EXPERIMENTS_DIR / f'{name_or_path}.toml'} exists)",
                      fix=f"{did_you_mean(name_or_path, known)}use one of: {choices(known, '(none shipped)')}, "
                          "or a path to a .toml file")


def load_experiment(name_or_path: str | Path) -> Experiment:
    path = resolve_experiment_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"experiment file {path} is not valid TOML ({exc})", fix="fix the syntax at that line") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"experiment file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})",
                          fix="save it as UTF-8 text (TOML files are UTF-8)") from exc
    except OSError as exc:
        raise ConfigError(f"experiment file {path} cannot be read ({exc.strerror or exc})",
                          fix="check the path and the file's permissions") from exc
    return parse_experiment(raw, path)


def _current_kind_names(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """``raw`` with old kind names replaced by their current ones (``features`` -> ``tabular``), each
    replacement logged as a warning saying what to write instead."""
    mods = raw.get("modalities")
    if not isinstance(mods, dict):
        return raw
    renamed = {m: t["kind"] for m, t in mods.items()
               if isinstance(t, dict) and isinstance(t.get("kind"), str) and kind_alias_note(t["kind"])}
    if not renamed:
        return raw
    raw = copy.deepcopy(raw)
    for m, old in renamed.items():
        new = canonical_kind(old)
        raw["modalities"][m]["kind"] = new
        log.warning('%s: [modalities.%s] kind = "%s" is the old name of kind "%s" and is read as "%s". '
                    'Fix: write kind = "%s"', where, m, old, new, new, new)
    return raw


def early_fusable(kind: str | None) -> bool:
    """Whether modalities of ``kind`` can be stacked into one encoder (early fusion)."""
    return kind is not None and kind in KINDS and get_kind(kind).early_fusion


def _parameters(factory: Callable[..., Any]) -> dict[str, Any]:
    """Keyword parameters of an encoder factory -> default (``inspect.Parameter.empty`` when required)."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return {}
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {n: p.default for n, p in sig.parameters.items() if p.kind in kinds}


def _takes_any(factory: Callable[..., Any]) -> bool:
    try:
        return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return True


_KWARG_TYPES: dict[type, tuple[str, Callable[[Any], bool]]] = {
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)),
    str: ("a string", lambda v: isinstance(v, str)),
}


def check_encoder_kwargs(encoder: str, kwargs: dict[str, Any], where: str) -> list[Problem]:
    """``kwargs`` against the encoder's signature: unknown names, missing required ones, and the
    type of each value against its default's (an integer whose default is positive must be >= 1)."""
    from core.encoders import ENCODERS

    factory = ENCODERS.get(encoder)
    params = _parameters(factory)
    problems: list[Problem] = []
    if not _takes_any(factory):
        for k in kwargs:
            if k not in params:
                problems.append(Problem(f"{where} has {k} = {toml_value(kwargs[k])}, which encoder {encoder!r} "
                                        "does not take",
                                        f"{did_you_mean(k, params)}remove it; {encoder!r} takes: "
                                        f"{choices(params, '(no arguments)')}"))
    for k, default in params.items():
        if default is inspect.Parameter.empty and k not in kwargs:
            problems.append(Problem(f"encoder {encoder!r} needs {k}, and {where} does not give it",
                                    f"add {k} = ... to {where}"))
    for k, v in kwargs.items():
        default = params.get(k)
        if default is None or default is inspect.Parameter.empty or type(default) not in _KWARG_TYPES:
            continue
        what, ok = _KWARG_TYPES[type(default)]
        if not ok(v):
            problems.append(Problem(f"{where} {k} = {toml_value(v)} is not {what} (encoder {encoder!r}, default "
                                    f"{toml_value(default)})",
                                    f"write {k} as {what}, e.g. {k} = {toml_value(default)}"))
        elif type(default) is int and default > 0 and v < 1:
            problems.append(Problem(f"{where} {k} = {v} is out of range (allowed: an integer >= 1)",
                                    f"set {k} = {default} (the default)"))
    model = kwargs.get("model")
    if isinstance(model, str) and model:  # a local model folder: refused now if it holds no safetensors
        from core.model_sources import check_model_folder, local_model_folder

        folder = local_model_folder(model)
        if folder is not None:
            try:
                check_model_folder(folder, model)
            except ConfigError as exc:
                problems.append(Problem(f"{where} model = {toml_value(model)}: {exc.problem}", exc.fix or ""))
    return problems


def _raise(where: str, problems: list[Problem]) -> None:
    """One ConfigError for every problem found (each with its own fix); ``.problems`` lists them."""
    unique = list(dict.fromkeys(problems))
    if len(unique) == 1:
        err = ConfigError(f"{where}: {unique[0].problem}", fix=unique[0].fix)
    else:
        lines = "\n".join(f"  - {p.problem}. Fix: {p.fix}" for p in unique)
        err = ConfigError(f"{where} has {len(unique)} problems:\n{lines}")
    err.problems = unique  # type: ignore[attr-defined]
    raise err


def parse_experiment(raw: dict[str, Any], path: Path | None = None) -> Experiment:
    """Validate an experiment dict (the parsed TOML) and fill in defaults.

    Every key is checked against the schema first (unknown keys, types, ranges);
    then names against the registries and keys against each other. All the
    problems of a stage are reported in one :class:`ConfigError`.
    """
    where = f"experiment file {path}" if path else "experiment"
    raw = _current_kind_names(raw, where)
    problems = check_schema(raw)
    if problems:
        _raise(where, problems)
    from core.encoders import ENCODERS  # the registries import torch: only once the schema passed
    from core.fusion import FUSIONS, is_classical, parse_classical

    name = raw.get("name") or (path.stem if path else None)
    if not name or not NAME_PATTERN.match(str(name)):
        problems.append(Problem(f"name = {toml_value(name)} is not a plain name" if name else "the experiment has "
                                "no name", 'set name = "my-experiment" at the top (letters, digits, "_", "-", ".")'))

    dataset = copy.deepcopy(dict(raw.get("dataset") or {}))
    source = dataset.setdefault("source", "manifest")
    if source == "manifest":
        if "manifest" not in dataset:
            demos = choices(s for s in DATASET_SOURCES if s != "manifest")
            problems.append(Problem('[dataset] needs manifest (the path of your CSV/Parquet table), because source = '
                                    '"manifest"', 'add manifest = "data/manifest.csv" (relative to the experiment '
                                    f'file), or set source to a demo: {demos}'))
        else:
            mp = Path(dataset["manifest"])
            if not mp.is_absolute() and path is not None:
                mp = path.parent / mp
            dataset["manifest"] = str(mp)
    split = dataset.get("split")
    if split is not None and set(split) == {"train", "val", "test"}:
        total = sum(split.values())
        if abs(total - 1.0) > 1e-6:
            problems.append(Problem(f"[dataset] split = {toml_value(split)}: the fractions sum to {total:g}, not 1",
                                    "make train + val + test = 1, e.g. "
                                    "split = { train = 0.7, val = 0.15, test = 0.15 }"))

    folds = ((raw.get("train") or {}).get("unimodal") or {}).get("oof_folds")
    if folds == 1:
        problems.append(Problem("[train.unimodal] oof_folds = 1 leaves no fold to train on",
                                "set oof_folds = 0 (stage 2 on in-sample embeddings) or k >= 2 (k-fold)"))

    mods = raw.get("modalities") or {}
    if not mods:
        problems.append(Problem(f"{where} declares no modalities", "add [modalities.<name>] tables with kind and "
                                "encoder (the name is the manifest column)"))
    has_encoder = sorted({str(ENCODERS.meta(n).get("kind")) for n in ENCODERS})
    modalities: dict[str, str] = {}
    modality_options: dict[str, dict[str, Any]] = {}
    specs: dict[str, dict[str, Any]] = {}
    for m, table in mods.items():
        kind = table["kind"]
        modalities[m] = kind
        options = get_kind(kind).options  # the kind's keys of [modalities.<m>], with their defaults
        modality_options[m] = {k: table.get(k, o.default) for k, o in options.items()
                               if table.get(k, o.default) is not None}
        names = ENCODERS.names(kind=kind)
        enc = table.get("encoder")
        if not names:
            problems.append(Problem(f"[modalities.{m}] kind = {toml_value(kind)}: no encoder exists for {kind} data "
                                    "yet, so this modality cannot be trained",
                                    f"leave modality {m!r} out of the experiment for now, or give its data as a kind "
                                    f"that has an encoder: {choices(has_encoder)}"))
        elif enc is None:
            default = get_kind(kind).default_encoder
            suggest = default if default in names else names[0]
            problems.append(Problem(f"[modalities.{m}] names no encoder",
                                    f"add encoder = {toml_value(suggest)} (the {kind} encoders: {choices(names)})"))
        elif enc not in ENCODERS:
            problems.append(Problem(f"[modalities.{m}] encoder = {toml_value(enc)} is not a registered encoder",
                                    f"{did_you_mean(enc, names)}use one of the {kind} encoders: {choices(names)}"))
        elif ENCODERS.meta(enc).get("kind") != kind:
            problems.append(Problem(f"[modalities.{m}] encoder {enc!r} is not for {kind} data (it encodes "
                                    f"{ENCODERS.meta(enc).get('kind')})", f"use one of {choices(names)}"))
        else:
            specs[m] = {"name": enc, "kwargs": dict(table.get("encoder_kwargs") or {})}
            problems += check_encoder_kwargs(enc, specs[m]["kwargs"], f"[modalities.{m}] encoder_kwargs")

    encoder_sets = [EncoderSet("", specs)]
    grid = raw.get("encoder_grid") or {}
    if grid:
        encoder_sets = []
        kind_names = list_kinds()
        grid_keys = [*modalities, *kind_names, "kwargs"]
        for tag, per in grid.items():
            set_specs = copy.deepcopy(specs)
            extra = dict(per.get("kwargs") or {})
            for key, enc in per.items():
                want = modalities.get(key, canonical_kind(key))
                if key == "kwargs":
                    continue
                if key not in modalities and key not in KINDS:
                    problems.append(Problem(f"[encoder_grid.{tag}] has an unknown key {key!r}",
                                            f"{did_you_mean(key, grid_keys)}use a modality name "
                                            f"({choices(modalities, '(none declared)')}), a kind "
                                            f"({choices(kind_names)}) or kwargs"))
                elif enc not in ENCODERS:
                    problems.append(Problem(f"[encoder_grid.{tag}] {key} = {toml_value(enc)} is not a registered "
                                            "encoder", f"{did_you_mean(enc, ENCODERS.names(kind=want))}use one of "
                                            f"the {want} encoders: {choices(ENCODERS.names(kind=want))}"))
                elif ENCODERS.meta(enc).get("kind") != want:
                    problems.append(Problem(f"[encoder_grid.{tag}] {key} = {toml_value(enc)} is not an encoder for "
                                            f"{want} data", f"use one of {choices(ENCODERS.names(kind=want))}"))
            for m, kind in modalities.items():
                choice = per.get(m) or next((per[k] for k in per if k in KINDS and canonical_kind(k) == kind), None)
                if m in specs and choice in ENCODERS and ENCODERS.meta(choice).get("kind") == kind:
                    set_specs[m] = {"name": choice, "kwargs": {**specs[m]["kwargs"], **extra}}
                    problems += check_encoder_kwargs(
                        choice, set_specs[m]["kwargs"],
                        f"[modalities.{m}] encoder_kwargs" + (f" with [encoder_grid.{tag}] kwargs" if extra else ""))
            encoder_sets.append(EncoderSet(tag, set_specs))
        default_tags = list(raw.get("grid_default") or [next(iter(grid))])
        unknown = [t for t in default_tags if t not in grid]
        if unknown:
            problems.append(Problem(f"grid_default names unknown encoder set(s) {unknown}",
                                    f"{did_you_mean(unknown[0], grid)}use tags from [encoder_grid]: {choices(grid)}"))
    else:
        if raw.get("grid_default"):
            problems.append(Problem("grid_default is set, but the file has no [encoder_grid.<tag>] tables",
                                    "remove grid_default, or add the encoder sets it names"))
        default_tags = [""]

    fusion = raw.get("fusion") or {}
    known_fusions = FUSIONS.names(strategy="intermediate")  # what [fusion] methods takes
    methods = list(fusion.get("methods", FUSIONS.names(strategy="intermediate")))
    for f in methods:
        if f not in FUSIONS:
            hint = "late fusions go in [fusion] late; " if f in LATE_FUSIONS else \
                "classical heads go in [fusion] classical; " if is_classical(f) else did_you_mean(f, known_fusions)
            problems.append(Problem(f"[fusion] methods: unknown fusion method {f!r}",
                                    f"{hint}use some of: {choices(known_fusions)}"))
        elif FUSIONS.meta(f).get("strategy") == "adaptive":
            problems.append(Problem(f"[fusion] methods: {f!r} is not an intermediate fusion method",
                                    "configure adaptive runs in a [fusion.adaptive] table (policy, segments, cost); "
                                    f"methods takes: {choices(FUSIONS.names(strategy='intermediate'))}"))
    late = list(fusion.get("late", LATE_FUSIONS))
    classical = list(fusion.get("classical", []))
    for f in classical:
        try:
            parse_classical(f)
        except ConfigError as exc:
            problems.append(Problem(f"[fusion] classical: {exc.problem}", exc.fix or ""))
    for key, values in (("methods", methods), ("late", late), ("classical", classical)):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            problems.append(Problem(f"[fusion] {key} names {', '.join(map(repr, repeated))} more than once",
                                    "list each method once"))
    if not modalities:
        subsets = []
    elif "subsets" not in fusion and len(modalities) == 1:
        problems.append(Problem(f"{where} declares one modality ({next(iter(modalities))}); fusion needs two or more",
                                "declare another [modalities.<name>] table"))
        subsets: list[list[str]] = []
    else:
        subsets = [list(s) for s in fusion.get("subsets", [list(modalities)])]
    for s in subsets:
        unknown = [m for m in s if m not in modalities]
        if unknown or len(s) < 2 or len(set(s)) != len(s):
            problems.append(Problem(f"[fusion] subsets: fusion subset {s} must name two or more distinct declared "
                                    "modalities", f"use names from: {choices(modalities, '(none declared)')}"))
    subset_methods = fusion.get("subset_methods")
    if subset_methods is not None:
        subset_methods = list(subset_methods)
        outside = [f for f in subset_methods if f not in (*methods, *late, *classical)]
        if outside:
            problems.append(Problem(f"[fusion] subset_methods: {', '.join(map(repr, outside))} "
                                    f"{'is' if len(outside) == 1 else 'are'} not in [fusion] methods, late or "
                                    "classical", f"use some of: {choices([*methods, *late, *classical])}"))
    dropout_runs = list(fusion.get("dropout_runs", []))
    outside = [f for f in dropout_runs if f not in methods]
    if outside:
        problems.append(Problem(f"[fusion] dropout_runs: {', '.join(map(repr, outside))} "
                                f"{'is' if len(outside) == 1 else 'are'} not an intermediate method of [fusion] "
                                "methods (modality dropout trains an intermediate head)",
                                f"use some of: {choices(methods)}"))
    if len(set(dropout_runs)) != len(dropout_runs):
        problems.append(Problem("[fusion] dropout_runs names a method more than once", "list each method once"))
    drop_tables = [("[fusion] dropout_probability", fusion.get("dropout_probability")),
                   ("[train.fusion] modality_dropout", ((raw.get("train") or {}).get("fusion") or {})
                    .get("modality_dropout"))]
    for where_key, value in drop_tables:
        unknown = [m for m in value if m not in modalities] if isinstance(value, dict) else []
        if unknown:
            problems.append(Problem(f"{where_key} names {', '.join(map(repr, unknown))}, not a declared modality",
                                    f"{did_you_mean(unknown[0], modalities)}use modality names: "
                                    f"{choices(modalities, '(none declared)')}"))
    early = bool(fusion.get("early", False))
    if early and not any(s and all(early_fusable(modalities.get(m)) for m in s) for s in subsets):
        stackable = " or ".join(k for k in list_kinds() if get_kind(k).early_fusion) or "(no kind)"
        problems.append(Problem(f"[fusion] early = true, but no fusion subset holds only {stackable} modalities "
                                "(early fusion stacks clips on the channel axis)",
                                f"set early = false, or add a subset of {stackable} modalities"))
    adaptive, adaptive_problems = _adaptive_settings(fusion.get("adaptive"), modalities)
    problems += adaptive_problems
    precompute = {**copy.deepcopy(DEFAULT_PRECOMPUTE), **copy.deepcopy(raw.get("precompute") or {})}
    problems += _precompute_problems(precompute)
    if problems:
        _raise(where, problems)

    train = copy.deepcopy(DEFAULT_TRAIN)
    for stage, values in (raw.get("train") or {}).items():
        train[stage].update(values)
    return Experiment(
        name=str(name), path=path, seed=int(raw.get("seed", 0)), dataset=dataset, modalities=modalities,
        encoder_sets=encoder_sets, default_tags=default_tags, fusion_methods=methods, late_methods=late,
        early=early, subsets=subsets, train=train, subset_methods=subset_methods, classical=classical, raw=raw,
        dropout_runs=dropout_runs, dropout_probability=fusion.get("dropout_probability", 0.3),
        modality_options=modality_options,
        empty_text={m: o["empty"] for m, o in modality_options.items() if "empty" in o}, precompute=precompute,
        adaptive=adaptive,
    )


def _adaptive_settings(table: dict[str, Any] | None, modalities: dict[str, str]
                       ) -> tuple[dict[str, Any] | None, list[Problem]]:
    """``[fusion.adaptive]`` with its defaults (``cost`` as one weight per policy modality), and its problems:
    a modality the experiment lacks, a policy modality of a kind without segments, a cost for a modality the
    policy does not select, an annealing that warms up (types and ranges are the schema's)."""
    if table is None:
        return None, []
    spec = SCHEMA.keys["fusion"].keys["adaptive"]  # type: ignore[union-attr]
    settings = {**defaults(spec), **copy.deepcopy(table)}
    problems: list[Problem] = []
    declared = choices(modalities, "(none declared)")
    policy, always = list(settings.get("policy") or []), list(settings.get("always_on") or [])
    for key, names in (("policy", policy), ("always_on", always)):
        for m in names:
            if m not in modalities:
                problems.append(Problem(f"[fusion.adaptive] {key} names {m!r}, a modality the experiment lacks",
                                        f"{did_you_mean(m, modalities)}use declared modalities: {declared}"))
        if len(set(names)) != len(names):
            problems.append(Problem(f"[fusion.adaptive] {key} names a modality more than once", "list each once"))
    if not policy and "policy" in table:
        problems.append(Problem("[fusion.adaptive] policy = [] leaves the policy nothing to select",
                                "name one or more video, audio or time-series modalities"))
    both = [m for m in policy if m in always]
    if both:
        problems.append(Problem(f"[fusion.adaptive] names {', '.join(map(repr, both))} in both policy and always_on",
                                "a modality is either selected per segment (policy) or always on"))
    timed_kinds = [k for k in list_kinds() if get_kind(k).segment_axis is not None]
    timed = [m for m, k in modalities.items() if k in timed_kinds]
    for m in policy:
        kind = modalities.get(m)
        if kind in KINDS and get_kind(kind).segment_axis is None:
            problems.append(Problem(
                f"[fusion.adaptive] policy names {m!r}, a {kind} modality: {kind} items have no temporal segments "
                "for the policy to choose from",
                f"select modalities of a kind with time ({', '.join(timed_kinds)}) in policy (this experiment's: "
                f"{choices(timed, '(none)')}) and put {m!r} in always_on, or remove [fusion.adaptive]"))
    cost = settings.get("cost", 1.0)
    if isinstance(cost, dict):
        unknown = [m for m in cost if m not in policy]
        if unknown:
            problems.append(Problem(f"[fusion.adaptive] cost names {', '.join(map(repr, unknown))}, not a policy "
                                    "modality", f"give cost weights to policy modalities only: "
                                    f"{choices(policy, '(none)')}"))
        settings["cost"] = {m: float(cost.get(m, 1.0)) for m in policy}
    elif isinstance(cost, (int, float)) and not isinstance(cost, bool):
        settings["cost"] = {m: float(cost) for m in policy}
    start, end = settings.get("tau_start"), settings.get("tau_end")
    if isinstance(start, (int, float)) and isinstance(end, (int, float)) and end > start:
        problems.append(Problem(f"[fusion.adaptive] tau_end = {end} is above tau_start = {start}: the temperature "
                                "is annealed (lowered) during training", "set tau_end <= tau_start"))
    scales = list(settings.get("cost_scales") or [])
    if not scales:
        problems.append(Problem("[fusion.adaptive] cost_scales = [] trains no adaptive run",
                                "give cost_scales = [1.0] (the default), or remove [fusion.adaptive]"))
    if len({float(x) for x in scales if isinstance(x, (int, float))}) != len(scales):
        problems.append(Problem("[fusion.adaptive] cost_scales names a factor more than once", "list each once"))
    order = [m for m in modalities if m in policy or m in always]  # the run's modalities, in declaration order
    settings.update(policy=policy, always_on=always, modalities=order)
    return settings, problems


def _precompute_problems(precompute: dict[str, Any]) -> list[Problem]:
    """``[precompute]`` keys against each other (run names are checked against the build's plan
    by ``core.pipeline``, which knows them)."""
    problems = []
    if not precompute["explain_samples"]:
        problems.append(Problem("[precompute] explain_samples = [] gives no sample count",
                                "give one count per explained run, e.g. explain_samples = [100, 50]; explain no run "
                                "with explain_runs = []"))
    for key in ("projections", "explain_runs"):
        values = precompute.get(key) or []
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            problems.append(Problem(f"[precompute] {key} names {', '.join(map(repr, repeated))} more than once",
                                    "list each once"))
    return problems
