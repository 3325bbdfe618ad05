"""Shapley estimators: known-answer games, axioms, shap as oracle, the result object."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from core.explain import (
    EXACT_MAX_FEATURES,
    Explanation,
    ShapleyValues,
    group_shapley_values,
    modality_shares,
    shap_permutations,
    shapley_values,
)
from tests._tolerance import f64_atol

# The games here are float64 numpy functions, so tolerances follow the float64 rule of
# tests/_tolerance.py: k * EPS64 * (magnitude of the game's values) * sqrt(evaluations combined).
METHODS = ["exact", "permutation", "kernel", "auto"]


# --------------------------------------------------------------------------- games


def additive_game(weights: np.ndarray, const: float = 0.5):
    return lambda m: m.astype(float) @ weights + const


def mlp_game(n: int, seed: int, hidden: int = 16):
    """A small random tanh MLP on masked inputs (masked = 0): a nonlinear game."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(size=(n, hidden)) * 2 / math.sqrt(n)
    b1 = rng.normal(size=hidden) * 0.5
    w2 = rng.normal(size=hidden)
    x = rng.normal(size=n)
    return lambda m: np.tanh((m * x) @ w1 + b1) @ w2


def table_game(n: int, seed: int):
    """The most general game: an arbitrary value per coalition."""
    table = np.random.default_rng(seed).normal(size=2 ** n)
    powers = 1 << np.arange(n)
    return (lambda m: table[m.astype(np.int64) @ powers]), table


def unanimity_game(n: int, seed: int, n_terms: int = 60, max_order: int = 3):
    """Sum of c_T * [T inside S]; its Shapley values are known: phi_i = sum_{T containing i} c_T / |T|."""
    rng = np.random.default_rng(seed)
    terms = [(rng.choice(n, rng.integers(1, max_order + 1), replace=False), rng.normal())
             for _ in range(n_terms)]
    phi = np.zeros(n)
    for members, c in terms:
        phi[members] += c / len(members)
    return (lambda m: sum(c * m[:, members].all(axis=1) for members, c in terms)), phi


def brute_force(v, n: int) -> np.ndarray:
    """The Shapley formula, one coalition at a time."""
    def val(S):
        m = np.zeros((1, n), dtype=bool)
        m[0, list(S)] = True
        return float(v(m)[0])

    phi = np.zeros(n)
    for j in range(n):
        others = [i for i in range(n) if i != j]
        for k in range(n):
            w = math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n)
            for S in itertools.combinations(others, k):
                phi[j] += w * (val(S + (j,)) - val(S))
    return phi


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


# --------------------------------------------------------------------------- axioms


@pytest.mark.parametrize("method", METHODS)
def test_additive_game_returns_its_weights(method: str) -> None:
    n = 6 if method == "exact" else 16  # 16 > the auto exact threshold: auto samples
    w = np.random.default_rng(1).normal(size=n)
    sv = shapley_values(additive_game(w), n, method=method)
    tol = f64_atol(np.abs(w).sum() + 0.5, sv.n_evals)
    np.testing.assert_allclose(sv.values, w, atol=tol)
    assert sv.base_value == 0.5                     # 0 @ w + 0.5: no rounding anywhere
    assert sv.full_value == pytest.approx(0.5 + w.sum(), abs=tol)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n", [1, 3, 12])
def test_efficiency(method: str, n: int) -> None:
    v = mlp_game(n, seed=n)
    sv = shapley_values(v, n, method=method, seed=3)
    full = v(np.ones((1, n), dtype=bool))[0]
    base = v(np.zeros((1, n), dtype=bool))[0]
    # full and base are evaluated alone here, inside a batch there: BLAS may round them differently
    tol = f64_atol(max(1.0, abs(full), abs(base), np.abs(sv.values).sum()), sv.n_evals)
    assert sv.full_value == pytest.approx(full, abs=tol) and sv.base_value == pytest.approx(base, abs=tol)
    assert sv.values.sum() == pytest.approx(full - base, abs=tol)
    assert sv.values.shape == (n,)


