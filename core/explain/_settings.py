"""Explain settings, declared once: what an explanation computes and what a precompute takes.

* :class:`ExplainSettings`: every setting that decides an explanation's values
  (the output spec, method, permutations, seed, grids, walks, modalities);
  :meth:`ExplainSettings.hash` names the stored files, so results of different
  settings never mix.
* :class:`PrecomputeOptions`: which samples of a run :func:`core.explain.explain_run`
  explains and how often it stores them; they never change a value and are
  not hashed.

Each field is declared once, with its type (the annotation), default, help
text and allowed values (field metadata, :func:`setting`). The engine, the
precompute, the dashboard and the CLI all pass these objects; the
``fusionlens explain`` flags are generated from the fields
(:func:`add_explain_arguments`, :func:`settings_from_args`), and so is the
command that resumes a precompute (:func:`settings_argv`,
:func:`precompute_command`), so flags and settings cannot drift apart.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Self, get_args, get_origin, get_type_hints

import numpy as np

from core.errors import ConfigError, cli_command
from core.explain._estimators import (
    MAX_BLOCKS,
    MAX_WALKS,
    RECOMBINED_BUDGET,
    RECOMBINED_BUDGET_BY_KIND,
)

#: Bumped when a change alters stored values; part of the settings hash. 2: "recombined" walks in
#: independent blocks with a budget by modality kind (not by counted FLOPs), honest standard errors,
#: "auto" the same on unfactorised games, shares' standard errors stored.
ENGINE_VERSION = 2
#: Image grid when no text modality is explained.
DEFAULT_IMAGE_GRID = 3
DEFAULT_VIDEO_GRID = 3
DEFAULT_VIDEO_SEGMENTS = 2
#: Time segments of a time series (each one player per channel group).
DEFAULT_SERIES_SEGMENTS = 8
#: The patch grid of an audio clip's log-mel spectrogram: mel bands x time segments.
DEFAULT_AUDIO_BANDS = 4
DEFAULT_AUDIO_SEGMENTS = 6
#: Fields added after engine version 2: left out of the hash at their default, so that results stored
#: before they existed keep their names (a non-default value is hashed like every other field).
HASHED_UNLESS_DEFAULT: dict[str, Any] = {"series_segments": DEFAULT_SERIES_SEGMENTS,
                                         "audio_bands": DEFAULT_AUDIO_BANDS, "audio_segments": DEFAULT_AUDIO_SEGMENTS}
#: More permutations than this is refused by the engine: sampling error shrinks as
#: 1/sqrt(P), so use "exact" or "recombined" instead.
ENGINE_MAX_PERMUTATIONS = 1000

#: ``"auto"`` and every estimator of ``core/explain/_estimators/``.
ENGINE_METHODS = ("auto", "exact", "permutation", "kernel", "recombined")
GRID_RULES = ("mean", "total")
#: What scalar of the model's output is explained.
OUTPUT_KINDS = ("pred_prob", "true_prob", "class_prob", "logit")


#: what the explanation of an adaptive run is (kept in its settings as ``explained``; the pages say it)
ADAPTIVE_EXPLAINED = ("the prediction given the policy's decisions for this sample: segments the policy skipped are "
                      "absent (never players); the players are the inputs of the segments it used and the always-on "
                      "modalities")


def setting(default: Any, help: str, *, flag: str | None = None, metavar: str | None = None,
            choices: tuple[str, ...] | None = None, default_text: str | None = None) -> Any:
    """A settings field: its default, the help text of its CLI flag, the flag (default
    ``--<name with dashes>``), metavar, allowed values, and how the help names a None default."""
    meta = {"help": help, "flag": flag, "metavar": metavar, "choices": choices, "default_text": default_text}
    return field(default=default, metadata=meta)


class _FieldSettings:
    """What both settings objects share: built from keyword changes with a clear error."""

    @classmethod
    def build(cls, base: Self | None = None, **changes: Any) -> Self:
        """``base`` (default: the defaults) with ``changes`` applied; unknown names are an error."""
        known = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        unknown = [k for k in changes if k not in known]
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} field(s): {', '.join(map(repr, unknown))}",
                              fix=f"use some of: {', '.join(known)}")
        if base is None:
            return cls(**changes)
        if not isinstance(base, cls):
            raise ConfigError(f"settings must be a {cls.__name__}, not {type(base).__name__}",
                              fix=f"pass core.explain.{cls.__name__}(...) or None")
        return dataclasses.replace(base, **changes) if changes else base  # type: ignore[type-var]


# --------------------------------------------------------------------------- output


@dataclass(frozen=True)
class OutputSpec:
    """What scalar is explained: ``kind`` in :data:`OUTPUT_KINDS`, ``class_name`` for a chosen class."""

    kind: str = "pred_prob"
    class_name: str | None = None

    @classmethod
    def parse(cls, output: Any) -> "OutputSpec":
        """Accepts ``"pred_prob"``, ``"true_prob"``, ``"logit"``, ``("class", name)``,
        ``"class:name"``, ``("logit", name)`` / ``"logit:name"`` or an ``OutputSpec``."""
        if isinstance(output, OutputSpec):
            return output
        fix = ("use 'pred_prob', 'true_prob', 'logit', ('class', NAME) / 'class:NAME' "
               "or ('logit', NAME) / 'logit:NAME'")
        if isinstance(output, (tuple, list)):
            if len(output) != 2 or not isinstance(output[1], str):
                raise ConfigError(f"output {output!r} is not (kind, class name)", fix=fix)
            kind, name = str(output[0]), output[1]
        elif isinstance(output, str):
            kind, sep, name = output.partition(":")
            name = name if sep else None
        else:
            raise ConfigError(f"output {output!r} is not understood", fix=fix)
        kind = {"class": "class_prob", "prob": "class_prob"}.get(kind, kind)
        if kind not in OUTPUT_KINDS:
            raise ConfigError(f"unknown output {output!r}", fix=fix)
        if kind == "class_prob" and not name:
            raise ConfigError("output 'class' needs a class name", fix="pass ('class', NAME) or 'class:NAME'")
        if kind in ("pred_prob", "true_prob") and name:
            raise ConfigError(f"output {kind!r} takes no class name", fix=fix)
        return cls(kind, name or None)

    @property
    def key(self) -> str:
        return self.kind if self.class_name is None else f"{self.kind}:{self.class_name}"


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ExplainSettings(_FieldSettings):
    """Everything that decides an explanation's values; :meth:`hash` names stored results.

    ``modalities`` (None = all of the model's) are the explained modalities; the
    others stay present in every coalition (the reference's pair-wise MM-SHAP).
    """

    method: str = setting("auto", "auto: exact where it evaluates no more than recombined, else recombined, "
                                  "for every run alike; permutation = the reference MM-SHAP estimator",
                          choices=ENGINE_METHODS)
    n_permutations: int = setting(10, "permutations of the permutation and kernel estimators",
                                  flag="--permutations", metavar="P")
    seed: int = setting(0, "seeds every sampled method (and draws --n's sample); same seed, same values",
                        metavar="S")
    output: str = setting("pred_prob", "what is explained: pred_prob, true_prob, logit, logit:NAME or class:NAME",
                          metavar="OUTPUT")
    grid: int | str | None = setting(None, "image patch grid: mean (reference rule on the mean text length), "
                                           "total (rule on all text tokens), or an integer p",
                                     metavar="mean|total|P", default_text="mean")
    video_grid: int = setting(DEFAULT_VIDEO_GRID, "video tubes: a G x G grid of each frame", metavar="G")
    video_segments: int = setting(DEFAULT_VIDEO_SEGMENTS, "video tubes: segments in time", metavar="T")
    series_segments: int = setting(DEFAULT_SERIES_SEGMENTS, "time series: segments in time (each one player per "
                                                            "channel group)", metavar="S")
    audio_bands: int = setting(DEFAULT_AUDIO_BANDS, "audio spectrogram patches: mel bands", metavar="F")
    audio_segments: int = setting(DEFAULT_AUDIO_SEGMENTS, "audio spectrogram patches: segments in time", metavar="A")
    n_orders: int | None = setting(None, "orders per modality of the recombined estimator, one per independent "
                                         "block", flag="--orders", metavar="B",
                                   default_text="by the modalities' kinds: "
                                                + ", ".join(f"{b} for {k}" for k, (b, _)
                                                            in sorted(RECOMBINED_BUDGET_BY_KIND.items()))
                                                + f", else {RECOMBINED_BUDGET[0]}")
    n_walks: int | None = setting(None, "walks of the recombined estimator in all (rounded up to whole blocks)",
                                  flag="--walks", metavar="Q",
                                  default_text="by the modalities' kinds: "
                                               + ", ".join(f"{w} per block for {k}" for k, (_, w)
                                                           in sorted(RECOMBINED_BUDGET_BY_KIND.items()))
                                               + f", else {RECOMBINED_BUDGET[1]} per block")
    modalities: tuple[str, ...] | None = setting(None, "explain only this modality (repeatable; the others stay "
                                                       "present)", flag="--modality", metavar="NAME",
                                                 default_text="all")

    def __post_init__(self) -> None:
        if self.method not in ENGINE_METHODS:
            raise ConfigError(f"unknown method {self.method!r}", fix=f"use one of: {', '.join(ENGINE_METHODS)}")
        for name in ("n_permutations", "seed", "video_grid", "video_segments", "series_segments", "audio_bands",
                     "audio_segments"):
            value = getattr(self, name)
            low = 0 if name == "seed" else 1
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ConfigError(f"{name}={value!r} is not valid", fix=f"pass an integer {name} >= {low}")
            object.__setattr__(self, name, int(value))
        if self.n_permutations > ENGINE_MAX_PERMUTATIONS:
            raise ConfigError(
                f"n_permutations={self.n_permutations} is more than sensible (limit {ENGINE_MAX_PERMUTATIONS}): "
                "the sampling error only shrinks as 1/sqrt(permutations)",
                fix="use method='exact' for zero sampling error (small games), method='recombined' "
                    f"(many cheap walks from few encoder passes), or n_permutations <= {ENGINE_MAX_PERMUTATIONS}",
            )
        for name, high in (("n_orders", MAX_BLOCKS), ("n_walks", MAX_WALKS)):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= high:
                raise ConfigError(f"{name}={value!r} is out of range",
                                  fix=f"use an integer between 1 and {high}, or None")
            object.__setattr__(self, name, int(value))
        if self.n_orders is not None and self.n_walks is not None and self.n_walks < self.n_orders:
            raise ConfigError(f"n_walks={self.n_walks} is fewer than the n_orders={self.n_orders} blocks",
                              fix="give every block at least one walk: n_walks >= n_orders")
        grid = self.grid
        if grid is not None and not (isinstance(grid, str) and grid in GRID_RULES):
            if isinstance(grid, str) and grid.isdigit():
                grid = int(grid)
            if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 1:
                raise ConfigError(f"grid={self.grid!r} is not understood",
                                  fix="use None / 'mean' (reference rule on the mean text length), "
                                      "'total' (rule on all text tokens) or a positive integer p")
            object.__setattr__(self, "grid", int(grid))
        if self.grid == "mean":
            object.__setattr__(self, "grid", None)
        object.__setattr__(self, "output", OutputSpec.parse(self.output).key)
        if self.modalities is not None:
            mods = tuple(str(m) for m in self.modalities)
            if not mods or len(set(mods)) != len(mods):
                raise ConfigError(f"modalities={self.modalities!r} must be distinct names",
                                  fix="list each explained modality once, or pass None for all")
            object.__setattr__(self, "modalities", mods)

    @property
    def output_spec(self) -> OutputSpec:
        return OutputSpec.parse(self.output)

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["modalities"] = None if self.modalities is None else list(self.modalities)
        d["engine_version"] = ENGINE_VERSION
        # the constants that shape sampled values and the auto choice: changing one changes the hash
        d["engine"] = {
            "recombined_budget": list(RECOMBINED_BUDGET),
            "recombined_budget_by_kind": {k: list(v) for k, v in sorted(RECOMBINED_BUDGET_BY_KIND.items())},
            "image_grid_without_text": DEFAULT_IMAGE_GRID,
        }
        return d

    def hash(self) -> str:
        """12 hex digits of the settings (and engine version); stored file names carry it."""
        d = self.as_dict()
        for name, default in HASHED_UNLESS_DEFAULT.items():
            if d.get(name) == default:
                del d[name]
        blob = json.dumps(d, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- precompute


def parse_shard(shard: Any) -> tuple[int, int]:
    """``"i/n"`` or ``(i, n)`` -> ``(i, n)`` with ``0 <= i < n``."""
    fix = "write the shard as i/n with 0 <= i < n, for example --shard 0/2 and --shard 1/2"
    if shard is None:
        return 0, 1
    if isinstance(shard, str):
        head, sep, tail = shard.partition("/")
        if not sep:
            raise ConfigError(f"shard {shard!r} is not i/n", fix=fix)
        try:
            i, n = int(head), int(tail)
        except ValueError as exc:
            raise ConfigError(f"shard {shard!r} is not i/n", fix=fix) from exc
    else:
        try:
            i, n = (int(x) for x in shard)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"shard {shard!r} is not (i, n)", fix=fix) from exc
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"shard {i}/{n} is out of range", fix=fix)
    return i, n


@dataclass(frozen=True)
class PrecomputeOptions(_FieldSettings):
    """Which samples of a run's test split a precompute explains, and how often it stores them."""

    n: int | None = setting(None, "explain a seeded sample of N test samples; a larger N extends a smaller "
                                  "one's sample", metavar="N", default_text="all")
    shard: str = setting("0/1", "explain every n-th sample from position i", metavar="i/n")
    flush_every: int = setting(10, "store the samples explained so far every N samples (also every 30 s): a killed "
                                   "precompute loses at most that many", metavar="N")

    def __post_init__(self) -> None:
        n = self.n
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
            raise ConfigError(f"n={n!r} is not a positive sample count", fix="pass --n N with N >= 1, or leave it out")
        if n is not None:
            object.__setattr__(self, "n", int(n))
        i, k = parse_shard(self.shard)
        object.__setattr__(self, "shard", f"{i}/{k}")
        every = self.flush_every
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ConfigError(f"flush_every={every!r} is not a positive sample count",
                              fix="store every N >= 1 samples, for example --flush-every 10")
        object.__setattr__(self, "flush_every", int(every))

    @property
    def shard_index(self) -> tuple[int, int]:
        """``(i, n)`` of the shard."""
        return parse_shard(self.shard)


def split_changes(changes: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keyword changes split into those of :class:`ExplainSettings` and of :class:`PrecomputeOptions`."""
    names = {cls: [f.name for f in dataclasses.fields(cls)] for cls in (ExplainSettings, PrecomputeOptions)}
    unknown = [k for k in changes if not any(k in n for n in names.values())]
    if unknown:
        raise ConfigError(f"unknown explain setting(s): {', '.join(map(repr, unknown))}",
                          fix=f"use some of: {', '.join(names[ExplainSettings] + names[PrecomputeOptions])}")
    return ({k: v for k, v in changes.items() if k in names[ExplainSettings]},
            {k: v for k, v in changes.items() if k in names[PrecomputeOptions]})


# --------------------------------------------------------------------------- the CLI form


_CLI_CLASSES = (PrecomputeOptions, ExplainSettings)


def _int_or_word(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _cli_type(hint: Any) -> tuple[Callable[[str], Any], bool]:
    """How a flag's text becomes the field's value: (converter, repeatable)."""
    kinds = [a for a in (get_args(hint) or (hint,)) if a is not type(None)]
    if any(get_origin(a) is tuple for a in kinds):
        return str, True
    if kinds == [int]:
        return int, False
    if set(kinds) == {int, str}:
        return _int_or_word, False
    if kinds == [str]:
        return str, False
    raise TypeError(f"no CLI form for a setting of type {hint!r}")  # a new field needs one here


def cli_fields() -> list[tuple[type, dataclasses.Field, str]]:
    """``(settings class, field, flag)`` of every ``fusionlens explain`` flag made from the settings."""
    return [(cls, f, f.metadata.get("flag") or "--" + f.name.replace("_", "-"))
            for cls in _CLI_CLASSES for f in dataclasses.fields(cls)]


def add_explain_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per field of :class:`PrecomputeOptions` and :class:`ExplainSettings`."""
    hints = {cls: get_type_hints(cls) for cls in _CLI_CLASSES}
    for cls, f, flag in cli_fields():
        convert, repeat = _cli_type(hints[cls][f.name])
        meta = f.metadata
        default = meta["default_text"] if f.default is None else f.default
        kwargs: dict[str, Any] = dict(dest=f.name, type=convert, metavar=meta["metavar"],
                                      help=f"{meta['help']} (default: {default})")
        if repeat:
            parser.add_argument(flag, action="append", **kwargs)
        else:
            parser.add_argument(flag, default=f.default, choices=meta["choices"], **kwargs)


def settings_from_args(args: argparse.Namespace | Mapping[str, Any]) -> tuple[ExplainSettings, PrecomputeOptions]:
    """The settings and options of parsed ``explain`` flags (fields not given keep their defaults)."""
    values = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    picked = {cls: {f.name: values[f.name] for f in dataclasses.fields(cls) if values.get(f.name) is not None}
              for cls in _CLI_CLASSES}
    return ExplainSettings(**picked[ExplainSettings]), PrecomputeOptions(**picked[PrecomputeOptions])


def settings_argv(settings: ExplainSettings | None = None, options: PrecomputeOptions | None = None) -> list[str]:
    """The ``explain`` flags that give ``settings`` and ``options`` (defaults left out)."""
    argv: list[str] = []
    objects = {PrecomputeOptions: options, ExplainSettings: settings}
    for cls, f, flag in cli_fields():
        obj = objects[cls]
        value = None if obj is None else getattr(obj, f.name)
        if value is None or value == f.default:
            continue
        for item in (value if isinstance(value, tuple) else (value,)):
            argv += [flag, str(item)]
    return argv


def precompute_command(run_dir: str | Path, settings: ExplainSettings | None = None,
                       options: PrecomputeOptions | None = None) -> str:
    """The ``fusionlens explain`` command that runs (and resumes) this precompute of ``run_dir``."""
    return " ".join([f"{cli_command()} explain", str(run_dir),
                     *(shlex.quote(a) for a in settings_argv(settings, options))])
