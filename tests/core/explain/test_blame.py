"""Modality blame for errors: the margin game's exact Shapley values of every test prediction.

Known answers come from a hand-set additive model (logits = W_img x_img + W_txt x_txt + b, so a
modality's value is exactly (W_m[rival] - W_m[true]) . x_m); the batched path is checked against the
direct per-sample evaluation through the explain engine's SampleGame on tiny built runs (a fusion,
a late fusion, an adaptive and an early-fusion run), and against the stored predictions' log-odds.
Tolerances (tests/_tolerance.py): float32 model outputs evaluated in another batch agree to
shapley_atol of their logits' scale.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from core.cli import main
from core.errors import BundleError, ConfigError
from core.explain import (
    ALL_CLASSES,
    BLAME_FILE,
    BLAME_META_FILE,
    MODALITY_GAME_FILE,
    exact_share_column,
    explain_sample,
    interaction_column,
    interaction_matrix,
    interaction_pairs,
    load_modality_game,
    modality_game_frame,
    modality_game_table,
    pairwise_interactions,
    blame_column,
    blame_frame,
    blame_inputs,
    blame_is_current,
    blame_run,
    blame_runs,
    blame_sample,
    blame_sentences,
    blame_table,
    coalition_shapley,
    format_blame_table,
    load_blame,
    run_inputs,
    shapley_matrix,
)
from tests._experiments import ADAPTIVE_RUN, TINY_ADAPTIVE, built_experiment, merge
from tests._tolerance import f64_atol, shapley_atol

FUSED = "multconcat-image+title+description"
LATE = "late-average-image+title"


# --------------------------------------------------------------------------- a hand-set additive model


class Columns(nn.Module):
    """The identity on a tabular modality's columns: its embedding is its input."""

    kind = "tabular"

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return inputs["features"]


class Additive(nn.Module):
    """logits = W_img x_img + W_txt x_txt + b, factorised or (``factorisable=False``) played whole."""

    modalities = ["img", "txt"]
    classes = ["a", "b", "c"]

    def __init__(self, factorisable: bool = True) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict({"img": Columns(), "txt": Columns()})
        self.factorisable = factorisable
        self.w = {"img": torch.tensor([[1.0, -2.0], [0.5, 3.0], [-1.0, 0.0]]),
                  "txt": torch.tensor([[2.0, 0.0, 1.0], [-1.0, 1.0, 0.5], [0.0, -3.0, 2.0]])}
        self.b = torch.tensor([0.25, -0.5, 1.0])

    def encode(self, modality: str, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.encoders[modality](inputs)

    def forward_embeddings(self, embs: list[torch.Tensor]) -> torch.Tensor:
        return embs[0] @ self.w["img"].T + embs[1] @ self.w["txt"].T + self.b

    def forward(self, inputs: dict[str, dict[str, torch.Tensor]]) -> torch.Tensor:
        return self.forward_embeddings([self.encode(m, inputs[m]) for m in self.modalities])


def _additive_inputs() -> dict[str, dict[str, torch.Tensor]]:
    x_img = torch.tensor([[1.0, 0.5], [0.0, 1.0], [2.0, -1.0], [0.5, 0.5]])
    x_txt = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 2.0], [0.5, 0.5, 0.5], [-1.0, 2.0, 0.0]])
    return {"img": {"features": x_img}, "txt": {"features": x_txt}}


@pytest.mark.parametrize("factorisable", [True, False])
def test_known_answer_of_an_additive_model(factorisable):
    model = Additive(factorisable)
    inputs = _additive_inputs()
    logits = model(inputs).double()
    labels = ["a", "c", "b", "b"]
    frame = blame_inputs(model, inputs, labels, ids=["s0", "s1", "s2", "s3"])
    pred = logits.argmax(1).numpy()
    assert frame["pred"].tolist() == [model.classes[i] for i in pred]
    for i, row in frame.iterrows():
        t = model.classes.index(labels[i])
        if row["correct"]:  # the runner-up
            rival = int(np.argsort(-logits[i].numpy())[1])
        else:
            rival = int(pred[i])
        assert row["against"] == model.classes[rival]
        for m in model.modalities:  # masked columns are 0, so each modality adds exactly its own term
            x = inputs[m]["features"][i].double()
            expected = float((model.w[m][rival].double() - model.w[m][t].double()) @ x)
            assert row[blame_column(m)] == pytest.approx(expected, abs=1e-5)
        assert row["margin_empty"] == pytest.approx(float(model.b[rival] - model.b[t]), abs=1e-6)
        assert row["margin_full"] == pytest.approx(float(logits[i, rival] - logits[i, t]), abs=1e-5)
        phis = [row[blame_column(m)] for m in model.modalities]
        if row["correct"]:
            assert row["culprit"] is None
        else:
            assert row["margin_full"] > 0
            assert row["culprit"] == (model.modalities[int(np.argmax(phis))] if max(phis) > 0 else None)
    assert (~frame["correct"]).sum() >= 1 and frame["correct"].sum() >= 1  # both kinds are exercised