@pytest.mark.parametrize("method", METHODS)
def test_null_player_gets_zero(method: str) -> None:
    n = 14
    inner = mlp_game(n - 1, seed=2)
    v = lambda m: inner(np.delete(m, 5, axis=1))  # feature 5 is ignored
    sv = shapley_values(v, n, method=method)
    # exactly 0 up to float noise: BLAS may round a row differently by its batch position
    assert abs(sv.values[5]) <= f64_atol(np.abs(sv.values).sum(), sv.n_evals)
    assert np.abs(sv.values).sum() > 0.1


def test_symmetric_players_get_equal_values() -> None:
    n = 8
    rng = np.random.default_rng(4)
    w = rng.normal(size=n)
    w[3] = w[6] = 0.7

    def v(m: np.ndarray) -> np.ndarray:
        x = m.astype(float)
        # players 3 and 6 enter symmetrically, also through an interaction
        return np.tanh(x @ w) + x[:, 3] * x[:, 6] * 1.3 + (x[:, 3] + x[:, 6]) * x[:, 0]

    sv = shapley_values(v, n, method="exact")
    assert sv.values[3] == pytest.approx(sv.values[6], abs=f64_atol(np.abs(sv.values).sum(), sv.n_evals))


def test_exact_matches_brute_force_formula() -> None:
    n = 5
    v, table = table_game(n, seed=7)
    sv = shapley_values(v, n, method="exact", batch_size=7)
    np.testing.assert_allclose(sv.values, brute_force(v, n), atol=f64_atol(np.abs(table).max(), 2 ** n))
    assert sv.n_evals == 2 ** n and sv.stderr is None and sv.method == "exact"


def test_exact_on_unanimity_game_matches_closed_form() -> None:
    v, phi = unanimity_game(12, seed=3)
    # |v| <= sum |c_T| <= 2 * sum |phi|
    np.testing.assert_allclose(shapley_values(v, 12, method="exact").values, phi,
                               atol=f64_atol(2 * np.abs(phi).sum(), 2 ** 12))


def test_permutation_converges_to_exact() -> None:
    n = 10
    v = mlp_game(n, seed=11)
    exact = shapley_values(v, n, method="exact").values
    errors = []
    for n_perm in (2, 8, 32, 128):
        errors.append(np.mean([
            rmse(shapley_values(v, n, method="permutation", n_permutations=n_perm, seed=s).values, exact)
            for s in range(4)
        ]))
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < errors[0] / 4  # ~ 1 / sqrt(P): 64x the permutations, ~8x less error


def test_permutation_cost_and_stderr() -> None:
    n = 9
    v = mlp_game(n, seed=5)
    sv = shapley_values(v, n, method="permutation", n_permutations=10)
    assert sv.settings["evals_as_shap_counts"] == 10 * (2 * n + 1)
    assert sv.n_evals <= 2 + 10 * (2 * n - 2)  # endpoints shared, duplicates evaluated once
    assert sv.stderr.shape == (n,) and np.all(sv.stderr >= 0)
    one = shapley_values(v, n, method="permutation", n_permutations=1)
    assert np.all(np.isnan(one.stderr))


def _auto_vs_permutation(games, n: int, seeds=range(3)) -> tuple[float, float]:
    err_auto, err_perm = [], []
    for v, exact in games:
        for seed in seeds:
            perm = shapley_values(v, n, method="permutation", seed=seed)
            auto = shapley_values(v, n, method="auto", seed=seed, max_evals=perm.n_evals)
            assert auto.method == "kernel" and auto.n_evals <= perm.n_evals
            err_perm.append(rmse(perm.values, exact))
            err_auto.append(rmse(auto.values, exact))
    return float(np.mean(err_auto)), float(np.mean(err_perm))


