"""The experiment file's keys as data: type, allowed range, default and meaning.

One table, :data:`SCHEMA`, serves three purposes: :func:`check_schema` validates
a parsed TOML file against it before any work starts (each problem names the
key path, the value, what is allowed and the fix), the defaults of
``core.experiment`` come from it, and :func:`schema_markdown` renders the key
reference in README.md from it (``python -m core.experiment_schema`` rewrites
that section; a test keeps the two equal).

Checks that need the registries or several keys at once (encoder names, fusion
subsets, split fractions summing to 1) live in ``core.experiment``.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Union

from core.data.sources import DATA_SOURCES
from core.errors import choices, did_you_mean
from core.kinds import KINDS, get_kind, list_kinds
from core.projection import METHODS as PROJECTION_METHODS

#: ``[dataset] source``: the registered data sources (:data:`core.data.sources.DATA_SOURCES`)
DATASET_SOURCES = tuple(DATA_SOURCES.names())
LATE_FUSIONS = ("late-average", "late-weighted")
#: Allowed experiment and modality names: they become folder and run names.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class Problem(NamedTuple):
    """One thing wrong with an experiment file: what, and what to do."""

    problem: str
    fix: str


@dataclass(frozen=True)
class Key:
    """One value of the file.

    ``type``: ``int``, ``float`` (an integer is accepted), ``str``, ``bool``,
    ``list[str]``, ``list[int]``, ``list[float]``, ``list[list[str]]`` or ``float|table`` (a number, or an inline
    table of numbers keyed by modality). ``min``/``max`` bound
    numbers (``*_open``: the bound itself is excluded; for a list or table: each element);
    ``choices`` bound strings (for a list: each element). ``when = (sibling, values)``: the key applies only
    when the sibling key of the same table has one of ``values``.
    """

    type: str
    doc: str
    default: Any = None
    default_doc: str | None = None
    required: bool = False
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False
    choices: tuple[str, ...] | None = None
    when: tuple[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class Table:
    """A TOML table. Keys not in ``keys`` are refused, unless ``free`` gives their type
    (their names are then checked by ``core.experiment``) or ``open`` (any key, any value:
    encoder keyword arguments, checked against the encoder's signature)."""

    doc: str
    keys: dict[str, "Node"] = field(default_factory=dict)
    free: Key | None = None
    free_doc: str = ""
    open: bool = False
    default_doc: str | None = None
    when: tuple[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class TableOf:
    """``[<table>.<name>]``: one sub-table per name the user chooses (modalities, encoder sets)."""

    doc: str
    name: str
    item: Table


Node = Union[Key, Table, TableOf]


def _train_stage(doc: str, width_key: str, width_doc: str, defaults: dict[str, Any],
                 extra: dict[str, Key] | None = None) -> Table:
    return Table(doc=doc, keys={
        "epochs": Key("int", "maximum training epochs", defaults["epochs"], min=1),
        "lr": Key("float", "AdamW learning rate", defaults["lr"], min=0, min_open=True),
        "batch_size": Key("int", "samples per minibatch", defaults["batch_size"], min=1),
        "weight_decay": Key("float", "AdamW weight decay", defaults["weight_decay"], min=0),
        width_key: Key("int", width_doc, defaults[width_key], min=1),
        "dropout": Key("float", "dropout probability", defaults["dropout"], min=0, max=1, max_open=True),
        "patience": Key("int", "epochs without a better validation top-1 before stopping early",
                        defaults["patience"], min=1),
        "max_train_batches": Key("int", "stop each epoch after this many batches (quick looks and tests)",
                                 default_doc="all batches", min=1),
        "schedule": Key("str", "learning-rate schedule: `constant`, or `onecycle` (warm-up over the first 15 % of "
                        "`epochs`, then cosine decay; early stopping still keeps the best validation epoch)",
                        "constant", choices=("constant", "onecycle")),
        **(extra or {}),
    })


def modalities_table() -> TableOf:
    """``[modalities.<name>]`` from the kinds registered now (:mod:`core.kinds`): the allowed kinds, and
    the keys each kind adds (``empty``, ``columns``, ...), applying only when ``kind`` is one that
    declares them (:attr:`core.kinds.ModalityKind.options`)."""
    first: dict[str, Any] = {}
    owners: dict[str, list[str]] = {}
    for name in list_kinds():
        for key, option in get_kind(name).options.items():
            first.setdefault(key, option)
            owners.setdefault(key, []).append(name)
    per_kind = {key: Key(o.type, o.doc, o.default, default_doc=o.default_doc, choices=o.choices,
                         when=("kind", tuple(owners[key]))) for key, o in first.items()}
    return TableOf(doc="one table per modality; its name is the manifest column", name="<modality>",
                   item=Table(doc="", keys={
        "kind": Key("str", "the modality kind (`core/kinds/`): what its manifest cells hold, how they are checked, "
                    "encoded and explained"
                    + "".join(f"; `{old}` is the old name of `{new}`" for old, new in KINDS.aliases().items()),
                    required=True, choices=tuple(list_kinds())),
        "encoder": Key("str", "a registered encoder of that kind (an unknown name is answered with the list)",
                       default_doc="(required)"),
        "encoder_kwargs": Table(doc="keyword arguments of the encoder, checked against its signature", open=True,
                                default_doc="the encoder's defaults"),
        **per_kind,
    }))


_RGBD = ("source", ("rgbd-sim", "site-sim"))
_SITE = ("source", ("site-sim",))
_MANIFEST = ("source", ("manifest",))

SCHEMA = Table(doc="top level", keys={
    "name": Key("str", "experiment name: runs go to `<runs root>/<name>/` (letters, digits, `_`, `-`, `.`)",
                default_doc="the file's name"),
    "seed": Key("int", "seed of the split, the initialisations and the explanations", 0, min=0),
    "grid_default": Key("list[str]", "the `[encoder_grid]` tags a plain build trains (`--full` trains every tag)",
                        default_doc="the first tag"),
    "dataset": Table(doc="where the samples come from", keys={
        "source": Key("str", "; ".join(f"`{s}` ({DATA_SOURCES.meta(s).get('doc', s)})" for s in DATASET_SOURCES),
                      "manifest", choices=DATASET_SOURCES),
        "manifest": Key("str", "path of the CSV/TSV/Parquet manifest, relative to the experiment file",
                        default_doc="(required)", when=_MANIFEST),
        "split": Table(doc="fractions of the seeded, stratified, group-aware split made when the manifest has no "
                       "`split` column; each > 0, summing to 1", default_doc="0.7 / 0.15 / 0.15", keys={
                           s: Key("float", f"fraction of groups per class in {s}", required=True, min=0, max=1,
                                  min_open=True, max_open=True) for s in ("train", "val", "test")}),
        "min_per_class": Key("int", "drop classes with fewer **samples** (manifest rows) than this; prepare reports "
                             "each dropped class with its count", 1, min=1),
        "max_per_class": Key("int", "keep at most this many samples per class and split (tiny builds)",
                             default_doc="no limit", min=1),
        "repair_video": Key("bool", "repair RGB/depth clip pairs that differ in frame count, size, channels or "
                            "hold NaN depth, instead of refusing them", False, when=_MANIFEST),
        "n_clips": Key("int", "clips to render (balanced over the 4 classes)", 1600, min=12, when=_RGBD),
        "frames": Key("int", "frames per rendered clip", 16, min=2, max=256, when=_RGBD),
        "size": Key("int", "rendered frame side in pixels", 64, min=16, max=512, when=_RGBD),
        "degrade": Key("bool", "degrade depth like a monocular estimate", True, when=_RGBD),
        "audio_rate": Key("int", "sample rate of the rendered site audio (Hz)", 16000, min=8000, max=48000,
                          when=_SITE),
    }),
    "modalities": modalities_table(),
    "encoder_grid": TableOf(doc="encoder sets to compare; run names get the tag as a prefix", name="<tag>",
                            item=Table(doc="", keys={
        "kwargs": Table(doc="keyword arguments merged over each modality's `encoder_kwargs`", open=True),
    }, free=Key("str", "encoder of this set for that modality, or for every modality of that kind"),
        free_doc="<modality or kind>")),
    "fusion": Table(doc="which fusion runs to train", keys={
        "methods": Key("list[str]", "intermediate fusion methods", default_doc="every registered method"),
        "late": Key("list[str]", "late fusion methods", list(LATE_FUSIONS), choices=LATE_FUSIONS),
        "classical": Key("list[str]", "classical heads (scikit-learn, stored without pickle), each "
                         "`<estimator>-<aggregation>`: estimator `logreg` (logistic regression), `svc-linear` (linear "
                         "SVM, one-vs-rest) or `svc-rbf` (RBF SVM, one-vs-rest); aggregation `early` (the "
                         "concatenated embeddings, standardised), `intermediate` (each embedding reduced by PCA, "
                         "then concatenated) or `late` (stacking the unimodal classifiers' probabilities, fitted on "
                         "the validation split); e.g. `[\"logreg-early\", \"svc-rbf-late\"]`", [],
                         default_doc="`[]` (none)"),
        "subsets": Key("list[list[str]]", "modality subsets to fuse, each naming two or more modalities",
                       default_doc="all modalities together"),
        "subset_methods": Key("list[str]", "fusion methods (of `methods`, `late` and `classical`) trained on every "
                              "subset after the first: the first subset gets every method, the others (an ablation "
                              "that drops a modality or fuses a pair) only these",
                              default_doc="every method on every subset"),
        "early": Key("bool", "also train an early-fusion run (clips stacked on the channel axis) for subsets of "
                     "video modalities only", False),
        "dropout_runs": Key("list[str]", "intermediate fusion methods (of `methods`) that also get a twin run "
                            "`<method>-mdrop-<subset>` over the first subset, trained with modality dropout "
                            "(`dropout_probability`), so the method is shown with and without it",
                            default_doc="`[]` (none)"),
        "dropout_probability": Key("float|table", "modality dropout of the `dropout_runs` twins: the probability "
                                   "that a modality's embedding is replaced by a learned missing-modality "
                                   "embedding while training; a number, or a table per modality "
                                   "(`{ image = 0.5, title = 0.2 }`, others 0)", default_doc="`0.3`",
                                   min=0, max=1, max_open=True),
        "adaptive": Table(doc="an adaptive run (AdaMML): per temporal segment, a policy picks which of the `policy` "
                          "modalities run; named `adaptive-<modalities>` (see docs/EXPLAIN.md, \"Adaptive runs\")",
                          default_doc="none", keys={
            "policy": Key("list[str]", "modalities the policy selects per segment: declared modalities of a kind with "
                          "time (video, audio, time series)", required=True),
            "always_on": Key("list[str]", "declared modalities that always run on the whole item and feed the policy "
                             "(cheap inputs such as location or trajectories)", [], default_doc="`[]` (none)"),
            "segments": Key("int", "temporal segments per item", 4, min=1, max=64),
            "cost": Key("float|table", "cost weight lambda_k of each policy modality in the loss: one number for "
                        "every one, or a table per modality (`{ rgb = 1.0, depth = 0.5 }`, others 1.0)", 1.0,
                        min=0),
            "penalty": Key("float", "gamma: the cost term of a wrongly predicted item, in place of its usage term "
                           "(>= 1 makes a wrong prediction cost at least as much as running everything; it weighs "
                           "in choosing the epoch, as the cost of a wrong item has no gradient)", 1.0, min=0),
            "tau_start": Key("float", "Gumbel-softmax temperature of the first epoch (annealed exponentially)", 1.0,
                             min=0, min_open=True),
            "tau_end": Key("float", "Gumbel-softmax temperature of the last epoch (<= tau_start)", 0.1, min=0,
                           min_open=True),
            "cost_scales": Key("list[float]", "one adaptive run per factor on every cost weight: the trade-off curve "
                               "of accuracy against GFLOPs (1 is `adaptive-<modalities>`, another factor f "
                               "`adaptive-x<f>-<modalities>`)", [1.0], min=0),
        }),
    }),
    "train": Table(doc="training hyperparameters", keys={
        "unimodal": _train_stage("stage 1: one encoder + classifier per modality", "hidden",
                                 "classifier hidden width", {
            "epochs": 15, "lr": 2e-3, "batch_size": 64, "weight_decay": 1e-4, "hidden": 256, "dropout": 0.2,
            "patience": 5}, {
            "augment": Key("bool", "random left-right mirroring and small shifts of images and video frames, and "
                           "masked mel bands and time spans of audio spectrograms, while training (the kind's "
                           "`augment`)", False),
            "oof_folds": Key("int", "k of the out-of-fold embeddings stage 2 trains on: each training sample is "
                             "embedded by an encoder trained on the other k-1 folds (k more trainings per trainable "
                             "encoder, each on (k-1)/k of the data); 0 trains fusion heads on the final encoder's "
                             "in-sample embeddings", 3, min=0, max=20),
        }),
        "fusion": _train_stage("stage 2: fusion heads on the cached embeddings", "dim", "fusion dimension", {
            "epochs": 60, "lr": 2e-3, "batch_size": 128, "weight_decay": 1e-4, "dim": 128, "dropout": 0.2,
            "patience": 10}, {
            "modality_dropout": Key("float|table", "modality dropout of every intermediate fusion head: while "
                                    "training, each modality's embedding of a sample is replaced by a learned "
                                    "missing-modality embedding with this probability (a number, or a table per "
                                    "modality, others 0); the head keeps that embedding for a modality missing at "
                                    "test time (docs/ROBUSTNESS.md)", default_doc="`0.0` (off)",
                                    min=0, max=1, max_open=True),
        }),
        "adaptive": _train_stage("adaptive runs (`[fusion.adaptive]`): the policy and the segment classifiers on "
                                 "cached segment embeddings of the frozen unimodal encoders", "dim",
                                 "policy LSTM hidden width", {
            "epochs": 40, "lr": 5e-3, "batch_size": 64, "weight_decay": 1e-4, "dim": 32, "dropout": 0.2,
            "patience": 10}, {
            "patience": Key("int", "epochs without a lower validation loss (cross-entropy plus the cost term, with "
                            "the test-time decisions) before stopping early, counted once the cost weights are "
                            "whole; the best epoch is kept", 10, min=1),
            "warmup_epochs": Key("int", "epochs that first train the segment classifiers alone, every modality "
                                 "running in every segment (no policy, no cost)", 5, min=0),
            "cost_ramp_epochs": Key("int", "epochs over which the cost weights grow from 0 to their value, so the "
                                    "policy learns where each modality helps before the cost prunes it", 10, min=0),
        }),
        "classical": Table(doc="stage 2 classical heads (`[fusion] classical`), fitted by scikit-learn on the cached "
                           "embeddings", keys={
            "C": Key("float", "inverse regularisation strength (scikit-learn's `C`) of every classical estimator", 1.0,
                     min=0, min_open=True),
            "components": Key("int", "PCA components kept per modality by the `intermediate` aggregation (at most "
                              "the embedding size and the training samples)", 32, min=1),
            "max_iter": Key("int", "iteration limit of `logreg` and `svc-linear` (a run that hits it records "
                            "`converged = false` in its config)", 2000, min=1),
        }),
    }),
    "precompute": Table(doc="what `build` computes after training, so the dashboard shows it without computing "
                        "(`build --skip-precompute` skips all of it)", keys={
        "projections": Key("list[str]", "2-D projections of every run's embeddings (the Embeddings page); `[]` for "
                           "none", list(PROJECTION_METHODS), choices=PROJECTION_METHODS),
        "explain_runs": Key("list[str]", "runs to explain with MM-SHAP, in this order (run names as `fusionlens "
                            "list` prints them); `[]` for none",
                            default_doc="the automatic pick: the best fused run, then MultConcat and late-average "
                                        "over the most modalities, then the best intermediate fusion"),
        "explain_max_runs": Key("int", "how many runs the automatic pick explains (0: none); unused when "
                                "`explain_runs` is given", 3, min=0),
        "explain_samples": Key("list[int]", "seeded test samples explained per run: the first run gets the first "
                               "count, the next the next, the last count repeating; a count of at least the test "
                               "split's size explains all of it", [1000], min=1),
        "explain_every_run": Key("int", "seeded test samples explained first for every fused run, the same ones for "
                                 "each (0: none): every fusion method gets MM-SHAP values on a shared sample, at a "
                                 "small cost per run (the runs share each sample's encoded masked variants); they "
                                 "come first, the runs above take the rest of the explanations' time",
                                 0, min=0),
        "explain_seconds": Key("float", "time budget of the explanations in seconds; what it leaves is printed with "
                               "the command that finishes it", 120.0, min=0, min_open=True),
        "robustness_seconds": Key("float", "time budget of the robustness tables (docs/ROBUSTNESS.md) in seconds; "
                                  "0 computes none; the runs it leaves are printed with the command that "
                                  "finishes them", 120.0, min=0),
        "robustness_samples": Key("int", "test samples the robustness tables use at most (a seeded subsample; each "
                                  "table records its n)", 500, min=1),
        "robustness_levels": Key("int", "noise levels of each sweep, evenly spaced from 0 to 1 (MultiBench uses 11)",
                                 11, min=2, max=101),
        "blame_seconds": Key("float", "time budget of the modality blame of every run's test predictions "
                             "(`fusionlens blame`, docs/EXPLAIN.md) in seconds; 0 computes none; the runs it "
                             "leaves are printed with the command that finishes them", 120.0, min=0),
        "build_seconds": Key("float", "time budget of the whole build in seconds, data and training included: "
                             "the blame, explanations and robustness steps share what the steps before them leave "
                             "(1 : 3 : 2, a step's unused time passing to the next), each also within its own "
                             "budget above; what no step reaches is printed with the command that finishes it; "
                             "0: no overall budget", 0.0, min=0),
    }),
})


def defaults(table: Table) -> dict[str, Any]:
    """The keys of ``table`` that have a default, with it."""
    return {k: v.default for k, v in table.keys.items() if isinstance(v, Key) and v.default is not None}


# --------------------------------------------------------------------------- describing values

_TYPE_NAMES = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
               "list[str]": "a list of strings", "list[int]": "a list of integers",
               "list[list[str]]": "a list of lists of strings", "list[float]": "a list of numbers",
               "float|table": "a number or a table of numbers per modality"}


def toml_value(value: Any) -> str:
    """``value`` as it would be written in the file (for messages and docs)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value) if isinstance(value, (int, float)) else str(value)


def _shown(value: Any) -> str:
    text = toml_value(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _what(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"  # TOML dates and times


def _range(key: Key) -> str:
    parts = []
    if key.min is not None:
        parts.append(f"{'>' if key.min_open else '>='} {key.min:g}")
    if key.max is not None:
        parts.append(f"{'<' if key.max_open else '<='} {key.max:g}")
    return " and ".join(parts)


def allowed(key: Key) -> str:
    """What a key accepts, in words: ``an integer >= 1``, ``one of "refuse", "drop", "keep"``."""
    if key.choices:
        listed = ", ".join(json.dumps(c) for c in key.choices)
        return f"{_TYPE_NAMES[key.type]}, each one of {listed}" if key.type.startswith("list") else f"one of {listed}"
    rng = _range(key)
    if rng and (key.type.startswith("list") or key.type == "float|table"):
        return f"{_TYPE_NAMES[key.type]}, each {rng}"
    return f"{_TYPE_NAMES[key.type]} {rng}" if rng else _TYPE_NAMES[key.type]


def _example(key: Key) -> Any:
    if key.default is not None:
        return key.default
    if key.choices:
        return [key.choices[0]] if key.type.startswith("list") else key.choices[0]
    if key.type in ("int", "float", "float|table"):
        lo = key.min if key.min is not None else 0
        value = lo + (1 if key.min_open or key.max_open or key.type == "int" else 0)
        if key.max is not None and value >= key.max:
            value = (lo + key.max) / 2
        return int(value) if key.type == "int" else float(value)
    if key.type == "list[int]":
        return [int(key.min) + 1 if key.min is not None else 1]
    return {"str": "...", "bool": True, "list[str]": ["..."], "list[float]": [1.0],
            "list[list[str]]": [["...", "..."]]}[key.type]


def location(path: tuple[str, ...], name: str) -> str:
    """``[train.unimodal] epochs`` (or ``seed (top level)``)."""
    return f"[{'.'.join(path)}] {name}" if path else f"{name} (top level)"


# --------------------------------------------------------------------------- checking

def _type_ok(kind: str, value: Any) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "list[int]":
        return isinstance(value, list) and all(_type_ok("int", v) for v in value)
    if kind == "list[float]":
        return isinstance(value, list) and all(_type_ok("float", v) for v in value)
    if kind == "float|table":
        values = value.values() if isinstance(value, dict) else [value]
        return all(_type_ok("float", v) for v in values)
    if kind == "list[list[str]]":
        return isinstance(value, list) and all(isinstance(s, list) and all(isinstance(v, str) for v in s)
                                               for s in value)
    raise ValueError(f"unknown schema type {kind!r}")


def _unquoted(key: Key, value: str) -> str | None:
    """The value without quotes, when a quoted string reads as the right type ("10" for an integer)."""
    text = value.strip()
    if key.type == "bool" and text.lower() in ("true", "false"):
        return text.lower()
    if key.type in ("int", "float"):
        try:
            number = int(text) if key.type == "int" else float(text)
        except ValueError:
            return None
        return text if math.isfinite(float(number)) else None
    return None


def check_value(key: Key, value: Any, path: tuple[str, ...], name: str) -> list[Problem]:
    """Type, range and choices of one value."""
    where = location(path, name)
    table = f" in [{'.'.join(path)}]" if path else ""
    example = f"{name} = {toml_value(_example(key))}"
    if not _type_ok(key.type, value):
        fix = f"write {name} as {allowed(key)}, e.g. {example}{table}"
        if isinstance(value, str):
            bare = _unquoted(key, value)
            if bare is not None:
                fix = f"write {name} = {bare} without quotes{table}"
        elif key.type == "int" and isinstance(value, float) and value.is_integer():
            fix = f"write {name} = {int(value)} (a whole number, no decimal point){table}"
        return [Problem(f"{where} = {_shown(value)} is {_what(value)}, not {_TYPE_NAMES[key.type]}", fix)]
    if key.type in ("int", "float", "list[int]", "list[float]", "float|table"):
        bad = False
        numbers = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else [value]
        for number in map(float, numbers):
            bad |= not math.isfinite(number)
            if key.min is not None:
                bad |= number <= key.min if key.min_open else number < key.min
            if key.max is not None:
                bad |= number >= key.max if key.max_open else number > key.max
        if bad:
            return [Problem(f"{where} = {_shown(value)} is out of range (allowed: {allowed(key)})",
                            f"set {example}{table}" + (" (the default)" if key.default is not None else ""))]
    if key.choices:
        for v in value if isinstance(value, list) else [value]:
            if v not in key.choices:
                held = f" holds {json.dumps(v)}, which" if isinstance(value, list) else ""
                return [Problem(f"{where} = {_shown(value)}{held} is not allowed (allowed: {allowed(key)})",
                                f"{did_you_mean(v, key.choices)}use one of "
                                f"{choices(json.dumps(c) for c in key.choices)}")]
    return []


def _unknown(path: tuple[str, ...], name: str, known: list[str], what: str = "key") -> Problem:
    place = f"[{'.'.join(path)}]" if path else "the top level"
    return Problem(f"{place} has an unknown {what} {name!r}",
                   f"{did_you_mean(name, known)}remove it, or use one of the keys of {place}: {choices(known)}")


def _applies(node: Key | Table, values: dict[str, Any], table: Table) -> tuple[bool, str]:
    if node.when is None:
        return True, ""
    sibling, allowed_values = node.when
    spec = table.keys.get(sibling)
    current = values.get(sibling, spec.default if isinstance(spec, Key) else None)
    if isinstance(spec, Key) and spec.choices and current not in spec.choices:
        return True, ""  # the sibling itself is wrong and reported; do not pile a second problem on it
    return current in allowed_values, f"{sibling} = {toml_value(current)}"


def check_table(table: Table, values: Any, path: tuple[str, ...] = ()) -> list[Problem]:
    """Every problem of ``values`` against ``table``, recursively (unknown keys, types, ranges)."""
    if not isinstance(values, dict):
        name = path[-1] if path else "the file"
        return [Problem(f"{location(path[:-1], name)} = {_shown(values)} is {_what(values)}, not a table",
                        f"write it as a [{'.'.join(path)}] table with its keys on the lines below")]
    problems: list[Problem] = []
    for name, value in values.items():
        name = str(name)
        node = table.keys.get(name)
        if node is None:
            if table.open:
                continue
            if table.free is not None:
                problems += check_value(table.free, value, path, name)
                continue
            problems.append(_unknown(path, name, list(table.keys)))
            continue
        if not isinstance(node, TableOf):
            ok, because = _applies(node, values, table)
            if not ok:
                sibling, allowed_values = node.when  # type: ignore[misc]
                problems.append(Problem(
                    f"{location(path, name)} applies only when {sibling} is "
                    f"{' or '.join(json.dumps(v) for v in allowed_values)} (this file has {because})",
                    f"remove {name} from [{'.'.join(path)}]"))
                continue
        if isinstance(node, Key):
            problems += check_value(node, value, path, name)
        elif isinstance(node, Table):
            problems += check_table(node, value, (*path, name))
        else:
            problems += check_table_of(node, value, (*path, name))
    for name, node in table.keys.items():
        if isinstance(node, Key) and node.required and name not in values:
            if _applies(node, values, table)[0]:
                problems.append(Problem(f"[{'.'.join(path)}] lacks {name}",
                                        f"add {name} = {toml_value(_example(node))} ({node.doc})"))
    return problems


def check_table_of(spec: TableOf, values: Any, path: tuple[str, ...]) -> list[Problem]:
    if not isinstance(values, dict):
        return [Problem(f"{location(path[:-1], path[-1])} = {_shown(values)} is {_what(values)}, not a table",
                        f"write one [{'.'.join(path)}.{spec.name}] table per entry")]
    problems: list[Problem] = []
    for name, value in values.items():
        if not NAME_PATTERN.match(str(name)):
            problems.append(Problem(f"[{'.'.join(path)}.{name}]: the name {str(name)!r} has characters other than "
                                    "letters, digits, '_', '-' and '.' (it becomes part of run and folder names)",
                                    "rename it (and the matching manifest column)"))
            continue
        problems += check_table(spec.item, value, (*path, str(name)))
    return problems


def check_schema(raw: dict[str, Any]) -> list[Problem]:
    """Every unknown key, wrong type and out-of-range value of a parsed experiment file (the
    modality table as the kinds registered now make it, so a kind added after import is known)."""
    return check_table(replace(SCHEMA, keys={**SCHEMA.keys, "modalities": modalities_table()}), raw)


# --------------------------------------------------------------------------- documentation

def _default(node: Key | Table) -> str:
    if node.default_doc:
        return node.default_doc
    if isinstance(node, Key) and node.required:
        return "(required)"
    if isinstance(node, Key) and node.default is not None:
        return f"`{toml_value(node.default)}`"
    return ""


def _rows(table: Table, path: tuple[str, ...]) -> Iterator[tuple[str, str, str, str]]:
    """(key, allowed, default, meaning) for every key, depth first, in schema order."""
    for name, node in table.keys.items():
        here = f"[{'.'.join(path)}] {name}" if path else name
        if isinstance(node, Key):
            doc = node.doc
            if node.when:
                doc += f" (only with `{node.when[0]} = {' or '.join(json.dumps(v) for v in node.when[1])}`)"
            yield here, allowed(node), _default(node), doc
        elif isinstance(node, Table) and (node.open or not node.keys):
            yield here, "a table", _default(node), node.doc
        elif isinstance(node, Table):
            if path:
                yield f"[{'.'.join((*path, name))}]", "a table", _default(node), node.doc
            yield from _rows(node, (*path, name))
        else:
            sub = (*path, name, node.name)
            yield f"[{'.'.join(sub)}]", "a table", "", node.doc
            if node.item.free:
                yield f"[{'.'.join(sub)}] {node.item.free_doc}", allowed(node.item.free), "", node.item.free.doc
            yield from _rows(node.item, sub)


def schema_keys() -> list[str]:
    """Every key path of the schema, as the README reference names it."""
    return [row[0] for row in _rows(SCHEMA, ())]


def schema_markdown() -> str:
    """The README's experiment-file key reference, generated from :data:`SCHEMA`."""
    lines = ["| key | allowed | default | meaning |", "|---|---|---|---|"]
    for key, allowed_text, default, doc in _rows(SCHEMA, ()):
        lines.append(f"| `{key}` | {allowed_text.replace('|', '/')} | {default} | {doc} |")
    return "\n".join(lines) + "\n"


README_START = "<!-- experiment-keys:start (generated by `python -m core.experiment_schema`) -->"
README_END = "<!-- experiment-keys:end -->"


def update_readme(path: Path) -> bool:
    """Rewrite the generated key reference between the markers in ``path``; True if it changed."""
    text = path.read_text()
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    new = text[:start] + "\n" + schema_markdown() + text[end:]
    if new != text:
        path.write_text(new)
    return new != text


if __name__ == "__main__":
    readme = Path(__file__).resolve().parent.parent / "README.md"
    print(f"{readme}: {'updated' if update_readme(readme) else 'already up to date'}")
