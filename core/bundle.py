"""Run bundles: one directory per trained model.

``save_run`` writes the whole bundle into ``<run>.partial/`` and renames it to
``<run>/`` when complete, so a crash never leaves a run that looks finished.
``load_run`` checks the format version, every file, and the keys and types of
``config.json``, ``metrics.json`` and ``predictions.parquet``, so every reader
can trust them; ``Run.model()`` rebuilds the model from ``config.json`` (JSON)
and ``model.safetensors`` (safetensors): nothing is unpickled and no code from
the bundle is executed. A pretrained model that ``config.json`` names loads
under the rules of :mod:`core.model_sources`. Which runs exist, and in what
state, is :mod:`core.catalog`'s job.
"""
from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.errors import BundleError, FusionLensError, cli_command
from core.io import read_json, read_parquet, read_tensors, write_json, write_parquet, write_tensors

if TYPE_CHECKING:  # torch loads only when a model is rebuilt (keeps dashboard start-up fast)
    import torch

FORMAT_VERSION = 1
REQUIRED_FILES = ("config.json", "model.safetensors", "predictions.parquet", "metrics.json", "embeddings.safetensors")
#: What ``load_run`` requires of ``config.json``, ``metrics.json`` and ``predictions.parquet``.
CONFIG_KEYS = ("experiment", "run", "strategy", "fusion", "modalities", "classes", "encoders", "head")
STRATEGIES = ("unimodal", "early", "intermediate", "late", "classical", "adaptive")
METRIC_KEYS = ("top1", "top3", "top5", "macro_f1", "n_params", "inference_ms_per_sample")
SCORE_KEYS = ("top1", "top3", "top5", "macro_f1")
PREDICTION_COLUMNS = ("id", "label", "pred", "correct", "confidence", "top1_label", "top1_prob")


