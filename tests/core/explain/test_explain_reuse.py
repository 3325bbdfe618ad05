"""Embedding tables shared across runs: the same stored values with and without, never across encoders."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.explain import (
    SharedTables,
    explain_run,
    explain_runs,
    explain_sample,
    load_explanations,
    resolve_run,
    select_samples,
)
from core.io import read_tensors, write_json, write_tensors
from tests._tolerance import shapley_atol

FULL = ["multconcat-image+title+description", "concat-image+title+description"]
PAIR = "late-average-image+title"
#: columns that record how or when a row was computed, not what it is
HOW = {"computed_at", "seconds", "part"}
HOW_SETTINGS = {"seconds", "encoder_rows", "shared_tables"}
#: the tiny runs' logits stay below 10 in magnitude
ATOL = shapley_atol(10.0)


def _copy(built: Path, dest: Path) -> Path:
    shutil.copytree(built / "tiny", dest / "tiny", ignore=shutil.ignore_patterns("explanations"))
    return dest / "tiny"


def _stored(exp: Path, runs: list[str]) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    out = {}
    for r in runs:
        s, f = load_explanations(exp / r)
        out[r] = (s.sort_values("sample_id").reset_index(drop=True),
                  f.sort_values(["sample_id", "modality", "feature_index"]).reset_index(drop=True))
    return out


def _assert_same_frames(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    for col in a.columns:
        if col in HOW:
            continue
        if col == "settings":
            for x, y in zip(a[col], b[col]):
                x, y = json.loads(x), json.loads(y)
                assert {k: v for k, v in x.items() if k not in HOW_SETTINGS} == \
                       {k: v for k, v in y.items() if k not in HOW_SETTINGS}
        elif col == "coalition_values":  # JSON of float values: compared as numbers (a worker runs one thread)
            for x, y in zip(a[col], b[col]):
                if not isinstance(x, str) or not isinstance(y, str):  # not computed: null on both sides
                    assert str(x) == str(y), col
                    continue
                x, y = json.loads(x), json.loads(y)
                assert x["modalities"] == y["modalities"]
                np.testing.assert_allclose(x["values"], y["values"], atol=ATOL, rtol=0, err_msg=col)
        elif pd.api.types.is_float_dtype(a[col]):
            # the shared tables encode a sample's masked variants in other batches: float32 rounding only
            np.testing.assert_allclose(a[col].to_numpy(), b[col].to_numpy(), atol=ATOL, rtol=0, err_msg=col)
        else:
            assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), col


def test_shared_tables_give_the_stored_values_of_separate_runs(tiny_built, tmp_path):
    _, built = tiny_built
    runs = [*FULL, PAIR]
    alone, shared = _copy(built, tmp_path / "alone"), _copy(built, tmp_path / "shared")
    separate = [explain_run(alone / r, n=3, progress=False) for r in runs]
    together = explain_runs([shared / r for r in runs], n=3, progress=False)

    assert [r["computed"] for r in together] == [r["computed"] for r in separate] == [3, 3, 3]
    first, second = _stored(alone, runs), _stored(shared, runs)
    for r in runs:
        assert sorted(p.name for p in (alone / r / "explanations").iterdir()) == \
               sorted(p.name for p in (shared / r / "explanations").iterdir())
        _assert_same_frames(first[r][0], second[r][0])
        _assert_same_frames(first[r][1], second[r][1])
    # the first run encodes what it did alone; the others reuse its tables
    assert together[0]["encoder_rows"] == separate[0]["encoder_rows"]
    assert together[0]["shared_tables"] > 0
    assert sum(r["encoder_rows"] for r in together) < 0.6 * sum(r["encoder_rows"] for r in separate)
    # the second full run has the first's players: every modality's table is lent, nothing encoded
    rows = second[FULL[1]][0]["settings"].map(json.loads)
    assert all(sorted(s["shared_tables"]) == ["description", "image", "title"] for s in rows)
    assert all(sum(s["encoder_rows"].values()) == 0 for s in rows)
    # resumable: a rerun finds everything stored
    assert [r["computed"] for r in explain_runs([shared / r for r in runs], n=3, progress=False)] == [0, 0, 0]


def test_sharded_shared_runs_store_the_rows_of_one_unsharded_run(tiny_built, tmp_path):
    _, built = tiny_built
    whole, sharded = _copy(built, tmp_path / "whole"), _copy(built, tmp_path / "sharded")
    explain_run(whole / FULL[1], n=4, progress=False)
    for shard in ("0/2", "1/2"):
        explain_runs([sharded / r for r in FULL], n=4, shard=shard, progress=False)
    a, b = _stored(whole, [FULL[1]])[FULL[1]], _stored(sharded, [FULL[1]])[FULL[1]]
    _assert_same_frames(a[0], b[0])
    _assert_same_frames(a[1], b[1])


def _sample(exp: Path) -> str:
    return select_samples(resolve_run(exp / FULL[0]), 1, 0)[0]


def test_another_encoder_source_or_other_weights_never_read_the_tables(tiny_built, tmp_path):
    _, built = tiny_built
    exp = _copy(built, tmp_path / "enc")
    other_source, other_weights = exp / "other-source", exp / "other-weights"
    for dest in (other_source, other_weights):
        shutil.copytree(exp / FULL[1], dest)
    config = json.loads((other_source / "config.json").read_text())
    config["unimodal_runs"]["image"] = "another-image-run"
    write_json(other_source / "config.json", config)
    weights = read_tensors(other_weights / "model.safetensors")
    name = next(k for k in weights if k.startswith("encoders.image.") and weights[k].is_floating_point())
    weights[name] = weights[name] + 0.01
    write_tensors(other_weights / "model.safetensors", weights)

    sid = _sample(exp)
    fresh = {r: explain_sample(exp / r, sid, store=False) for r in (FULL[1], "other-source", "other-weights")}
    for target in ("other-source", "other-weights"):
        tables = SharedTables()
        explain_sample(exp / FULL[0], sid, store=False, tables=tables)
        got = explain_sample(exp / target, sid, store=False, tables=tables)
        assert sorted(got.settings["shared_tables"]) == ["description", "title"]  # the texts' encoders are shared
        assert got.settings["encoder_rows"]["image"] == fresh[target].settings["encoder_rows"]["image"] > 0
        assert got.settings["encoder_rows"]["title"] == 0
        np.testing.assert_allclose(got.values, fresh[target].values, atol=ATOL, rtol=0)
    # the control: the same encoder and players read every table
    tables = SharedTables()
    explain_sample(exp / FULL[0], sid, store=False, tables=tables)
    same = explain_sample(exp / FULL[1], sid, store=False, tables=tables)
    assert sorted(same.settings["shared_tables"]) == ["description", "image", "title"]
    np.testing.assert_allclose(same.values, fresh[FULL[1]].values, atol=ATOL, rtol=0)


def test_other_players_never_read_the_tables_and_memory_is_bounded_by_sample(tiny_built, tmp_path):
    _, built = tiny_built
    exp = _copy(built, tmp_path / "grid")
    sid = _sample(exp)
    tables = SharedTables(max_samples=2)
    explain_sample(exp / FULL[0], sid, store=False, tables=tables, grid=2)
    coarse = explain_sample(exp / FULL[1], sid, store=False, tables=tables, grid=3)
    assert "image" not in coarse.settings["shared_tables"]  # another patch grid: other players
    assert sorted(coarse.settings["shared_tables"]) == ["description", "title"]
    ids = select_samples(resolve_run(exp / FULL[0]), 3, 0)
    for s in ids:
        explain_sample(exp / FULL[0], s, store=False, tables=tables)
    assert tables.samples == ids[1:]
    assert tables.hits > 0 and tables.misses > 0


def test_a_model_whose_encode_is_not_the_plain_encoder_gets_no_key(tiny_built):
    from core.explain import encoder_identity

    _, built = tiny_built
    run = resolve_run(built / "tiny" / FULL[0])
    model = run.model()
    ids = {m: encoder_identity(run, model, m) for m in model.modalities}
    assert all(v is not None for v in ids.values()) and len(set(ids.values())) == 3

    class Wrapped:
        encoders = model.encoders

        def encode(self, m, inputs):  # an embedding that depends on more than the encoder
            return model.encode(m, inputs) * 2

    assert encoder_identity(run, Wrapped(), "image") is None


def test_a_run_named_twice_is_refused_before_any_work(tiny_built, tmp_path):
    from core.errors import ConfigError

    _, built = tiny_built
    exp = _copy(built, tmp_path / "twice")
    with pytest.raises(ConfigError) as info:
        explain_runs([exp / FULL[0], exp / FULL[1], exp / FULL[0]], n=1, progress=False)
    assert repr(FULL[0]) in info.value.problem and "once" in info.value.fix
    assert not (exp / FULL[0] / "explanations").exists()


def test_explain_order_is_a_seeded_shuffle_independent_of_the_other_ids():
    from core.explain import explain_order

    ids = [f"s{i:03d}" for i in range(60)]
    order = explain_order(ids, 0)
    assert sorted(order) == ids and order != ids  # every id once, not in the listed (sorted) order
    assert explain_order(ids[::-1] + ids[:5], 0) == order  # the listing's order and repeats do not matter
    subset = ids[10:40]
    assert explain_order(subset, 0) == [s for s in order if s in set(subset)]  # a subset keeps its order
    assert explain_order(ids, 1) != order  # another seed, another order


def test_explain_order_puts_the_samples_more_runs_ask_for_first():
    from core.explain import explain_order

    ids = [f"s{i:03d}" for i in range(60)]
    shared = ids[::7]  # asked by 5 runs, the others by 1
    order = explain_order(ids, 0, {s: 5 if s in shared else 1 for s in ids})
    assert set(order[:len(shared)]) == set(shared) and sorted(order) == ids
    plain = explain_order(ids, 0)  # within each count, the seeded digest order
    assert order[:len(shared)] == [s for s in plain if s in shared]
    assert order[len(shared):] == [s for s in plain if s not in shared]
    assert explain_order(ids, 0, {}) == plain  # ids not counted count once


def test_explain_workers_start_only_for_enough_samples(monkeypatch):
    from core.explain import PARALLEL_MIN_SAMPLES, explain_workers
    from core.workers import ENV

    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr("core.threads.available_cores", lambda: 2)
    assert explain_workers(PARALLEL_MIN_SAMPLES - 1) == 1 and explain_workers(PARALLEL_MIN_SAMPLES) == 2
    assert explain_workers(5, workers=2) == 2 and explain_workers(1, workers=4) == 1
    monkeypatch.setenv(ENV, "1")
    assert explain_workers(1000) == 1


def test_two_worker_processes_store_the_values_of_one_process(tiny_built, tmp_path):
    """The runs explained in two spawned one-thread processes, samples dealt into groups: the same stored
    values as one process gives, in group parts; a rerun finds everything stored; past the deadline no
    worker starts anything."""
    _, built = tiny_built
    runs = [*FULL, PAIR]
    one, two = _copy(built, tmp_path / "one"), _copy(built, tmp_path / "two")
    serial = explain_runs([one / r for r in runs], n=6, progress=False, workers=1)
    late_calls: list[tuple[int, int]] = []
    late = explain_runs([two / r for r in runs], n=6, progress=lambda d, t: late_calls.append((d, t)), workers=2,
                        time_limit=1e-9)
    assert [r["computed"] for r in late] == [0, 0, 0] and [r["remaining"] for r in late] == [6, 6, 6]
    assert late_calls == [(0, 18)]  # the bar ends where the deadline left it, not full
    assert not any(any((two / r / "explanations").glob("samples-*")) for r in runs)
    calls: list[tuple[int, int]] = []
    parallel = explain_runs([two / r for r in runs], n=6, progress=lambda d, t: calls.append((d, t)), workers=2)
    assert [r["computed"] for r in parallel] == [r["computed"] for r in serial] == [6, 6, 6]
    # the bar moved with every explanation the workers made, not only when a group ended
    assert [d for d, _ in calls[:18]] == list(range(1, 19)) and {t for _, t in calls} == {18}
    assert [r["remaining"] for r in parallel] == [0, 0, 0] and {r["workers"] for r in parallel} == {2}
    assert {r["part"] for r in parallel} == {"2 groups"}  # one per worker: 6 samples fill no larger group
    assert sum(r["encoder_rows"] for r in parallel) < sum(r["encoder_rows"] for r in serial) * 1.5
    parts = sorted(p.name.split("-")[-1] for p in (two / FULL[0] / "explanations").glob("samples-*"))
    assert parts == [f"part{g}of2.parquet" for g in range(2)]
    first, second = _stored(one, runs), _stored(two, runs)
    for r in runs:
        _assert_same_frames(first[r][0], second[r][0])
        _assert_same_frames(first[r][1], second[r][1])
    again = explain_runs([two / r for r in runs], n=6, progress=False, workers=2)
    assert [r["computed"] for r in again] == [0, 0, 0] and [r["skipped"] for r in again] == [6, 6, 6]


def test_run_passes_fill_each_pass_up_to_its_weight_budget(tmp_path):
    from core.explain import PASS_WEIGHT_BYTES, run_passes

    sizes = [40, 30, 50, 200, 10, 10]
    runs = []
    for i, size in enumerate(sizes):
        (tmp_path / f"r{i}").mkdir()
        (tmp_path / f"r{i}" / "model.safetensors").write_bytes(b"\0" * size)
        runs.append(tmp_path / f"r{i}")
    # consecutive runs while they fit in 100 bytes; the 200-byte run alone; every run in exactly one pass
    assert run_passes(runs, budget=100) == [(0, 2), (2, 3), (3, 4), (4, 6)]
    assert run_passes(runs, budget=10_000) == [(0, 6)]
    assert run_passes(runs[:1], budget=1) == [(0, 1)] and run_passes([], budget=100) == []
    (tmp_path / "missing").mkdir()  # no weights yet: loading it will say so; it takes no budget here
    assert run_passes([tmp_path / "missing", *runs[:2]], budget=70) == [(0, 3)]
    assert PASS_WEIGHT_BYTES >= 1024 ** 3  # every demo experiment's runs fit in one pass


def test_sample_records_and_inputs_read_once_match_a_fresh_lookup(tiny_built):
    """The precompute reads each sample's record from an id index and its raw items once for all runs:
    the same record as a scan of the predictions, the same inputs as loading afresh, and a reloaded
    predictions table (another object) gets its own index."""
    import torch

    from core.explain import run_dataset, run_inputs, sample_record

    _, built = tiny_built
    run = resolve_run(built / "tiny" / FULL[0])
    preds = run.predictions
    for _, row in preds.head(5).iterrows():
        rec = sample_record(run, str(row["id"]))
        assert rec == {"label": str(row["label"]), "pred": str(row["pred"]), "correct": bool(row["correct"]),
                       "split": str(row.get("split", "test"))}
    sid = str(preds["id"].iloc[0])
    first = run_inputs(run, sid)
    fresh = run.model().prepare({m: run_dataset(run).items(m, [sid]) for m in run.model().modalities})
    for m in first:
        for k in first[m]:
            assert torch.equal(first[m][k], fresh[m][k])
    changed = preds.copy()
    changed.loc[0, "pred"] = "not-a-class"
    run.predictions = changed
    try:
        assert sample_record(run, sid)["pred"] == "not-a-class"
    finally:
        run.predictions = preds
    assert sample_record(run, sid)["pred"] == str(preds["pred"].iloc[0])
    # an id twice: its first row, as the precompute always read it; an id not predicted: the dataset's label
    twice = pd.concat([preds.head(1).assign(pred="first-row"), preds.head(1).assign(pred="second-row"), preds])
    run.predictions = twice.drop(columns=["split"], errors="ignore").reset_index(drop=True)
    try:
        assert sample_record(run, sid) == {"label": str(preds["label"].iloc[0]), "pred": "first-row",
                                           "correct": bool(preds["correct"].iloc[0]), "split": "test"}
        run.predictions = preds[preds["id"].astype(str) != sid]
        assert sample_record(run, sid)["pred"] is None
    finally:
        run.predictions = preds
