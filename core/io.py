"""Atomic, pickle-free reads and writes of JSON, Parquet and safetensors.

Every write goes to a temporary file in the destination folder and is renamed
over the final name once complete, so a crash never leaves a half-written
artifact that the dashboard or a resumed run would read. The temporary name is
hidden and ends in ``.tmp`` (``.<name>.<host>-<pid>.<random>.tmp``), so readers
never match it; :func:`remove_stale_tmp` deletes the ones a killed writer left.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import pandas as pd

from core.errors import BundleError, cli_command


#: A temporary file no live writer has touched for this long is stale, whoever wrote it.
STALE_TMP_SECONDS = 3600.0
_TMP_NAME = re.compile(r"^\..+\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)\.[^.]+\.tmp$")


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: read once at import (setting the umask to read it is not thread-safe)
_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # host and pid in the name tell remove_stale_tmp whether the writer is still alive
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_host_tag()}-{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file 0600; a finished file gets the mode any new file gets (the umask's)
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _writer_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # another user's process, or no signals here: assume alive
        return True
    return True


def remove_stale_tmp(folder: str | os.PathLike, *, max_age: float = STALE_TMP_SECONDS) -> list[Path]:
    """Delete the temporary files (``.*.tmp``) in ``folder`` that a killed writer left behind.

    A file is stale when its writer (host and pid in the name) ran on this host and is
    gone, or when nobody touched it for ``max_age`` seconds (a writer on another host,
    or a name without a pid). Files of live writers stay: a concurrent run (another
    shard, the dashboard) is still writing them. Returns the deleted paths.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    here, now, removed = _host_tag(), time.time(), []
    for path in folder.glob(".*.tmp"):
        match = _TMP_NAME.match(path.name)
        try:
            age = now - path.stat().st_mtime
        except FileNotFoundError:  # renamed or removed meanwhile
            continue
        dead = match is not None and match["host"] == here and not _writer_alive(int(match["pid"]))
        if dead or age > max_age:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def write_json(path: str | os.PathLike, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=_json_default, allow_nan=True) + "\n")


def read_json(path: str | os.PathLike, *, what: str = "file") -> Any:
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{what} {path} is missing", fix=f"rebuild it (see `{cli_command()} --help`)")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(
            f"{what} {path} is corrupted ({exc})", fix="delete it and rerun the step that writes it"
        ) from exc


def plain_json(value: Any) -> Any:
    """``value`` as plain JSON: numpy scalars and arrays unwrapped, NaN and inf as None, paths as text."""
    if isinstance(value, Mapping):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain_json(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def read_checked_report(path: str | os.PathLike, *, what: str, command: str,
                        problems: Callable[[Any], list[str]]) -> Any:
    """A report a post-hoc step stored with a run (``trust.json``, ``robustness.json``), checked; None when
    the file is absent. Unreadable, not JSON, or with ``problems(report)``: a :class:`BundleError` naming
    the file, with "delete it and rerun ``command``" as the fix."""
    path = Path(path)
    if not path.is_file():
        return None
    fix = f"delete it and rerun `{command}`"
    try:
        report = read_json(path, what=what)
    except BundleError as exc:
        raise BundleError(exc.problem, fix=fix) from exc
    except OSError as exc:
        raise BundleError(f"{what} {path} cannot be read ({exc.strerror or exc})", fix=fix) from exc
    found = problems(report)
    if found:
        raise BundleError(f"{what} {path} is damaged: {'; '.join(found)}", fix=fix)
    return report


def write_parquet(path: str | os.PathLike, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def read_parquet(path: str | os.PathLike, *, what: str = "table", columns: list[str] | None = None) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{what} {path} is missing", fix=f"rebuild it (see `{cli_command()} --help`)")
    try:
        return pd.read_parquet(path, columns=columns)
    except Exception as exc:  # pyarrow raises several types for corrupted files
        raise BundleError(
            f"{what} {path} is unreadable ({type(exc).__name__}: {exc})",
            fix="delete it and rerun the step that writes it",
        ) from exc


def write_tensors(path: str | os.PathLike, tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> None:
    """Save a dict of torch tensors or numpy arrays as safetensors, atomically."""
    import torch
    from safetensors.torch import save_file

    clean = {}
    for key, value in tensors.items():
        t = torch.as_tensor(value) if not isinstance(value, torch.Tensor) else value
        clean[key] = t.detach().cpu().contiguous().clone()
    with atomic_path(path) as tmp:
        save_file(clean, str(tmp), metadata=metadata)


def read_tensors(path: str | os.PathLike, *, what: str = "weights") -> dict[str, Any]:
    """Load safetensors into torch tensors; never executes code from the file."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{what} {path} is missing", fix=f"rebuild it (see `{cli_command()} --help`)")
    try:
        return load_file(str(path))
    except Exception as exc:
        raise BundleError(
            f"{what} {path} is corrupted ({type(exc).__name__}: {exc})",
            fix=f"delete the run directory and rerun `{cli_command()} build`",
        ) from exc


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def stable_hash(obj: Any, length: int = 16) -> str:
    """A short SHA-256 of ``obj`` as sorted JSON: the same value gives the same hash in every
    process and version (fingerprints of settings, data and runs; cache folder names)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:length]
