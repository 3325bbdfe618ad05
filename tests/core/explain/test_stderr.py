"""Standard errors that say the truth: z-scores against exact values on small seeded games.

For every sampling estimator the engine offers, ``(phi_hat - phi_exact) / stderr``
over many features, games and seeds must look like a standard normal (a Student
t with the estimator's degrees of freedom: std about 1.0-1.2) and the 95 %
interval ``phi_hat +- 1.96 stderr`` must cover the exact value at least 85 % of
the time; the same for each modality's MM-SHAP share and its standard error
(with coverage at least 80 %: 64 shares per estimator).
A negative control shows that the test can fail: recombined walks taken as
independent (how engine version 1 computed the stderr) are far outside it.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.explain import (
    RECOMBINED_BUDGET,
    PermutationEstimator,
    create_estimator,
    modality_shares,
    plan_recombined,
    recombined_permutations,
    share_stderr,
    shapley_values,
)

Z_STD_BAND = (0.7, 1.5)
MIN_COVERAGE = 0.85
SHARE_MIN_COVERAGE = 0.8


class TwoTowerGame:
    """A seeded two-modality model on masked inputs (masked = 0): a tanh tower per modality and a
    head with a product of the towers, so the features interact within and across modalities
    (the structure of a fusion model). ``sizes`` tells the modalities, as a SampleGame does."""

    def __init__(self, sizes: tuple[int, int], seed: int, hidden: int = 6) -> None:
        rng = np.random.default_rng(seed)
        self.sizes = list(sizes)
        self.players = ["a", "b"]
        self.n_features = sum(sizes)
        self.x = rng.normal(size=self.n_features)
        self.w = [rng.normal(size=(s, hidden)) * 2 / math.sqrt(s) for s in sizes]
        self.b = [rng.normal(size=hidden) * 0.5 for _ in sizes]
        self.head = rng.normal(size=(3, hidden))

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        z = masks * self.x
        a = np.tanh(z[:, :self.sizes[0]] @ self.w[0] + self.b[0])
        b = np.tanh(z[:, self.sizes[0]:] @ self.w[1] + self.b[1])
        return a @ self.head[0] + b @ self.head[1] + (a * b) @ self.head[2]


def _games(sizes: tuple[int, int], n_games: int = 8):
    for g in range(n_games):
        game = TwoTowerGame(sizes, seed=500 + g)
        yield game, shapley_values(game, game.n_features, method="exact").values


def _groups(game: TwoTowerGame) -> list[np.ndarray]:
    return [np.arange(game.sizes[0]), np.arange(game.sizes[0], game.n_features)]


def _scores(estimate, sizes: tuple[int, int], seeds=range(8)) -> tuple[np.ndarray, np.ndarray]:
    """z-scores of the values and of the shares over games and seeds."""
    z, zs = [], []
    for game, exact in _games(sizes):
        groups = _groups(game)
        truth = modality_shares(exact, groups)
        for seed in seeds:
            sv = estimate(game, seed)
            assert np.all(sv.stderr > 0)
            z.append((sv.values - exact) / sv.stderr)
            zs.append((modality_shares(sv.values, groups) - truth)[:1] / share_stderr(sv, groups)[:1])
    return np.concatenate(z), np.concatenate(zs)


def _assert_calibrated(z: np.ndarray, what: str, min_coverage: float = MIN_COVERAGE) -> None:
    std, coverage = float(np.std(z)), float(np.mean(np.abs(z) < 1.96))
    assert Z_STD_BAND[0] < std < Z_STD_BAND[1], f"{what}: z-scores' std {std:.2f}"
    assert coverage >= min_coverage, f"{what}: 95 % intervals cover {coverage:.2f}"


ESTIMATES = {
    # the engine's default plan for non-video kinds, on modalities of 9 and 5 players (5: tabulated)
    "recombined-default": ((9, 5), lambda g, s: create_estimator(
        "recombined", seed=s, plan=plan_recombined(g.sizes, *RECOMBINED_BUDGET)).estimate(g, g.n_features)),
    # few blocks of many walks, no modality tabulated: the correlated walks the blocks must absorb
    "recombined-10x8": ((7, 7), lambda g, s: create_estimator(
        "recombined", seed=s, plan=plan_recombined(g.sizes, 10, 8)).estimate(g, g.n_features)),
    "permutation": ((7, 7), lambda g, s: create_estimator("permutation", n_permutations=10, seed=s)
                    .estimate(g, g.n_features)),
    "kernel": ((7, 7), lambda g, s: create_estimator("kernel", n_permutations=10, seed=s).estimate(g, g.n_features)),
}


@pytest.mark.parametrize("name", list(ESTIMATES))
def test_standard_errors_are_calibrated_against_exact_values(name: str) -> None:
    sizes, estimate = ESTIMATES[name]
    z, z_share = _scores(estimate, sizes)
    _assert_calibrated(z, f"{name} values")
    # one share per game and seed (64), a jackknife (delta method for kernel) of a ratio of sums of
    # |phi|: measured coverage 0.84-0.97, z std 0.97-1.34 at these budgets
    _assert_calibrated(z_share, f"{name} shares", min_coverage=SHARE_MIN_COVERAGE)


def test_walks_taken_as_independent_fail_the_same_test() -> None:
    """Negative control: the engine-version-1 stderr (2 orders per modality, 50 walks taken as
    independent) understates the error several-fold, so the calibration test above rejects it."""
    plan = plan_recombined((7, 7), n_blocks=2, walks_per_block=25)

    def naive(game, seed):
        perms, _ = recombined_permutations(plan, seed)
        return PermutationEstimator(permutations=perms).estimate(game, game.n_features)

    z, _ = _scores(naive, (7, 7))
    assert np.std(z) > 2 * Z_STD_BAND[1] and np.mean(np.abs(z) < 1.96) < 0.6

    # the same walks with the stderr between the two blocks: centred, but one degree of freedom
    # (a t with 1 df has no variance): why the engine never plans fewer than a handful of blocks
    def blocks(game, seed):
        return create_estimator("recombined", seed=seed, plan=plan).estimate(game, game.n_features)

    z_blocks, _ = _scores(blocks, (7, 7))
    assert np.mean(np.abs(z_blocks) < 1.96) < 0.85 or np.std(z_blocks) > Z_STD_BAND[1]


def test_share_stderr_rules() -> None:
    game = TwoTowerGame((7, 7), seed=1)
    groups = _groups(game)
    exact = shapley_values(game, game.n_features, method="exact")
    assert np.array_equal(share_stderr(exact, groups), [0.0, 0.0])
    one = create_estimator("permutation", n_permutations=1).estimate(game, game.n_features)
    assert np.all(np.isnan(share_stderr(one, groups)))
    # two modalities: the shares sum to 1, so their standard errors are equal
    sv = create_estimator("recombined", seed=0, plan=plan_recombined(game.sizes, 12, 4)).estimate(
        game, game.n_features)
    se = share_stderr(sv, groups)
    assert sv.replicates.shape == (12, game.n_features) and se[0] == pytest.approx(se[1], rel=1e-9)
    np.testing.assert_allclose(sv.replicates.mean(axis=0), sv.values, rtol=0, atol=1e-12)
    assert sv.settings["stderr"] == "between 12 independent blocks"


def test_a_stored_result_says_how_it_was_estimated() -> None:
    from core.explain import describe_estimate

    game = TwoTowerGame((7, 7), seed=2)
    sv = create_estimator("recombined", seed=0, plan=plan_recombined(game.sizes, 32, 1)).estimate(
        game, game.n_features)
    assert describe_estimate(sv.method, sv.settings) == \
        "recombined, 32 independent blocks x 1 walk (stderr between blocks)"
    assert describe_estimate("exact", {}).startswith("exact (")
    assert "walks treated as independent" in describe_estimate(
        "recombined", {"stderr": "walks treated as independent (a lower bound)"})  # an engine-version-1 row


def test_results_of_an_older_engine_never_outrank_a_partial_precompute() -> None:
    """Engine version 2 changed what stored values mean (estimator, stderr): a run's dashboard
    shows the current engine's results even while fewer samples have them."""
    import json

    import pandas as pd

    from core.explain import ENGINE_VERSION, main_settings_hash, preferred_rows

    def rows(h: str, version: int, n: int) -> pd.DataFrame:
        settings = json.dumps({"explain_settings": {"engine_version": version}})
        return pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], "settings_hash": h, "settings": settings,
                             "computed_at": "2026-12-01T00:00:00+00:00"})

    old, new = rows("a" * 12, ENGINE_VERSION - 1, 100), rows("b" * 12, ENGINE_VERSION, 20)
    both = pd.concat([old, new], ignore_index=True)
    assert main_settings_hash(both) == "b" * 12 and len(preferred_rows(both)) == 20
    assert main_settings_hash(old) == "a" * 12          # only old results: still shown
    more_new = pd.concat([both, rows("c" * 12, ENGINE_VERSION, 30)], ignore_index=True)
    assert main_settings_hash(more_new) == "c" * 12     # among current ones, the most samples
