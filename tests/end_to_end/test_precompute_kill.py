"""Crash safety of the precompute: ``kill -9`` of ``project`` and ``explain`` at several points.

Each test copies the tiny built experiment twice: one copy gets an uninterrupted run (the
reference, computed in the test process by the function the CLI calls), the other is
killed (SIGKILL, no handler runs) right after a file is written and at seeded random
delays, and checked after every kill: every file that exists parses, and the readers (``load_explanations``, ``list_projections`` / ``load_projection``) show only
complete results equal to the reference's. A rerun then resumes (finished parts are not
redone) and ends with exactly the reference's rows. Values are compared for equality:
both copies are computed by the same code, with the same seed and thread count
(``FUSIONLENS_THREADS``, set by the test session and inherited by the subprocesses),
and every step is deterministic for fixed threads and inputs (a sample's values depend
only on the sample and the settings); an inequality is a resume bug, not rounding.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest

from core.explain import explain_run, load_explanations
from core.io import STALE_TMP_SECONDS, atomic_path, remove_stale_tmp
from core.projection import (
    compute_projection,
    list_projections,
    load_projection,
    load_run_embeddings,
    project_runs,
    save_projection,
)

REPO = Path(__file__).resolve().parents[2]
EXPLAIN_RUNS = ("multconcat-image+title+description", "concat-image+title+description",
                "late-average-image+title+description")
#: seeded, so a failure names a reproducible delay
RANDOM_DELAYS = np.random.default_rng(8).uniform(0.2, 1.0, size=2)
#: columns (and keys of the settings column) that legitimately differ between two computations of a row
TIMING_COLUMNS = ["computed_at", "seconds"]
#: cost records in a row's settings that depend on the runs explained beside it (tables lent between
#: runs sharing an encoder, core.explain.SharedTables), not on the sample and the settings
COST_RECORDS = ["encoder_rows", "shared_tables"]


def copy_root(tiny_built, dest: Path) -> Path:
    """The tiny experiment's runs root, without anything a precompute would write."""
    _, root = tiny_built
    shutil.copytree(root, dest, ignore=shutil.ignore_patterns("explanations", "projections", ".*.tmp"))
    return dest


def cli(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "core", "--quiet", "--runs-dir", str(root), *args]


def run_to_end(command: list[str]) -> str:
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def start_and_kill(command: list[str], when: Callable[[], bool], delay: float | None) -> bool:
    """Start ``command``; SIGKILL it once ``when()`` holds (polled every 5 ms), then after
    ``delay`` more seconds (None: right away). Returns False when it finished first."""
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not when():
            if proc.poll() is not None:
                return False
            assert time.monotonic() < deadline, "the precompute never reached the kill point"
            time.sleep(0.005)
        if delay:
            time.sleep(delay)
        if proc.poll() is not None:
            return False
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        return True
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def check_every_file_parses(folders: list[Path]) -> list[Path]:
    """Every visible file parses; returns the hidden temporary files (a kill's leftovers)."""
    leftovers = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.name.startswith("."):
                assert path.name.endswith(".tmp"), path
                leftovers.append(path)
            elif path.suffix == ".parquet":
                pd.read_parquet(path)
            elif path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix == ".csv":
                pd.read_csv(path)
            else:
                raise AssertionError(f"unexpected file {path}")
    return leftovers


# --------------------------------------------------------------------------- explain


