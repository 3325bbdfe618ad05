"""The whole pipeline on a tiny seeded dataset: build, results, reload, resume, determinism; and the
build as one pipeline of steps (core.pipeline): order, --skip-precompute, [precompute] choices."""
from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest

from core.bundle import load_run
from core.catalog import list_runs
from core.cli import main
from core.errors import BundleError, ConfigError
from core.experiment import DEFAULT_PRECOMPUTE, load_experiment, parse_experiment
from core.explain import load_explanation_summaries, select_build_runs
from core.pipeline import STEPS, PrecomputeChoices, explain_plan, read_precompute_choices, run_build
from core.results import save_results
from core.train import planned_runs, reproduce_predictions, train_experiment
from tests._tolerance import f32_atol, longest_reduction


def test_every_planned_run_is_built(tiny_built):
    exp_path, root = tiny_built
    exp = load_experiment(exp_path)
    built = {p.name for p in list_runs(root / exp.name)}
    assert {name for name, *_ in planned_runs(exp)} == built
    # unimodal for each modality, 2 intermediate + 2 late per subset
    assert len(built) == 3 + 2 * 4


def test_bundle_contents(tiny_built):
    _, root = tiny_built
    run = load_run(root / "tiny" / "multconcat-image+title+description")
    assert run.config["strategy"] == "intermediate" and run.config["fusion"] == "multconcat"
    preds = run.predictions
    assert {"id", "label", "pred", "correct", "confidence", "top1_label", "top4_label", "top4_prob"} <= set(preds.columns)
    # 4 float32 probabilities (one softmax, each rounded once) add up to 1
    assert np.allclose(preds[[f"top{k}_prob" for k in range(1, 5)]].sum(axis=1), 1.0, rtol=0, atol=f32_atol(1.0, 4))
    assert (preds["top1_label"] == preds["pred"]).all()
    m = run.metrics
    for key in ("top1", "top3", "top5", "macro_f1", "per_class", "confusion", "n_params", "train_seconds",
                "inference_ms_per_sample"):
        assert key in m
    assert m["top1"] <= m["top3"] <= m["top5"] == 1.0  # 4 classes: top-5 covers all (a ratio of equal counts)
    assert np.asarray(m["confusion"]["matrix"]).sum() == len(preds)
    emb = run.embeddings()
    assert set(emb) == {"image", "title", "description", "fused"}
    assert all(v.shape[0] == len(preds) for v in emb.values())
    assert emb["title"].shape[1] == 384 and emb["image"].shape[1] == 16


def test_fusion_beats_chance_and_text_is_informative(tiny_built):
    _, root = tiny_built
    frame, problems = save_results(root / "tiny")
    assert not problems
    assert (root / "tiny" / "results.csv").is_file()
    best = frame.set_index("run")["top1"]
    assert best.max() > 0.5  # 4 classes: chance is 0.25
    assert list(frame.columns[:5]) == ["run", "encoders", "fusion", "strategy", "modalities"]


@pytest.mark.parametrize("run", ["unimodal-image", "unimodal-title", "multconcat-image+title+description",
                                 "late-weighted-image+title"])
def test_reload_reproduces_predictions(tiny_built, run):
    _, root = tiny_built
    report = reproduce_predictions(root / "tiny" / run)
    assert report["same_topk_labels"]
    # probabilities (scale 1) of the network rebuilt and rerun, maybe in other batches and threads
    assert report["max_abs_prob_diff"] <= f32_atol(1.0, longest_reduction(load_run(root / "tiny" / run).model()))


def test_rerun_skips_finished_runs(tiny_built):
    exp_path, root = tiny_built
    exp = load_experiment(exp_path)
    stamps = {p.name: (p / "config.json").stat().st_mtime_ns for p in list_runs(root / exp.name)}
    train_experiment(exp, root, progress=False)
    assert stamps == {p.name: (p / "config.json").stat().st_mtime_ns for p in list_runs(root / exp.name)}


