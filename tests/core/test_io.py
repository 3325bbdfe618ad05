"""core.io: atomic writes (a failed write leaves the old file and no temporary), stale temporaries,
pickle-free reads whose errors name the file and the fix, and the stable hash."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import BundleError
from core.io import (
    atomic_path,
    file_sha256,
    read_json,
    read_parquet,
    read_tensors,
    remove_stale_tmp,
    stable_hash,
    write_json,
    write_parquet,
    write_tensors,
)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_json_round_trip_with_numpy_and_paths(tmp_path):
    path = tmp_path / "deep" / "er" / "x.json"  # parents are created
    write_json(path, {"a": np.int64(3), "b": np.float32(0.5), "c": np.arange(3), "p": Path("/x/y"), "n": None})
    assert read_json(path) == {"a": 3, "b": 0.5, "c": [0, 1, 2], "p": "/x/y", "n": None}
    assert _leftovers(path.parent) == []


def test_json_refuses_what_it_cannot_write_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "x.json"
    write_json(path, {"old": True})
    with pytest.raises(TypeError, match="cannot write object to JSON"):
        write_json(path, {"bad": object()})
    assert read_json(path) == {"old": True}
    assert _leftovers(tmp_path) == []


def test_atomic_path_renames_only_on_success(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".table.csv.") and tmp.name.endswith(".tmp")
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and _leftovers(tmp_path) == []
    with atomic_path(path) as tmp:
        tmp.write_text("new")
    assert path.read_text() == "new" and _leftovers(tmp_path) == []


def test_read_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(BundleError) as info:
        read_json(tmp_path / "gone.json", what="run config")
    assert info.value.problem == f"run config {tmp_path / 'gone.json'} is missing" and info.value.fix
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(BundleError, match=r"run config .*bad\.json is corrupted.*Fix: delete it and rerun"):
        read_json(tmp_path / "bad.json", what="run config")
    (tmp_path / "bytes.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(BundleError, match="is corrupted"):
        read_json(tmp_path / "bytes.json")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 but not really")
    with pytest.raises(BundleError, match=r"predictions .*bad\.parquet is unreadable.*Fix:"):
        read_parquet(tmp_path / "bad.parquet", what="predictions")
    with pytest.raises(BundleError, match="is missing"):
        read_parquet(tmp_path / "none.parquet")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00garbage" * 4)
    with pytest.raises(BundleError, match=r"weights .*bad\.safetensors is corrupted.*Fix:"):
        read_tensors(tmp_path / "bad.safetensors")


def test_parquet_and_tensors_round_trip(tmp_path):
    frame = pd.DataFrame({"id": ["a", "b"], "x": [1.5, 2.5]})
    write_parquet(tmp_path / "t.parquet", frame)
    pd.testing.assert_frame_equal(read_parquet(tmp_path / "t.parquet"), frame)
    assert list(read_parquet(tmp_path / "t.parquet", columns=["x"]).columns) == ["x"]
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "i": np.array([1, 2], dtype=np.int64)}
    write_tensors(tmp_path / "w.safetensors", arrays, metadata={"k": "v"})
    back = read_tensors(tmp_path / "w.safetensors")
    assert set(back) == {"w", "i"}
    assert np.array_equal(back["w"].numpy(), arrays["w"]) and np.array_equal(back["i"].numpy(), arrays["i"])
    assert _leftovers(tmp_path) == []


def test_remove_stale_tmp_keeps_live_writers(tmp_path):
    with atomic_path(tmp_path / "a.json") as tmp:  # this process's own temporary: a live writer
        tmp.write_text("{}")
        live = tmp
        # a temporary of a finished process on this host
        proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        dead_pid = int(proc.stdout)
        host = live.name.split(".")[-3].split("-")[0]
        dead = tmp_path / f".b.json.{host}-{dead_pid}.abc.tmp"
        dead.write_text("{}")
        other = tmp_path / ".c.json.notmine.tmp"  # no host/pid in the name: only removed when old
        other.write_text("{}")
        removed = remove_stale_tmp(tmp_path)
        assert removed == [dead] and live.exists() and other.exists()
        old = 10 * 3600
        os.utime(other, (os.path.getmtime(other) - old,) * 2)
        assert remove_stale_tmp(tmp_path) == [other]
    assert (tmp_path / "a.json").is_file() and _leftovers(tmp_path) == []
    assert remove_stale_tmp(tmp_path / "no-such-folder") == []


def test_stable_hash_is_order_independent_and_fixed():
    a = {"b": [1, 2], "a": {"y": 1.5, "x": "s"}}
    b = {"a": {"x": "s", "y": 1.5}, "b": [1, 2]}
    assert stable_hash(a) == stable_hash(b) and len(stable_hash(a)) == 16
    assert stable_hash(a, 8) == stable_hash(a)[:8]
    assert stable_hash(a) != stable_hash({**a, "b": [2, 1]})
    # the same recipe in every process and version: run fingerprints and cache folders depend on it
    expected = hashlib.sha256(json.dumps(a, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert stable_hash(a) == expected


def test_file_sha256(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * (3 << 20))  # over one read chunk
    assert file_sha256(path) == hashlib.sha256(b"x" * (3 << 20)).hexdigest()


def test_atomic_writes_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    import os

    from core.io import write_json

    target = tmp_path / "report.json"
    write_json(target, {"a": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert (target.stat().st_mode & 0o777) == (0o666 & ~mask)
