"""Every registered image and text encoder: shapes, gradients, determinism, spec round trip."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.encoders import ENCODERS, create_encoder
from core.errors import ConfigError, DataError
from core.model import build_encoder
from tests._tolerance import f32_atol

IMAGE_KW = {"small-cnn": {"image_size": 16, "width": 4, "out_dim": 8},
            "small-vit": {"image_size": 16, "patch_size": 8, "hidden_size": 16, "layers": 1, "heads": 2, "out_dim": 8}}


def _images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (20, 20, 3), dtype=np.uint8) for _ in range(n)]


@pytest.mark.parametrize("name", sorted(IMAGE_KW))
def test_image_encoder_contract(name):
    torch.manual_seed(0)
    enc = create_encoder(name, **IMAGE_KW[name])
    enc.fit_preprocessing(_images(6))
    inputs = enc.prepare(_images(3, seed=1))
    assert inputs["pixels"].shape == (3, 3, 16, 16)
    out = enc(inputs)
    assert out.shape == (3, enc.out_dim) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in enc.parameters() if p.requires_grad)
    enc.eval()
    # spec round trip with weights gives the same output
    twin = create_encoder(enc.spec()["name"], **enc.spec()["kwargs"])
    twin.load_state_dict(enc.state_dict(), strict=True)
    twin.eval()
    assert torch.equal(enc(inputs), twin(inputs))   # same weights, inputs and process: bit for bit
    assert enc.structure(inputs) ["height"] == 16


def test_every_image_encoder_is_tested():
    assert set(ENCODERS.names(kind="image")) - set(IMAGE_KW) == {"hf-vision"}  # needs a downloaded model


def test_image_normalisation_centres_training_data():
    enc = create_encoder("small-cnn", **IMAGE_KW["small-cnn"])
    imgs = _images(10)
    enc.fit_preprocessing(imgs)
    x = enc.prepare(imgs)["pixels"]
    # float32 statistics and a float32 mean over every pixel of a channel, of values of size |x|
    n = x.numel() // x.shape[1]
    assert x.mean(dim=(0, 2, 3)).abs().max() <= f32_atol(float(x.abs().max()), n)


def test_bad_image_shape():
    enc = create_encoder("small-cnn", **IMAGE_KW["small-cnn"])
    with pytest.raises(DataError, match="expected HxWx3"):
        enc.prepare([np.zeros((4, 4, 5), dtype=np.uint8)])


def test_text_encoder_tokens_and_pooling():
    enc = build_encoder({"name": "minilm", "kwargs": {"max_length": 16}})
    assert enc.out_dim == 384 and not enc.saves_weights
    inputs = enc.prepare(["red circle", "a blue square drawing"])
    assert set(inputs) == {"input_ids", "attention_mask", "special_tokens_mask"}
    s = enc.structure(inputs)
    assert s["tokens"][0][:4] == ["[CLS]", "red", "circle", "[SEP]"]
    assert inputs["special_tokens_mask"][0, 0] == 1 and inputs["special_tokens_mask"][0, 1] == 0
    with torch.no_grad():
        a = enc(inputs)
        b = enc(enc.prepare(["red circle"]))
    assert a.shape == (2, 384)
    # padding does not change a sample's embedding, up to float32 rounding of other reduction lengths
    assert torch.allclose(a[0], b[0], rtol=0, atol=f32_atol(float(a.abs().max()), 1536))  # MiniLM's widest


def test_text_encoder_encodes_empty_text_as_special_tokens_only():
    """The manifest rule empty = "keep" hands the encoder "": it sees [CLS] [SEP] and nothing to mask."""
    from core.explain import create_masker

    enc = build_encoder({"name": "minilm", "kwargs": {"max_length": 16}})
    inputs = enc.prepare(["ok", "  ", ""])
    assert inputs["attention_mask"][1].sum() == 2 and inputs["special_tokens_mask"][1, :2].tolist() == [1, 1]
    assert torch.equal(inputs["input_ids"][1], inputs["input_ids"][2])
    emb = enc(inputs)
    assert emb.shape == (3, 384) and torch.isfinite(emb).all()
    one = {k: v[1:2] for k, v in inputs.items()}
    masker = create_masker("text", one, encoder=enc)  # the kind reads the pad id and token strings from it
    assert masker.n_features == 0 and masker.n_tokens == 2 and masker.describe() == []
    assert torch.equal(masker.apply(one, torch.ones(4, 0, dtype=torch.bool))["input_ids"], one["input_ids"].expand(4, -1))
    with pytest.raises(DataError, match="not a string"):
        enc.prepare(["ok", None])


def test_unknown_encoder_lists_known_ones():
    with pytest.raises(ConfigError, match="small-cnn"):
        create_encoder("resnet-9000")


def test_unknown_text_model_says_how_to_fix(tmp_path):
    with pytest.raises(ConfigError, match="cannot load the text model"):
        create_encoder("hf-text", model=str(tmp_path / "no-model-here"))