def test_auto_beats_permutation_at_equal_budget_on_random_mlps() -> None:
    n = 16  # exact is 65536 cheap evaluations here
    games = []
    for g in range(6):
        v = mlp_game(n, seed=100 + g)
        games.append((v, shapley_values(v, n, method="exact").values))
    err_auto, err_perm = _auto_vs_permutation(games, n)
    assert err_auto < 0.85 * err_perm, (err_auto, err_perm)


def test_auto_beats_permutation_at_equal_budget_on_unanimity_games() -> None:
    n = 24  # closed-form Shapley values, no enumeration needed
    # interactions of up to 3 players (both estimators are exact up to 2); measured ratio ~0.75
    games = [unanimity_game(n, seed=200 + g) for g in range(8)]
    err_auto, err_perm = _auto_vs_permutation(games, n)
    assert err_auto < 0.9 * err_perm, (err_auto, err_perm)


def test_kernel_stderr_is_calibrated() -> None:
    n = 14
    z = []
    for g in range(4):
        v = mlp_game(n, seed=300 + g)
        exact = shapley_values(v, n, method="exact").values
        for seed in range(3):
            sv = shapley_values(v, n, method="kernel", seed=seed)
            z.append((sv.values - exact) / sv.stderr)
    assert 0.7 < np.std(np.concatenate(z)) < 1.5


def test_auto_rule() -> None:
    def method(n: int, **kw) -> str:
        return shapley_values(mlp_game(n, seed=0), n, **kw).method

    assert method(10) == "exact"
    assert method(11) == "kernel"
    assert method(11, exact_max_features=11) == "exact"
    assert method(5, exact_max_features=0) == "exact"  # 2^5 <= 10 * (2 * 5 + 1)
    assert method(12, n_permutations=1) == "permutation"  # budget 25 < 4n + 2
    assert shapley_values(mlp_game(12, seed=0), 12).n_evals <= 10 * 25


def test_seeded_results_are_identical_between_calls() -> None:
    n = 15
    v = mlp_game(n, seed=9)
    for method in ("permutation", "kernel", "auto"):
        a = shapley_values(v, n, method=method, seed=5)
        b = shapley_values(v, n, method=method, seed=5)
        c = shapley_values(v, n, method=method, seed=6)
        # same process, same masks in the same batches: bit-identical by construction
        np.testing.assert_array_equal(a.values, b.values)
        np.testing.assert_array_equal(a.stderr, b.stderr)
        assert not np.array_equal(a.values, c.values)
        # other batch sizes see the same masks; only BLAS rounding may differ
        d = shapley_values(v, n, method=method, seed=5, batch_size=17)
        np.testing.assert_allclose(d.values, a.values, rtol=0, atol=f64_atol(np.abs(a.values).sum(), a.n_evals))


def test_value_fn_gets_batches_without_duplicates() -> None:
    n = 12
    inner = mlp_game(n, seed=1)
    calls: list[np.ndarray] = []

    def v(m: np.ndarray) -> np.ndarray:
        calls.append(m.copy())
        return inner(m)

    sv = shapley_values(v, n, method="permutation", n_permutations=20, batch_size=64)
    rows = np.concatenate(calls)
    assert max(len(c) for c in calls) == 64
    assert len(np.unique(rows, axis=0)) == len(rows)
    assert sv.n_evals == len(rows)


# --------------------------------------------------------------------------- groups and shares


def test_group_shapley_matches_brute_force() -> None:
    n = 9
    groups = [[0, 1, 2], [3, 4], [5, 6, 7, 8]]
    v = mlp_game(n, seed=21)
    sv = group_shapley_values(v, groups)
    assert isinstance(sv, ShapleyValues) and sv.n_evals == 8 and sv.method == "exact"

    def lifted(gm: np.ndarray) -> np.ndarray:
        m = np.zeros((len(gm), n), dtype=bool)
        for g, idx in enumerate(groups):
            m[:, idx] = gm[:, [g]]
        return v(m)

    tol = f64_atol(max(1.0, abs(sv.full_value), abs(sv.base_value), np.abs(sv.values).sum()), 8)
    np.testing.assert_allclose(sv.values, brute_force(lifted, 3), atol=tol)
    assert sv.values.sum() == pytest.approx(sv.full_value - sv.base_value, abs=tol)
    # features outside every group stay present
    part = group_shapley_values(v, groups[:2], n_features=n)
    assert part.full_value == pytest.approx(v(np.ones((1, n), dtype=bool))[0], abs=tol)


