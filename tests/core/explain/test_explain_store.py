"""Stored explanations: precompute (seeded, sharded, resumable), loading, the per-class table, the CLI."""
from __future__ import annotations

import shlex
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.cli import build_parser, main
from core.errors import ConfigError, cli_command
from core.explain import (
    ALL_CLASSES,
    Explanation,
    ExplainSettings,
    class_share_table,
    explain_run,
    explain_sample,
    explanation_for,
    explanation_status,
    features_table,
    load_explanation_summaries,
    load_explanations,
    parse_shard,
    resolve_run,
    select_build_runs,
    select_samples,
    settings_from_args,
)
from tests._tolerance import f64_atol

RUN = "multconcat-image+title+description"


def copy_run(tiny_built, folder: Path, run: str = RUN) -> Path:
    _, root = tiny_built
    exp = folder / "runs" / "tiny"
    shutil.copytree(root / "tiny" / run, exp / run)
    for name in ("dataset.json", "dataset.parquet"):
        shutil.copy(root / "tiny" / name, exp / name)
    return exp / run


@pytest.fixture()
def run_dir(tiny_built, tmp_path) -> Path:
    return copy_run(tiny_built, tmp_path)


def sorted_rows(frame: pd.DataFrame, cols) -> pd.DataFrame:
    return frame.sort_values(cols).reset_index(drop=True)


# --------------------------------------------------------------------------- precompute


def test_shards_and_reruns_give_the_same_rows(tiny_built, tmp_path) -> None:
    whole = copy_run(tiny_built, tmp_path / "a")
    sharded = copy_run(tiny_built, tmp_path / "b")
    report = explain_run(whole, n=4, seed=1, progress=False)
    assert (report["requested"], report["computed"], report["skipped"]) == (4, 4, 0)
    for shard in ("0/2", "1/2"):
        explain_run(sharded, n=4, seed=1, shard=shard, progress=False)
    files = sorted(p.name for p in (sharded / "explanations").glob("samples-*.parquet"))
    assert len(files) == 2 and files[0].endswith("part0of2.parquet") and files[1].endswith("part1of2.parquet")
    a_s, a_f = load_explanations(whole)
    b_s, b_f = load_explanations(sharded)
    assert sorted(a_s["sample_id"]) == sorted(b_s["sample_id"]) == sorted(select_samples(resolve_run(whole), 4, 1))
    cols = ["sample_id", "base_value", "full_value", "share_image", "share_title", "share_description", "method"]
    # exact: a sample's values depend only on the sample and the settings (same process, same code path)
    pd.testing.assert_frame_equal(sorted_rows(a_s[cols], "sample_id"), sorted_rows(b_s[cols], "sample_id"),
                                  check_exact=True)
    fcols = ["sample_id", "modality", "feature_index", "token", "row", "col", "phi"]
    pd.testing.assert_frame_equal(sorted_rows(a_f[fcols], ["sample_id", "modality", "feature_index"]),
                                  sorted_rows(b_f[fcols], ["sample_id", "modality", "feature_index"]), check_exact=True)
    # and the same as explaining on demand
    sid = a_s["sample_id"].iloc[0]
    again = explain_sample(whole, sid, seed=1, store=False)
    stored = explanation_for(whole, sid)
    np.testing.assert_array_equal(again.values, stored.values)


def test_resume_skips_stored_samples_and_keeps_settings_apart(run_dir) -> None:
    first = explain_run(run_dir, n=2, progress=False)
    assert first["computed"] == 2
    second = explain_run(run_dir, n=5, progress=False)
    assert (second["skipped"], second["computed"]) == (2, 3)
    assert explain_run(run_dir, n=5, progress=False)["computed"] == 0
    # other settings: a separate hash, nothing reused or overwritten
    other = explain_run(run_dir, n=2, output="true_prob", progress=False)
    assert other["computed"] == 2 and other["settings_hash"] != first["settings_hash"]
    samples, features = load_explanations(run_dir)
    assert len(samples) == 7
    assert samples.groupby("settings_hash").size().to_dict() == {first["settings_hash"]: 5,
                                                                 other["settings_hash"]: 2}
    assert set(features.groupby(["sample_id", "settings_hash"]).size().index) == \
        set(zip(samples["sample_id"], samples["settings_hash"]))
    assert len(load_explanations(run_dir, settings_hash=other["settings_hash"])[0]) == 2
    # one row per sample for the dashboard: the default settings win
    summaries = load_explanation_summaries(run_dir)
    assert len(summaries) == 5 and set(summaries["settings_hash"]) == {first["settings_hash"]}