def test_the_shapley_matrix_is_the_exact_shapley_value_and_efficient():
    rng = np.random.default_rng(0)
    for m in (1, 2, 3, 5):
        w = shapley_matrix(m)
        v = rng.normal(size=2 ** m)
        np.testing.assert_allclose(w @ v, coalition_shapley(v), atol=f64_atol(float(np.abs(v).max()), 2 ** m))
        # efficiency: the values add up to v(all) - v(none) for every game
        np.testing.assert_allclose(w.sum(0), np.eye(2 ** m)[-1] - np.eye(2 ** m)[0], atol=f64_atol(1.0, 2 ** m))


# --------------------------------------------------------------------------- tiny built runs


def _logit_scale(run_dir: Path, ids: list[str]) -> float:
    from core.bundle import load_run

    run = load_run(run_dir)
    with torch.no_grad():
        return max(float(run.model()(run_inputs(run, i)).abs().max()) for i in ids)


def _check_against_samples(run_dir: Path, frame: pd.DataFrame, n_wrong: int = 3, n_right: int = 2) -> None:
    rows = pd.concat([frame[~frame["correct"]].head(n_wrong), frame[frame["correct"]].head(n_right)])
    assert len(rows) >= 2
    scale = max(1.0, _logit_scale(run_dir, rows["id"].tolist()))
    tol = 2 * shapley_atol(scale)  # a margin is two logits; each value a weighted sum of margin differences
    for _, row in rows.iterrows():
        direct = blame_sample(run_dir, row["id"])
        assert direct["against"] == row["against"] and direct["culprit"] == (
            None if pd.isna(row["culprit"]) else row["culprit"])
        for col in ["margin_full", "margin_empty", *(c for c in frame.columns if c.startswith("blame_"))]:
            assert abs(direct[col] - row[col]) <= tol, (row["id"], col, direct[col], row[col], tol)


@pytest.mark.parametrize("run", [FUSED, LATE])
def test_the_batched_path_agrees_with_the_direct_per_sample_game(tiny_runs_copy, run):
    run_dir = tiny_runs_copy / "tiny" / run
    frame = blame_frame(run_dir)
    preds = pd.read_parquet(run_dir / "predictions.parquet")
    assert frame["id"].tolist() == preds["id"].astype(str).tolist()
    assert frame.attrs["engine"] == "factorised"
    _check_against_samples(run_dir, frame)
    # efficiency: the modality values add up to the margin with every modality minus the margin with none
    phi = frame[[blame_column(m) for m in frame.attrs["modalities"]]].to_numpy().sum(1)
    scale = float(np.abs(frame[["margin_full", "margin_empty"]].to_numpy()).max())
    np.testing.assert_allclose(phi, frame["margin_full"] - frame["margin_empty"], atol=f64_atol(scale, 8))
    # the full margin is the stored predictions' log-odds of the rival vs the true class (where both are in
    # the stored top 5): positive for every error, negative for every correct prediction
    wrong = ~frame["correct"].to_numpy()
    assert (frame["margin_full"].to_numpy()[wrong] > 0).all() and (frame["margin_full"].to_numpy()[~wrong] < 0).all()
    checked = 0
    for (_, row), (_, p) in zip(frame.iterrows(), preds.iterrows()):
        probs = {p[f"top{k}_label"]: p[f"top{k}_prob"] for k in range(1, 6) if f"top{k}_label" in p}
        if row["label"] in probs and row["against"] in probs and min(probs[row["label"]], probs[row["against"]]) > 1e-6:
            assert row["margin_full"] == pytest.approx(math.log(probs[row["against"]] / probs[row["label"]]), abs=1e-3)
            checked += 1
    assert checked >= len(frame) // 2


