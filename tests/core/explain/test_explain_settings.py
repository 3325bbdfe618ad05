"""Explain settings, declared once: every field is a CLI flag that round-trips, hashes stay stable,
and every registered estimator keeps the contract of the base class."""
from __future__ import annotations

import dataclasses
import shlex

import numpy as np
import pytest

from core.cli import build_parser
from core.errors import ConfigError, cli_command
from core.explain import (
    ENGINE_METHODS,
    ESTIMATORS,
    Estimator,
    ExplainSettings,
    PrecomputeOptions,
    add_explain_arguments,
    cli_fields,
    create_estimator,
    list_estimators,
    precompute_command,
    settings_argv,
    settings_from_args,
    shapley_values,
)
from tests._tolerance import f64_atol

#: Flags that existed before the settings generated them: scripts and recorded commands use them.
LEGACY_FLAGS = ("--n", "--seed", "--shard", "--method", "--output", "--permutations", "--walks", "--grid",
                "--modality", "--flush-every")

#: Every field away from its default (a field added later must be added here, see the test).
CHANGED = {
    ExplainSettings: dict(method="recombined", n_permutations=7, seed=3, output="class:c 1", grid="total",
                          video_grid=2, video_segments=4, n_orders=12, n_walks=60, modalities=("title", "image"),
                          series_segments=5, audio_bands=3, audio_segments=5),
    PrecomputeOptions: dict(n=25, shard="1/3", flush_every=4),
}


def explain_parser():
    """The real ``fusionlens explain`` parser, from the CLI."""
    parser = build_parser("fusionlens")
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices["explain"]


def test_every_setting_is_a_flag_of_fusionlens_explain() -> None:
    flags = explain_parser()._option_string_actions
    for cls in (ExplainSettings, PrecomputeOptions):
        for f in dataclasses.fields(cls):
            flag = next(fl for c, g, fl in cli_fields() if c is cls and g.name == f.name)
            assert flag in flags, f"{cls.__name__}.{f.name} has no flag"
            action = flags[flag]
            assert action.dest == f.name and action.help and f.metadata["help"] in action.help
    for flag in (*LEGACY_FLAGS, "--video-grid", "--video-segments"):
        assert flag in flags
    assert flags["--method"].choices == ENGINE_METHODS


def test_the_test_changes_every_field() -> None:
    for cls, changed in CHANGED.items():
        assert set(changed) == {f.name for f in dataclasses.fields(cls)}
        assert all(changed[f.name] != f.default for f in dataclasses.fields(cls))


def test_settings_round_trip_through_the_flags() -> None:
    settings, options = ExplainSettings(**CHANGED[ExplainSettings]), PrecomputeOptions(**CHANGED[PrecomputeOptions])
    argv = settings_argv(settings, options)
    for _, f, flag in cli_fields():  # every field shows up, the repeatable one once per value
        assert flag in argv
    assert argv.count("--modality") == 2
    back = settings_from_args(explain_parser().parse_args(["some/run", *argv]))
    assert back == (settings, options)
    assert back[0].hash() == settings.hash()
    # the recorded command, as a shell would split it (a class name with a space stays one word)
    command = precompute_command("runs/x/run a", settings, options)
    words = shlex.split(command)
    assert command.startswith(f"{cli_command()} explain ") and words[-len(argv):] == argv
    assert settings_from_args(explain_parser().parse_args(["run", *words[-len(argv):]])) == (settings, options)


def test_no_flags_give_the_default_settings() -> None:
    settings, options = settings_from_args(explain_parser().parse_args(["run"]))
    assert settings == ExplainSettings() and options == PrecomputeOptions()
    assert settings_argv(settings, options) == []
    assert precompute_command("runs/e/r") == f"{cli_command()} explain runs/e/r"
    # a parser of one's own gets the same flags
    import argparse

    own = argparse.ArgumentParser()
    add_explain_arguments(own)
    assert settings_from_args(own.parse_args(["--video-grid", "4", "--grid", "5"]))[0] == \
        ExplainSettings(video_grid=4, grid=5)