def test_groups_argument_of_shapley_values() -> None:
    v = mlp_game(9, seed=21)
    groups = [[0, 1, 2], [3, 4], [5, 6, 7, 8]]
    a = shapley_values(v, 9, groups=groups, method="exact")
    b = group_shapley_values(v, groups)
    np.testing.assert_allclose(a.values, b.values, rtol=0, atol=f64_atol(np.abs(b.values).sum(), b.n_evals))
    with pytest.raises(ConfigError, match="more than one group"):
        group_shapley_values(v, [[0, 1], [1, 2]])


@pytest.mark.parametrize("method", METHODS)
def test_ignored_group_gets_share_zero(method: str) -> None:
    n = 24
    groups = [np.arange(0, 8), np.arange(8, 16), np.arange(16, 24)]
    inner = mlp_game(16, seed=31)
    v = lambda m: inner(m[:, :16])  # the third "modality" is ignored
    if method == "exact":  # keep exact small: 2 + 2 + 2 features per group
        groups = [np.arange(0, 2), np.arange(2, 4), np.arange(4, 6)]
        inner6 = mlp_game(4, seed=31)
        v = lambda m: inner6(m[:, :4])
        n = 6
    sv = shapley_values(v, n, method=method)
    shares = modality_shares(sv.values, groups)
    # exactly 0 up to BLAS rounding: each ignored value within the float64 rule, over the total
    tol = f64_atol(np.abs(sv.values).sum(), sv.n_evals)
    assert shares[2] <= len(groups[2]) * tol / np.abs(sv.values).sum()
    assert shares.sum() == pytest.approx(1.0, abs=f64_atol(1.0, len(groups)))
    mod = group_shapley_values(v, groups)
    assert abs(mod.values[2]) <= f64_atol(np.abs(mod.values).sum(), mod.n_evals)


def test_modality_shares_formula_and_zero_safety() -> None:
    phi = np.array([0.5, -0.5, 1.0, 0.0])
    # sums and quotients of these binary fractions are exact in float64
    np.testing.assert_array_equal(modality_shares(phi, [[0, 1], [2, 3]]), [0.5, 0.5])
    np.testing.assert_array_equal(modality_shares(np.zeros(4), [[0, 1], [2, 3]]), [0.0, 0.0])
    sv = shapley_values(additive_game(np.array([1.0, -3.0])), 2, method="exact")
    np.testing.assert_allclose(modality_shares(sv, [[0], [1]]), [0.25, 0.75], rtol=0, atol=f64_atol(4.0, 4))


# --------------------------------------------------------------------------- shap as oracle


def _oracle_setup(n: int, seed: int):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n, 6))
    u = rng.normal(size=6)
    # nonzero everywhere, so shap treats every feature as varying against the zero background
    x = rng.uniform(0.5, 2.0, size=n) * rng.choice([-1.0, 1.0], size=n)

    def model(X: np.ndarray) -> np.ndarray:
        return np.tanh(X @ w) @ u + 0.3 * X[:, 0] * X[:, 3]

    # masked feature = 0: the game shap plays with a single all-zero background row
    value_fn = lambda m: model(np.where(m, x, 0.0))
    return model, x, value_fn


def test_exact_reproduces_shap_exact_explainer(shap_uncompiled) -> None:
    shap = shap_uncompiled
    n = 8
    model, x, value_fn = _oracle_setup(n, seed=0)
    masker = shap.maskers.Independent(np.zeros((1, n)), max_samples=1)
    ref = shap.ExactExplainer(model, masker)(x[None])
    ours = shapley_values(value_fn, n, method="exact")
    # the same float64 outputs, summed in another order
    tol = f64_atol(np.abs(ours.values).sum() + abs(ours.base_value), 2 ** n)
    np.testing.assert_allclose(ours.values, ref.values[0], atol=tol)
    assert ours.base_value == pytest.approx(float(np.ravel(ref.base_values)[0]), abs=tol)


