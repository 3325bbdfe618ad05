"""Torch thread counts per job (core.threads)."""
from __future__ import annotations

import pytest
import torch

from core.errors import ConfigError
from core.threads import JOBS, available_cores, job_threads, parse_threads, torch_threads


def test_defaults_one_thread_for_heads_every_core_for_encoders(monkeypatch):
    monkeypatch.delenv("FUSIONLENS_THREADS", raising=False)
    monkeypatch.delenv("FUSIONLENS_EXPLAIN_THREADS", raising=False)
    assert job_threads("head") == 1 and job_threads("explain") == 1
    assert job_threads("encoder") == available_cores() >= 1


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("FUSIONLENS_THREADS", "3")
    assert {job: job_threads(job) for job in JOBS} == dict.fromkeys(JOBS, 3)
    monkeypatch.setenv("FUSIONLENS_THREADS", "encoder=5")
    assert (job_threads("head"), job_threads("encoder")) == (1, 5)
    monkeypatch.setenv("FUSIONLENS_EXPLAIN_THREADS", "2")  # the older, explain-only setting
    assert job_threads("explain") == 2
    monkeypatch.setenv("FUSIONLENS_THREADS", "explain=4")  # the general one wins
    assert job_threads("explain") == 4
    with pytest.raises(ConfigError, match="unknown thread job"):
        job_threads("training")


@pytest.mark.parametrize("bad", ["0", "-1", "two", "head=", "heads=1", "head=1,encoder=0"])
def test_bad_settings_name_the_fix(bad):
    with pytest.raises(ConfigError, match="Fix: use a positive integer or job=N pairs"):
        parse_threads(bad)


def test_counts_are_set_and_restored_when_nested(monkeypatch):
    monkeypatch.setenv("FUSIONLENS_THREADS", "head=1,encoder=3")
    before = torch.get_num_threads()
    with torch_threads("encoder") as n:
        assert n == torch.get_num_threads() == 3
        with torch_threads("head"):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 3
        with pytest.raises(RuntimeError):
            with torch_threads("head", 2):
                assert torch.get_num_threads() == 2
                raise RuntimeError("a failing job")
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == before


def test_works_as_a_decorator_resolved_at_call_time(monkeypatch):
    @torch_threads("head")
    def threads_inside() -> int:
        return torch.get_num_threads()

    monkeypatch.setenv("FUSIONLENS_THREADS", "head=2")
    assert threads_inside() == 2
    monkeypatch.setenv("FUSIONLENS_THREADS", "head=1")
    assert threads_inside() == 1