def test_an_interrupted_precompute_keeps_its_rows_and_resumes(run_dir) -> None:
    def interrupt_after_two(done: int, total: int) -> None:   # Ctrl-C while the third sample is explained
        if done == 2 and total == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        explain_run(run_dir, n=4, progress=interrupt_after_two, flush_every=100)
    status = explanation_status(run_dir)
    assert status[["requested", "stored", "complete"]].values.tolist() == [[4, 2, False]]
    assert f"{cli_command()} explain" in status["command"].iloc[0]
    report = explain_run(run_dir, n=4, progress=False)
    assert (report["skipped"], report["computed"]) == (2, 2)
    assert explanation_status(run_dir)["complete"].tolist() == [True]
    assert len(load_explanations(run_dir)[0]) == 4
    assert not list((run_dir / "explanations").glob(".*tmp"))       # no half-written files


def test_time_limit_stops_early_and_reports_what_is_left(run_dir) -> None:
    calls = []
    report = explain_run(run_dir, n=3, progress=lambda d, t: calls.append((d, t)), time_limit=0.0)
    assert report["computed"] == 0 and report["remaining"] == 3
    assert calls == [(0, 3)]  # the bar ends where the deadline left it, not full


def test_progress_callable_over_samples(run_dir) -> None:
    calls = []
    explain_run(run_dir, n=2, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 2), (2, 2), (2, 2)]  # each sample, then the end


def test_bad_precompute_arguments(run_dir) -> None:
    with pytest.raises(ConfigError, match="shard"):
        explain_run(run_dir, shard="3/2", progress=False)
    with pytest.raises(ConfigError, match="i/n"):
        parse_shard("half")
    with pytest.raises(ConfigError, match="has no modality 'audio'"):
        explain_run(run_dir, modalities=["audio"], progress=False)
    with pytest.raises(ConfigError, match="positive sample count"):
        explain_run(run_dir, n=0, progress=False)
    with pytest.raises(ConfigError, match="flush_every=0 .*Fix: store every N >= 1 samples"):
        explain_run(run_dir, flush_every=0, progress=False)


# --------------------------------------------------------------------------- loading


def test_loading_with_nothing_stored_gives_empty_frames_with_columns(run_dir) -> None:
    samples, features = load_explanations(run_dir)
    assert samples.empty and features.empty
    for col in ("sample_id", "share_image", "share_title", "shapley_description", "label", "correct", "settings_hash"):
        assert col in samples.columns
    for col in ("sample_id", "modality", "feature_index", "token", "row", "col", "frame_start", "phi"):
        assert col in features.columns
    assert explanation_for(run_dir, "circle-002") is None
    assert load_explanation_summaries(run_dir) is None
    assert class_share_table(run_dir).empty


def test_a_corrupted_part_is_reported_as_damage_not_skipped(run_dir) -> None:
    from core.errors import BundleError

    explain_run(run_dir, n=2, progress=False)
    bad_s = run_dir / "explanations" / "samples-0123456789ab-part0of1.parquet"
    bad_f = run_dir / "explanations" / "features-0123456789ab-part0of1.parquet"
    bad_s.write_bytes(b"not parquet")
    bad_f.write_bytes(b"not parquet")
    with pytest.raises(BundleError, match="samples-0123456789ab-part0of1.parquet is corrupted or unreadable") as info:
        load_explanations(run_dir)
    assert str(bad_s) in info.value.fix and "explain" in info.value.fix
    # a precompute with other settings reads only its own parts and is not disturbed
    bad_s.unlink()
    bad_f.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert explain_run(run_dir, n=2, progress=False)["computed"] == 0
    # damage in its own part stops a resumed precompute (it would otherwise redo or drop those samples silently)
    real = next((run_dir / "explanations").glob("samples-*-part0of1.parquet"))
    real.write_bytes(real.read_bytes()[:40])
    with pytest.raises(BundleError, match=f"{real.name} is corrupted or unreadable"):
        explain_run(run_dir, n=2, progress=False)
    # the repair the message names: delete the part's files and rerun; only its samples are recomputed
    real.unlink()
    real.with_name(real.name.replace("samples-", "features-")).unlink()
    assert explain_run(run_dir, n=2, progress=False)["computed"] == 2
    assert len(load_explanations(run_dir)[0]) == 2