def test_permutation_reproduces_shap_permutation_explainer(
    shap_uncompiled, monkeypatch: pytest.MonkeyPatch
) -> None:
    shap = shap_uncompiled
    n, n_perm, seed = 10, 5, 3
    model, x, value_fn = _oracle_setup(n, seed=1)
    masker = shap.maskers.Independent(np.zeros((1, n)), max_samples=1)

    # record the orders shap walks
    walked: list[np.ndarray] = []
    shuffle = np.random.shuffle

    def recording_shuffle(a):
        shuffle(a)
        walked.append(np.array(a, copy=True))

    monkeypatch.setattr(np.random, "shuffle", recording_shuffle)
    ref = shap.PermutationExplainer(model, masker, seed=seed)(x[None], max_evals=n_perm * (2 * n + 1))
    monkeypatch.setattr(np.random, "shuffle", shuffle)
    assert len(walked) == n_perm

    # the same orders passed explicitly: identical values
    ours = shapley_values(value_fn, n, method="permutation", permutations=np.array(walked))
    # the same outputs added in shap's order (core/explain/_estimators/permutation.py): bit-identical
    np.testing.assert_array_equal(ours.values, ref.values[0])
    assert ours.base_value == float(np.ravel(ref.base_values)[0])
    # the same seed draws the same orders
    np.testing.assert_array_equal(shap_permutations(n, n_perm, seed), np.array(walked))
    seeded = shapley_values(value_fn, n, method="permutation", n_permutations=n_perm, seed=seed)
    np.testing.assert_array_equal(seeded.values, ref.values[0])


# --------------------------------------------------------------------------- bad input


