"""The bad-input corpus (``tests/badinput.py``): every damaged input gets a clear message.

For each case: the expected exit code (CLI) or no exception (dashboard), a
message naming the problem (and the fix where one applies), no Python
traceback, the runs root byte-identical, and no marker file from a poisoned
pickle.
"""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from tests.badinput import EXPERIMENT, Case, build_template, cases, make_workspace, snapshot

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "app.py")
CASES = cases()


@pytest.fixture(scope="module")
def template(tiny_built, tmp_path_factory) -> Path:
    return build_template(tiny_built, tmp_path_factory.mktemp("corpus") / "template")


def run_cli(argv: list[str], *, as_process: bool) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``python -m core argv``; an escaping exception is a traceback."""
    if as_process:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.run([sys.executable, "-m", "core", *argv], capture_output=True, text=True, cwd=REPO,
                              env=env, timeout=300)
        return proc.returncode, proc.stdout, proc.stderr
    from core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException:  # noqa: BLE001 - the corpus records any escaping exception as a failure
            err.write(traceback.format_exc())
            code = 99
    return code, out.getvalue(), err.getvalue()


def page_text(at) -> str:
    parts = []
    for kind in ("error", "warning", "info", "success", "markdown", "caption", "code", "exception"):
        for el in getattr(at, kind):
            parts.append(str(getattr(el, "value", "")))
    for exp in at.expander:
        parts.append(str(exp.label))
    return "\n".join(parts)


def check_message(case: Case, text: str) -> None:
    low = text.lower()
    missing = [s for s in case.expect if s.lower() not in low]
    assert not missing, f"{case.name}: message lacks {missing}:\n{text}"
    shown = [s for s in case.forbid if s.lower() in low]
    assert not shown, f"{case.name}: message shows {shown}:\n{text}"
    if case.fix:
        assert "fix" in low, f"{case.name}: message names no fix:\n{text}"
    assert "Traceback (most recent call last)" not in text, f"{case.name}: traceback shown:\n{text}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = make_workspace(template, tmp_path / "ws")
    case.damage(ws)
    before = snapshot(ws.root)
    if case.surface == "cli":
        code, out, err = run_cli(case.argv(ws), as_process=case.subprocess)
        assert code == case.exit_code, f"{case.name}: exit {code}, expected {case.exit_code}\n{out}\n{err}"
        check_message(case, err if case.exit_code else out + err)
        for s in case.stdout_expect:
            assert s in out, f"{case.name}: stdout lacks {s!r}:\n{out}"
    else:
        from streamlit.testing.v1 import AppTest

        monkeypatch.setenv("FUSIONLENS_RUNS", str(ws.root))
        at = AppTest.from_file(APP, default_timeout=90)
        for key, value in {"exp": EXPERIMENT, **case.query}.items():
            at.query_params[key] = value
        at.run()
        assert not at.exception, f"{case.name}: exception shown: {[e.value for e in at.exception]}"
        check_message(case, page_text(at))
        usable = case.extra.get("usable")
        if usable:
            ctx = at.session_state["fl_last_ctx"]
            assert ctx.run == usable and usable in ctx.runs
    assert snapshot(ws.root) == before, f"{case.name}: the runs root changed"
    if case.pickles:
        assert not ws.marker.exists(), f"{case.name}: code from a pickle ran"


def test_the_corpus_is_big_and_covers_every_surface() -> None:
    assert len(CASES) >= 40
    assert {c.surface for c in CASES} == {"cli", "dashboard"}
    assert {"experiment", "data", "bundle", "damage", "symlink", "pickle", "url"} <= {c.klass for c in CASES}
    assert any(c.subprocess for c in CASES)
