"""The modality game: exact modality shares, pairwise interactions, flat predictions, their
storage and per-class tables.

Known answers come from the definitions (a brute force over subsets written here), from
hand-made games (unanimity / product, additive, either-suffices) and from shapiq's exact
computer. Tolerances (tests/_tolerance.py): arithmetic on the same float64 coalition table
agrees to f64_atol; values that went through a float32 model to output_atol.
"""
from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from core.encoders import Encoder
from core.errors import ConfigError, DataError
from core.explain import (
    ALL_CLASSES,
    FLAT_LOGIT_THRESHOLD,
    FLAT_PROB_THRESHOLD,
    ExplainSettings,
    Explanation,
    class_interaction_table,
    class_share_table,
    coalition_shapley,
    coalition_values,
    exact_shares,
    explain_inputs,
    format_class_interaction_table,
    group_shapley_values,
    interaction_column,
    interaction_pairs,
    interaction_values,
    is_flat,
    load_explanations,
    pairwise_interactions,
)
from core.model import MultimodalClassifier
from tests._tolerance import f64_atol, output_atol

# --------------------------------------------------------------------------- brute force from the definitions


def table_game(values: np.ndarray):
    """A set function from its 2^M values (entry k: the players of k's bits)."""
    return lambda S: float(values[sum(1 << i for i in S)])


def brute_shapley(v, m: int) -> np.ndarray:
    """phi_i = sum over S not containing i of |S|!(m-|S|-1)!/m! (v(S+i) - v(S))."""
    phi = np.zeros(m)
    for i in range(m):
        others = [p for p in range(m) if p != i]
        for k in range(m):
            for S in itertools.combinations(others, k):
                w = math.factorial(k) * math.factorial(m - k - 1) / math.factorial(m)
                phi[i] += w * (v(set(S) | {i}) - v(set(S)))
    return phi


def brute_interaction(v, m: int, i: int, j: int) -> float:
    """Grabisch & Roubens: sum over S without i, j of |S|!(m-|S|-2)!/(m-1)! times the discrete
    second derivative v(S+i+j) - v(S+i) - v(S+j) + v(S)."""
    others = [p for p in range(m) if p not in (i, j)]
    total = 0.0
    for k in range(m - 1):
        for S in itertools.combinations(others, k):
            S = set(S)
            w = math.factorial(k) * math.factorial(m - k - 2) / math.factorial(m - 1)
            total += w * (v(S | {i, j}) - v(S | {i}) - v(S | {j}) + v(S))
    return total


