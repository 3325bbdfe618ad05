"""Classical heads (scikit-learn, no pickle): every estimator x aggregation fits a tiny seeded problem, its torch
decisions equal the original estimator's and the estimator rebuilt from the arrays, the arrays survive a
safetensors + JSON round trip, and wrong names, settings or arrays are refused naming the problem."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.errors import ConfigError
from core.experiment import parse_experiment
from core.fusion import (
    AGGREGATIONS,
    CLASSICAL_DEFAULTS,
    CLASSICAL_ESTIMATORS,
    list_classical,
    parse_classical,
)
from core.io import read_tensors, write_tensors
from core.model import ClassicalHead, build_head
from tests._tolerance import f64_atol

IN_DIMS = [6, 4]
N_CLASSES = 3
#: decisions of the torch module against scikit-learn, both float64 on the same float32 features
DECISION_ATOL = 1e-5


def _problem(n: int, seed: int, n_classes: int = N_CLASSES) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Two modalities of Gaussian noise; the class shifts a few features of each together (correlated, so
    they make the first principal component even after standardising; a separable-ish problem)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % n_classes
    xs = [torch.randn(n, d, generator=g) for d in IN_DIMS]
    xs[0][:, :3] += 1.5 * y[:, None]
    xs[1][:, :2] -= 1.5 * y[:, None]
    return xs, y


def _fitted(name: str, n_classes: int = N_CLASSES, y_map=None) -> tuple[ClassicalHead, list[torch.Tensor]]:
    torch.manual_seed(0)
    xs, y = _problem(90, seed=1, n_classes=n_classes)
    xs_val, y_val = _problem(30, seed=2, n_classes=n_classes)
    if y_map is not None:
        y, y_val = y_map(y), y_map(y_val)
    head = build_head({"type": "classical", "in_dims": IN_DIMS, "n_classes": 4 if y_map else n_classes,
                       "fusion": name, "settings": {"components": 3}, "hidden": [0, 5]})
    if head.aggregation == "late":  # voters stand in for the unimodal classifiers: fixed random weights
        for voter in head.voters:
            for p in voter.parameters():
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    head.fit(xs, y, xs_val, y_val, seed=0)
    return head, xs


def _sklearn_decisions(pipeline, features: np.ndarray) -> np.ndarray:
    d = np.asarray(pipeline.decision_function(features), dtype=np.float64)
    return d[:, None] if d.ndim == 1 else d


def test_every_estimator_supports_every_aggregation_and_names_parse():
    assert {"logreg", "svc-linear", "svc-rbf"} <= set(CLASSICAL_ESTIMATORS.names())
    assert len(list_classical()) == 3 * len(AGGREGATIONS)
    for name in list_classical():
        estimator, aggregation = parse_classical(name)
        assert f"{estimator}-{aggregation}" == name
        assert CLASSICAL_ESTIMATORS.meta(estimator)["label"]


def test_experiment_defaults_are_the_heads_defaults():
    exp = parse_experiment({"name": "x", "dataset": {"source": "emoji"},
                            "modalities": {"a": {"kind": "image", "encoder": "small-cnn"},
                                           "b": {"kind": "image", "encoder": "small-cnn"}}})
    assert exp.train["classical"] == CLASSICAL_DEFAULTS
    assert exp.classical == []


@pytest.mark.parametrize("name", list_classical())
def test_torch_decisions_equal_the_original_and_the_rebuilt_estimator(name: str):
    head, xs = _fitted(name)
    with torch.no_grad():
        features = head.features(xs).double().numpy()
        torch_d = head.estimator.decision(head.features(xs)).numpy()
    original = _sklearn_decisions(head.estimator.pipeline_, features)
    rebuilt = _sklearn_decisions(head.to_sklearn(), features)
    np.testing.assert_allclose(torch_d, original, atol=DECISION_ATOL, rtol=0)
    np.testing.assert_allclose(rebuilt, original, atol=DECISION_ATOL, rtol=0)
    np.testing.assert_array_equal(head.to_sklearn().predict(features), head.estimator.pipeline_.predict(features))
    with torch.no_grad():
        log_p = head(xs)
    assert log_p.shape == (90, N_CLASSES) and torch.isfinite(log_p).all()
    np.testing.assert_array_equal(log_p.argmax(1).numpy(), head.estimator.pipeline_.predict(features))
    if not name.endswith("-late"):  # the class shifts are plain to see in the embeddings
        assert (log_p.argmax(1) == torch.arange(90) % N_CLASSES).float().mean() >= 0.9


@pytest.mark.parametrize("name", ["logreg-early", "logreg-intermediate"])
def test_logistic_regression_probabilities_are_its_predict_proba(name: str):
    head, xs = _fitted(name)
    with torch.no_grad():
        probs = head(xs).double().exp().numpy()
        features = head.features(xs).double().numpy()
    np.testing.assert_allclose(probs, head.estimator.pipeline_.predict_proba(features), atol=1e-6, rtol=0)
    assert head.estimator.fitted["temperature"] == 1.0


@pytest.mark.parametrize("name", ["svc-linear-early", "svc-rbf-intermediate"])
def test_svm_probabilities_are_a_tempered_softmax_that_keeps_the_prediction(name: str):
    head, xs = _fitted(name)
    t = head.estimator.fitted["temperature"]
    assert 0 < t and t != 1.0
    with torch.no_grad():
        probs = head(xs).double().exp()
        d = head.estimator.decision(head.features(xs))
    assert probs.sum(1).numpy() == pytest.approx(np.ones(90), abs=1e-6)
    torch.testing.assert_close(probs, torch.softmax(d / t, 1), atol=1e-6, rtol=0)
    assert torch.equal(probs.argmax(1), d.argmax(1))


@pytest.mark.parametrize("name", ["logreg-early", "svc-linear-late", "svc-rbf-intermediate"])
def test_two_of_four_classes_give_binary_estimators_and_unseen_classes_get_no_probability(name: str):
    head, xs = _fitted(name, n_classes=2, y_map=lambda y: y + 1)  # classes 1 and 2 of 0..3
    assert head.estimator.fitted["classes"] == [1, 2]
    with torch.no_grad():
        log_p = head(xs)
        features = head.features(xs).double().numpy()
        d = head.estimator.decision(head.features(xs)).numpy()
    assert d.shape == (90, 1) and torch.isfinite(log_p).all()
    np.testing.assert_allclose(d[:, 0], head.to_sklearn().decision_function(features), atol=DECISION_ATOL, rtol=0)
    assert log_p[:, [0, 3]].exp().max() < 1e-6
    np.testing.assert_array_equal(log_p.argmax(1).numpy(), head.estimator.pipeline_.predict(features))


@pytest.mark.parametrize("name", ["logreg-intermediate", "svc-rbf-early", "svc-linear-late"])
def test_safetensors_and_json_round_trip_gives_identical_predictions(name: str, tmp_path):
    head, xs = _fitted(name)
    write_tensors(tmp_path / "head.safetensors", head.state_dict())
    (tmp_path / "head.json").write_text(json.dumps(head.config()))
    again = build_head(json.loads((tmp_path / "head.json").read_text()))
    state = read_tensors(tmp_path / "head.safetensors", what="head")
    again.check_arrays(state)
    again.load_state_dict(state)
    with torch.no_grad():
        # the same float64 arrays through the same operations in this process: equal to the bit
        assert torch.equal(again(xs), head(xs))
        features = head.features(xs).double().numpy()
    np.testing.assert_allclose(_sklearn_decisions(again.to_sklearn(), features),
                               _sklearn_decisions(head.estimator.pipeline_, features),
                               atol=f64_atol(100.0, 1000), rtol=0)
    assert head.estimator.pipeline_ is not None and again.estimator.pipeline_ is None  # nothing pickled


def test_arrays_that_do_not_match_the_settings_are_refused_by_name():
    head, _ = _fitted("svc-rbf-intermediate")
    state = {k: v.clone() for k, v in head.state_dict().items()}
    n_support = head.estimator.fitted["n_support"]
    state["estimator.support_vectors"] = state["estimator.support_vectors"][:-1]
    with pytest.raises(ValueError, match=rf"array 'support_vectors' has shape \({n_support - 1}, 6\), but its "
                                         rf"settings \(.*n_support = {n_support}\) need \({n_support}, 6\)"):
        head.check_arrays(state)
    del state["estimator.dual_coef"]
    with pytest.raises(ValueError, match="array 'dual_coef' is missing"):
        head.check_arrays(state)
    bad = {k: v.clone() for k, v in head.state_dict().items()}
    bad["estimator.scaler_scale"][0] = 0.0
    with pytest.raises(ValueError, match="'scaler_scale' holds values <= 0"):
        head.check_arrays(bad)


def test_fitted_settings_that_cannot_be_right_are_refused():
    head, _ = _fitted("svc-rbf-early")
    cfg = head.config()
    for key, value, message in (("gamma", -1.0, "'gamma' = -1.0 is not a positive number"),
                                ("classes", [0], "'classes' = \\[0\\] is not a list of two or more"),
                                ("temperature", 0, "'temperature' = 0 is not a positive number")):
        with pytest.raises(ValueError, match=message):
            build_head({**cfg, "fitted": {**cfg["fitted"], key: value}})


def test_unknown_estimators_aggregations_and_settings_are_refused():
    with pytest.raises(ConfigError, match="classical head 'logreg' does not support the aggregation 'stacked'.*"
                                          "Fix: use one of: logreg-early, logreg-intermediate, logreg-late"):
        parse_classical("logreg-stacked")
    with pytest.raises(ConfigError, match="no classical estimator 'svm-rbf'.*Fix: did you mean 'svc-rbf-early'"):
        parse_classical("svm-rbf-early")
    with pytest.raises(ConfigError, match="unknown setting\\(s\\): gamma"):
        build_head({"type": "classical", "in_dims": IN_DIMS, "n_classes": 3, "fusion": "logreg-early",
                    "settings": {"gamma": 1.0}})
    head = build_head({"type": "classical", "in_dims": IN_DIMS, "n_classes": 3, "fusion": "logreg-early"})
    with pytest.raises(RuntimeError, match="not fitted"):
        head([torch.zeros(1, 6), torch.zeros(1, 4)])


def _experiment(fusion: dict, train: dict | None = None) -> dict:
    return {"name": "x", "dataset": {"source": "emoji"},
            "modalities": {"a": {"kind": "image", "encoder": "small-cnn"},
                           "b": {"kind": "image", "encoder": "small-cnn"}},
            "fusion": {"methods": ["concat"], **fusion}, **({"train": train} if train else {})}


def test_experiment_files_name_classical_heads_and_refuse_wrong_ones():
    exp = parse_experiment(_experiment({"classical": ["logreg-early", "svc-rbf-late"]},
                                       {"classical": {"C": 0.5, "components": 8}}))
    assert exp.classical == ["logreg-early", "svc-rbf-late"]
    assert exp.train["classical"] == {"C": 0.5, "components": 8, "max_iter": 2000}
    with pytest.raises(ConfigError) as err:
        parse_experiment(_experiment({"classical": ["logreg-stacked", "svm-early", "logreg-early", "logreg-early"]}))
    text = str(err.value)
    assert "[fusion] classical: classical head 'logreg' does not support the aggregation 'stacked'" in text
    assert "no classical estimator 'svm'" in text
    assert "[fusion] classical names 'logreg-early' more than once" in text
    with pytest.raises(ConfigError, match="classical heads go in \\[fusion\\] classical"):
        parse_experiment(_experiment({"methods": ["svc-rbf-early"]}))
    with pytest.raises(ConfigError, match="\\[train.classical\\] C = 0 is out of range"):
        parse_experiment(_experiment({}, {"classical": {"C": 0}}))
    with pytest.raises(ConfigError, match="not in \\[fusion\\] methods, late or classical"):
        parse_experiment(_experiment({"classical": ["logreg-early"], "subsets": [["a", "b"], ["b", "a"]],
                                      "subset_methods": ["svc-rbf-late"]}))


def test_without_a_calibration_split_the_temperature_is_cross_fitted_not_in_sample():
    from scipy.optimize import minimize_scalar
    from scipy.special import logsumexp

    xs, y = _problem(60, seed=3)
    head = build_head({"type": "classical", "in_dims": IN_DIMS, "n_classes": N_CLASSES, "fusion": "svc-rbf-early"})
    head.fit(xs, y, seed=0)
    fitted = head.estimator.fitted
    assert fitted["temperature_from"] == "cross-fitted"
    with torch.no_grad():
        d = head.estimator.decision(head.features(xs)).numpy()

    def nll(log_t: float) -> float:
        z = d / np.exp(log_t)
        return float(np.mean(logsumexp(z, axis=1) - z[np.arange(len(y)), y.numpy()]))

    in_sample = float(np.exp(minimize_scalar(nll, bounds=(-6, 6), method="bounded").x))
    assert fitted["temperature"] > in_sample  # held-out decisions are less sure than the fit's own
