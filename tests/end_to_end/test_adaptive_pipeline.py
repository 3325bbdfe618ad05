"""Adaptive runs end to end on a tiny RGB-D experiment: trained, saved, reloaded with the same predictions and
decisions, cheaper than the all-modality fusion when costs are high, explained given their decisions."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.adaptive import class_selection_rates, efficiency_table, load_decisions, pareto_front, sample_decisions
from core.bundle import load_run
from core.catalog import list_runs
from core.data import load_experiment_dataset
from core.errors import DataError
from core.results import results_table
from core.train import reproduce_predictions
from tests._experiments import ADAPTIVE_RUN, COSTLY_RUN, FUSION_RUN, TINY_ADAPTIVE, built_experiment
from tests._tolerance import f32_atol, longest_reduction


@pytest.fixture(scope="module")
def tiny_ada(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with built_experiment(tmp_path_factory.mktemp("ada"), TINY_ADAPTIVE) as (_, root):
        yield root / "tiny-ada"


def test_adaptive_runs_are_built_and_listed(tiny_ada):
    names = {p.name for p in list_runs(tiny_ada)}
    assert {ADAPTIVE_RUN, COSTLY_RUN, FUSION_RUN} <= names
    frame, problems = results_table(tiny_ada)
    assert not problems and set(frame.loc[frame["run"].isin([ADAPTIVE_RUN, COSTLY_RUN]), "strategy"]) == {"adaptive"}
    run = load_run(tiny_ada / ADAPTIVE_RUN)
    assert run.config["fusion"] == "adaptive" and run.config["adaptive"]["segments"] == 4
    assert run.config["adaptive"]["segment_inputs"] == {m: {"key": "clips", "axis": 2} for m in ("rgb", "depth")}
    # four segments: no out-of-fold encoder exists per segment, and the run says its training rows are in-sample
    assert run.config["adaptive"]["train_embeddings"] == {"rgb": "in-sample", "depth": "in-sample"}
    assert load_run(tiny_ada / COSTLY_RUN).config["adaptive"]["cost"] == {"rgb": 20.0, "depth": 10.0}
    decisions = load_decisions(run.path)
    assert len(decisions) == len(run.predictions) * 4 * 2 and decisions["used"].dtype == bool
    assert (tiny_ada / "_cache" / "unimodal-rgb-segments4.safetensors").is_file()


def test_reload_reproduces_predictions_and_decisions(tiny_ada):
    report = reproduce_predictions(tiny_ada / ADAPTIVE_RUN)
    model = load_run(tiny_ada / ADAPTIVE_RUN).model()
    assert report["same_topk_labels"] and report["max_abs_prob_diff"] <= f32_atol(1.0, longest_reduction(model))
    assert report["same_decisions"] and report["decision_mismatches"] == 0


def test_the_saving_path_gives_the_same_result_as_encoding_every_segment(tiny_ada):
    run = load_run(tiny_ada / ADAPTIVE_RUN)
    model = run.model()
    ds, _ = load_experiment_dataset(tiny_ada)
    ids = run.predictions["id"].astype(str).tolist()
    inputs = model.prepare({m: ds.items(m, ids) for m in model.modalities})
    with torch.no_grad():
        fast, decided = model.predict(inputs)  # only the used segments are encoded
        full, same = model.head.forward_parts([model.encode(m, inputs[m]) for m in model.modalities])
    assert torch.equal(decided, same)
    assert torch.allclose(fast, full, atol=f32_atol(10.0, longest_reduction(model)))
    stored = load_decisions(run.path)
    one = sample_decisions(stored, ids[0], model.policy)
    assert one.to_numpy().tolist() == decided[0].T.tolist()


def test_expected_gflops_follow_the_selection_rates_and_high_costs_save(tiny_ada):
    fusion = load_run(tiny_ada / FUSION_RUN).metrics
    for name in (ADAPTIVE_RUN, COSTLY_RUN):
        m = load_run(tiny_ada / name).metrics
        rates = m["gflops_selection_rates"]
        assert set(rates) == {"rgb", "depth"} and all(0 <= r <= 1 for r in rates.values())
        parts = m["gflops_by_part"]
        assert m["gflops_per_sample"] == pytest.approx(sum(parts.values()), rel=1e-9)
        assert m["gflops_per_sample"] <= m["gflops_max_per_sample"] + 1e-12
    costly = load_run(tiny_ada / COSTLY_RUN).metrics
    assert costly["gflops_per_sample"] < fusion["gflops_per_sample"]
    assert sum(costly["gflops_selection_rates"].values()) < 2.0


def test_efficiency_table_and_pareto_front(tiny_ada):
    runs = [load_run(p) for p in list_runs(tiny_ada)]
    table = efficiency_table(runs)
    assert table["method"].tolist()[:3] == ["rgb only", "depth only", "All-modality fusion (concat)"]
    assert set(table["run"].tolist()[3:]) == {ADAPTIVE_RUN, COSTLY_RUN}
    assert table.loc[table["run"] == "unimodal-rgb", "sel_depth"].isna().all()
    costly = table[table["run"] == COSTLY_RUN].iloc[0]
    assert costly["saving"] > 0 and costly["meets_target"] in (True, False)
    frame, _ = results_table(tiny_ada)
    front = pareto_front(frame)
    cheapest = frame["gflops"].idxmin()
    assert front[cheapest] or frame.loc[cheapest, "top1"] < frame["top1"].max()
    rates = class_selection_rates(load_run(tiny_ada / ADAPTIVE_RUN))
    assert list(rates.columns) == ["rgb", "depth", "n"] and rates.index[-1] == "all"
    assert int(rates.loc["all", "n"]) == len(load_run(tiny_ada / ADAPTIVE_RUN).predictions)


def test_explanation_is_given_the_decisions(tiny_ada):
    from core.explain import ADAPTIVE_EXPLAINED, explain_sample

    picks = []  # a sample whose policy ran some but not every segment, else one that ran any
    for name in (ADAPTIVE_RUN, COSTLY_RUN):
        counts = load_decisions(tiny_ada / name).groupby("id")["used"].sum()
        picks += [(0 < c < 8, c > 0, name, str(i)) for i, c in counts.items()]
    _, ran_any, name, sid = max(picks)
    assert ran_any, "the policy ran nothing for any sample: nothing to explain"
    run = load_run(tiny_ada / name)
    decisions = load_decisions(run.path)
    exp = explain_sample(run.path, sid, store=False, method="exact", video_grid=1, video_segments=4)
    assert exp.settings["explained"] == ADAPTIVE_EXPLAINED
    used = exp.settings["decisions"]["used"]
    one = sample_decisions(decisions, sid, ["rgb", "depth"])
    assert used == {m: [int(s) for s in one.columns if one.loc[m, s]] for m in ("rgb", "depth")}
    # with one tube per segment, the players are exactly the used segments: skipped ones are absent
    for m in ("rgb", "depth"):
        assert exp.settings["n_features"][m] == len(used[m])
        segs = sorted(int(f["segment"]) for f, k in zip(exp.feature_info, exp.feature_modality)
                      if exp.modalities[k] == m)
        assert segs == used[m]
    assert np.isclose(exp.values.sum(), exp.full_value - exp.base_value, atol=1e-6)  # additivity (exact)
    nothing = [i for i, c in load_decisions(tiny_ada / COSTLY_RUN).groupby("id")["used"].sum().items() if c == 0]
    if nothing:  # a sample for which the policy ran nothing: refused with the fix
        with pytest.raises(DataError, match="ran no modality"):
            explain_sample(tiny_ada / COSTLY_RUN, str(nothing[0]), store=False)


def test_precompute_leaves_out_items_the_policy_ran_nothing_for(tiny_ada):
    from core.adaptive import idle_samples
    from core.explain import explain_run, select_samples

    run = load_run(tiny_ada / COSTLY_RUN)
    idle = idle_samples(run)
    ids = select_samples(run)
    assert not idle & set(ids) and len(ids) + len(idle) == len(run.predictions)
    report = explain_run(run.path, n=1, progress=False, method="exact", video_grid=1, video_segments=4)
    assert report["computed"] == min(1, len(ids)) and report["remaining"] == 0


def test_recounting_keeps_the_expected_cost(tiny_ada, tmp_path):
    import shutil

    from core.compute import compute_run

    exp = tmp_path / "tiny-ada"
    shutil.copytree(tiny_ada, exp, ignore=shutil.ignore_patterns("_cache"))
    before = load_run(exp / ADAPTIVE_RUN).metrics
    report = compute_run(exp / ADAPTIVE_RUN, force=True)
    after = load_run(exp / ADAPTIVE_RUN).metrics
    assert after["gflops_selection_rates"] == before["gflops_selection_rates"]
    assert after["gflops_per_sample"] == pytest.approx(before["gflops_per_sample"], rel=1e-6)
    assert report["gflops_per_sample"] == pytest.approx(before["gflops_per_sample"], rel=1e-6)


def test_one_segment_runs_train_on_the_out_of_fold_embeddings(tmp_path: Path):
    """segments = 1: the adaptive head's training rows are the unimodal runs' out-of-fold embeddings (the stage-2
    cache), like every fusion head's; the run reloads with the same predictions and decisions."""
    from tests._experiments import merge

    spec = merge(TINY_ADAPTIVE, {"fusion": {"methods": [], "adaptive": {"segments": 1, "cost_scales": [1.0]}},
                                 "train": {"unimodal": {"oof_folds": 2}}})
    with built_experiment(tmp_path, spec) as (_, root):
        run = load_run(root / "tiny-ada" / ADAPTIVE_RUN)
        assert run.config["adaptive"]["train_embeddings"] == {"rgb": "out-of-fold", "depth": "out-of-fold"}
        report = reproduce_predictions(run.path)
        assert report["same_topk_labels"] and report["same_decisions"]