def test_explain_sample_stores_and_reuses_and_explanation_for_reads_it(run_dir) -> None:
    sid = resolve_run(run_dir).predictions["id"].iloc[0]
    e = explain_sample(run_dir, sid)
    assert list((run_dir / "explanations").glob("samples-*-one-*.parquet"))
    back = explanation_for(run_dir, sid)
    # Parquet stores float64 losslessly: read back bit for bit
    np.testing.assert_array_equal(back.values, e.values)
    assert back.shares == e.shares
    assert back.modality_shapley == e.modality_shapley
    assert back.feature_names() == e.feature_names()
    assert back.settings["label"] == e.settings["label"]
    calls = []
    again = explain_sample(run_dir, sid, progress=lambda d, t: calls.append((d, t)))   # read back, not recomputed
    np.testing.assert_array_equal(again.values, back.values)
    assert calls == [(1, 1)]
    other = explain_sample(run_dir, sid, output="true_prob")
    assert explanation_for(run_dir, sid, settings_hash=ExplainSettings(output="true_prob").hash()).output_kind \
        == "true_prob"
    assert explanation_for(run_dir, sid).output_kind == "pred_prob"                   # default settings first
    assert other.output_kind == "true_prob"


def test_features_table_of_several_explanations_rebuilds_each_one(run_dir) -> None:
    ids = resolve_run(run_dir).predictions["id"].astype(str).tolist()[:3]
    exps = [explain_sample(run_dir, sid, store=False) for sid in ids]
    table = features_table(exps, part=["p0", "p1", "p2"])
    assert len(table) == sum(e.n_features for e in exps)
    assert table["feature_index"].dtype == np.int64 and table["phi"].dtype == np.float64
    assert str(table["token"].dtype) == "string" and str(table["row"].dtype) == "Int64"
    for i, e in enumerate(exps):
        rows = table[table["sample_id"] == e.sample_id]
        assert rows["part"].tolist() == [f"p{i}"] * e.n_features
        np.testing.assert_array_equal(rows["phi"].to_numpy(), e.values)
        back = Explanation.from_rows(e.summary_row(), table)     # the other samples' rows are ignored
        np.testing.assert_array_equal(back.values, e.values)
        assert back.feature_names() == e.feature_names() and back.feature_info == e.feature_info
        assert e.per_feature_frame().equals(features_table([e]))


# --------------------------------------------------------------------------- the per-class table


def test_class_share_table_equals_a_hand_computation() -> None:
    samples = pd.DataFrame({
        "sample_id": ["a", "b", "c", "d", "e"],
        "label": ["cat", "cat", "cat", "dog", "dog"],
        "pred": ["cat", "dog", "cat", "dog", "dog"],
        "share_image": [0.2, 0.6, 0.4, 0.5, 0.7],
        "share_text": [0.8, 0.4, 0.6, 0.5, 0.3],
    })
    t = class_share_table(samples).set_index("class")
    tol = f64_atol(1.0, len(samples))      # float64 means of at most 5 shares in [0, 1]
    assert list(t.index) == ["cat", "dog", ALL_CLASSES]
    assert t.loc["cat", ["n_all", "n_correct", "n_incorrect"]].tolist() == [3, 2, 1]
    assert t.loc["cat", "share_image_all"] == pytest.approx((0.2 + 0.6 + 0.4) / 3, abs=tol)
    assert t.loc["cat", "share_image_correct"] == pytest.approx(0.3, abs=tol)
    assert t.loc["cat", "share_text_incorrect"] == pytest.approx(0.4, abs=tol)
    assert np.isnan(t.loc["dog", "share_text_incorrect"]) and t.loc["dog", "n_incorrect"] == 0
    assert t.loc["dog", "share_text_correct"] == pytest.approx(0.4, abs=tol)
    assert t.loc[ALL_CLASSES, "share_image_all"] == pytest.approx(np.mean([0.2, 0.6, 0.4, 0.5, 0.7]), abs=tol)
    assert t.loc[ALL_CLASSES, "share_image_incorrect"] == pytest.approx(0.6, abs=tol)
    with pytest.raises(ConfigError, match="has no modality 'audio'"):
        class_share_table(samples, ["audio"])


