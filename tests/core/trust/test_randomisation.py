"""Model randomisation and estimator error on hand-built tiny models whose answer is known."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from core.encoders import Encoder
from core.explain import ExplainSettings, explain_inputs
from core.model import MultimodalClassifier
from core.trust import (
    RANDOMISATION_FAIL,
    RANDOMISATION_MIN_SAMPLES,
    RANDOMISATION_PASS,
    STAGES,
    estimator_check,
    randomisation_check,
    reference_settings,
    reinitialise,
)

CLASSES = ["c0", "c1", "c2"]
D = 6


class ToyColumns(Encoder):
    """A tabular encoder: tanh of a linear map; ``ignore_weights`` computes through a fixed buffer
    instead (the weights are still there, multiplied by zero)."""

    kind = "tabular"

    def __init__(self, seed: int, ignore_weights: bool = False) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.lin = nn.Linear(D, 4)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(4, D, generator=g))
        self.register_buffer("fixed", torch.randn(D, 4, generator=g))
        self.ignore_weights = ignore_weights
        self.out_dim = 4

    def prepare(self, items):
        return {"features": torch.as_tensor(np.stack(items)).float()}

    def forward(self, inputs):
        x = inputs["features"]
        if self.ignore_weights:
            return torch.tanh(x @ self.fixed) + 0.0 * self.lin(x)
        return torch.tanh(self.lin(x))


class ToyHead(nn.Module):
    def __init__(self, seed: int, ignore_weights: bool = False) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.lin = nn.Linear(8, len(CLASSES))
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(len(CLASSES), 8, generator=g))
        self.register_buffer("fixed", torch.randn(8, len(CLASSES), generator=g))
        self.ignore_weights = ignore_weights

    def forward(self, xs):
        x = torch.cat(list(xs), dim=1)
        return x @ self.fixed + 0.0 * self.lin(x) if self.ignore_weights else self.lin(x) * 2


def toy_model(ignore_weights: bool = False) -> MultimodalClassifier:
    encoders = {"a": ToyColumns(1, ignore_weights), "b": ToyColumns(2, ignore_weights)}
    return MultimodalClassifier(["a", "b"], encoders, ToyHead(3, ignore_weights), CLASSES).eval()


def toy_inputs(model, n: int = 8, seed: int = 0) -> dict:
    """Features of +-1 only: |phi| then ranks what the weights make of them, not the inputs' magnitude."""
    rng = np.random.default_rng(seed)
    return {f"s{i}": model.prepare({m: [rng.choice([-1.0, 1.0], D).astype(np.float32)] for m in model.modalities})
            for i in range(n)}


EXACT = ExplainSettings(method="exact")


def test_reinitialise_draws_seeded_weights_on_a_copy():
    model = toy_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    head = reinitialise(model, "head", seed=0)
    every = reinitialise(model, "head+encoders", seed=0)
    for k, v in model.state_dict().items():  # the trained model is never written to
        assert torch.equal(v, before[k]), k
    assert not torch.equal(head.head.lin.weight, model.head.lin.weight)
    assert torch.equal(head.encoders["a"].lin.weight, model.encoders["a"].lin.weight)
    assert not torch.equal(every.encoders["a"].lin.weight, model.encoders["a"].lin.weight)
    assert torch.equal(every.encoders["a"].fixed, model.encoders["a"].fixed)  # buffers are not weights
    again = reinitialise(model, "head+encoders", seed=0)
    for k, v in every.state_dict().items():  # same seed, same draws (same process)
        assert torch.equal(v, again.state_dict()[k]), k
    other = reinitialise(model, "head+encoders", seed=1)
    assert not torch.equal(other.encoders["b"].lin.weight, every.encoders["b"].lin.weight)
    with pytest.raises(Exception, match="stage"):
        reinitialise(model, "encoders-only")