def test_storage_round_trip_current_and_damaged(tiny_runs_copy):
    run_dir = tiny_runs_copy / "tiny" / LATE
    stored = blame_run(run_dir)
    meta = json.loads((run_dir / BLAME_META_FILE).read_text())
    assert meta["output"] == "logit" and meta["n"] == len(stored) and meta["modalities"] == ["image", "title"]
    assert blame_is_current(run_dir)
    again = load_blame(run_dir)
    pd.testing.assert_frame_equal(again, stored)  # read back from the same file
    assert again.attrs["modalities"] == ["image", "title"]
    # current: kept; another training of the run: computed again
    assert blame_runs([run_dir])["kept"] == [LATE]
    meta["run_fingerprint"] = "another training"
    (run_dir / BLAME_META_FILE).write_text(json.dumps(meta))
    assert not blame_is_current(run_dir)
    assert blame_runs([run_dir])["computed"] == [LATE] and blame_is_current(run_dir)
    # damaged files name themselves and the command that computes them again
    good = (run_dir / BLAME_FILE).read_bytes()
    (run_dir / BLAME_FILE).write_bytes(b"not a parquet file")
    with pytest.raises(BundleError, match=r"blame\.parquet.*Fix: delete it and rerun .*blame .*--force"):
        load_blame(run_dir)
    bad = stored.copy()
    bad[blame_column("image")] = bad[blame_column("image")].astype(str)
    bad.to_parquet(run_dir / BLAME_FILE)
    with pytest.raises(BundleError, match=r"damaged: column 'blame_image' is .* not a float"):
        load_blame(run_dir)
    stored.drop(columns=["culprit"]).to_parquet(run_dir / BLAME_FILE)
    with pytest.raises(BundleError, match=r"lacks column\(s\) culprit"):
        load_blame(run_dir)
    (run_dir / BLAME_FILE).write_bytes(good)
    (run_dir / BLAME_META_FILE).unlink()
    with pytest.raises(BundleError, match=r"has no blame\.json"):
        load_blame(run_dir)
    assert not blame_is_current(run_dir)


def test_per_class_table_and_sentences(tiny_runs_copy):
    frame = blame_run(tiny_runs_copy / "tiny" / FUSED)
    classes = sorted(set(frame["label"]))
    table = blame_table(frame, classes)
    assert table["class"].tolist() == [*classes, ALL_CLASSES]
    overall = table.iloc[-1]
    wrong = frame[~frame["correct"]]
    assert overall["n_errors"] == len(wrong) and overall["n"] == len(frame)
    for m in frame.attrs["modalities"]:
        col = blame_column(m)
        assert overall[f"misled_{m}"] == int((wrong[col] > 0).sum())
        assert overall[f"culprit_{m}"] == int((wrong["culprit"] == m).sum())
        assert overall[f"{col}_errors"] == pytest.approx(wrong[col].mean())
        assert overall[f"{col}_errors_low"] <= overall[f"{col}_errors"] <= overall[f"{col}_errors_high"]
        assert overall[f"{col}_correct"] == pytest.approx(frame.loc[frame["correct"], col].mean())
    # per class counts add up to the overall ones
    assert table.iloc[:-1]["n_errors"].sum() == overall["n_errors"]
    assert sum(overall[f"culprit_{m}"] for m in frame.attrs["modalities"]) + overall["n_no_culprit"] == len(wrong)
    sentences = blame_sentences(table)
    top = max(frame.attrs["modalities"], key=lambda m: overall[f"misled_{m}"])
    assert sentences[0 if len(wrong) >= 10 else 1].startswith(
        f"{top} misled the model in {overall[f'misled_{top}']} of {len(wrong)} errors")
    assert "image" in format_blame_table(table)
    no_errors = blame_table(frame[frame["correct"]], classes)
    assert blame_sentences(no_errors)[0].startswith("No errors among the")
    few = blame_table(pd.concat([wrong.head(2), frame[frame["correct"]]]), classes)
    assert blame_sentences(few)[0].startswith("Only 2 errors")
    with pytest.raises(ConfigError, match="lacks column"):
        blame_table(frame.drop(columns=["culprit"]))


