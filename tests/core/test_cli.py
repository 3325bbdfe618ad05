"""The command line: the installed `fusionlens` command, global options anywhere, `--force` scope."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from core.cli import build_parser, dashboard_command, main
from core.errors import cli_command
from core.experiment import PROJECT_ROOT, runs_root
from tests._experiments import write_tiny_experiment

SCRIPT = Path(sys.executable).parent / "fusionlens"
GLOBAL_OPTIONS = ("--runs-dir", "--quiet", "--threads")


def _subcommands() -> dict:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "FUSIONLENS_RUNS"}
    environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", **env)
    return subprocess.run(args, cwd=cwd, env=environ, capture_output=True, text=True, timeout=300)


# --------------------------------------------------------------------------- options

def test_every_help_lists_the_global_options():
    assert all(opt in build_parser().format_help() for opt in GLOBAL_OPTIONS)
    subs = _subcommands()
    assert {"build", "prepare", "train", "list", "explain", "project", "dashboard", "encoders"} <= set(subs)
    for name, parser in subs.items():
        text = parser.format_help()
        missing = [opt for opt in GLOBAL_OPTIONS if opt not in text]
        assert not missing, f"`{name} --help` lacks {missing}"


@pytest.mark.parametrize("argv, runs_dir, quiet, threads", [
    (["list"], None, False, None),
    (["--runs-dir", "A", "list"], "A", False, None),
    (["list", "--runs-dir", "B"], "B", False, None),
    (["--runs-dir", "A", "list", "--quiet"], "A", True, None),
    (["--quiet", "--threads", "2", "list", "--runs-dir", "B"], "B", True, "2"),
    (["--runs-dir", "A", "list", "--runs-dir", "B"], "B", False, None),
    (["build", "x.toml", "--runs-dir", "D", "--force"], "D", False, None),
])
def test_global_options_before_or_after_the_subcommand(argv, runs_dir, quiet, threads):
    args = build_parser().parse_args(argv)
    assert (args.runs_dir, args.quiet, args.threads) == (runs_dir, quiet, threads)


def test_options_after_the_subcommand_take_effect(tmp_path, capsys):
    assert main(["list", "--runs-dir", str(tmp_path / "after")]) == 0
    assert f"no experiments under {tmp_path / 'after'}" in capsys.readouterr().out
    assert main(["--runs-dir", str(tmp_path / "before"), "list"]) == 0
    assert f"no experiments under {tmp_path / 'before'}" in capsys.readouterr().out


def test_bad_global_option_values_fail_with_the_fix(capsys):
    assert main(["list", "--threads", "0"]) == 2
    assert "Fix:" in capsys.readouterr().err
    assert main(["list", "--threads", "heads=1"]) == 2
    assert "unknown thread job 'heads'" in capsys.readouterr().err


def test_runs_root_defaults_to_the_current_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("FUSIONLENS_RUNS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert runs_root() == tmp_path.resolve() / "runs"
    monkeypatch.setenv("FUSIONLENS_RUNS", str(tmp_path / "env"))
    assert runs_root() == tmp_path.resolve() / "env"
    assert runs_root(tmp_path / "flag") == tmp_path.resolve() / "flag"


# --------------------------------------------------------------------------- the installed command

def _script() -> Path:
    assert SCRIPT.is_file(), f"{SCRIPT} is missing: run `bash scripts/setup.sh` (it installs FusionLens editable)"
    return SCRIPT


def test_console_script_runs_from_another_folder(tmp_path):
    script = _script()
    help_text = _run([str(script), "--help"], cwd=tmp_path)
    assert help_text.returncode == 0, help_text.stderr
    assert help_text.stdout.startswith("usage: fusionlens") and "--runs-dir" in help_text.stdout
    build_help = _run([str(script), "build", "--help"], cwd=tmp_path)
    assert "--runs-dir" in build_help.stdout and "--force" in build_help.stdout
    listed = _run([str(script), "list", "--runs-dir", str(tmp_path / "r")], cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert f"no experiments under {tmp_path / 'r'}" in listed.stdout
    # the package resolves to this checkout, so the demo experiments and the dashboard are found from anywhere
    where = _run([sys.executable, "-c", "import core.experiment as e; print(e.PROJECT_ROOT)"], cwd=tmp_path)
    assert Path(where.stdout.strip()) == PROJECT_ROOT
    bad = _run([str(script), "build", "no-such-experiment"], cwd=tmp_path)
    assert bad.returncode == 2 and "Fix:" in bad.stderr and "Traceback" not in bad.stderr


def test_prepare_from_the_data_folder_writes_to_its_runs(tmp_path):
    script = _script()
    write_tiny_experiment(tmp_path)  # tiny.toml names data/manifest.csv, relative to the file
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = _run([str(script), "prepare", "tiny.toml", "--quiet"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "tiny: " in done.stdout and "classes" in done.stdout
    assert (tmp_path / "runs" / "tiny" / "dataset.json").is_file()
    # the experiment file from another folder: its manifest path is still relative to the file
    again = _run([str(script), "--quiet", "prepare", str(tmp_path / "tiny.toml")], cwd=elsewhere)
    assert again.returncode == 0, again.stderr
    assert (elsewhere / "runs" / "tiny" / "dataset.parquet").is_file()
    # $FUSIONLENS_RUNS is the default when no --runs-dir is given
    env_root = tmp_path / "env-runs"
    by_env = _run([str(script), "prepare", "tiny.toml", "--quiet"], cwd=tmp_path, FUSIONLENS_RUNS=str(env_root))
    assert by_env.returncode == 0, by_env.stderr
    assert (env_root / "tiny" / "dataset.json").is_file()


def test_python_m_core_still_works_from_the_repository():
    done = _run([sys.executable, "-m", "core", "--help"], cwd=PROJECT_ROOT)
    assert done.returncode == 0 and done.stdout.startswith("usage: python -m core")


def test_messages_name_a_command_that_runs(monkeypatch, tmp_path):
    script = _script()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # the environment is not activated: the script's path
    assert cli_command() == str(script.absolute())
    monkeypatch.chdir(script.parent.parent.parent)  # in the folder that holds the environment: a relative path
    assert cli_command() == str(Path(script.parent.parent.name, script.parent.name, "fusionlens"))
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}/usr/bin:/bin")  # activated
    assert cli_command() == "fusionlens"


# --------------------------------------------------------------------------- --force scope

def _stamps(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_force_retrains_only_the_named_run(monkeypatch, tmp_path, capsys):
    import core.train as T

    exp_path = write_tiny_experiment(tmp_path, methods=["concat"])
    root = tmp_path / "runs"
    run, deps = "concat-image+title", ("unimodal-image", "unimodal-title")
    # which torch thread count each training loop ran with (head=1 and encoder=3 tell the jobs apart)
    monkeypatch.setenv("FUSIONLENS_THREADS", "head=1,encoder=3,explain=1")
    seen: list[tuple[str, int]] = []
    fit_head = T._fit_head

    def recording_fit_head(*args, **kwargs):
        import torch

        seen.append((args[7], torch.get_num_threads()))  # desc: the run name
        return fit_head(*args, **kwargs)

    monkeypatch.setattr(T, "_fit_head", recording_fit_head)
    assert main(["train", str(exp_path), "--run", run, "--runs-dir", str(root), "--quiet"]) == 0
    exp_dir = root / "tiny"
    assert sorted(p.name for p in exp_dir.iterdir() if p.is_dir()) == ["_cache", run, *deps]
    # the image encoder's out-of-fold encoders (stage 2's training embeddings) train as encoder jobs too
    folds = {f"unimodal-image fold {j}/3": 3 for j in (1, 2, 3)}
    assert dict(seen) == {"unimodal-image": 3, **folds, "unimodal-title": 1, run: 1}

    before = {d: _stamps(exp_dir / d) for d in (*deps, "_cache", run)}
    time.sleep(0.01)
    assert main(["train", str(exp_path), "--run", run, "--force", "--runs-dir", str(root), "--quiet"]) == 0
    after = {d: _stamps(exp_dir / d) for d in (*deps, "_cache", run)}
    for d in (*deps, "_cache"):
        assert after[d] == before[d], f"{d} was rewritten by --force on {run}"
    assert after[run]["model.safetensors"] != before[run]["model.safetensors"]
    assert set(after[run]) == set(before[run])

    # --force-deps retrains the unimodal runs the named run depends on as well
    assert main(["train", "--runs-dir", str(root), str(exp_path), "--run", run, "--force-deps", "--quiet"]) == 0
    deps_after = {d: _stamps(exp_dir / d) for d in (*deps, run)}
    for d in (*deps, run):
        assert deps_after[d]["model.safetensors"] != after[d]["model.safetensors"], d
    capsys.readouterr()
    assert main(["train", str(exp_path), "--force-deps", "--runs-dir", str(root)]) == 2
    assert "--force-deps names no runs" in capsys.readouterr().err


# --------------------------------------------------------------------------- dashboard

def test_dashboard_command_serves_the_checkout_app_on_loopback(tmp_path):
    argv, env = dashboard_command(tmp_path / "runs", 8765)
    assert argv[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert Path(argv[4]) == PROJECT_ROOT / "app.py"
    assert "--server.address=127.0.0.1" in argv and "--server.port=8765" in argv
    # the repository's .streamlit/config.toml travels as flags (Streamlit reads it only from the current folder)
    assert "--server.fileWatcherType=none" in argv and "--browser.gatherUsageStats=false" in argv
    assert env["FUSIONLENS_RUNS"] == str(tmp_path / "runs")


@pytest.mark.slow
def test_dashboard_starts_from_another_folder(tmp_path):
    import socket

    script = _script()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = tmp_path / "my-runs"
    proc = subprocess.Popen([str(script), "dashboard", "--runs-dir", str(root), "--port", str(port)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, health = time.monotonic() + 90, ""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    health = r.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        assert health == "ok", f"no dashboard on port {port}; exit {proc.poll()}"
        # the same process (exec), serving with the runs root in its environment
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        assert f"FUSIONLENS_RUNS={root.resolve()}".encode() in environ
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert b"streamlit" in cmdline and str(PROJECT_ROOT / "app.py").encode() in cmdline
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}" in out


# --------------------------------------------------------------------------- README

def test_readme_encoder_list_is_the_registry():
    from core.encoders import ENCODERS, encoders_markdown

    readme = (PROJECT_ROOT / "README.md").read_text()
    block = re.search(r"<!-- encoders:start[^>]*-->\n(.*?)<!-- encoders:end -->", readme, re.S)
    assert block, "README.md lacks the encoders:start / encoders:end block"
    assert block.group(1) == encoders_markdown(), "README's encoder list is stale: paste `fusionlens encoders --markdown`"
    for name in ENCODERS.names():
        assert f"| {ENCODERS.meta(name)['kind']} | `{name}` |" in block.group(1)
    assert {"c3d", "slowfast", "timesformer"} <= set(ENCODERS.names(kind="video"))


def test_encoders_by_kind_old_name_included(capsys):
    assert main(["encoders", "--kind", "features"]) == 0  # the old name of tabular
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.split()[0] == "tabular" for line in lines)
    assert "mlp" in [line.split()[1] for line in lines]
    assert main(["encoders", "--kind", "smell"]) == 2
    assert "no encoder for kind 'smell'" in capsys.readouterr().err