def test_class_share_table_of_a_run_is_saved_as_csv(run_dir) -> None:
    explain_run(run_dir, n=4, progress=False)
    samples, _ = load_explanations(run_dir)
    table = class_share_table(run_dir)
    assert table["n_all"].iloc[-1] == 4 and table["class"].iloc[-1] == ALL_CLASSES
    saved = pd.read_csv(table.attrs["path"])
    assert Path(table.attrs["path"]).parent == run_dir / "explanations"
    pd.testing.assert_frame_equal(saved, table, check_dtype=False, check_exact=True)   # CSV floats round-trip
    by_hand = samples[samples["label"] == table["class"].iloc[0]]["share_image"].mean()
    assert table["share_image_all"].iloc[0] == pytest.approx(by_hand, abs=f64_atol(1.0, len(samples)))
    with pytest.raises(ConfigError, match="has no modality 'audio'.*Fix: use some of: image, title, description"):
        class_share_table(run_dir, ["audio"])


# --------------------------------------------------------------------------- CLI and build


def test_cli_explain_and_explain_table(run_dir, capsys) -> None:
    root = run_dir.parents[1]
    assert main(["--runs-dir", str(root), "--quiet", "explain", str(run_dir), "--n", "2", "--shard", "0/2"]) == 0
    assert main(["--runs-dir", str(root), "--quiet", "explain", "tiny", "--run", RUN, "--n", "2"]) == 0
    out = capsys.readouterr().out
    assert "1 sample(s) explained" in out and "1 already stored" in out
    assert main(["--runs-dir", str(root), "explain-table", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "all: image" in out and "(all classes)" in out and "class_shares-" in out
    overall = next(line for line in out.splitlines() if line.startswith("(all classes)"))
    assert "% [" in overall  # two samples over all classes: each mean share with its 95 % interval
    assert main(["--runs-dir", str(root), "--quiet", "explain", str(run_dir), "--method", "exact",
                 "--grid", "6"]) == 2
    assert "Fix:" in capsys.readouterr().err


def test_the_recorded_command_resumes_with_the_same_settings(run_dir, capsys) -> None:
    """Every setting given on the CLI (also the video tube grid) is recorded in the resume command."""
    root = run_dir.parents[1]
    flags = ["--n", "2", "--grid", "2", "--video-grid", "2", "--video-segments", "3", "--walks", "60"]
    assert main(["--runs-dir", str(root), "--quiet", "explain", str(run_dir), *flags]) == 0
    (command,) = explanation_status(run_dir)["command"]
    words = shlex.split(command)
    resumed = words[words.index("explain") + 1:]
    assert resumed == [str(run_dir), *flags]
    explain = next(a for a in build_parser()._actions if a.dest == "command").choices["explain"]
    settings, options = settings_from_args(explain.parse_args(resumed))
    assert (settings.video_grid, settings.video_segments, settings.n_walks, options.n) == (2, 3, 60, 2)
    assert set(load_explanations(run_dir)[0]["settings_hash"]) == {settings.hash()}
    capsys.readouterr()
    assert main(["--runs-dir", str(root), "--quiet", "explain", *resumed]) == 0
    assert "0 sample(s) explained, 2 already stored" in capsys.readouterr().out


def test_build_explains_the_runs_that_matter(tiny_built, tmp_path) -> None:
    import dataclasses

    from core.experiment import load_experiment
    from core.pipeline import STEPS, run_build

    exp_path, root = tiny_built
    chosen = select_build_runs(root / "tiny")
    assert 1 <= len(chosen) <= 3
    names = [p.name for p in chosen]
    assert all(not n.startswith("unimodal") for n in names)
    assert "multconcat-image+title+description" in names
    copy = tmp_path / "runs"
    shutil.copytree(root, copy)
    exp = load_experiment(exp_path)
    exp = dataclasses.replace(exp, precompute={**exp.precompute, "explain_samples": [3, 2]})
    explain_only = [s for s in STEPS if s.name == "explain"]
    run_build(exp, copy, steps=explain_only, skip_precompute=True, progress=False)
    assert not list(copy.glob("tiny/*/explanations"))
    run_build(exp, copy, steps=explain_only, progress=False)
    counts = {p.name: len(load_explanations(p)[0]) for p in select_build_runs(copy / "tiny")}
    assert counts[names[0]] == 3 and all(c == 2 for n, c in counts.items() if n != names[0])
    assert sorted(p.parent.name for p in copy.glob("tiny/*/explanations")) == sorted(names)
