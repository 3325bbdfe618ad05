"""core.workers: how many worker processes, jobs run in spawned processes with their errors intact, and a
build whose fusion heads train in two worker processes giving the runs a serial build gives."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from core.bundle import load_run
from core.catalog import list_runs
from core.errors import ConfigError
from core.experiment import load_experiment
from core.train import PARALLEL_MIN_HEADS, head_workers, train_experiment
from core.workers import ENV, in_processes, process_workers
from tests._tolerance import f32_atol, longest_reduction


def test_process_workers_follow_the_argument_then_the_environment(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr("core.threads.available_cores", lambda: 4)
    assert process_workers(10) == 4 and process_workers(3) == 3 and process_workers(1) == 1
    assert process_workers(5, min_jobs=8) == 1 and process_workers(8, min_jobs=8) == 4
    assert process_workers(10, workers=2) == 2 and process_workers(1, workers=3) == 1  # never more than jobs
    monkeypatch.setenv(ENV, "2")
    assert process_workers(10) == 2 and process_workers(10, workers=3) == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(ENV, bad)
        with pytest.raises(ConfigError, match=ENV):
            process_workers(10)
    monkeypatch.delenv(ENV)
    monkeypatch.setenv("FUSIONLENS_THREADS", "head=2")  # heads on two threads: no processes on top
    assert head_workers(PARALLEL_MIN_HEADS * 2) == 1 and head_workers(20, workers=2) == 2
    monkeypatch.setenv("FUSIONLENS_THREADS", "1")
    assert head_workers(PARALLEL_MIN_HEADS - 1) == 1 and head_workers(PARALLEL_MIN_HEADS) == 4


def test_jobs_run_in_spawned_processes_and_errors_keep_their_fix():
    jobs = [(k, (10, k)) for k in (1, 2, 3)]
    assert dict(in_processes(process_workers, jobs, 2)) == {1: 1, 2: 2, 3: 3}
    assert dict(in_processes(process_workers, jobs, 1)) == {1: 1, 2: 2, 3: 3}  # here, one after another
    before = {k: os.environ.get(k) for k in ("FUSIONLENS_THREADS", "OMP_NUM_THREADS")}
    assert dict(in_processes(_threads_in_worker, [(0, ()), (1, ())], 2)) == {0: ("1", "1"), 1: ("1", "1")}
    assert {k: os.environ.get(k) for k in before} == before  # this process's settings are restored
    with pytest.raises(ConfigError) as info:
        list(in_processes(process_workers, [("ok", (3, 2)), ("bad", (3, 0))], 2))
    assert info.value.problem == "0 worker processes asked for" and "--workers" in info.value.fix


def _count_up(n: int, progress=None) -> int:
    for _ in range(n):
        progress(1)
    return n


def test_jobs_report_their_steps_to_the_parent_before_their_result():
    """``progress`` hears every step of every job, each job's steps before its result is yielded, in worker
    processes (through a manager queue) as here."""
    for workers in (2, 1):
        heard: list[int] = []
        seen_before: dict[int, int] = {}
        for key, result in in_processes(_count_up, [(k, (k,)) for k in (3, 5, 7)], workers, progress=heard.append):
            seen_before[key] = sum(heard)
            assert result == key
        assert heard == [1] * 15
        assert all(seen_before[k] >= k for k in seen_before)  # at least this job's own steps were in


def _threads_in_worker() -> tuple[str | None, str | None]:
    return os.environ.get("FUSIONLENS_THREADS"), os.environ.get("OMP_NUM_THREADS")


def test_heads_trained_in_two_worker_processes_match_a_serial_build(tiny_built, tmp_path):
    """Every stage-2 head of the tiny build retrained in two spawned workers: the same predictions as the
    session's serial build (each run seeds itself from its name and trains on one thread in both)."""
    exp_path, built = tiny_built
    root = tmp_path / "runs"
    shutil.copytree(built, root)
    exp = load_experiment(exp_path)
    heads = [p for p in list_runs(root / exp.name) if load_run(p).config["strategy"] not in ("unimodal", "early")]
    assert len(heads) >= 4
    for run_dir in heads:
        shutil.rmtree(run_dir)
    train_experiment(exp, root, progress=False, workers=2)
    threads = torch.get_num_threads()
    for run_dir in heads:
        again, before = load_run(run_dir), load_run(built / exp.name / run_dir.name)
        assert again.config["fingerprint"] == before.config["fingerprint"]
        cols = [c for c in before.predictions.columns if c.endswith("_prob")]
        got, want = again.predictions[cols].to_numpy(), before.predictions[cols].to_numpy()
        if threads == 1:  # one torch thread in both: the same operations in the same order
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=0, atol=f32_atol(1.0, longest_reduction(before.model())))


def test_children_do_not_run_the_parents_main_script(tmp_path, monkeypatch):
    """Under Streamlit __main__ is app.py: a spawned worker must not run it (it would draw the dashboard)."""
    import sys
    import types

    script = tmp_path / "main_script.py"
    script.write_text("raise SystemExit('the parent main script ran in a worker')\n")
    fake = types.ModuleType("__main__")
    fake.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", fake)
    assert dict(in_processes(process_workers, [(k, (10, k)) for k in (1, 2)], 2)) == {1: 1, 2: 2}
    assert sys.modules["__main__"] is fake
