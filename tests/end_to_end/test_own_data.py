"""README's "Your own data, step by step", end to end, as a new user does it.

In a folder outside the repository: generate a small image + two texts dataset
(empty description cells, tone variants sharing a ``group``) and tiny RGB-D clips
(``.npy`` arrays and folders of PNG frames), write the two manifests and the two
experiment files the README shows (only encoder sizes and epochs made smaller),
build both with the installed ``fusionlens`` command from that folder, serve the
dashboard for its ``runs/`` and walk it in headless Chromium: switch experiment,
pick a run that is not the default, click a confusion-matrix cell, open one of its
samples in the explorer (the experiment and run must stay), lasso on Embeddings
and open a sample, with no error on any page and no request to another host.
Screenshots: test-output/screenshots/own-data-*.png.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd
import pytest

from tests._browser import (
    SHOTS,
    chromium_page,
    click_heatmap_cell,
    free_port,
    lasso_whole_plot,
    no_error_shown,
    open_page,
    pick_in_sidebar,
    require_chromium,
    select_row,
    settle,
    sidebar_choice,
    stop,
    title,
    wait_healthy,
)
from tests._experiments import dump_toml, merge

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
FUSIONLENS = Path(sys.executable).parent / "fusionlens"  # the installed console command of this environment
SECTION = "## Your own data, step by step"

#: what the test changes in the README's experiment files: smaller encoders and fewer epochs
#: (the tiny data would not need more, and CI has two cores); every other key is the README's
OVERRIDES: dict[str, dict[str, Any]] = {
    "my.toml": {
        "modalities": {"image": {"encoder_kwargs": {"image_size": 16, "width": 4, "out_dim": 16}},
                       "title": {"encoder_kwargs": {"max_length": 12}},
                       "description": {"encoder_kwargs": {"max_length": 12}}},
        "train": {"unimodal": {"epochs": 12, "batch_size": 8, "hidden": 32, "lr": 0.005},
                  "fusion": {"epochs": 20, "batch_size": 16, "dim": 16, "lr": 0.005}},
    },
    "clips.toml": {
        "modalities": {m: {"encoder_kwargs": {"num_frames": 4, "image_size": 16, "width": 4, "out_dim": 16}}
                       for m in ("rgb", "depth")},
        "train": {"unimodal": {"epochs": 12, "batch_size": 4, "hidden": 32, "lr": 0.005},
                  "fusion": {"epochs": 20, "batch_size": 8, "dim": 8, "lr": 0.005}},
    },
}


# --------------------------------------------------------------------------- the README's walkthrough


def walkthrough() -> dict[str, Any]:
    """The code blocks of the README's walkthrough: experiment files by name, manifest headers, commands."""
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w*)\n(.*?)```", section, flags=re.S)
    tomls = {}
    for lang, body in blocks:
        first = body.splitlines()[0]
        if lang == "toml" and first.startswith("# ") and first[2:].strip().endswith(".toml"):
            tomls[first[2:].strip()] = body
    return {
        "toml": tomls,
        "csv_headers": [body.splitlines()[0] for lang, body in blocks if lang == "csv"],
        "commands": [line.split("#", 1)[0].strip() for lang, body in blocks if lang == "bash"
                     for line in body.splitlines() if line.strip()],
    }


# --------------------------------------------------------------------------- helpers


def _env() -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("FUSIONLENS_RUNS", None)  # the runs root is ./runs of the data folder, as for a user
    return env


def fusionlens(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run the installed command like a user, from ``cwd``; exit status 0 or a failure with its output."""
    done = subprocess.run([str(FUSIONLENS), *args], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"fusionlens {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def _goto(page, title_text: str) -> None:
    """Switch page through the sidebar's navigation, like a user."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=title_text).first.click()
    page.wait_for_selector(f'[data-testid="stMain"] h1:has-text("{title_text}")', timeout=60_000)
    settle(page)


def _shows_sample(page, sample: str) -> bool:
    return page.locator('[data-testid="stMain"] h3', has_text=f"Sample {sample}").count() == 1


def _view(page) -> dict[str, str]:
    """The experiment and run of the page: the sidebar's pickers and the URL."""
    query = dict(p.split("=", 1) for p in urlparse(page.url).query.split("&") if "=" in p)
    return {"experiment": sidebar_choice(page, "Experiment"), "run": sidebar_choice(page, "Run"),
            "url_exp": unquote(query.get("exp", "")), "url_run": unquote(query.get("run", ""))}


# --------------------------------------------------------------------------- the test


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The data folder, generated and built with the installed command as the README says."""
    from core.data.synthetic import make_synthetic_clips, make_synthetic_manifest
    from core.experiment import load_experiment

    if not FUSIONLENS.is_file():
        pytest.fail(f"{FUSIONLENS} is missing: install FusionLens with `bash scripts/setup.sh` (pip install -e .)")
    data = tmp_path_factory.mktemp("my-data")
    assert ROOT not in data.parents  # outside the repository
    guide = walkthrough()
    assert set(guide["toml"]) == {"my.toml", "clips.toml"}, guide["toml"].keys()

    # 1-2: the files and the manifests, with the README's columns
    manifest = make_synthetic_manifest(data, n_classes=4, per_class=6, image_size=24, variants=3,
                                       empty_description=0.3, seed=0)
    clips = make_synthetic_clips(data, n_clips=20, frames=6, size=16, seed=0)
    assert [manifest.read_text().splitlines()[0], clips.read_text().splitlines()[0]] == guide["csv_headers"]
    frame = pd.read_csv(manifest, keep_default_na=False)
    n_empty = int((frame["description"] == "").sum())
    assert 0.15 * len(frame) < n_empty < 0.5 * len(frame)
    clip_rows = pd.read_csv(clips)
    as_folders = clip_rows["rgb"].map(lambda p: (data / p).is_dir())
    assert 0 < as_folders.sum() < len(clip_rows)  # both forms: frame folders and .npy arrays

    # 3-4: the experiment files: the README's, with smaller encoders and fewer epochs
    for name, body in guide["toml"].items():
        (data / f"readme-{name}").write_text(body)
        load_experiment(data / f"readme-{name}")  # the README's own file is valid as printed
        (data / name).write_text(dump_toml(merge(tomllib.loads(body), OVERRIDES[name])))

    # 5: build, from the data folder, with the commands of the README
    builds = [c.split() for c in guide["commands"] if c.startswith("fusionlens build ")]
    assert builds == [["fusionlens", "build", "my.toml"], ["fusionlens", "build", "clips.toml"]]
    seconds = {}
    logs = {}
    for cmd in builds:
        start = time.perf_counter()
        logs[cmd[2]] = fusionlens([*cmd[1:], "--quiet"], cwd=data)
        seconds[cmd[2]] = time.perf_counter() - start
    dashboard = next(c.split() for c in guide["commands"] if c.startswith("fusionlens dashboard"))
    assert dashboard == ["fusionlens", "dashboard", "--runs-dir", "runs"]
    return {"data": data, "root": data / "runs", "logs": logs, "seconds": seconds, "n_empty": n_empty,
            "dashboard": dashboard}


def test_builds_land_in_the_data_folders_runs(built):
    from core.catalog import scan_runs

    root, data = built["root"], built["data"]
    print(f"build seconds: {built['seconds']}")
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == ["clips", "my"]
    assert f"description: {built['n_empty']} sample(s) with empty text kept as empty strings" \
        in built["logs"]["my.toml"].stderr
    for log in built["logs"].values():  # --quiet: no progress bar, transformers' "Loading weights" included
        assert "it/s]" not in log.stderr and "Loading weights" not in log.stderr, log.stderr
    for exp, toml in (("my", "my.toml"), ("clips", "clips.toml")):
        info = json.loads((root / exp / "dataset.json").read_text())
        assert info["experiment_file"] == str((data / toml).resolve())
        entries = scan_runs(root / exp, root)
        assert entries and all(e.usable for e in entries), [(e.name, e.message) for e in entries if not e.usable]
        assert (root / exp / "results.csv").is_file()
        assert any((e.path / "projections").is_dir() for e in entries)
        assert any((e.path / "explanations").is_dir() for e in entries)
    # a bare name is ./<name>.toml of the current folder (the README's last paragraph)
    assert "saved" in fusionlens(["results", "my", "--quiet"], cwd=data).stdout
    runs = {e.name for e in scan_runs(root / "clips", root)}
    assert {"unimodal-rgb", "unimodal-depth", "early-rgb+depth", "multconcat-rgb+depth"} <= runs
    # tone variants of one item never straddle two splits
    ds = pd.read_parquet(root / "my" / "dataset.parquet")
    assert (ds.groupby("group")["split"].nunique() == 1).all() and ds["group"].nunique() < len(ds)
    # the models learned from the tiny data (chance: 0.25 for the 4 shapes, 0.5 for near / far)
    for exp in ("my", "clips"):
        top1 = pd.read_csv(root / exp / "results.csv").set_index("run")["top1"]
        assert top1.max() >= 0.75, top1
        assert top1.drop([r for r in top1.index if r.startswith("unimodal-")]).max() >= 0.75, top1


def test_walk_the_dashboard_in_chromium(built):
    require_chromium()
    data, root = built["data"], built["root"]
    port = free_port()
    log_path = data / "dashboard.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([str(FUSIONLENS), *built["dashboard"][1:], "--port", str(port)], cwd=data,
                                env=_env(), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    outside: list[str] = []

    def record(request) -> None:
        if not request.url.startswith(("data:", "blob:", "about:")) and urlparse(request.url).hostname != "127.0.0.1":
            outside.append(request.url)

    start = time.perf_counter()
    try:
        wait_healthy(url, proc)
        with chromium_page() as page:
            page.on("request", record)
            _walk(page, url, root)
    except Exception:
        print(log_path.read_text()[-4000:])
        raise
    finally:
        stop(proc)
    print(f"dashboard walk: {time.perf_counter() - start:.1f} s")
    assert outside == [], outside


def _walk(page, url: str, root: Path) -> None:
    from core.ranking import best_full_run
    from core.results import results_table
    from ui.queries import explained_runs

    shot = lambda name: page.screenshot(path=str(SHOTS / f"own-data-{name}.png"), full_page=True)  # noqa: E731

    # Overview of the first experiment, then switch to "my" in the sidebar: no error, no false "Refused"
    open_page(page, url)
    assert title(page) == "Overview"
    assert sidebar_choice(page, "Experiment") == "clips"
    no_error_shown(page)
    shot("overview-clips")
    pick_in_sidebar(page, "Experiment", "my")
    assert sidebar_choice(page, "Experiment") == "my"
    no_error_shown(page)
    shot("overview-my")

    # a run that is not the sidebar's default, with correct predictions to click on
    results, _ = results_table(root / "my")
    default = sidebar_choice(page, "Run")
    assert default == best_full_run(results, explained=explained_runs(root, "my", results["run"].tolist()))
    classes = json.loads((root / "my" / "dataset.json").read_text())["classes"]

    def diagonal(run: str) -> int | None:
        preds = pd.read_parquet(root / "my" / run / "predictions.parquet")
        return next((i for i, c in enumerate(classes) if ((preds["label"] == c) & preds["correct"]).any()), None)

    run = next(r for r in sorted(results["run"], key=lambda r: ("unimodal" in r, r))
               if r != default and diagonal(r) is not None)
    pick_in_sidebar(page, "Run", run)
    assert _view(page)["run"] == run

    # Misclassifications: click a diagonal cell, open its first sample in the explorer
    _goto(page, "Misclassifications")
    i = diagonal(run)
    click_heatmap_cell(page, i, i, len(classes))
    no_error_shown(page)
    page.get_by_text(re.compile(rf"\d+ correct predictions: true {re.escape(classes[i])}")).first.wait_for(
        timeout=30_000)
    select_row(page, page.locator('[data-testid="stDataFrame"]').first)
    sample = re.search(r"Selected\s+(\S+)", page.get_by_text(re.compile(r"^Selected")).first.inner_text()).group(1)
    shot("misclassifications-cell")
    page.get_by_role("button", name=re.compile("Open in the sample explorer")).click()
    page.wait_for_selector('[data-testid="stMain"] h1:has-text("Sample explorer")', timeout=60_000)
    settle(page)
    assert _shows_sample(page, sample), f"the explorer does not show {sample}"
    assert _view(page) == {"experiment": "my", "run": run, "url_exp": "my", "url_run": run}
    no_error_shown(page)
    shot("explorer-from-cell")

    # Embeddings: a lasso over the first scatter, open one of the selected samples
    _goto(page, "Embeddings")
    no_error_shown(page)
    lasso_whole_plot(page)
    page.get_by_text(re.compile(r"\d+ selected · \d+ misclassified")).first.wait_for(timeout=30_000)
    select_row(page, page.locator('[data-testid="stDataFrame"]').last)
    button = page.get_by_role("button", name=re.compile("in the sample explorer"))
    button.wait_for(timeout=30_000)
    picked = re.search(r"Open (\S+) in the sample explorer", button.inner_text()).group(1)
    shot("embeddings-lasso")
    button.click()
    page.wait_for_selector('[data-testid="stMain"] h1:has-text("Sample explorer")', timeout=60_000)
    settle(page)
    assert _shows_sample(page, picked), f"the explorer does not show {picked}"
    assert _view(page) == {"experiment": "my", "run": run, "url_exp": "my", "url_run": run}
    no_error_shown(page)
    shot("explorer-from-lasso")

    # the clips: one RGB-D sample (from .npy or frame folders) in the explorer
    pick_in_sidebar(page, "Experiment", "clips")
    no_error_shown(page)
    assert sidebar_choice(page, "Experiment") == "clips"
    page.wait_for_selector('[data-testid="stDataFrame"]', timeout=60_000)
    select_row(page, page.locator('[data-testid="stDataFrame"]').first)
    page.locator('[data-testid="stMain"] h3', has_text="Sample").first.wait_for(timeout=30_000)
    no_error_shown(page)
    shot("explorer-clips")
