"""trust.json: written atomically as plain JSON, read back checked, damage named with its fix."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from core.errors import BundleError
from core.trust import CHECKS, SCHEMA_VERSION, TRUST_FILE, CheckResult, load_trust, trust_path, write_trust


def report(**checks) -> dict:
    return {"schema_version": SCHEMA_VERSION, "run": "r", "checks": {
        name: CheckResult(name, "pass", "fine.", n=3, numbers={"x": np.float32(0.5), "nan": math.nan}).as_dict()
        for name in CHECKS} | checks}


def test_round_trip_writes_plain_json(tmp_path):
    path = write_trust(tmp_path, report())
    assert path == trust_path(tmp_path) == tmp_path / TRUST_FILE
    text = path.read_text()
    assert "NaN" not in text  # NaN is written as null, so any JSON reader reads it
    back = load_trust(tmp_path)
    assert back["checks"]["randomisation"]["numbers"] == {"x": 0.5, "nan": None}
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_absent_is_none_and_damage_names_the_file_and_the_fix(tmp_path):
    assert load_trust(tmp_path) is None
    bad = [b"{not json", json.dumps([1, 2]).encode(), json.dumps({**report(), "schema_version": 99}).encode(),
           json.dumps(report(summary={"status": "great", "reason": "x"})).encode(),
           json.dumps(report(summary={"status": "pass", "reason": "x", "n": -1})).encode()]
    for content in bad:
        (tmp_path / TRUST_FILE).write_bytes(content)
        with pytest.raises(BundleError) as info:
            load_trust(tmp_path)
        assert str(tmp_path / TRUST_FILE) in info.value.problem
        assert " check " in info.value.fix and str(tmp_path) in info.value.fix


def test_a_check_result_refuses_an_unknown_status():
    with pytest.raises(ValueError, match="status"):
        CheckResult("summary", "ok", "x")
