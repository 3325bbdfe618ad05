"""Heads and the multimodal classifier: known answers for late fusion, shapes, gradients, determinism."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.fusion import FUSIONS
from core.model import LateHead, MultimodalClassifier, build_head, stack_channels
from tests._tolerance import f32_atol
from tests.core.encoders.test_encoders import IMAGE_KW, _images


@pytest.mark.parametrize("n_mod", [2, 3])
@pytest.mark.parametrize("fusion", FUSIONS.names(strategy="intermediate"))
def test_intermediate_head(fusion, n_mod):
    dims = [6, 4, 5][:n_mod]
    torch.manual_seed(0)
    head = build_head({"type": "intermediate", "in_dims": dims, "n_classes": 3, "fusion": fusion, "dim": 8})
    xs = [torch.randn(5, d, requires_grad=True) for d in dims]
    out = head(xs)
    assert out.shape == (5, 3)
    out.sum().backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in xs)
    torch.manual_seed(0)
    twin = build_head({"type": "intermediate", "in_dims": dims, "n_classes": 3, "fusion": fusion, "dim": 8})
    head.eval(), twin.eval()
    assert torch.equal(head(xs), twin(xs))   # same seed, inputs and process: bit for bit


@pytest.mark.parametrize("n_mod", [2, 3])
def test_late_average_is_the_mean_of_unimodal_probabilities(n_mod):
    torch.manual_seed(0)
    head = LateHead([4] * n_mod, 3, "late-average")
    xs = [torch.randn(2, 4) for _ in range(n_mod)]
    expected = torch.stack([torch.softmax(v(x), -1) for v, x in zip(head.voters, xs)]).mean(0)
    # float32 probabilities (scale 1), a mean of n_mod of them, and a log / softmax round trip
    tol = f32_atol(1.0, n_mod)
    assert torch.allclose(torch.softmax(head(xs), -1), expected, rtol=0, atol=tol)
    assert torch.allclose(head.fuse(xs), expected, rtol=0, atol=tol)


def test_late_weighted_uses_its_weights():
    torch.manual_seed(0)
    head = LateHead([4, 4], 3, "late-weighted")
    with torch.no_grad():
        head.weight_logits.copy_(torch.tensor([50.0, -50.0]))  # all weight on the first voter
    xs = [torch.randn(2, 4), torch.randn(2, 4)]
    assert torch.allclose(head.fuse(xs), torch.softmax(head.voters[0](xs[0]), -1), rtol=0, atol=f32_atol(1.0, 2))


def test_classifier_owned_state_round_trip():
    from core.encoders import create_encoder

    torch.manual_seed(0)
    enc = create_encoder("small-cnn", **IMAGE_KW["small-cnn"])
    head = build_head({"type": "unimodal", "in_dims": [enc.out_dim], "n_classes": 2})
    model = MultimodalClassifier(["image"], {"image": enc}, head, ["a", "b"]).eval()
    torch.manual_seed(1)
    twin = MultimodalClassifier(["image"], {"image": create_encoder("small-cnn", **IMAGE_KW["small-cnn"])},
                                build_head({"type": "unimodal", "in_dims": [enc.out_dim], "n_classes": 2}),
                                ["a", "b"]).eval()
    twin.load_owned_state_dict(model.owned_state_dict())
    inputs = model.prepare({"image": _images(2)})
    assert torch.equal(model(inputs), twin(inputs))   # same weights, inputs and process: bit for bit
    with pytest.raises(ValueError, match="missing"):
        twin.load_owned_state_dict({})


def test_stack_channels_checks_shapes():
    rgb = [np.zeros((4, 8, 8, 3), np.uint8)]
    depth = [np.ones((4, 8, 8), np.float32)]
    out = stack_channels([rgb, depth])
    assert out[0].shape == (4, 8, 8, 4) and out[0][..., 3].max() == 1.0
    from core.errors import DataError

    with pytest.raises(DataError, match="differ"):
        stack_channels([rgb, [np.ones((5, 8, 8), np.float32)]])
