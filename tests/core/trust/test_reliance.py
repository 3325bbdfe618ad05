"""Designed reliance vs measured shares: known answers on synthetic frames, the statistics, the ground truth."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from core.data import prepare_dataset
from core.data.rgbd_sim import EXPECTED_DEPTH_ORDER, RELIANCE
from core.experiment import load_experiment
from core.trust import (
    RELIANCE_MIN_PER_GROUP,
    bootstrap_difference,
    expected_orders,
    reliance_check,
    reliance_table,
    share_values,
    spearman,
)
from tests._experiments import write_tiny_experiment

RGBD = ["rgb", "depth"]
#: the designed depth share of each reliance tier in the synthetic frames
TIER_SHARE = {"depth": 0.8, "both": 0.5, "either": 0.5, "rgb": 0.2}


def rgbd_frame(per_variant: int = 25, signal: float = 1.0, noise: float = 0.01, seed: int = 0):
    """(explanation rows, reliance table) of simulated clips: the depth share is 0.5 + signal *
    (tier share - 0.5) plus noise; the exact Shapley values give the same share."""
    rng = np.random.default_rng(seed)
    rows, meta = [], []
    for variant, reliance in RELIANCE.items():
        for i in range(per_variant):
            sid = f"{variant}-{i}"
            depth = float(np.clip(0.5 + signal * (TIER_SHARE[reliance] - 0.5) + rng.normal(0, noise), 0, 1))
            rows.append({"sample_id": sid, "share_rgb": 1 - depth, "share_depth": depth,
                         "shapley_rgb": 0.3 * (1 - depth), "shapley_depth": -0.3 * depth, "correct": i % 2 == 0})
            meta.append({"id": sid, "reliance": reliance, "variant": variant})
    return pd.DataFrame(rows), pd.DataFrame(meta)


def test_the_documented_depth_order_is_the_reliance_ground_truth():
    assert sorted(v for tier in EXPECTED_DEPTH_ORDER for v in tier) == sorted(RELIANCE)
    assert set(EXPECTED_DEPTH_ORDER[0]) == {v for v, r in RELIANCE.items() if r == "depth"}
    assert set(EXPECTED_DEPTH_ORDER[-1]) == {v for v, r in RELIANCE.items() if r == "rgb"}
    assert expected_orders({"source": "rgbd-sim"})["rgb"] == tuple(reversed(EXPECTED_DEPTH_ORDER))
    assert expected_orders({"source": "manifest"}) == {}


def test_spearman_matches_scipy_with_ties_and_is_nan_without_variation():
    a, b = [1, 2, 2, 3, 5, 4], [2, 1, 3, 3, 6, 5]
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)  # float64 both ways
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8, abs=1e-12)
    assert math.isnan(spearman([1, 1, 1, 1], [1, 2, 3, 4]))
    assert math.isnan(spearman([1, 2], [2, 1]))


def test_bootstrap_interval_covers_the_true_difference():
    rng = np.random.default_rng(0)
    covered = []
    for rep in range(200):
        a, b = rng.normal(0.3, 0.2, 30), rng.normal(0.1, 0.2, 25)
        diff, low, high = bootstrap_difference(a, b, seed=rep, n_boot=400)
        assert low <= diff <= high
        covered.append(low <= 0.2 <= high)
    assert 0.88 <= np.mean(covered) <= 0.99  # nominal 0.95; percentile intervals run a little narrow
    assert all(math.isnan(v) for v in bootstrap_difference([1.0], [], seed=0, n_boot=10))


def test_shares_that_follow_the_design_pass_with_the_known_difference():
    rows, meta = rgbd_frame()
    result = reliance_check(rows, meta, RGBD, orders=expected_orders({"source": "rgbd-sim"}), seed=0)
    assert result.status == "pass", result.reason
    depth = result.numbers["modalities"]
    assert list(depth) == ["depth"]  # two modalities: the rgb numbers mirror the depth ones
    main = depth["depth"]["all/mmshap"]
    assert main["n_a"] == 4 * 25 and main["n_b"] == 2 * 25
    assert main["difference"] == pytest.approx(0.6, abs=0.01)
    assert main["low"] < 0.6 < main["high"] and main["low"] > 0.55
    assert main["rank"] > 0.9 and main["n_groups"] == len(RELIANCE)
    exact = depth["depth"]["all/exact"]  # |shapley| shares equal the MM-SHAP shares by construction
    assert exact["difference"] == pytest.approx(main["difference"], abs=1e-9)
    assert depth["depth"]["correct/mmshap"]["n_a"] == 4 * 13  # every other sample is correct
    assert result.n == len(rows)


def test_reversed_or_absent_reliance_fails_and_too_few_warns():
    rows, meta = rgbd_frame(signal=-1.0)
    reversed_ = reliance_check(rows, meta, RGBD, orders=expected_orders({"source": "rgbd-sim"}))
    assert reversed_.status == "fail" and reversed_.numbers["modalities"]["depth"]["all/mmshap"]["high"] < 0
    flat = reliance_check(*rgbd_frame(signal=0.0, noise=0.0), RGBD)
    assert flat.status == "fail"
    few_rows, few_meta = rgbd_frame(per_variant=4)
    few = reliance_check(few_rows, few_meta, RGBD, orders=expected_orders({"source": "rgbd-sim"}))
    assert few.status == "warn" and "Too few" in few.reason and str(RELIANCE_MIN_PER_GROUP) in few.reason


def test_only_explained_samples_with_a_reliance_count():
    rows, meta = rgbd_frame()
    rows = rows.iloc[::2]  # half the samples explained
    result = reliance_check(rows, meta, RGBD)
    assert result.n == len(rows)
    assert reliance_check(rows.iloc[:0], meta, RGBD).status == "skip"
    assert reliance_check(rows, meta, ["rgb"]).status == "skip"


def test_a_users_reliance_column_groups_by_reliance_without_variants():
    rng = np.random.default_rng(1)
    reliance = np.repeat(["image", "title", "both", "either"], 30)
    share_image = np.where(reliance == "image", 0.7, np.where(reliance == "title", 0.3, 0.5)) + rng.normal(0, .02, 120)
    rows = pd.DataFrame({"sample_id": [f"s{i}" for i in range(120)], "share_image": share_image,
                         "share_title": 1 - share_image, "shapley_image": share_image, "shapley_title": 1 - share_image,
                         "correct": True})
    meta = pd.DataFrame({"id": rows["sample_id"], "reliance": reliance})
    result = reliance_check(rows, meta, ["image", "title"])
    assert result.status == "pass", result.reason
    measured = result.numbers["modalities"]["title"]["all/mmshap"]
    assert result.numbers["grouped_by"] == "reliance" and measured["n_groups"] == 4
    assert measured["difference"] == pytest.approx(0.4, abs=0.02)


def test_exact_share_is_the_absolute_modality_value_over_their_sum():
    rows = pd.DataFrame({"shapley_a": [0.3, -0.1, 0.0], "shapley_b": [-0.1, 0.3, 0.0],
                         "share_a": [0.0, 0.0, 0.0], "share_b": [0.0, 0.0, 0.0]})
    exact = share_values(rows, ["a", "b"], "a", "exact")
    np.testing.assert_allclose(exact[:2], [0.75, 0.25], rtol=1e-12)  # float64 arithmetic on given numbers
    assert math.isnan(exact[2])


def test_reliance_table_reads_a_manifests_reliance_column(tmp_path):
    exp_path = write_tiny_experiment(tmp_path)
    manifest = tmp_path / "data" / "manifest.csv"
    frame = pd.read_csv(manifest)
    frame["reliance"] = np.resize(["image", "title", "both"], len(frame))
    frame.to_csv(manifest, index=False)
    prepare_dataset(load_experiment(exp_path), tmp_path / "runs", progress=False)
    table, source, info = reliance_table(tmp_path / "runs" / "tiny")
    assert source == "the manifest's reliance column" and info["source"] == "manifest"
    assert list(table.columns) == ["id", "reliance"] and len(table) == len(frame)
    assert set(table["reliance"]) == {"image", "title", "both"}
    frame.drop(columns="reliance").to_csv(manifest, index=False)
    prepare_dataset(load_experiment(exp_path), tmp_path / "runs2", progress=False)
    table, source, _ = reliance_table(tmp_path / "runs2" / "tiny")
    assert table is None and "no designed reliance" in source
