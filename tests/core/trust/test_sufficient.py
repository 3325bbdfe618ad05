"""The reliance check over sufficient modality sets (the five-modality site): known answers on hand-made
share tables, subsets of the modalities, the RGB-D fall-back, the ground truth's readers."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.data import prepare_dataset
from core.data.rgbd_sim import RELIANCE, RELIANCE5, SITE_MODALITIES
from core.errors import DataError
from core.experiment import load_experiment
from core.trust import (
    RELIANCE_MIN_PER_GROUP,
    expected_orders,
    parse_sufficient,
    reliance_check,
    reliance_table,
    uses_sufficient,
)
from tests._experiments import write_tiny_experiment


def designed_weight(sets: list[str], m: str, signal: float) -> float:
    """1 + 2 signal where m alone suffices, 1 + signal where it is only in a pair, 1 elsewhere."""
    if m in sets:
        return 1 + 2 * signal
    return 1 + signal if any(m in s.split("+") for s in sets) else 1.0


def site_frame(modalities=SITE_MODALITIES, per_variant: int = 25, signal: float = 1.0, noise: float = 0.05,
               seed: int = 0):
    """(explanation rows, design table with reliance, sufficient and variant) of simulated site clips: each
    modality's share is its designed weight (times log-normal noise) over the run's total; the exact
    Shapley values give the same shares."""
    rng = np.random.default_rng(seed)
    rows, meta = [], []
    for variant, sets in RELIANCE5.items():
        for i in range(per_variant):
            sid = f"{variant}-{i}"
            w = np.array([designed_weight(list(sets), m, signal) for m in modalities]) * np.exp(
                rng.normal(0, noise, len(modalities)))
            share = w / w.sum()
            row = {"sample_id": sid, "correct": i % 2 == 0}
            for m, s in zip(modalities, share):
                row[f"share_{m}"] = s
                row[f"shapley_{m}"] = s * (0.4 if rng.random() < 0.5 else -0.4)
            rows.append(row)
            meta.append({"id": sid, "reliance": RELIANCE[variant], "sufficient": json.dumps(list(sets)),
                         "variant": variant})
    return pd.DataFrame(rows), pd.DataFrame(meta)


def noiseless_difference(modalities, m: str, signal: float = 1.0) -> float:
    """The designed difference of m's share: alone-sufficient variants minus variants naming m in no set."""
    def share(sets):
        w = {o: designed_weight(list(sets), o, signal) for o in modalities}
        return w[m] / sum(w.values())
    alone = [share(s) for s in RELIANCE5.values() if m in s]
    none = [share(s) for s in RELIANCE5.values() if not any(m in e.split("+") for e in s)]
    return float(np.mean(alone) - np.mean(none))


def test_parse_sufficient_reads_json_lists_and_refuses_the_rest():
    assert parse_sufficient('["rgb", "audio + depth"]') == (frozenset({"rgb"}), frozenset({"audio", "depth"}))
    assert parse_sufficient(["depth", "depth"]) == (frozenset({"depth"}),)
    assert parse_sufficient(np.array(["rgb"])) == (frozenset({"rgb"}),)
    assert parse_sufficient("[]") == ()
    for missing in (None, float("nan"), "", "nan", "null"):
        assert parse_sufficient(missing) is None
    for bad in ("rgb", '{"rgb": 1}', "[1, 2]", 3):
        with pytest.raises(DataError) as err:
            parse_sufficient(bad)
        assert err.value.fix and "JSON list" in err.value.fix