def test_cli_on_the_tiny_experiment(tiny_runs_copy, capsys):
    runs = ["--run", FUSED, "--run", "concat-image+title"]
    assert main(["--runs-dir", str(tiny_runs_copy), "--quiet", "blame", "tiny", *runs]) == 0
    out = capsys.readouterr().out
    assert "misled the model in" in out and f"{FUSED}:" in out
    assert (tiny_runs_copy / "tiny" / "concat-image+title" / BLAME_FILE).is_file()
    assert main(["--runs-dir", str(tiny_runs_copy), "--quiet", "blame", "tiny", *runs]) == 0
    assert "0 computed, 2 already stored" in capsys.readouterr().out
    assert main(["--runs-dir", str(tiny_runs_copy), "--quiet", "blame", "tiny", *runs, "--force"]) == 0
    assert "2 computed, 0 already stored" in capsys.readouterr().out
    assert main(["--runs-dir", str(tiny_runs_copy), "--quiet", "blame", "tiny", "--run", "no-such-run"]) == 2
    # explain-table --every: the exact per-class tables of every test prediction, from the stored modality game
    assert main(["--runs-dir", str(tiny_runs_copy), "explain-table", "tiny", "--run", FUSED, "--every"]) == 0
    out = capsys.readouterr().out
    n = len(pd.read_parquet(tiny_runs_copy / "tiny" / FUSED / "predictions.parquet"))
    assert f"mean exact modality share per class, every test prediction ({n};" in out
    assert "image x title" in out and f"({n})" in out
    (tiny_runs_copy / "tiny" / FUSED / MODALITY_GAME_FILE).unlink()
    assert main(["--runs-dir", str(tiny_runs_copy), "explain-table", "tiny", "--run", FUSED, "--every"]) == 0
    assert "is not computed yet; compute it with" in capsys.readouterr().out


# --------------------------------------------------------------------------- the modality game of every prediction


def test_the_interaction_matrix_is_the_pairwise_interaction_index():
    rng = np.random.default_rng(1)
    for m in (2, 3, 4):
        v = rng.normal(size=2 ** m)
        pairs = [(i, j) for i in range(m) for j in range(i + 1, m)]
        direct = pairwise_interactions(v)
        np.testing.assert_allclose(interaction_matrix(m) @ v, [direct[i, j] for i, j in pairs],
                                   atol=f64_atol(float(np.abs(v).max()), 2 ** m))


def test_modality_game_table_of_known_logits():
    # two modalities, two classes; class 1 is predicted; its probability at each coalition is set by hand
    probs = np.array([0.5, 0.6, 0.7, 0.9])                      # v(none), v(a), v(b), v(a, b)
    logits = np.zeros((4, 2, 2))
    logits[:, 0, 1] = np.log(probs / (1 - probs))                # softmax([0, z])[1] = probs
    logits[:, 1, 1] = 0.004                                      # a flat prediction: about 0.501 everywhere
    frame = modality_game_table(["s0", "s1"], ["y1", "y1"], ["y1", "y1"], np.array([True, True]), ["y0", "y1"],
                                ["a", "b"], logits)
    row = frame.iloc[0]
    # Phi_a = ((0.6 - 0.5) + (0.9 - 0.7)) / 2 = 0.15, Phi_b = ((0.7 - 0.5) + (0.9 - 0.6)) / 2 = 0.25
    assert row["shapley_a"] == pytest.approx(0.15) and row["shapley_b"] == pytest.approx(0.25)
    assert row[exact_share_column("a")] == pytest.approx(0.375) and row[exact_share_column("b")] == pytest.approx(0.625)
    assert row[interaction_column("a", "b")] == pytest.approx(0.9 - 0.6 - 0.7 + 0.5)
    assert row["base_value"] == pytest.approx(0.5) and row["full_value"] == pytest.approx(0.9)
    assert json.loads(row["coalition_values"])["values"] == pytest.approx(list(probs))
    assert not row["flat"] and frame.iloc[1]["flat"]              # |f(x) - base| = 0 < the threshold
    assert frame["output_kind"].tolist() == ["pred_prob"] * 2 and frame["explained_class"].tolist() == ["y1", "y1"]