def save_run(run_dir: Path, config: dict[str, Any], weights: dict[str, torch.Tensor], predictions: pd.DataFrame,
             embeddings: dict[str, torch.Tensor | np.ndarray], metrics: dict[str, Any],
             tables: dict[str, pd.DataFrame] | None = None) -> Path:
    """Write a complete bundle atomically (staged in a sibling folder, then renamed); ``tables``: further
    Parquet files of the run by file name (an adaptive run's ``decisions.parquet``)."""
    run_dir = Path(run_dir)
    staging = run_dir.with_name(run_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    config = {"format_version": FORMAT_VERSION, **config}
    write_tensors(staging / "model.safetensors", weights, metadata={"format_version": str(FORMAT_VERSION)})
    write_parquet(staging / "predictions.parquet", predictions)
    write_tensors(staging / "embeddings.safetensors", embeddings)
    write_json(staging / "metrics.json", metrics)
    for name, table in (tables or {}).items():
        write_parquet(staging / name, table)
    write_json(staging / "config.json", config)  # last: its presence marks a complete bundle
    if run_dir.exists():
        old = run_dir.with_name(run_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        run_dir.rename(old)
        staging.rename(run_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(run_dir)
    return run_dir


def is_complete(run_dir: Path) -> bool:
    return all((Path(run_dir) / f).is_file() for f in REQUIRED_FILES)


@dataclass
class Run:
    """A loaded run bundle. Tables load eagerly; the model is rebuilt on demand."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    predictions: pd.DataFrame

    @property
    def name(self) -> str:
        return self.config["run"]

    @property
    def experiment(self) -> str:
        return self.config["experiment"]

    @property
    def modalities(self) -> list[str]:
        return list(self.config["modalities"])

    @property
    def classes(self) -> list[str]:
        return list(self.config["classes"])

    def embeddings(self) -> dict[str, np.ndarray]:
        tensors = read_tensors(self.path / "embeddings.safetensors", what="embeddings")
        return {k: v.numpy() for k, v in tensors.items()}

    @functools.cached_property
    def _model(self) -> Any:
        from core.model import (AdaptiveClassifier, EarlyFusionClassifier, MultimodalClassifier, build_encoder,
                                build_head)

        cfg = self.config
        try:
            head = build_head(cfg["head"])
            if cfg["strategy"] == "early":
                joint = build_encoder(cfg["early"]["joint"])
                model = EarlyFusionClassifier(cfg["modalities"], joint, head, cfg["classes"], cfg["early"]["channels"])
            elif cfg["strategy"] == "adaptive":
                encoders = {m: build_encoder(cfg["encoders"][m]) for m in cfg["modalities"]}
                model = AdaptiveClassifier(cfg["modalities"], encoders, head, cfg["classes"],
                                           cfg["adaptive"]["segment_inputs"])
            else:
                encoders = {m: build_encoder(cfg["encoders"][m]) for m in cfg["modalities"]}
                model = MultimodalClassifier(cfg["modalities"], encoders, head, cfg["classes"])
            state = read_tensors(self.path / "model.safetensors", what="model weights")
            model.load_owned_state_dict(state)
        except BundleError:
            raise
        except FusionLensError as exc:  # e.g. a model folder that may not be loaded
            raise BundleError(f"run {self.path.name} cannot be rebuilt: {exc.problem}", fix=exc.fix) from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"run {self.path} cannot be rebuilt ({type(exc).__name__}: {exc})",
                              fix=f"the bundle is corrupted or from another version; "
                                  f"{_rebuild_fix(self.path, self.path.name)}") from exc
        model.eval()
        return model

    def model(self) -> Any:
        """The rebuilt ``MultimodalClassifier`` in eval mode (built once per Run)."""
        return self._model


def experiment_arg(exp_dir: str | Path) -> str:
    """How a command names the experiment of ``exp_dir``: the experiment file recorded in its
    ``dataset.json`` at prepare while that ``.toml`` still exists (a user's own ``my.toml``),
    else the folder's name (a demo in ``experiments/``). Never raises: it only shapes messages."""
    import json
    import shlex

    exp_dir = Path(exp_dir)
    try:
        info = json.loads((exp_dir / "dataset.json").read_text())
        value = info.get("experiment_file") if isinstance(info, dict) else None
        if isinstance(value, str) and value.endswith(".toml") and Path(value).is_absolute() and Path(value).is_file():
            if Path(value).stem == exp_dir.name and Path(value).parent == Path.cwd():
                return exp_dir.name
            return shlex.quote(value)
    except (OSError, ValueError):
        pass
    return exp_dir.name or "<experiment>"


def _rebuild_fix(run_dir: Path, run: str) -> str:
    exp = experiment_arg(Path(run_dir).parent)
    cli = cli_command()
    return f"rebuild it with `{cli} train {exp} --run {run} --force` (or `{cli} build {exp} --force`)"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


def config_problems(config: Any) -> list[str]:
    """What is wrong with a run's ``config.json`` (missing keys, wrong types); empty when valid."""
    if not isinstance(config, dict):
        return [f"config.json holds a {type(config).__name__}, not an object"]
    out = []
    for key in CONFIG_KEYS:
        if key not in config:
            out.append(f"config.json lacks {key!r}")
    for key in ("experiment", "run", "fusion"):
        if key in config and not (isinstance(config[key], str) and config[key]):
            out.append(f"config.json {key!r} is {config[key]!r}, not a non-empty string")
    if "strategy" in config and config["strategy"] not in STRATEGIES:
        out.append(f"config.json 'strategy' is {config['strategy']!r}, not one of {', '.join(STRATEGIES)}")
    for key in ("modalities", "classes"):
        if key in config and not _is_str_list(config[key]):
            out.append(f"config.json {key!r} is {config[key]!r}, not a non-empty list of names")
    if "head" in config and not isinstance(config["head"], dict):
        out.append(f"config.json 'head' is {config['head']!r}, not an object")
    elif isinstance(config.get("head"), dict) and _is_str_list(config.get("classes")):
        n_out = config["head"].get("n_classes")
        if n_out is not None and n_out != len(config["classes"]):  # the weights could not fit the classes
            out.append(f"config.json 'classes' has {len(config['classes'])} names but the head has "
                       f"{n_out!r} outputs ('head.n_classes')")
    encoders = config.get("encoders")
    if "encoders" in config and not isinstance(encoders, dict):
        out.append(f"config.json 'encoders' is {encoders!r}, not an object")
    elif isinstance(encoders, dict) and _is_str_list(config.get("modalities")):
        for m in config["modalities"]:
            spec = encoders.get(m)
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) \
                    or not isinstance(spec.get("kwargs", {}), dict):
                out.append(f"config.json 'encoders' has no valid spec for modality {m!r} ({spec!r})")
    if config.get("strategy") == "early":
        early = config.get("early")
        if not isinstance(early, dict) or not isinstance(early.get("joint"), dict) \
                or not isinstance(early.get("channels"), dict):
            out.append("config.json of an early-fusion run lacks 'early' {'joint': ..., 'channels': ...}")
    if config.get("strategy") == "adaptive":
        adaptive = config.get("adaptive")
        if not isinstance(adaptive, dict) or not isinstance(adaptive.get("segment_inputs"), dict) \
                or not isinstance(adaptive.get("policy"), list):
            out.append("config.json of an adaptive run lacks 'adaptive' {'policy': [...], 'segment_inputs': ...}")
    if "encoder_set" in config and not isinstance(config["encoder_set"], str):
        out.append(f"config.json 'encoder_set' is {config['encoder_set']!r}, not a string")
    return out


def _is_count(value: Any) -> bool:
    return _is_number(value) and bool(np.isfinite(value)) and value >= 0


def _gflops_problems(metrics: dict[str, Any]) -> list[str]:
    """The optional compute-cost keys (core.compute): absent in runs built before them."""
    out = []
    for key in ("gflops_per_sample", "gflops_max_per_sample"):
        if key in metrics and not _is_count(metrics[key]):
            out.append(f"metrics.json {key!r} is {metrics[key]!r}, not a number >= 0")
    parts = metrics.get("gflops_by_part", {})
    if not isinstance(parts, dict) or not all(isinstance(k, str) and _is_count(v) for k, v in parts.items()):
        out.append("metrics.json 'gflops_by_part' is not an object of {part: GFLOPs >= 0}")
    rates = metrics.get("gflops_selection_rates", {})
    if not isinstance(rates, dict) or not all(_is_count(v) and v <= 1 for v in rates.values()):
        out.append("metrics.json 'gflops_selection_rates' is not an object of {part: fraction between 0 and 1}")
    uncounted = metrics.get("gflops_uncounted", [])
    if not isinstance(uncounted, list) or not all(isinstance(v, str) for v in uncounted):
        out.append("metrics.json 'gflops_uncounted' is not a list of strings")
    return out


def metrics_problems(metrics: Any) -> list[str]:
    """What is wrong with a run's ``metrics.json``; empty when valid."""
    if not isinstance(metrics, dict):
        return [f"metrics.json holds a {type(metrics).__name__}, not an object"]
    out = []
    for key in METRIC_KEYS:
        if key not in metrics:
            out.append(f"metrics.json lacks {key!r}")
        elif not _is_number(metrics[key]):
            out.append(f"metrics.json {key!r} is {metrics[key]!r}, not a number")
        elif key in SCORE_KEYS and np.isfinite(metrics[key]) and not 0.0 <= metrics[key] <= 1.0:
            out.append(f"metrics.json {key!r} is {metrics[key]!r}, not between 0 and 1")
    if "n_params" in metrics and _is_number(metrics["n_params"]) and metrics["n_params"] < 0:
        out.append(f"metrics.json 'n_params' is {metrics['n_params']!r}, not a count")
    out += _gflops_problems(metrics)
    per_class = metrics.get("per_class", {})
    if not isinstance(per_class, dict) or not all(
            isinstance(v, dict) and all(_is_number(v[k]) for k in ("precision", "recall", "f1", "support") if k in v)
            for v in per_class.values()):
        out.append("metrics.json 'per_class' is not an object of {class: {precision, recall, f1, support}} numbers")
    confusion = metrics.get("confusion", {})
    if confusion:
        labels, matrix = (confusion.get("labels"), confusion.get("matrix")) if isinstance(confusion, dict) \
            else (None, None)
        square = (isinstance(labels, list) and isinstance(matrix, list) and len(matrix) == len(labels)
                  and all(isinstance(r, list) and len(r) == len(labels) and all(_is_number(v) for v in r)
                          for r in matrix))
        if not square:
            out.append("metrics.json 'confusion' is not {'labels': [...], 'matrix': a square table of counts}")
    return out


def predictions_problems(frame: pd.DataFrame) -> list[str]:
    """What is wrong with a run's ``predictions.parquet`` (missing columns, wrong types)."""
    out = []
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        out.append(f"predictions.parquet lacks column(s) {', '.join(missing)}")
    probs = ["confidence", *(c for c in frame.columns if c.startswith("top") and c.endswith("_prob"))]
    for col in probs:
        if col in frame.columns and not pd.api.types.is_numeric_dtype(frame[col]):
            out.append(f"predictions.parquet column {col!r} is {frame[col].dtype}, not numeric")
    unpaired = [c for c in frame.columns if c.startswith("top") and c.endswith("_label")
                and c[:-len("_label")] + "_prob" not in frame.columns]
    if unpaired:
        out.append(f"predictions.parquet has {', '.join(unpaired)} without the matching _prob column(s)")
    if "correct" in frame.columns and not pd.api.types.is_bool_dtype(frame["correct"]):
        out.append(f"predictions.parquet column 'correct' is {frame['correct'].dtype}, not boolean")
    if "id" in frame.columns and frame["id"].astype(str).duplicated().any():
        out.append("predictions.parquet has duplicate ids")
    return out


def load_run(run_dir: str | Path) -> Run:
    """Load and check a bundle: every required file, the format version, and the keys and
    types of ``config.json``, ``metrics.json`` and ``predictions.parquet`` (so every reader
    can trust them). A problem is a :class:`BundleError` naming the file and the fix."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BundleError(f"run directory {run_dir} does not exist", fix=f"list runs with `{cli_command()} list`")
    missing = [f for f in REQUIRED_FILES if not (run_dir / f).is_file()]
    if missing:
        raise BundleError(f"run {run_dir} is incomplete: missing {', '.join(missing)}",
                          fix=f"rerun `{cli_command()} build {experiment_arg(run_dir.parent)}` (finished runs are kept, "
                              "this one is redone)")
    config = read_json(run_dir / "config.json", what="run config")
    if not isinstance(config, dict):
        raise BundleError(f"run {run_dir.name}: {config_problems(config)[0]}",
                          fix=f"rebuild it with `{cli_command()} build {experiment_arg(run_dir.parent)} --force`")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(f"run {run_dir} has format version {version!r}; this FusionLens reads version {FORMAT_VERSION}",
                          fix=f"rebuild it with `{cli_command()} build {experiment_arg(run_dir.parent)} --force`")
    problems = config_problems(config)
    if problems:
        raise BundleError(f"run {run_dir.name}: {'; '.join(problems)}", fix=_rebuild_fix(run_dir, run_dir.name))
    metrics = read_json(run_dir / "metrics.json", what="run metrics")
    problems = metrics_problems(metrics)
    if problems:
        raise BundleError(f"run {run_dir.name}: {'; '.join(problems)}", fix=_rebuild_fix(run_dir, run_dir.name))
    predictions = read_parquet(run_dir / "predictions.parquet", what="predictions")
    problems = predictions_problems(predictions)
    if problems:
        raise BundleError(f"run {run_dir.name}: {'; '.join(problems)}", fix=_rebuild_fix(run_dir, run_dir.name))
    return Run(path=run_dir, config=config, metrics=metrics, predictions=predictions)