def test_shares_that_follow_the_five_modality_design_pass_with_the_known_differences():
    rows, design = site_frame(noise=0.0)
    result = reliance_check(rows, design, SITE_MODALITIES, seed=0)
    assert result.status == "pass", result.reason
    numbers = result.numbers
    assert numbers["rule"] == "sufficient" and numbers["grouped_by"] == "variant"
    assert list(numbers["modalities"]) == list(SITE_MODALITIES)  # every one alone suffices somewhere
    for m in SITE_MODALITIES:
        main = numbers["modalities"][m]["all/mmshap"]
        alone = sum(m in s for s in RELIANCE5.values())
        none = sum(not any(m in e.split("+") for e in s) for s in RELIANCE5.values())
        assert (main["n_a"], main["n_b"]) == (25 * alone, 25 * none)
        assert main["difference"] == pytest.approx(noiseless_difference(SITE_MODALITIES, m), abs=1e-6)
        assert main["low"] > 0 and main["n_groups"] == len(RELIANCE5)
        exact = numbers["modalities"][m]["all/exact"]  # |shapley| shares equal the MM-SHAP ones by construction
        assert exact["difference"] == pytest.approx(main["difference"], abs=1e-9)
        expected = {g["group"]: g["expected"] for g in main["groups"]}
        assert expected == {v: 2.0 if m in s else 1.0 if any(m in e.split("+") for e in s) else 0.0
                            for v, s in RELIANCE5.items()}
    assert numbers["modalities"]["audio"]["all/mmshap"]["rank"] > 0.5
    assert numbers["modalities"]["rgb"]["correct/mmshap"]["n_a"] == 5 * 13  # every other sample is correct
    assert result.n == len(rows)


def test_shuffled_or_reversed_shares_do_not_pass_and_too_few_warns():
    rows, design = site_frame()
    order = np.random.default_rng(3).permutation(len(rows))
    shuffled = rows.drop(columns="sample_id").iloc[order].reset_index(drop=True).assign(sample_id=rows["sample_id"])
    result = reliance_check(shuffled, design, SITE_MODALITIES, seed=0)
    assert result.status in ("fail", "warn"), result.reason
    covers_zero = [r["all/mmshap"]["low"] <= 0 for r in result.numbers["modalities"].values()]
    assert sum(covers_zero) >= 4
    reversed_ = reliance_check(*site_frame(signal=-0.45), SITE_MODALITIES, seed=0)
    assert reversed_.status == "fail" and "no interval lies above 0" in reversed_.reason
    assert all(r["all/mmshap"]["high"] < 0 for r in reversed_.numbers["modalities"].values())
    few = reliance_check(*site_frame(per_variant=4), SITE_MODALITIES)
    assert few.status == "warn" and "Too few" in few.reason and str(RELIANCE_MIN_PER_GROUP) in few.reason


def test_one_modality_against_the_design_makes_a_warning():
    rows, design = site_frame(noise=0.02)
    rows = rows.assign(share_audio=rows["share_audio"].sample(frac=1.0, random_state=0).to_numpy())
    rows = rows.assign(shapley_audio=rows["share_audio"])  # the exact share of audio no longer follows either
    result = reliance_check(rows, design, SITE_MODALITIES, seed=0)
    assert result.status == "warn" and "4 of 5 (rgb, depth, location, trajectory)" in result.reason


def test_a_subset_run_reports_its_modalities_and_keeps_pairs_out_of_the_difference():
    run = ["rgb", "audio", "location"]
    rows, design = site_frame(modalities=run, noise=0.0)
    result = reliance_check(rows, design, run, seed=0)
    assert result.status == "pass", result.reason
    results = result.numbers["modalities"]
    assert list(results) == run and result.numbers["not_reported"] == []
    counts = {m: (results[m]["all/mmshap"]["n_a"], results[m]["all/mmshap"]["n_b"]) for m in run}
    # rgb: 5 variants alone, 4 in no set (stand_under and arm_still name it with depth, which the run lacks)
    assert counts == {"rgb": (5 * 25, 4 * 25), "audio": (1 * 25, 9 * 25), "location": (2 * 25, 8 * 25)}
    groups = {g["group"]: g for g in results["rgb"]["all/mmshap"]["groups"]}
    assert groups["arm_still"]["expected"] == 1.0 and groups["arm_still"]["reliance"] == "audio+depth, depth+rgb"
    for m in run:
        assert results[m]["all/mmshap"]["difference"] == pytest.approx(noiseless_difference(run, m), abs=1e-6)