def test_explanations_that_depend_on_the_weights_pass():
    model = toy_model()
    result = randomisation_check(model, toy_inputs(model), EXACT, seed=0)
    stages = result.numbers["stages"]
    assert list(stages) == list(STAGES)
    assert result.status == "pass", result.reason
    assert stages["head+encoders"]["median"] < RANDOMISATION_PASS
    assert len(stages["head"]["per_sample"]) == result.n == 8


def test_a_model_whose_output_ignores_its_weights_fails():
    model = toy_model(ignore_weights=True)
    result = randomisation_check(model, toy_inputs(model), EXACT, seed=0)
    assert result.status == "fail", result.reason
    for stage in STAGES:  # re-initialised weights change nothing the model computes
        assert result.numbers["stages"][stage]["median"] >= RANDOMISATION_FAIL
        assert result.numbers["stages"][stage]["min"] == pytest.approx(1.0, abs=1e-9)


def test_stored_reference_explanations_are_used_as_given():
    model = toy_model()
    inputs = toy_inputs(model, n=3)
    reference = {sid: explain_inputs(model, x, sample_id=sid, settings=EXACT) for sid, x in inputs.items()}
    shuffled = {sid: explain_inputs(toy_model(ignore_weights=True), x, sample_id=sid, settings=EXACT)
                for sid, x in inputs.items()}  # another model's maps: the correlation must change with them
    own = randomisation_check(model, inputs, EXACT, reference=reference)
    other = randomisation_check(model, inputs, EXACT, reference=shuffled)
    assert own.numbers["stages"]["head"]["per_sample"] != other.numbers["stages"]["head"]["per_sample"]


def test_estimator_error_of_exact_values_is_zero_and_sampled_values_get_a_reference():
    model = toy_model()
    inputs = toy_inputs(model, n=2)
    exact = {sid: explain_inputs(model, x, sample_id=sid, settings=EXACT) for sid, x in inputs.items()}
    assert reference_settings(EXACT, exact["s0"]) is None
    result = estimator_check(model, inputs, exact, EXACT)
    assert result.status == "pass" and result.numbers["share_error_mean"] == 0.0

    sampled_settings = ExplainSettings(method="permutation", n_permutations=3, seed=4)
    sampled = {sid: explain_inputs(model, x, sample_id=sid, settings=sampled_settings) for sid, x in inputs.items()}
    ref = reference_settings(sampled_settings, sampled["s0"])
    assert (ref.method, ref.n_permutations, ref.seed) == ("permutation", 30, 5)
    result = estimator_check(model, inputs, sampled, sampled_settings)
    numbers = result.numbers
    assert result.n == 2 and numbers["n_features"] == 2 * 2 * D
    assert 0.0 <= numbers["coverage"] <= 1.0 and numbers["share_error_mean"] > 0.0
    assert set(numbers["per_sample"]) == {"s0", "s1"}
    # against the exact values, the 10x reference is closer than the stored 3-permutation estimate
    truth = exact["s0"].values
    closer = explain_inputs(model, inputs["s0"], settings=ref).values
    assert np.abs(closer - truth).mean() < np.abs(sampled["s0"].values - truth).mean()


def test_a_deadline_stops_taking_samples_but_keeps_the_minimum():
    model = toy_model()
    inputs = toy_inputs(model, n=6)
    reference: dict = {}
    result = randomisation_check(model, inputs, EXACT, reference=reference, deadline=0.0)  # long past
    assert result.n == RANDOMISATION_MIN_SAMPLES == len(result.numbers["stages"]["head"]["per_sample"])
    assert sorted(reference) == sorted(result.numbers["stages"]["head"]["per_sample"])  # computed once, kept
    sampled = ExplainSettings(method="permutation", n_permutations=2)
    explained = {sid: explain_inputs(model, x, sample_id=sid, settings=sampled) for sid, x in inputs.items()}
    assert estimator_check(model, inputs, explained, sampled, deadline=0.0).n == 1
    assert estimator_check(model, inputs, explained, sampled).n == len(inputs)