def test_settings_hashes_are_those_of_stored_results() -> None:
    """The hash names the stored files: the same settings keep the same hash (engine version 2; its
    default budgets are part of it, so changing one gives new files, never mixed rows)."""
    assert ExplainSettings().hash() == "43179091972b"
    assert ExplainSettings(method="exact").hash() == "54901a3a3a18"
    assert ExplainSettings(grid=3, seed=2).hash() == "17e70682a3e6"
    assert ExplainSettings(grid="total", n_walks=60).hash() == "401d2fba0e7f"
    assert ExplainSettings(output=("class", "x")).hash() == "3353c6f0c8cc"
    assert ExplainSettings(modalities=("a", "b"), video_grid=2, video_segments=4).hash() == "6361d095469e"
    assert ExplainSettings(n_orders=40).hash() == "8aab074b9838"
    # the audio grid, added later: hashed only away from its default (4 x 6), so the hashes above stay
    assert ExplainSettings(audio_bands=4, audio_segments=6).hash() == "43179091972b"
    assert len({ExplainSettings(audio_bands=2).hash(), ExplainSettings(audio_segments=2).hash(),
                ExplainSettings().hash()}) == 3
    assert ExplainSettings(grid="mean") == ExplainSettings() and ExplainSettings(grid="3").grid == 3


def test_building_settings_from_changes() -> None:
    base = ExplainSettings(seed=4)
    assert ExplainSettings.build(base, method="exact") == ExplainSettings(seed=4, method="exact")
    assert ExplainSettings.build(None) == ExplainSettings() and ExplainSettings.build(base) is base
    with pytest.raises(ConfigError, match="unknown ExplainSettings field.*'permutations'.*Fix: use some of: method"):
        ExplainSettings.build(permutations=5)
    with pytest.raises(ConfigError, match="must be a ExplainSettings"):
        ExplainSettings.build(PrecomputeOptions())


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "positive sample count"),
    ({"shard": "2/2"}, "shard"),
    ({"shard": "half"}, "i/n"),
    ({"flush_every": 0}, "flush_every=0 .*Fix: store every N >= 1"),
])
def test_bad_precompute_options_say_what_to_do(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        PrecomputeOptions(**kwargs)
    assert PrecomputeOptions(shard=(1, 2)).shard == "1/2"


# --------------------------------------------------------------------------- estimators


class AdditiveGame:
    """``value = sum of the present players' weights + a pair interaction``, in two "modalities"
    (the structure the recombined estimator needs); player 5 is null."""

    factorised = False
    players = ["a", "b"]
    sizes = [3, 3]
    n_features = 6
    weights = np.array([0.5, -1.0, 2.0, 0.25, 1.5, 0.0])

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        m = np.asarray(masks, dtype=float)
        return m @ self.weights + 0.75 * m[:, 0] * m[:, 3]


def test_every_method_is_auto_or_a_registered_estimator() -> None:
    assert set(ENGINE_METHODS) == {"auto", *list_estimators()}
    assert list_estimators() and all(issubclass(ESTIMATORS.get(n), Estimator) for n in list_estimators())
    with pytest.raises(ConfigError, match="unknown Shapley estimator 'magic'"):
        create_estimator("magic")


@pytest.mark.parametrize("name", list_estimators())
def test_every_estimator_keeps_the_contract(name: str) -> None:
    game = AdditiveGame()
    estimator = create_estimator(name, n_permutations=8, seed=1)
    sv = estimator.estimate(game, game.n_features, batch_size=5)
    exact = np.array([0.5 + 0.375, -1.0, 2.0, 0.25 + 0.375, 1.5, 0.0])  # the interaction split evenly
    tol = f64_atol(4.5, 64)
    # efficiency, the null player, and (games of pairwise interactions) the exact values
    assert sv.values.sum() == pytest.approx(sv.full_value - sv.base_value, abs=tol)
    assert sv.values[5] == pytest.approx(0.0, abs=tol)
    np.testing.assert_allclose(sv.values, exact, rtol=0, atol=tol)
    assert sv.method == name and sv.settings["method"] == name
    assert (sv.settings["n_permutations"], sv.settings["seed"]) == (8, 1)
    assert 0 < sv.n_evals <= max(estimator.evaluations(game.n_features), 2 ** game.n_features)
    again = create_estimator(name, n_permutations=8, seed=1).estimate(game, game.n_features, batch_size=64)
    np.testing.assert_array_equal(again.values, sv.values)   # seeded: batch size changes nothing


def test_the_front_door_records_the_method_asked_for() -> None:
    game = AdditiveGame()
    sv = shapley_values(game, game.n_features, method="auto", seed=2)
    assert sv.method == "exact" and sv.settings["method"] == "auto"
    assert shapley_values(game, game.n_features, method="kernel").settings["method"] == "kernel"