@pytest.mark.parametrize("m", [2, 3, 4, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shapley_and_interactions_equal_the_definitions_on_random_games(m: int, seed: int) -> None:
    values = np.random.default_rng(seed).normal(size=2 ** m)
    v = table_game(values)
    tol = f64_atol(np.abs(values).max(), 2 ** m)     # float64 sums over one table of 2^m values
    phi = coalition_shapley(values)
    np.testing.assert_allclose(phi, brute_shapley(v, m), rtol=0, atol=tol)
    assert phi.sum() == pytest.approx(values[-1] - values[0], abs=tol)    # efficiency: v(N) - v(empty)
    matrix = pairwise_interactions(values)
    for i, j in itertools.combinations(range(m), 2):
        assert matrix[i, j] == pytest.approx(brute_interaction(v, m, i, j), abs=tol)
        assert matrix[j, i] == matrix[i, j]    # the same float, stored twice
    assert np.isnan(np.diag(matrix)).all()


@pytest.mark.parametrize("m", [2, 3, 4, 5])
def test_product_game_interaction_is_shared_by_every_pair(m: int) -> None:
    # f = x_1 * ... * x_m with a masked modality giving 0: only the full coalition is non-zero
    # (c times the unanimity game of all players): Phi_i = c / m, I_ij = c / (m - 1)
    c = 0.6
    values = np.zeros(2 ** m)
    values[-1] = c
    tol = f64_atol(c, 2 ** m)
    np.testing.assert_allclose(coalition_shapley(values), np.full(m, c / m), rtol=0, atol=tol)
    off = pairwise_interactions(values)[~np.eye(m, dtype=bool)]
    np.testing.assert_allclose(off, np.full(m * (m - 1), c / (m - 1)), rtol=0, atol=tol)


@pytest.mark.parametrize("m", [2, 3, 5])
def test_additive_game_has_no_interaction_and_its_shares_are_the_weights(m: int) -> None:
    w = np.random.default_rng(m).normal(size=m)
    k = np.arange(2 ** m)
    values = 0.3 + ((k[:, None] >> np.arange(m)) & 1) @ w
    tol = f64_atol(np.abs(w).sum() + 0.3, 2 ** m)
    np.testing.assert_allclose(coalition_shapley(values), w, rtol=0, atol=tol)
    off = pairwise_interactions(values)[~np.eye(m, dtype=bool)]
    np.testing.assert_allclose(off, 0.0, rtol=0, atol=tol)
    np.testing.assert_allclose(exact_shares(coalition_shapley(values)), np.abs(w) / np.abs(w).sum(),
                               rtol=0, atol=tol)


def test_either_modality_suffices_is_a_negative_interaction() -> None:
    # v = 1 as soon as one modality is present (redundancy): I = 1 - 1 - 1 + 0 = -1
    values = np.array([0.0, 1.0, 1.0, 1.0])
    assert interaction_values(values, ["image", "text"]) == {("image", "text"): -1.0}   # exact in binary
    # and the pure product of two modalities is positive: everything exists only together
    assert interaction_values(np.array([0.0, 0.0, 0.0, 0.5]), ["image", "text"]) == {("image", "text"): 0.5}


def test_exact_share_cancels_inside_a_modality_where_mmshap_does_not() -> None:
    # two patches of the image push +0.3 and -0.2, the text +0.1 (additive): MM-SHAP gives the
    # image 0.5/0.6, the exact share |0.1| / (|0.1| + |0.1|) = 1/2
    mm = np.abs([0.3, -0.2]).sum() / np.abs([0.3, -0.2, 0.1]).sum()
    exact = exact_shares([0.1, 0.1])
    assert mm == pytest.approx(5 / 6, abs=f64_atol())
    np.testing.assert_allclose(exact, [0.5, 0.5], rtol=0, atol=f64_atol())
    assert np.isnan(exact_shares([0.0, 0.0])).all()   # no share without any contribution


@pytest.mark.parametrize("m", [2, 3, 4])
def test_shapiq_sii_agrees(m: int) -> None:
    shapiq = pytest.importorskip("shapiq")
    values = np.random.default_rng(10 + m).normal(size=2 ** m)

    def game(coalitions: np.ndarray) -> np.ndarray:
        coalitions = np.asarray(coalitions, dtype=bool)
        return values[(coalitions.astype(np.int64) << np.arange(m)).sum(axis=1)]

    sii = shapiq.ExactComputer(game, n_players=m)(index="SII", order=2)
    sv = shapiq.ExactComputer(game, n_players=m)(index="SV", order=1)
    tol = f64_atol(np.abs(values).max(), 2 ** m)
    matrix = pairwise_interactions(values)
    for i, j in itertools.combinations(range(m), 2):
        assert matrix[i, j] == pytest.approx(float(sii[(i, j)]), abs=tol)
    np.testing.assert_allclose(coalition_shapley(values), [float(sv[(i,)]) for i in range(m)], rtol=0, atol=tol)


def test_coalition_values_of_a_feature_game_and_its_shapley_values() -> None:
    # 7 features in 3 groups and one feature (6) outside every group, always present
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(7, 7))

    def game(masks: np.ndarray) -> np.ndarray:
        x = masks.astype(float)
        return np.tanh(x @ weights @ x.T).diagonal() + 0.1 * x[:, 6]

    groups = [[0, 1], [2, 3, 4], [5]]
    values = coalition_values(game, groups, 7, batch_size=3)
    assert values.shape == (8,)
    full = np.ones((1, 7), dtype=bool)
    only_second = np.zeros((1, 7), dtype=bool)
    only_second[0, [2, 3, 4, 6]] = True
    tol = f64_atol(1.0, 7)
    assert values[7] == pytest.approx(game(full)[0], abs=tol)
    assert values[0b010] == pytest.approx(game(only_second)[0], abs=tol)
    reference = group_shapley_values(game, groups, 7)
    np.testing.assert_allclose(coalition_shapley(values), reference.values, rtol=0, atol=f64_atol(1.0, 8))
    with pytest.raises(ConfigError, match="more than one group"):
        coalition_values(game, [[0, 1], [1]], 7)
    with pytest.raises(DataError, match="2\\^M coalition values"):
        coalition_shapley(np.zeros(6))


def test_interaction_columns_survive_dashes_and_underscores() -> None:
    mods = ["rgb_video", "depth-map", "audio"]
    pairs = interaction_pairs(mods)
    assert pairs == [("rgb_video", "depth-map"), ("rgb_video", "audio"), ("depth-map", "audio")]
    assert interaction_column("rgb_video", "depth-map") == "interaction_rgb_video__depth-map"
    with pytest.raises(ConfigError, match="no name contains '__'"):
        interaction_pairs(["a__b", "c", "a", "b__c"])   # two pairs, one column


# --------------------------------------------------------------------------- flat predictions


def test_flat_thresholds() -> None:
    # a randomised model: sum |phi| 4e-4 (the measurement)
    assert is_flat(4e-4, 0.3, "pred_prob")
    assert is_flat(0.5, 0.002, "true_prob")                      # the output barely moves from the base
    assert not is_flat(0.05, 0.03, "pred_prob")
    assert is_flat(0.03, 0.5, "logit") and not is_flat(0.05, 0.5, "logit")   # 4x for logits
    assert FLAT_LOGIT_THRESHOLD == pytest.approx(4 * FLAT_PROB_THRESHOLD, abs=f64_atol())
    assert not is_flat(float("nan"), float("nan"))                # unknown flags nothing


# --------------------------------------------------------------------------- the engine keeps the game


class Columns(Encoder):
    kind = "tabular"

    def __init__(self, d: int, seed: int, scale: float = 1.0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.proj = nn.Linear(d, 4)
        with torch.no_grad():
            self.proj.weight.mul_(scale)
        self.out_dim = 4

    def prepare(self, items):
        return {"features": torch.as_tensor(np.stack(items)).float()}

    def forward(self, inputs):
        return torch.tanh(self.proj(inputs["features"]))


class Head(nn.Module):
    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        torch.manual_seed(7)
        self.l1 = nn.Linear(8, 8)
        self.l2 = nn.Linear(8, 3)
        with torch.no_grad():
            self.l2.weight.mul_(scale)

    def forward(self, xs):
        return self.l2(torch.tanh(self.l1(torch.cat(list(xs), dim=1)))) * 3


def column_model(scale: float = 1.0) -> MultimodalClassifier:
    encoders = {"left-cols": Columns(4, 1), "right_cols": Columns(3, 2)}
    return MultimodalClassifier(["left-cols", "right_cols"], encoders, Head(scale), ["c0", "c1", "c2"]).eval()


def column_inputs(model: MultimodalClassifier):
    rng = np.random.default_rng(0)
    return model.prepare({"left-cols": [rng.normal(size=4).astype(np.float32) * 2],
                          "right_cols": [rng.normal(size=3).astype(np.float32) * 2]})


def test_the_engine_keeps_the_modality_game() -> None:
    model = column_model()
    e = explain_inputs(model, column_inputs(model), settings=ExplainSettings(method="exact"))
    v = e.coalition_values
    assert v is not None and v.shape == (4,)
    # the modality game's empty and full coalitions are the feature game's, in other batches
    tol = 2 * output_atol(3.0 * 8)
    assert v[0] == pytest.approx(e.base_value, abs=tol) and v[-1] == pytest.approx(e.full_value, abs=tol)
    phi = coalition_shapley(v)
    assert [e.modality_shapley[m] for m in e.modalities] == phi.tolist()   # computed from the same table
    assert phi.sum() == pytest.approx(v[-1] - v[0], abs=f64_atol(1.0, 4))
    assert list(e.interactions) == [("left-cols", "right_cols")]
    assert e.interactions[("left-cols", "right_cols")] == pytest.approx(v[3] - v[1] - v[2] + v[0],
                                                                        abs=f64_atol(1.0, 4))
    assert sum(e.exact_shares.values()) == pytest.approx(1.0, abs=f64_atol(1.0, 2))
    assert not e.flat


def test_a_randomised_model_is_flagged() -> None:
    # a head whose output layer is scaled down: the prediction barely depends on the inputs
    model = column_model(scale=1e-3)
    e = explain_inputs(model, column_inputs(model), settings=ExplainSettings(method="exact"))
    assert e.sum_abs_phi < FLAT_PROB_THRESHOLD
    assert e.flat and e.summary_row()["flat"] is True


# --------------------------------------------------------------------------- stored rows


def hand_explanation(sid: str = "s1", coalitions=(0.1, 0.3, 0.2, 0.9), phi=(0.2, 0.1, -0.05, 0.55)) -> Explanation:
    return Explanation(
        sample_id=sid, modalities=["image", "title"], values=np.array(phi), feature_modality=[0, 0, 1, 1],
        feature_info=[{"row": 0, "col": 0}, {"row": 0, "col": 1}, {"token": "a", "position": 1},
                      {"token": "b", "position": 2}],
        base_value=coalitions[0], full_value=coalitions[-1], stderr=None, shares={"image": 0.3, "title": 0.7},
        modality_shapley=dict(zip(["image", "title"], coalition_shapley(coalitions).tolist())),
        output_kind="pred_prob", explained_class="c0", method="exact", settings={"settings_hash": "0123456789ab"},
        coalition_values=np.array(coalitions),
    )


def test_summary_row_round_trip_and_old_rows() -> None:
    e = hand_explanation()
    row = e.summary_row()
    assert row["interaction_image__title"] == pytest.approx(0.9 - 0.3 - 0.2 + 0.1, abs=f64_atol(1.0, 4))
    assert row["exact_share_image"] + row["exact_share_title"] == pytest.approx(1.0, abs=f64_atol(1.0, 2))
    assert json.loads(row["coalition_values"]) == {"modalities": ["image", "title"], "values": [0.1, 0.3, 0.2, 0.9]}
    assert row["sum_abs_phi"] == pytest.approx(0.9, abs=f64_atol(1.0, 4)) and row["flat"] is False
    back = Explanation.from_rows(row, e.per_feature_frame())
    np.testing.assert_array_equal(back.coalition_values, e.coalition_values)   # JSON round-trips float64
    assert back.interactions == e.interactions
    old = {k: v for k, v in row.items() if k != "coalition_values"}
    legacy = Explanation.from_rows(old, e.per_feature_frame())
    assert legacy.coalition_values is None and legacy.interactions is None
    assert legacy.exact_shares == e.exact_shares          # from the stored modality Shapley values
    with pytest.raises(ConfigError, match="3 coalition values for 2 modalities"):
        Explanation(**{**e.__dict__, "coalition_values": np.zeros(3)})


def write_part(run_dir: Path, explanations: list[Explanation], drop: tuple[str, ...] = (),
               labels: dict[str, tuple[str, bool]] | None = None) -> None:
    """A stored part written by hand (as an older version would have, without ``drop``)."""
    d = run_dir / "explanations"
    d.mkdir(parents=True, exist_ok=True)
    rows = []
    for e in explanations:
        label, correct = (labels or {}).get(e.sample_id, ("c0", True))
        rows.append({**e.summary_row(), "label": label, "pred": label if correct else "other",
                     "correct": correct, "computed_at": "2026-01-01T00:00:00+00:00"})
    samples = pd.DataFrame(rows).drop(columns=list(drop))
    features = pd.concat([e.per_feature_frame() for e in explanations], ignore_index=True)
    features.to_parquet(d / "features-0123456789ab-part0of1.parquet")
    samples.to_parquet(d / "samples-0123456789ab-part0of1.parquet")


def test_parts_stored_before_the_game_was_kept_still_load(tmp_path: Path) -> None:
    flat_one = hand_explanation("s2", coalitions=(0.5, 0.501, 0.5, 0.502), phi=(0.001, 0.0, 0.0005, 0.0005))
    old_columns = ("coalition_values", "exact_share_image", "exact_share_title", "interaction_image__title",
                   "sum_abs_phi", "flat")
    write_part(tmp_path, [hand_explanation(), flat_one], drop=old_columns)
    samples, _ = load_explanations(tmp_path)
    rows = samples.set_index("sample_id")
    assert np.isnan(rows["interaction_image__title"]).all()            # not computed: NaN
    assert rows.loc["s1", "exact_share_image"] == pytest.approx(hand_explanation().exact_shares["image"],
                                                                abs=f64_atol(1.0, 2))
    assert rows.loc["s1", "sum_abs_phi"] == pytest.approx(0.9, abs=f64_atol(1.0, 4))   # from the feature rows
    assert rows["flat"].tolist() == [False, True]


def test_new_parts_load_with_their_interactions(tmp_path: Path) -> None:
    write_part(tmp_path, [hand_explanation()])
    samples, _ = load_explanations(tmp_path)
    assert samples["interaction_image__title"].iloc[0] == pytest.approx(0.5, abs=f64_atol(1.0, 4))
    assert samples["flat"].tolist() == [False]


# --------------------------------------------------------------------------- per-class tables


def per_sample_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "sample_id": ["a", "b", "c", "d", "e", "f"],
        "label": ["cat", "cat", "cat", "cat", "dog", "dog"],
        "pred": ["cat", "cat", "dog", "cat", "dog", "dog"],
        "output_kind": "pred_prob",
        "base_value": 0.2, "full_value": [0.6, 0.7, 0.5, 0.9, 0.8, 0.205],
        "sum_abs_phi": [0.5, 0.6, 0.4, 0.8, 0.7, 0.0004],               # f: a randomised-model sample
        "share_image": [0.2, 0.6, 0.4, 0.5, 0.7, 0.9],
        "share_text": [0.8, 0.4, 0.6, 0.5, 0.3, 0.1],
        "shapley_image": [0.1, 0.3, 0.1, 0.35, 0.3, 0.004],
        "shapley_text": [0.3, 0.2, 0.2, 0.35, 0.3, 0.001],
        "interaction_image__text": [0.02, 0.04, -0.1, 0.06, 0.01, 0.5],
    })


