"""The shell commands a page shows to fill what it lacks (build, project, explain, check, robustness, blame).

They are written for the runs root the dashboard serves and the folder it was
started from, and name a user's own experiment file while it exists, so a
copied command does the right thing.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

from core.errors import FusionLensError, cli_command
from core.experiment import EXPERIMENTS_DIR, PROJECT_ROOT, runs_root
from ui.queries import dataset_info

__all__ = ["BUILD_COMMAND", "experiment_file", "build_commands"]

#: Builds every demo experiment and serves the dashboard, from the repository root.
BUILD_COMMAND = "bash scripts/run.sh"


def experiment_file(root: str | Path, experiment: str) -> Path | None:
    """The experiment file recorded in the experiment's ``dataset.json`` at prepare, when it is
    still an existing ``.toml`` file; None otherwise (not built yet, an older build, a damaged or
    refused description). The path is only shown in commands, never read here."""
    try:
        info = dataset_info(root, experiment)
    except FusionLensError:
        return None
    value = info.get("experiment_file") if isinstance(info, dict) else None
    if not isinstance(value, str) or not value:
        return None
    path = Path(value)
    return path if path.is_absolute() and path.suffix == ".toml" and path.is_file() else None


def build_commands(experiment: str | None, run: str | None = None, root: str | Path | None = None) -> dict[str, str]:
    """Shell commands that produce what a page needs for the runs root ``root`` (default: this
    process's runs root), to run from the current folder (where the dashboard was started).

    CLI commands name ``--runs-dir`` unless ``root`` is ``./runs`` (the CLI's default there);
    ``scripts/run.sh`` gets ``FUSIONLENS_RUNS`` unless ``root`` is the repository's ``runs/``.
    ``build`` names the experiment file recorded at prepare (a user's own ``my.toml``) while it
    exists, else the experiment's name (a demo in ``experiments/``).
    """

    def shown(path: Path) -> str:  # relative to the current folder when inside it; quoted if the shell needs it
        try:
            text = str(path.relative_to(cwd))
        except ValueError:
            text = str(path)
        return text if re.fullmatch(r"[\w@%+=:,./<>-]+", text) else shlex.quote(text)

    cwd = Path.cwd().resolve()
    exp = experiment or "emoji"
    root_path = Path(root).resolve() if root is not None else runs_root()
    runs_arg = "" if root_path == cwd / "runs" else f" --runs-dir {shown(root_path)}"
    env = "" if root_path == (PROJECT_ROOT / "runs").resolve() else f"FUSIONLENS_RUNS={shlex.quote(str(root_path))} "
    script = BUILD_COMMAND if cwd == PROJECT_ROOT.resolve() else f"bash {shown(PROJECT_ROOT / 'scripts' / 'run.sh')}"
    run_arg = f" --run {run}" if run else ""
    cli = cli_command()
    file = experiment_file(root_path, exp)
    target = exp if file is None or file == (EXPERIMENTS_DIR / f"{exp}.toml").resolve() else shown(file)
    return {
        "everything": f"{env}{script}",
        "build": f"{cli} build {target}{runs_arg}",
        "project": f"{cli} project {exp}{run_arg}{runs_arg}",
        "explain": f"{cli} explain {shown(root_path / exp / (run or '<run>'))}",
        "explain_all": f"{cli} explain {shown(root_path / exp)}",
        "check": f"{cli} check {shown(root_path / exp / (run or '<run>'))}",
        "robustness": f"{cli} robustness {exp}{run_arg}{runs_arg}",
        "report": f"{cli} report {exp}{run_arg}{runs_arg}",
        "blame": f"{cli} blame {exp}{run_arg}{runs_arg}",
    }