def test_a_modality_that_never_suffices_alone_is_not_reported():
    rows = pd.DataFrame({"sample_id": [f"s{i}" for i in range(60)], "share_a": 0.5, "share_b": 0.5,
                         "shapley_a": 0.5, "shapley_b": 0.5})
    design = pd.DataFrame({"id": rows["sample_id"], "sufficient": ['["a"]', '["a+b"]', "[]"] * 20})
    result = reliance_check(rows, design, ["a", "b"])
    assert list(result.numbers["modalities"]) == ["a"] and result.numbers["not_reported"] == ["b"]
    assert result.numbers["grouped_by"] == "sufficient sets" and result.status == "fail"
    none = reliance_check(rows, design.assign(sufficient='["a+b"]'), ["a", "b"])
    assert none.status == "warn" and "alone suffices" in none.reason and not none.numbers.get("modalities")
    bad = reliance_check(rows, design.assign(sufficient=['["a"]', "a", "[]"] * 20), ["a", "b"])
    assert bad.numbers["n_unreadable"] == 20 and "20 design rows" in bad.reason and bad.n == 40


def test_the_rgb_depth_pair_falls_back_to_the_classic_reliance_column():
    rows, design = site_frame(modalities=["rgb", "depth"])
    assert not uses_sufficient(design, ["depth", "rgb"]) and uses_sufficient(design, ["rgb", "depth", "audio"])
    assert uses_sufficient(design.drop(columns="reliance"), ["rgb", "depth"])
    assert not uses_sufficient(design.assign(reliance=design["reliance"].where(design.index % 3 > 0)), ["rgb", "depth"])
    orders = expected_orders({"source": "site-sim"})
    assert orders == expected_orders({"source": "rgbd-sim"}) and orders
    both = reliance_check(rows, design, ["rgb", "depth"], orders=orders, seed=1)
    classic = reliance_check(rows, design.drop(columns="sufficient"), ["rgb", "depth"], orders=orders, seed=1)
    assert both.numbers["rule"] == "reliance" and list(both.numbers["modalities"]) == ["depth"]
    assert both.as_dict() == classic.as_dict()
    five = reliance_check(*site_frame(modalities=["rgb", "depth", "audio"]), ["rgb", "depth", "audio"], orders=orders)
    assert five.numbers["rule"] == "sufficient" and list(five.numbers["modalities"]) == ["rgb", "depth", "audio"]


def test_reliance_table_reads_a_sufficient_column_and_the_site_simulators_meta(tmp_path):
    exp_path = write_tiny_experiment(tmp_path)
    manifest = tmp_path / "data" / "manifest.csv"
    frame = pd.read_csv(manifest)
    frame["sufficient"] = np.resize(['["image"]', '["title", "image+description"]', "[]"], len(frame))
    frame.to_csv(manifest, index=False)
    prepare_dataset(load_experiment(exp_path), tmp_path / "runs", progress=False)
    exp_dir = tmp_path / "runs" / "tiny"
    table, source, _ = reliance_table(exp_dir)
    assert source == "the manifest's sufficient column" and list(table.columns) == ["id", "sufficient"]
    assert [parse_sufficient(v) for v in table["sufficient"][:2]] == [
        (frozenset({"image"}),), (frozenset({"title"}), frozenset({"image", "description"}))]
    # the same experiment as if the site simulator had made it: the design comes from clips_meta.parquet
    site = tmp_path / "site"
    site.mkdir()
    pd.DataFrame({"id": ["c0", "c1"], "label": ["Safe", "Safe"], "variant": ["clear", "idle_near_cabin"],
                  "reliance": ["either", "rgb"], "reliance5": [json.dumps(list(RELIANCE5["clear"])),
                                                               json.dumps(list(RELIANCE5["idle_near_cabin"]))]}
                 ).to_parquet(site / "clips_meta.parquet")
    info = json.loads((exp_dir / "dataset.json").read_text())
    (exp_dir / "dataset.json").write_text(json.dumps({**info, "source": "site-sim",
                                                      "manifest": str(site / "manifest.csv")}))
    data = pd.read_parquet(exp_dir / "dataset.parquet")
    data.drop(columns="sufficient").to_parquet(exp_dir / "dataset.parquet")
    table, source, info = reliance_table(exp_dir)
    assert source.endswith("clips_meta.parquet") and info["source"] == "site-sim"
    assert sorted(table.columns) == ["id", "reliance", "sufficient", "variant"]
    assert parse_sufficient(table["sufficient"][1]) == (frozenset({"rgb"}), frozenset({"audio"}))
    (site / "clips_meta.parquet").unlink()
    table, source, _ = reliance_table(exp_dir)
    assert table is None and "cannot be read" in source