def test_same_file_and_seed_give_same_metrics(tiny_built, tmp_path):
    exp_path, root = tiny_built
    exp = load_experiment(exp_path)
    train_experiment(exp, tmp_path, progress=False, only=["multconcat-image+title"])
    a = load_run(root / "tiny" / "multconcat-image+title").metrics
    b = load_run(tmp_path / "tiny" / "multconcat-image+title").metrics
    for key in ("top1", "top3", "macro_f1"):
        assert a[key] == b[key]
    assert a["confusion"] == b["confusion"]


def test_cli_results_and_list(tiny_built, capsys):
    exp_path, root = tiny_built
    assert main(["--runs-dir", str(root), "results", str(exp_path)]) == 0
    out = capsys.readouterr().out
    assert "multconcat-image+title+description" in out and "results.csv" in out
    assert main(["--runs-dir", str(root), "list"]) == 0
    assert "unimodal-image" in capsys.readouterr().out


def test_cli_reports_bad_experiment_cleanly(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[dataset]\nsource="manifest"\nmanifest="m.csv"\n'
                   '[modalities.image]\nkind="image"\nencoder="small-cnn"\n'
                   '[modalities.title]\nkind="text"\nencoder="minilm"\n[fusion]\nmethods=["multconact"]\n')
    assert main(["--runs-dir", str(tmp_path), "train", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "multconact" in err and "multconcat" in err and "Fix:" in err


# --------------------------------------------------------------------------- the build pipeline

def _built_copy(tiny_built, tmp_path: Path) -> Path:
    """A copy of the tiny experiment's runs root without anything precomputed."""
    _, root = tiny_built
    copy = tmp_path / "runs"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("explanations", "projections", "precompute.json"))
    return copy


def _with_precompute(exp_path: Path, table: str):
    """The tiny experiment with a [precompute] table, parsed as the file would be."""
    return parse_experiment(tomllib.loads(exp_path.read_text() + "\n[precompute]\n" + table), exp_path)


def _stored(root: Path) -> tuple[set[str], set[str]]:
    return ({p.name for p in root.glob("tiny/*/projections/*.json")},
            {p.parent.name for p in root.glob("tiny/*/explanations")})


def test_build_steps_in_order():
    assert [s.name for s in STEPS] == ["prepare", "train", "results", "project", "blame", "explain", "robustness"]
    assert [s.name for s in STEPS if s.precompute] == ["project", "blame", "explain", "robustness"]


def test_skip_precompute_runs_the_first_three_steps(tiny_built, tmp_path, capsys):
    exp_path, _ = tiny_built
    root = _built_copy(tiny_built, tmp_path)
    ctx = run_build(load_experiment(exp_path), root, skip_precompute=True)
    assert [(name, status) for name, status, *_ in ctx.log] == [
        ("prepare", "done"), ("train", "done"), ("results", "done"), ("project", "skipped"), ("blame", "skipped"),
        ("explain", "skipped"), ("robustness", "skipped")]
    assert len(ctx.results) == 3 + 2 * 4 and ctx.skipped == []
    assert _stored(root) == (set(), set())
    err = capsys.readouterr().err
    assert "build tiny [2/7] train: 11 run(s) ready" in err and "build tiny [6/7] explain: --skip-precompute" in err
    assert not list(root.glob("tiny/*/robustness.json")) and not list(root.glob("tiny/*/blame.parquet"))
    # the choices are recorded all the same (the dashboard shows what the build would compute)
    assert read_precompute_choices(root / "tiny") == PrecomputeChoices()


def test_cli_build_skip_precompute(tiny_built, tmp_path, capsys):
    exp_path, _ = tiny_built
    root = _built_copy(tiny_built, tmp_path)
    assert main(["--runs-dir", str(root), "--quiet", "build", str(exp_path), "--skip-precompute"]) == 0
    captured = capsys.readouterr()
    assert "multconcat-image+title+description" in captured.out and captured.err == ""
    assert _stored(root) == (set(), set()) and (root / "tiny" / "results.csv").is_file()


def test_precompute_choices_are_honoured(tiny_built, tmp_path):
    exp_path, _ = tiny_built
    root = _built_copy(tiny_built, tmp_path)
    runs = ["concat-image+title", "late-average-image+title+description"]
    exp = _with_precompute(exp_path, f'projections = ["pca"]\nexplain_runs = {json.dumps(runs)}\n'
                                     "explain_samples = [3, 2]\nrobustness_levels = 3\nrobustness_samples = 6\n")
    ctx = run_build(exp, root, progress=False)
    assert [status for _, status, *_ in ctx.log] == ["done"] * 7
    # every run's blame of every test prediction
    assert {p.parent.name for p in root.glob("tiny/*/blame.parquet")} == set(ctx.results["run"])
    # every run's robustness table, within the budget, with the experiment's choices
    tables = {p.parent.name: json.loads(p.read_text()) for p in root.glob("tiny/*/robustness.json")}
    assert set(tables) == set(ctx.results["run"]) and {t["n"] for t in tables.values()} == {6}
    assert {len(c["levels"]) for t in tables.values() for per in t["noise"].values() for c in per.values()} == {3}
    projections, explained = _stored(root)
    assert {name.split("__")[1] for name in projections} == {"pca"}  # <embedding>__<method>__<key>.json
    assert {name.split("__")[0] for name in projections} >= {"image", "title", "fused"}
    assert {p.parent.parent.name for p in root.glob("tiny/*/projections/*.json")} == set(ctx.results["run"])
    assert explained == set(runs)
    counts = {r: len(load_explanation_summaries(root / "tiny" / r)) for r in runs}
    assert counts == {runs[0]: 3, runs[1]: 2}
    # the dashboard reads the same plan back without the experiment file
    assert explain_plan(root / "tiny") == [(root / "tiny" / runs[0], 3), (root / "tiny" / runs[1], 2)]


def test_every_fused_run_gets_the_shared_sample(tiny_built, tmp_path):
    """explain_every_run: every fused run is explained on the same seeded samples; the named run gets its own
    count on top; the plan the dashboard reads back lists every fused run."""
    exp_path, _ = tiny_built
    root = _built_copy(tiny_built, tmp_path)
    exp = _with_precompute(exp_path, 'projections = []\nexplain_runs = ["concat-image+title"]\nexplain_samples = [3]\n'
                                     "explain_every_run = 2\nrobustness_seconds = 0\nblame_seconds = 0\n")
    ctx = run_build(exp, root, progress=False)
    summary = {name: text for name, _, text, _ in ctx.log}["explain"]
    fused = [r for r in ctx.results["run"] if not r.startswith("unimodal-")]
    assert len(fused) == 8 and summary.startswith(f"{len(fused)} run(s), {3 + 2 * 7} explanation(s) (2 shared")
    ids = {r: set(load_explanation_summaries(root / "tiny" / r)["sample_id"]) for r in fused}
    shared = ids["late-average-image+title+description"]
    assert len(ids["concat-image+title"]) == 3 and len(shared) == 2 and shared < ids["concat-image+title"]
    assert all(ids[r] == shared for r in fused if r != "concat-image+title")
    plan = explain_plan(root / "tiny")
    assert plan[0] == (root / "tiny" / "concat-image+title", 3)
    assert sorted(p.name for p, _ in plan[1:]) == sorted(r for r in fused if r != "concat-image+title")
    assert {n for _, n in plan[1:]} == {2}
    # with no named run and no automatic pick, every fused run still gets the shared sample
    choices = PrecomputeChoices(explain_max_runs=0, explain_every_run=2)
    assert sorted(p.name for p, _ in explain_plan(root / "tiny", choices)) == sorted(fused)


def test_shared_sample_left_by_the_budget_is_one_command(tiny_built, tmp_path, capsys):
    exp_path, _ = tiny_built
    root = _built_copy(tiny_built, tmp_path)
    exp = _with_precompute(exp_path, "projections = []\nexplain_max_runs = 0\nexplain_every_run = 4\n"
                                     "explain_seconds = 0.001\nrobustness_seconds = 0\nblame_seconds = 0\n")
    run_build(exp, root, progress=False)
    err = capsys.readouterr().err
    assert "explanations of the shared sample: " in err and "left over " in err
    assert f"explain {root / 'tiny'} --n 4 --seed " in err and "explanations of concat-" not in err


def test_precompute_nothing(tiny_built, tmp_path):
    exp_path, _ = tiny_built
    root = _built_copy(tiny_built, tmp_path)
    ctx = run_build(_with_precompute(exp_path, "projections = []\nexplain_runs = []\nrobustness_seconds = 0\n"
                                               "blame_seconds = 0\n"), root, progress=False)
    summaries = {name: summary for name, _, summary, _ in ctx.log}
    assert summaries["blame"].startswith("none asked") and not list(root.glob("tiny/*/blame.parquet"))
    assert summaries["project"].startswith("none asked") and summaries["explain"] == "no runs to explain"
    assert summaries["robustness"].startswith("none asked") and not list(root.glob("tiny/*/robustness.json"))
    assert _stored(root) == (set(), set())


def test_default_plan_is_the_automatic_pick(tiny_built):
    _, root = tiny_built
    plan = explain_plan(root / "tiny", PrecomputeChoices())
    assert [p for p, _ in plan] == select_build_runs(root / "tiny") and 1 <= len(plan) <= 3
    assert [n for _, n in plan] == [1000] * len(plan)  # the default: every test sample (up to 1,000)
    assert explain_plan(root / "tiny", PrecomputeChoices(explain_max_runs=1)) == plan[:1]
    assert explain_plan(root / "tiny", PrecomputeChoices(explain_max_runs=0)) == []
    assert PrecomputeChoices.from_table(DEFAULT_PRECOMPUTE) == PrecomputeChoices()


def test_the_plan_reads_without_torch(tiny_built):
    """The dashboard's Overview shows the build's plan: reading it must not import torch."""
    import os
    import subprocess
    import sys

    from core.experiment import PROJECT_ROOT

    _, root = tiny_built
    code = ("import sys\nfrom pathlib import Path\nfrom core.pipeline import explain_plan\n"
            f"plan = explain_plan(Path({str(root / 'tiny')!r}))\n"
            "assert plan and 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)[:5]\n"
            "print([(p.name, n) for p, n in plan])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    assert done.returncode == 0, done.stderr
    assert "multconcat-image+title+description" in done.stdout


def test_explain_runs_are_checked_before_any_work(tiny_built, tmp_path):
    exp_path, _ = tiny_built
    root = tmp_path / "fresh"
    with pytest.raises(ConfigError) as info:
        run_build(_with_precompute(exp_path, 'explain_runs = ["concat-image+titel"]\n'), root, progress=False)
    assert "explain_runs names run(s) 'concat-image+titel'" in info.value.problem
    assert "concat-image+title" in info.value.fix
    assert not root.exists()


def test_listed_run_that_is_not_usable_is_skipped_with_its_problem(tiny_built, tmp_path):
    _, root = tiny_built
    copy = _built_copy(tiny_built, tmp_path)
    shutil.rmtree(copy / "tiny" / "concat-image+title")
    skipped: list[str] = []
    choices = PrecomputeChoices(explain_runs=("concat-image+title", "concat-image+title+description"))
    plan = explain_plan(copy / "tiny", choices, copy, skipped)
    assert plan == [(copy / "tiny" / "concat-image+title+description", 1000)]
    assert len(skipped) == 1 and skipped[0].startswith("run concat-image+title (incomplete)")


@pytest.mark.parametrize("table, message", [
    ("explain_samples = [0]\n", "[precompute] explain_samples = [0] is out of range (allowed: a list of integers, "
                                "each >= 1)"),
    ("explain_samples = []\n", "[precompute] explain_samples = [] gives no sample count"),
    ("explain_samples = [10, 2.5]\n", "[precompute] explain_samples = [10, 2.5] is a list, not a list of integers"),
    ('projections = ["pcaa"]\n', '[precompute] projections = ["pcaa"] holds "pcaa", which is not allowed'),
    ("explain_seconds = 0\n", "[precompute] explain_seconds = 0 is out of range (allowed: a number > 0)"),
    ('explain_runs = ["a", "a"]\n', "[precompute] explain_runs names 'a' more than once"),
    ("explain_max_runs = -1\n", "[precompute] explain_max_runs = -1 is out of range"),
    ('explain = "all"\n', "[precompute] has an unknown key 'explain'"),
])
def test_bad_precompute_tables_are_refused(tiny_built, table, message):
    exp_path, _ = tiny_built
    with pytest.raises(ConfigError) as info:
        _with_precompute(exp_path, table)
    assert message in str(info.value) and "Fix:" in str(info.value)


def test_precompute_record_read_back(tmp_path):
    assert read_precompute_choices(tmp_path) == PrecomputeChoices()  # a build from before the record
    (tmp_path / "precompute.json").write_text('{"explain_samples": "many"}')
    with pytest.raises(BundleError, match="precompute.json is damaged.*Fix: rerun .* build"):
        read_precompute_choices(tmp_path)
    (tmp_path / "precompute.json").write_text('{"explain_max_runs": 1, "projections": ["umap"]}')
    assert read_precompute_choices(tmp_path) == PrecomputeChoices(projections=("umap",), explain_max_runs=1)


@pytest.mark.parametrize("step, budget, stored_file, flags", [
    ("robustness", "robustness_seconds = 0.001\nrobustness_levels = 2\n", "robustness.json", ["--levels 2"]),
    ("blame", "robustness_seconds = 0\nblame_seconds = 0.001\n", "blame.parquet", []),
])
def test_a_step_beyond_its_budget_is_listed_with_the_command(tiny_built, tmp_path, capsys, step, budget,
                                                             stored_file, flags):
    exp_path, _ = tiny_built
    root = _built_copy(tiny_built, tmp_path)
    exp = _with_precompute(exp_path, "projections = []\nexplain_runs = []\n" + budget)
    ctx = run_build(exp, root, progress=False)
    summary = {name: summary for name, _, summary, _ in ctx.log}[step]
    stored = list(root.glob(f"tiny/*/{stored_file}"))
    assert summary == f"{len(stored)} run(s) computed, 0 already stored, {len(ctx.results) - len(stored)} left"
    assert len(stored) < len(ctx.results)  # the first run may start within the budget, not all of them
    err = capsys.readouterr().err
    assert f"{step}: time budget spent" in err and f"{step} {exp_path} --runs-dir {root}" in err
    for flag in flags:  # the step's own settings travel with the command
        assert flag in err


def test_the_build_budget_shares_what_is_left_among_the_precompute_steps(tiny_built):
    """With ``build_seconds``, blame / explain / robustness get 1 : 3 : 2 of what is left, each at most its own
    budget; a step already run passes its unused time on; a step that computes nothing takes no part."""
    import time

    from core.pipeline import BuildContext

    exp = load_experiment(tiny_built[0])
    ctx = BuildContext(exp=exp, root=Path("."), choices=PrecomputeChoices(build_seconds=100.0),
                       started=time.perf_counter() - 40.0)  # 60 s left
    assert ctx.step_seconds("blame") == pytest.approx(10.0, abs=0.5)
    assert "what the build's 100 s budget left it" in ctx.budget_note("blame", 10.0)
    ctx.log.append(("blame", "done", "", 0.0))
    assert ctx.step_seconds("explain") == pytest.approx(36.0, abs=0.5)   # 60 s x 3 / (3 + 2)
    ctx.log.append(("explain", "done", "", 0.0))
    assert ctx.step_seconds("robustness") == pytest.approx(60.0, abs=0.5)
    small = BuildContext(exp=exp, root=Path("."), started=time.perf_counter() - 40.0,
                         choices=PrecomputeChoices(build_seconds=100.0, explain_seconds=5.0, robustness_seconds=0.0))
    assert small.step_seconds("explain") == 5.0 and small.budget_note("explain", 5.0) == ""  # its own is smaller
    assert small.step_seconds("blame") == pytest.approx(15.0, abs=0.5)  # 60 s x 1 / (1 + 3): robustness is off
    spent = BuildContext(exp=exp, root=Path("."), choices=PrecomputeChoices(build_seconds=10.0),
                         started=time.perf_counter() - 40.0)
    assert spent.step_seconds("explain") == 0.0 and spent.step_seconds("robustness") == 0.0
    no_blame = BuildContext(exp=exp, root=Path("."), choices=PrecomputeChoices(build_seconds=100.0),
                            started=time.perf_counter() - 40.0, planned=("explain", "robustness"))
    assert no_blame.step_seconds("explain") == pytest.approx(36.0, abs=0.5)  # 60 s x 3 / (3 + 2): no blame step
    free = BuildContext(exp=exp, root=Path("."), started=time.perf_counter() - 1e6)
    assert free.step_seconds("explain") == 120.0 and free.budget_note("explain", 120.0) == ""  # no overall budget


def test_a_spent_build_budget_leaves_the_precompute_to_the_printed_commands(tiny_built, tmp_path, capsys):
    exp_path, _ = tiny_built
    root = _built_copy(tiny_built, tmp_path)
    exp = _with_precompute(exp_path, 'projections = []\nexplain_runs = ["concat-image+title"]\n'
                                     "explain_samples = [3]\nrobustness_levels = 2\n")
    ctx = run_build(exp, root, progress=False, build_seconds=1e-3)
    summaries = {name: summary for name, _, summary, _ in ctx.log}
    assert summaries["explain"].startswith("1 run(s), 0 explanation(s), about 3 left")
    assert summaries["blame"].startswith(f"0 run(s) computed, 0 already stored, {len(ctx.results)} left")
    assert summaries["robustness"].startswith(f"0 run(s) computed, 0 already stored, {len(ctx.results)} left")
    assert "what the build's 0 s budget left it" in summaries["robustness"]
    assert load_explanation_summaries(root / "tiny" / "concat-image+title") is None  # nothing explained
    assert not list(root.glob("tiny/*/blame.parquet")) and not list(root.glob("tiny/*/robustness.json"))
    err = capsys.readouterr().err
    assert "explain " in err and "--n 3" in err and "blame: time budget spent" in err
    assert "robustness: time budget spent" in err
    assert read_precompute_choices(root / "tiny").build_seconds == 1e-3  # the dashboard reads the same plan
    with pytest.raises(ConfigError, match="build budget of -1"):
        run_build(exp, root, progress=False, build_seconds=-1)


def test_cli_build_budget(tiny_built, tmp_path, capsys):
    exp_path, _ = tiny_built
    root = _built_copy(tiny_built, tmp_path)
    exp_file = exp_path.with_name("tiny-no-projections.toml")  # beside it: the manifest path is relative
    exp_file.write_text(exp_path.read_text() + "\n[precompute]\nprojections = []\n")
    assert main(["--runs-dir", str(root), "build", str(exp_file), "--budget", "0.001"]) == 0
    err = capsys.readouterr().err
    assert "blame: time budget spent" in err and "robustness: time budget spent" in err
    assert not list(root.glob("tiny/*/blame.parquet"))