def test_exact_refuses_too_many_features() -> None:
    with pytest.raises(ConfigError, match="permutation"):
        shapley_values(lambda m: m.sum(1), EXACT_MAX_FEATURES + 1, method="exact")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "magic"}, "unknown Shapley method"),
        ({"n_permutations": 0}, "n_permutations"),
        ({"n_permutations": 10 ** 6}, "n_permutations"),
        ({"method": "kernel", "max_evals": 20}, "at least"),
        ({"method": "permutation", "permutations": [[0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]}, "not a permutation"),
    ],
)
def test_bad_arguments_say_what_to_do(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        shapley_values(lambda m: m.sum(1).astype(float), 12, **kwargs)
    assert "Fix:" in str(info.value)


def test_value_fn_with_wrong_output_shape() -> None:
    with pytest.raises(ConfigError, match="one scalar per mask"):
        shapley_values(lambda m: np.zeros((len(m), 2)), 4, method="exact")


# --------------------------------------------------------------------------- the result object


def _explanation() -> Explanation:
    n_text, grid = 4, 2
    feature_info = [{"token": t, "position": i + 1} for i, t in enumerate(["a", "cat", "on", "mat"])]
    for r in range(grid):
        for c in range(grid):
            feature_info.append({"row": r, "col": c, "y0": 8 * r, "y1": 8 * r + 8, "x0": 8 * c, "x1": 8 * c + 8})
    feature_info += [{"column": "f0"}, {"column": "f1"}]
    n = len(feature_info)
    fm = np.array([0] * n_text + [1] * grid * grid + [2] * 2)
    v = mlp_game(n, seed=41)
    sv = shapley_values(v, n, method="kernel", seed=2)
    groups = [np.flatnonzero(fm == i) for i in range(3)]
    mod = group_shapley_values(v, groups)
    return Explanation.from_shapley(
        sv,
        sample_id="s1",
        modalities=["title", "image", "emb"],
        feature_modality=fm,
        feature_info=feature_info,
        output_kind="pred_prob",
        explained_class="cat",
        modality_shapley=dict(zip(["title", "image", "emb"], mod.values)),
    )


def test_explanation_tables_and_round_trip(tmp_path) -> None:
    exp = _explanation()
    assert sum(exp.shares.values()) == pytest.approx(1.0, abs=f64_atol(1.0, len(exp.shares)))
    frame = exp.per_feature_frame()
    for col in ["sample_id", "modality", "feature_index", "token", "row", "col", "frame_start", "frame_end",
                "phi", "stderr"]:
        assert col in frame.columns
    assert len(frame) == exp.n_features
    assert frame.loc[frame.modality == "image", "feature_index"].tolist() == [0, 1, 2, 3]
    row = exp.summary_row()
    for col in ["sample_id", "explained_class", "output_kind", "base_value", "full_value", "share_title",
                "share_image", "share_emb", "shapley_title", "shapley_image", "shapley_emb", "method",
                "n_permutations", "seed"]:
        assert col in row

    # through Parquet, with another sample's rows in the same table
    other = frame.assign(sample_id="s2", phi=0.0)
    pd.concat([other, frame]).to_parquet(tmp_path / "f.parquet")
    pd.DataFrame([row]).to_parquet(tmp_path / "s.parquet")
    back = Explanation.from_rows(
        pd.read_parquet(tmp_path / "s.parquet").iloc[0].to_dict(), pd.read_parquet(tmp_path / "f.parquet")
    )
    # Parquet stores float64 losslessly: the values come back bit for bit
    np.testing.assert_array_equal(back.values, exp.values)
    np.testing.assert_array_equal(back.stderr, exp.stderr)
    np.testing.assert_array_equal(back.feature_modality, exp.feature_modality)
    assert back.feature_info == exp.feature_info
    assert back.shares == exp.shares and back.modality_shapley == exp.modality_shapley
    assert back.share_stderr == exp.share_stderr and all(v > 0 for v in exp.share_stderr.values())
    assert row["share_stderr_image"] == exp.share_stderr["image"]
    assert (back.sample_id, back.modalities, back.method, back.settings) == (
        exp.sample_id, exp.modalities, exp.method, exp.settings)
    assert (back.base_value, back.full_value, back.output_kind, back.explained_class) == (
        exp.base_value, exp.full_value, exp.output_kind, exp.explained_class)

    # a row stored before engine version 2 has no share_stderr_<m>: unknown, not zero
    before = {k: v for k, v in row.items() if not k.startswith("share_stderr_")}
    assert Explanation.from_rows(before, frame).share_stderr is None

    # a part written before the tabular kind: its entries' `name` reads as today's `column`
    old = frame.assign(name=frame["column"], column=pd.NA).drop(columns=["column"])
    older = Explanation.from_rows(row, old)
    assert older.feature_info == exp.feature_info and older.feature_names()[-2:] == ["emb:f0", "emb:f1"]


def test_explanation_to_shap() -> None:
    shap = pytest.importorskip("shap")
    exp = _explanation()
    se = exp.to_shap()
    assert isinstance(se, shap.Explanation)
    np.testing.assert_array_equal(se.values, exp.values)      # copied, not computed
    assert se.base_values == exp.base_value
    assert se.feature_names[:2] == ["title:a", "title:cat"]
    assert se.feature_names[4:6] == ["image:r0c0", "image:r0c1"]
    assert list(se.data[-2:]) == ["f0", "f1"]
    assert se.values.sum() == pytest.approx(exp.full_value - exp.base_value,
                                           abs=f64_atol(np.abs(exp.values).sum() + abs(exp.full_value), exp.n_features))


def test_explanation_validates() -> None:
    exp = _explanation()
    with pytest.raises(ConfigError, match="output kind"):
        Explanation(**{**exp.__dict__, "output_kind": "probability"})
    with pytest.raises(ConfigError, match="modality by modality"):
        Explanation(**{**exp.__dict__, "feature_modality": exp.feature_modality[::-1]})