def explanation_rows(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run's stored rows as a reader sees them (any warning is a failure), sorted."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        samples, features = load_explanations(run_dir)
    samples = samples.drop(columns=TIMING_COLUMNS).sort_values("sample_id").reset_index(drop=True)
    left_out = TIMING_COLUMNS + COST_RECORDS
    samples["settings"] = [json.dumps({k: v for k, v in json.loads(s).items() if k not in left_out}, sort_keys=True)
                           for s in samples["settings"]]
    features = features.sort_values(["sample_id", "modality", "feature_index"]).reset_index(drop=True)
    return samples, features


def assert_same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Equal ids, columns and values, bit for bit (see the module docstring for why)."""
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def assert_rows_are_the_references(run_dir: Path, ref: tuple[pd.DataFrame, pd.DataFrame]) -> set[str]:
    """What a reader sees of a killed copy is a subset of the reference, row for row."""
    samples, features = explanation_rows(run_dir)
    ids = set(samples["sample_id"])
    if not ids:
        assert features.empty
        return ids
    assert ids <= set(ref[0]["sample_id"])
    assert set(features["sample_id"]) == ids                      # every listed sample has its features
    assert_same_rows(samples, ref[0][ref[0]["sample_id"].isin(ids)].reset_index(drop=True))
    assert_same_rows(features, ref[1][ref[1]["sample_id"].isin(ids)].reset_index(drop=True))
    return ids


def written(folders: list[Path], pattern: str) -> Callable[[], frozenset]:
    """A snapshot of the files matching ``pattern`` and their mtimes (changes on every write)."""
    def snapshot() -> frozenset:
        out = set()
        for folder in folders:
            for path in folder.glob(pattern) if folder.is_dir() else ():
                try:
                    out.add((path, path.stat().st_mtime_ns))
                except FileNotFoundError:  # replaced meanwhile
                    pass
        return frozenset(out)
    return snapshot


def after_a_write(snapshot: Callable[[], frozenset]) -> Callable[[], Callable[[], bool]]:
    """A kill condition, made when the process starts: a file written since then."""
    def factory() -> Callable[[], bool]:
        start = snapshot()
        return lambda: snapshot() != start
    return factory


def kill_points(first: tuple[str, Callable[[], frozenset]], part: tuple[str, Callable[[], frozenset]]) -> list:
    """(name, kill condition factory, delay after the condition holds) of each kill."""
    return [
        (f"right after the first {first[0]} write", after_a_write(first[1]), None),
        (f"right after a {part[0]} write", after_a_write(part[1]), None),
        *((f"{d:.2f} s after a {part[0]} write", after_a_write(part[1]), float(d)) for d in RANDOM_DELAYS),
    ]


@pytest.mark.slow
def test_explain_survives_kill_9_and_resumes_to_the_same_rows(tiny_built, tmp_path) -> None:
    ref_root = copy_root(tiny_built, tmp_path / "reference")
    root = copy_root(tiny_built, tmp_path / "killed")
    args = ["explain", "tiny", *(a for run in EXPLAIN_RUNS for a in ("--run", run)), "--flush-every", "2"]
    for run in EXPLAIN_RUNS:          # the reference, uninterrupted (in this process: the same code path)
        explain_run(ref_root / "tiny" / run, flush_every=2, progress=False)
    ref = {run: explanation_rows(ref_root / "tiny" / run) for run in EXPLAIN_RUNS}
    assert all(len(s) == 8 for s, _ in ref.values())
    folders = [root / "tiny" / run / "explanations" for run in EXPLAIN_RUNS]

    outcomes = []
    for name, factory, delay in kill_points(("settings/request JSON", written(folders, "*.json")),
                                            ("part", written(folders, "samples-*.parquet"))):
        killed = start_and_kill(cli(root, *args), factory(), delay)
        leftovers = check_every_file_parses(folders)
        stored = {run: assert_rows_are_the_references(root / "tiny" / run, ref[run]) for run in EXPLAIN_RUNS}
        outcomes.append((name, "killed" if killed else "finished first", sum(map(len, stored.values())),
                         len(leftovers)))
    assert any(o[1] == "killed" for o in outcomes), outcomes

    print("explain kill points (name, outcome, samples stored, temporary files left):", outcomes)
    # the rerun keeps what is stored (its rows keep their computed_at) and computes the rest
    before = {run: load_explanations(root / "tiny" / run)[0].set_index("sample_id")["computed_at"]
              for run in EXPLAIN_RUNS}
    out = run_to_end(cli(root, *args))
    for run in EXPLAIN_RUNS:
        kept = re.search(rf"^{re.escape(run)}: \d+ sample\(s\) explained, (\d+) already stored", out, re.MULTILINE)
        assert kept is not None and int(kept.group(1)) == len(before[run]), out
        after = load_explanations(root / "tiny" / run)[0].set_index("sample_id")["computed_at"]
        assert after.loc[before[run].index].to_dict() == before[run].to_dict()
        samples, features = explanation_rows(root / "tiny" / run)
        assert_same_rows(samples, ref[run][0])
        assert_same_rows(features, ref[run][1])
    assert check_every_file_parses(folders) == []                 # the kills' temporary files are gone


def kill_at(root: Path, args: list[str], module: str, function: str, name_prefix: str, call: int) -> None:
    """Run the CLI with ``args`` in a subprocess whose ``module.function`` (a write) SIGKILLs
    the process instead of writing a file named ``name_prefix...`` for the ``call``-th time."""
    code = f"""
import os, signal, sys
import {module} as m
from core.cli import main
real, seen = m.{function}, [0]
def write(path, *a, **k):
    if os.path.basename(path).startswith({name_prefix!r}):
        seen[0] += 1
        if seen[0] == {call}:
            os.kill(os.getpid(), signal.SIGKILL)
    return real(path, *a, **k)
m.{function} = write
sys.exit(main(sys.argv[1:]))
"""
    done = subprocess.run([sys.executable, "-c", code, *cli(root, *args)[3:]], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]


@pytest.mark.slow
def test_explain_killed_between_the_two_files_of_a_part(tiny_built, tmp_path) -> None:
    """The one window where two files disagree: a part's features are written, its samples not yet."""
    ref_root = copy_root(tiny_built, tmp_path / "reference")
    root = copy_root(tiny_built, tmp_path / "killed")
    run = EXPLAIN_RUNS[0]
    args = ("--flush-every", "2")
    explain_run(ref_root / "tiny" / run, flush_every=2, progress=False)
    ref = explanation_rows(ref_root / "tiny" / run)
    # killed on the second flush, after its features file (4 samples), before its samples file (still 2)
    kill_at(root, ["explain", str(root / "tiny" / run), *args], "core.io", "write_parquet", "samples-", 2)
    (features_path,) = (root / "tiny" / run / "explanations").glob("features-*.parquet")
    assert pd.read_parquet(features_path)["sample_id"].nunique() == 4
    assert assert_rows_are_the_references(root / "tiny" / run, ref) and \
        len(explanation_rows(root / "tiny" / run)[0]) == 2      # readers see the 2 complete samples only
    assert explain_run(root / "tiny" / run, flush_every=2, progress=False)["skipped"] == 2
    samples, features = explanation_rows(root / "tiny" / run)
    assert_same_rows(samples, ref[0])
    assert_same_rows(features, ref[1])                          # the 2 recomputed samples' features once


@pytest.mark.slow
def test_project_killed_between_coordinates_and_sidecar_even_when_overwriting(tiny_built, tmp_path) -> None:
    ref_root = copy_root(tiny_built, tmp_path / "reference")
    root = copy_root(tiny_built, tmp_path / "killed")
    run_dir = root / "tiny" / EXPLAIN_RUNS[0]
    args = ("--methods", "pca")
    project_runs([ref_root / "tiny" / run_dir.name], methods=["pca"], progress=False)
    ref = projection_rows(ref_root / "tiny" / run_dir.name)
    # a stale projection of the fused embedding (an earlier build of the run), to be recomputed over
    ids, embeddings = load_run_embeddings(run_dir)
    stale = compute_projection(embeddings["fused"] + 1.0, "pca")
    save_projection(run_dir, "fused", ids, stale)
    kill_at(root, ["project", str(run_dir), *args], "core.io", "write_json", "fused__pca__", 1)
    stored = projection_rows(run_dir)                           # no half old, half new projection
    assert ("fused", "pca") not in stored
    for key, (got_ids, coords, _) in stored.items():
        assert got_ids == ref[key][0]
        np.testing.assert_array_equal(coords, ref[key][1])
    counts = project_runs([run_dir], methods=["pca"], progress=False)
    assert (counts["kept"], counts["computed"]) == (len(stored), len(ref) - len(stored))
    got = projection_rows(run_dir)
    assert got.keys() == ref.keys()
    for key, (got_ids, coords, meta) in got.items():
        assert got_ids == ref[key][0] and meta["parquet_sha256"] == ref[key][2]["parquet_sha256"]
        np.testing.assert_array_equal(coords, ref[key][1])


def test_a_killed_writers_temp_file_is_ignored_and_removed_a_live_writers_kept(tiny_built, tmp_path) -> None:
    root = copy_root(tiny_built, tmp_path / "runs")
    run_dir = root / "tiny" / EXPLAIN_RUNS[0]
    folder = run_dir / "explanations"
    target = folder / "samples-0123456789ab-part0of1.parquet"
    # a writer killed mid-write, for real: its temporary file holds half a parquet file
    code = ("import os, sys; from core.io import atomic_path; tmp = atomic_path(sys.argv[1]).__enter__(); "
            "tmp.write_bytes(b'PAR1 half a file'); os.kill(os.getpid(), 9)")
    assert subprocess.run([sys.executable, "-c", code, str(target)], cwd=REPO).returncode == -signal.SIGKILL
    (dead,) = folder.glob(".*.tmp")
    # and a writer still at work (this process): another shard's or the dashboard's
    live_writer = atomic_path(folder / "samples-0123456789ab-part1of2.parquet")
    live = live_writer.__enter__()
    live.write_bytes(b"PAR1 being written")
    try:
        assert not target.exists()
        assert explanation_rows(run_dir)[0].empty                  # readers see nothing, and no warning
        report = explain_run(run_dir, n=2, progress=False)
        assert report["computed"] == 2 and len(explanation_rows(run_dir)[0]) == 2
        assert not dead.exists() and live.exists()
    finally:
        live_writer.__exit__(RuntimeError, RuntimeError("not finished"), None)
    assert not live.exists() and not list(folder.glob(".*.tmp"))


def test_stale_temp_files_of_other_hosts_go_by_age(tmp_path) -> None:
    """A writer on another host (a shared disk) cannot be asked whether it lives: its temporary
    file goes once nobody touched it for STALE_TMP_SECONDS; a name without a pid likewise."""
    other_host = tmp_path / ".a.parquet.0123abcd-1.xyz.tmp"
    unnamed = tmp_path / ".b.json.xyz.tmp"
    fresh = tmp_path / ".c.json.0123abcd-1.xyz.tmp"
    for path in (other_host, unnamed, fresh):
        path.write_bytes(b"partial")
    old = time.time() - STALE_TMP_SECONDS - 60
    for path in (other_host, unnamed):
        os.utime(path, (old, old))
    assert sorted(remove_stale_tmp(tmp_path)) == sorted([other_host, unnamed])
    assert fresh.exists() and remove_stale_tmp(tmp_path / "missing") == []


# --------------------------------------------------------------------------- project


def projection_rows(run_dir: Path) -> dict[tuple[str, str], tuple[list[str], np.ndarray, dict]]:
    """Every complete projection a reader finds: (embedding, method) -> (ids, coords, sidecar)."""
    table = list_projections(run_dir)
    assert table["error"].isna().all(), table["error"].tolist()
    out = {}
    for row in table.itertuples():
        loaded = load_projection(run_dir, row.embedding, row.method, seed=row.seed)
        assert loaded is not None
        ids, proj = loaded
        assert len(ids) == proj.n == row.n
        meta = json.loads(Path(row.path).with_suffix(".json").read_text())
        out[(row.embedding, row.method)] = (list(ids), proj.coords, meta)
    return out


@pytest.mark.slow
def test_project_survives_kill_9_and_resumes_to_the_same_rows(tiny_built, tmp_path) -> None:
    ref_root = copy_root(tiny_built, tmp_path / "reference")
    root = copy_root(tiny_built, tmp_path / "killed")
    args = ["project", "tiny", "--methods", "pca", "tsne"]   # UMAP: same code path, 30 s of numba compile
    project_runs(sorted(p for p in (ref_root / "tiny").iterdir() if (p / "config.json").is_file()),
                 methods=["pca", "tsne"], progress=False)          # the reference, uninterrupted
    run_dirs = sorted(p for p in (root / "tiny").iterdir() if (p / "config.json").is_file())
    ref = {p.name: projection_rows(ref_root / "tiny" / p.name) for p in run_dirs}
    assert all(ref.values())
    folders = [p / "projections" for p in run_dirs]

    outcomes = []
    for name, factory, delay in kill_points(("coordinates", written(folders, "*.parquet")),
                                            ("sidecar", written(folders, "*.json"))):
        killed = start_and_kill(cli(root, *args), factory(), delay)
        leftovers = check_every_file_parses(folders)
        seen = 0
        for run_dir in run_dirs:
            for key, (ids, coords, meta) in projection_rows(run_dir).items():
                ref_ids, ref_coords, ref_meta = ref[run_dir.name][key]
                assert ids == ref_ids and meta["key"] == ref_meta["key"]
                np.testing.assert_array_equal(coords, ref_coords)
                seen += 1
        outcomes.append((name, "killed" if killed else "finished first", seen, len(leftovers)))
    assert any(o[1] == "killed" for o in outcomes), outcomes
    print("project kill points (name, outcome, projections stored, temporary files left):", outcomes)

    # the rerun keeps every complete projection (same file, not rewritten) and computes the rest
    kept = {p: p.stat().st_mtime_ns for f in folders if f.is_dir() for p in f.glob("*.json")}
    out = run_to_end(cli(root, *args))
    assert f"{len(kept)} already stored" in out
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    for run_dir in run_dirs:
        got = projection_rows(run_dir)
        assert got.keys() == ref[run_dir.name].keys()
        for key, (ids, coords, meta) in got.items():
            ref_ids, ref_coords, ref_meta = ref[run_dir.name][key]
            assert ids == ref_ids
            np.testing.assert_array_equal(coords, ref_coords)
            for field in ("key", "params", "seed", "n", "trustworthiness", "data_sha256", "parquet_sha256"):
                assert meta[field] == ref_meta[field], (run_dir.name, key, field)
    assert check_every_file_parses(folders) == []