@pytest.mark.parametrize("run", [FUSED, LATE])
def test_the_modality_game_equals_the_explanations_own(tiny_runs_copy, run):
    run_dir = tiny_runs_copy / "tiny" / run
    frame = modality_game_frame(run_dir)
    preds = pd.read_parquet(run_dir / "predictions.parquet")
    assert frame["id"].tolist() == preds["id"].astype(str).tolist()
    mods = [c[len("shapley_"):] for c in frame.columns if c.startswith("shapley_")]
    # efficiency of every row: the Shapley values add up to v(all) - v(none)
    np.testing.assert_allclose(frame[[f"shapley_{m}" for m in mods]].to_numpy().sum(1),
                               frame["full_value"] - frame["base_value"], atol=f64_atol(1.0, 8))
    for sid in frame["id"].head(4):
        e = explain_sample(run_dir, sid, store=False)             # the engine's modality game of the same sample
        row = frame.set_index("id").loc[sid]
        assert row["explained_class"] == e.explained_class
        for m in mods:
            assert row[f"shapley_{m}"] == pytest.approx(e.modality_shapley[m], abs=shapley_atol(1.0))
            assert row[exact_share_column(m)] == pytest.approx(e.exact_shares[m], abs=10 * shapley_atol(1.0))
        for a, b in interaction_pairs(mods):
            assert row[interaction_column(a, b)] == pytest.approx(e.interactions[(a, b)], abs=2 * shapley_atol(1.0))


def test_blame_stores_the_modality_game_and_it_is_checked(tiny_runs_copy):
    run_dir = tiny_runs_copy / "tiny" / FUSED
    (run_dir / MODALITY_GAME_FILE).unlink(missing_ok=True)       # an earlier test of the module blamed the run
    assert load_modality_game(run_dir) is None                    # never computed
    blame_run(run_dir, force=True)
    game = load_modality_game(run_dir)
    meta = json.loads((run_dir / BLAME_META_FILE).read_text())
    assert meta["modality_game"]["file"] == MODALITY_GAME_FILE and meta["modality_game"]["output"] == "pred_prob"
    assert len(game) == meta["n"] and game.attrs["modalities"] == ["image", "title", "description"]
    pd.testing.assert_frame_equal(game, modality_game_frame(run_dir), check_exact=False, atol=shapley_atol(1.0),
                                  check_dtype=False)  # text read back from Parquet is a string column
    # a blame stored before the game existed is read, but is not current: a build adds the game
    (run_dir / MODALITY_GAME_FILE).unlink()
    assert load_modality_game(run_dir) is None and load_blame(run_dir) is not None
    assert not blame_is_current(run_dir)
    assert blame_runs([run_dir])["computed"] == [FUSED] and load_modality_game(run_dir) is not None
    # damaged: named, with the command that computes it again
    bad = game.copy()
    bad["full_value"] = bad["full_value"] + 2.0
    bad.to_parquet(run_dir / MODALITY_GAME_FILE)
    with pytest.raises(BundleError, match=r"modality_game\.parquet is damaged: .*not probabilities.*Fix: delete"):
        load_modality_game(run_dir)
    game.drop(columns=["flat"]).to_parquet(run_dir / MODALITY_GAME_FILE)
    with pytest.raises(BundleError, match=r"lacks column\(s\) flat"):
        load_modality_game(run_dir)
    (run_dir / MODALITY_GAME_FILE).write_bytes(b"PAR1 garbage")
    with pytest.raises(BundleError, match=r"modality_game\.parquet"):
        load_modality_game(run_dir)


# --------------------------------------------------------------------------- adaptive and early-fusion runs


@pytest.fixture(scope="module")
def rgbd_root(tmp_path_factory) -> Path:
    """The tiny RGB-D experiment (tests/_experiments.py) with its adaptive run and an early fusion."""
    early = merge(TINY_ADAPTIVE, {"fusion": {"early": True}})
    with built_experiment(tmp_path_factory.mktemp("blame-rgbd"), early) as (_, root):
        yield root


def test_adaptive_and_early_runs_agree_with_the_direct_game(rgbd_root):
    runs = {p.name: p for p in (rgbd_root / "tiny-ada").iterdir() if (p / "config.json").is_file()}
    early = next(name for name, p in runs.items() if json.loads((p / "config.json").read_text())["strategy"] == "early")
    for name, engine in ((ADAPTIVE_RUN, "factorised, given the policy's decisions"), (early, "unfactorised")):
        frame = blame_frame(runs[name])
        assert frame.attrs["engine"] == engine
        _check_against_samples(runs[name], frame, n_wrong=2, n_right=1)