def test_flat_predictions_have_no_share_in_either_meaning() -> None:
    frame = per_sample_frame()
    tol = f64_atol(1.0, len(frame))
    mm = class_share_table(frame).set_index("class")
    assert mm.loc["dog", "n_all"] == 2 and mm.loc["dog", "n_flat"] == 1 and mm.loc[ALL_CLASSES, "n_flat"] == 1
    assert mm.loc["dog", "share_image_all"] == pytest.approx(0.7, abs=tol)       # f left out
    exact = class_share_table(frame, share="exact").set_index("class")
    assert exact.attrs["share"] == "exact"
    assert exact.loc["cat", "share_image_correct"] == pytest.approx(np.mean([0.25, 0.6, 0.5]), abs=tol)
    assert exact.loc["dog", "share_text_all"] == pytest.approx(0.5, abs=tol)
    with pytest.raises(ConfigError, match="unknown share meaning"):
        class_share_table(frame, share="both")


def test_class_interaction_table_with_t_intervals() -> None:
    from scipy import stats

    frame = per_sample_frame()
    t = class_interaction_table(frame, ["image", "text"]).set_index("class")
    col = "interaction_image__text"
    tol = f64_atol(1.0, len(frame))
    correct_cat = np.array([0.02, 0.04, 0.06])
    half = stats.t.ppf(0.975, 2) * correct_cat.std(ddof=1) / np.sqrt(3)
    assert t.loc["cat", f"{col}_correct"] == pytest.approx(0.04, abs=tol)
    assert t.loc["cat", f"{col}_correct_n"] == 3
    assert t.loc["cat", f"{col}_correct_low"] == pytest.approx(0.04 - half, abs=tol)
    assert t.loc["cat", f"{col}_correct_high"] == pytest.approx(0.04 + half, abs=tol)
    assert t.loc["cat", f"{col}_incorrect"] == pytest.approx(-0.1, abs=tol)
    assert np.isnan(t.loc["cat", f"{col}_incorrect_low"])              # one sample: no interval
    assert t.loc["dog", f"{col}_all_n"] == 1 and t.loc["dog", "n_flat"] == 1   # the flat f is left out
    assert t.loc[ALL_CLASSES, f"{col}_all"] == pytest.approx(np.mean([0.02, 0.04, -0.1, 0.06, 0.01]), abs=tol)
    text = format_class_interaction_table(t.reset_index(), ["image", "text"])
    assert "image x text" in text and "+0.0400 [" in text


def test_the_interval_covers_the_mean_of_its_population() -> None:
    # 95 % t intervals of means of 12 normal draws cover the true mean in about 95 % of 400 tables
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(400):
        frame = pd.DataFrame({"label": "cat", "correct": True, "interaction_a__b": rng.normal(0.3, 0.1, 12),
                              "share_a": 0.5, "share_b": 0.5})
        row = class_interaction_table(frame, ["a", "b"], overall=False).iloc[0]
        hits += row["interaction_a__b_all_low"] <= 0.3 <= row["interaction_a__b_all_high"]
    assert 0.92 <= hits / 400 <= 0.98   # binomial sd of the rate about 0.011
