"""Maskers: what a masked feature becomes, what never changes, and the descriptions."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import ConfigError, DataError
from core.explain import (
    ColumnMasker,
    ImagePatchMasker,
    Masker,
    MaskerContext,
    TextTokenMasker,
    VideoTubeMasker,
    create_masker,
    list_maskers,
    patch_grid_for_tokens,
    shapley_values,
)
from tests._tolerance import f32_atol

PAD = 0


def text_inputs() -> dict[str, torch.Tensor]:
    # [CLS] a cat on the mat [SEP] [PAD] [PAD]
    ids = torch.tensor([[101, 1037, 4937, 2006, 1996, 13523, 102, 0, 0]])
    attention = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 0, 0]])
    special = torch.tensor([[1, 0, 0, 0, 0, 0, 1, 1, 1]])
    return {"input_ids": ids, "attention_mask": attention, "special_tokens_mask": special}


TOKENS = ["[CLS]", "a", "cat", "on", "the", "mat", "[SEP]", "[PAD]", "[PAD]"]


def image_inputs(h: int = 10, w: int = 13) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"pixels": torch.randn(1, 3, h, w, generator=g) + 5.0}  # no pixel is 0 before masking


def video_inputs(t: int = 7, h: int = 9, w: int = 11) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {"clips": torch.randn(1, 2, t, h, w, generator=g) + 5.0}


def feature_inputs(d: int = 6) -> dict[str, torch.Tensor]:
    return {"features": torch.arange(1, d + 1, dtype=torch.float32)[None]}


def series_inputs(t: int = 13, c: int = 3) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return {"series": torch.randn(1, t, c, generator=g) + 5.0}  # no value is 0 before masking


def audio_inputs(n_mels: int = 10, frames: int = 15) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return {"spec": torch.randn(1, 1, n_mels, frames, generator=g) + 5.0}  # no value is 0 before masking


def build(kind: str) -> Masker:
    if kind == "text":  # the token strings a text encoder would give
        return TextTokenMasker(text_inputs(), pad_token_id=PAD, tokens=TOKENS)
    return create_masker(kind, inputs_of(kind), context=MaskerContext(grid=3, video_grid=3, video_segments=2))


def inputs_of(kind: str) -> dict[str, torch.Tensor]:
    return {"text": text_inputs, "image": image_inputs, "video": video_inputs, "tabular": feature_inputs,
            "timeseries": series_inputs, "audio": audio_inputs}[kind]()


def random_mask(n: int, b: int = 6, seed: int = 0) -> np.ndarray:
    m = np.random.default_rng(seed).random((b, n)) < 0.5
    m[0] = True
    m[1] = False
    return m


# --------------------------------------------------------------------------- every masker


def test_one_masker_per_kind() -> None:
    assert set(list_maskers()) == {"text", "image", "video", "tabular", "timeseries", "audio"}
    with pytest.raises(ConfigError, match="use one of"):
        create_masker("smell", {})
    assert type(create_masker("features", feature_inputs())) is ColumnMasker  # the old name of tabular
    assert type(create_masker("text", text_inputs())) is TextTokenMasker  # no encoder: pad id 0, ids as tokens
    assert create_masker("image", image_inputs()).grid == MaskerContext().grid


@pytest.mark.parametrize("kind", list_maskers())
def test_contract(kind: str) -> None:
    masker = build(kind)
    inputs = inputs_of(kind)
    assert isinstance(masker, Masker) and masker.kind == kind
    info = masker.describe()
    assert len(info) == masker.n_features > 0 and all(isinstance(d, dict) for d in info)
    mask = random_mask(masker.n_features)
    out = masker.apply(inputs, mask)
    assert set(out) == set(inputs)
    for key, value in out.items():
        assert value.shape == (len(mask), *inputs[key].shape[1:])
        assert value.dtype == inputs[key].dtype
        torch.testing.assert_close(value[0], inputs[key][0])  # all present: unchanged
    # a torch mask works the same, and the inputs are not modified
    before = {k: v.clone() for k, v in inputs.items()}
    out_t = masker.apply(inputs, torch.as_tensor(mask))
    for key in out:
        torch.testing.assert_close(out_t[key], out[key])
        torch.testing.assert_close(inputs[key], before[key])
    with pytest.raises(ConfigError, match="mask of shape"):
        masker.apply(inputs, np.ones((2, masker.n_features + 1), dtype=bool))


@pytest.mark.parametrize("kind", list_maskers())
def test_one_feature_changes_only_its_part(kind: str) -> None:
    masker = build(kind)
    inputs = inputs_of(kind)
    key = masker.input_keys[0]
    eye = ~np.eye(masker.n_features, dtype=bool)  # row j: only feature j masked
    out = masker.apply(inputs, eye)[key]
    changed = (out != inputs[key]).reshape(masker.n_features, -1)
    # every masked variant changes something, and no element changes in two variants
    assert changed.any(dim=1).all()
    assert (changed.sum(dim=0) <= 1).all()


def test_maskers_need_a_single_sample() -> None:
    batch = {k: v.repeat(2, *[1] * (v.ndim - 1)) for k, v in image_inputs().items()}
    with pytest.raises(DataError, match="one sample"):
        ImagePatchMasker(batch, grid=2)
    with pytest.raises(DataError, match="no 'pixels'"):
        ImagePatchMasker({"clips": torch.zeros(1, 3, 2, 4, 4)}, grid=2)


# --------------------------------------------------------------------------- text


def test_text_features_are_the_non_special_tokens() -> None:
    masker = build("text")
    assert masker.n_features == 5
    assert masker.n_tokens == 7  # attended tokens, [CLS] and [SEP] included
    assert [d["token"] for d in masker.describe()] == ["a", "cat", "on", "the", "mat"]
    assert [d["position"] for d in masker.describe()] == [1, 2, 3, 4, 5]


def test_text_masked_tokens_become_pad_and_special_tokens_never_change() -> None:
    masker = build("text")
    inputs = text_inputs()
    mask = random_mask(masker.n_features, b=16, seed=3)
    out = masker.apply(inputs, mask)
    ids = out["input_ids"]
    special = inputs["special_tokens_mask"][0].bool()
    assert (ids[:, special] == inputs["input_ids"][0, special]).all()
    pos = masker.positions
    m = torch.as_tensor(mask)
    assert (ids[:, pos][~m] == PAD).all()
    assert (ids[:, pos][m] == inputs["input_ids"][0, pos].expand_as(ids[:, pos])[m]).all()
    assert (out["attention_mask"] == inputs["attention_mask"]).all()


def test_text_token_strings() -> None:
    per_feature = TextTokenMasker(text_inputs(), pad_token_id=PAD, tokens=["a", "cat", "on", "the", "mat"])
    assert per_feature.describe() == build("text").describe()
    ids_only = TextTokenMasker(text_inputs(), pad_token_id=PAD)
    assert ids_only.describe()[1]["token"] == "4937"
    with pytest.raises(ConfigError, match="token strings"):
        TextTokenMasker(text_inputs(), pad_token_id=PAD, tokens=["a", "b"])


# --------------------------------------------------------------------------- image


@pytest.mark.parametrize("n_tokens, p", [(1, 1), (4, 2), (5, 3), (8, 3), (9, 3), (10, 4), (16, 4), (17, 5)])
def test_patch_grid_rule(n_tokens: int, p: int) -> None:
    assert patch_grid_for_tokens(n_tokens) == p


def test_image_grid_from_text_tokens() -> None:
    masker = ImagePatchMasker(image_inputs(), n_text_tokens=8)
    assert masker.grid == 3 and masker.n_features == 9
    with pytest.raises(ConfigError, match="grid"):
        ImagePatchMasker(image_inputs())
    with pytest.raises(ConfigError, match="does not fit"):
        ImagePatchMasker(image_inputs(4, 4), grid=5)


def test_masked_patches_equal_fill_and_unmasked_pixels_untouched() -> None:
    masker = build("image")
    pixels = image_inputs()["pixels"]
    mask = random_mask(masker.n_features, b=8, seed=5)
    out = masker.apply({"pixels": pixels}, mask)["pixels"]
    for b in range(len(mask)):
        for j, d in enumerate(masker.describe()):
            patch = out[b, :, d["y0"]:d["y1"], d["x0"]:d["x1"]]
            if mask[b, j]:
                assert torch.equal(patch, pixels[0, :, d["y0"]:d["y1"], d["x0"]:d["x1"]])
            else:
                assert (patch == 0.0).all()
    filled = ImagePatchMasker({"pixels": pixels}, grid=2, fill=-1.5).apply({"pixels": pixels}, [[False] * 4])
    assert (filled["pixels"] == -1.5).all()


def test_uneven_image_grid_covers_every_pixel_once() -> None:
    masker = ImagePatchMasker(image_inputs(10, 13), grid=3)
    cover = np.zeros((10, 13), dtype=int)
    for d in masker.describe():
        cover[d["y0"]:d["y1"], d["x0"]:d["x1"]] += 1
        assert d["y1"] - d["y0"] in (3, 4) and d["x1"] - d["x0"] in (4, 5)
    assert (cover == 1).all()
    assert [(d["row"], d["col"]) for d in masker.describe()[:4]] == [(0, 0), (0, 1), (0, 2), (1, 0)]


# --------------------------------------------------------------------------- video


def test_video_tubes_cover_each_pixel_exactly_once() -> None:
    masker = build("video")
    assert masker.n_features == 3 * 3 * 2
    clips = video_inputs()["clips"]
    cover = torch.zeros(clips.shape[2:], dtype=torch.int64)
    for d in masker.describe():
        cover[d["frame_start"]:d["frame_end"], d["y0"]:d["y1"], d["x0"]:d["x1"]] += 1
    assert (cover == 1).all()
    # and masking each tube alone zeroes exactly its box, in every channel
    out = masker.apply({"clips": clips}, ~np.eye(masker.n_features, dtype=bool))["clips"]
    for j, d in enumerate(masker.describe()):
        box = out[j, :, d["frame_start"]:d["frame_end"], d["y0"]:d["y1"], d["x0"]:d["x1"]]
        assert (box == 0).all()
        assert (out[j] == 0).sum() == box.numel()


def test_video_describe_frame_spans() -> None:
    masker = VideoTubeMasker(video_inputs(t=7), grid=2, segments=3)
    spans = sorted({(d["segment"], d["frame_start"], d["frame_end"]) for d in masker.describe()})
    assert spans == [(0, 0, 2), (1, 2, 4), (2, 4, 7)]
    with pytest.raises(ConfigError, match="segments"):
        VideoTubeMasker(video_inputs(t=2), grid=2, segments=3)


def test_rgb_and_depth_get_the_same_grid() -> None:
    rgb = VideoTubeMasker({"clips": torch.ones(1, 3, 8, 16, 16)}, grid=4, segments=2)
    depth = VideoTubeMasker({"clips": torch.ones(1, 1, 8, 16, 16)}, grid=4, segments=2)
    assert rgb.describe() == depth.describe()


# --------------------------------------------------------------------------- tabular


def test_column_masker_uses_the_fill() -> None:
    inputs = feature_inputs(4)
    out = ColumnMasker(inputs).apply(inputs, [[True, False, True, False]])["features"]
    assert out.tolist() == [[1.0, 0.0, 3.0, 0.0]]
    base = ColumnMasker(inputs, fill=[9, 8, 7, 6], names=["a", "b", "c", "d"])
    assert base.apply(inputs, [[False, True, True, False]])["features"].tolist() == [[9.0, 2.0, 3.0, 6.0]]
    assert base.describe()[2] == {"column": "c"}
    assert ColumnMasker(inputs).describe()[0] == {"column": "f0"}
    with pytest.raises(ConfigError, match="fill"):
        ColumnMasker(inputs, fill=[1.0, 2.0])
    with pytest.raises(ConfigError, match="names"):
        ColumnMasker(inputs, names=["a"])


# --------------------------------------------------------------------------- with the estimator


def test_masker_game_end_to_end() -> None:
    """A linear 'model' on masked columns: the Shapley values are weight * (x - fill)."""
    inputs = feature_inputs(6)
    masker = ColumnMasker(inputs, fill=0.5)
    w = torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0, 1.0])

    def value_fn(mask: np.ndarray) -> torch.Tensor:
        return masker.apply(inputs, mask)["features"] @ w

    sv = shapley_values(value_fn, masker.n_features, method="exact")
    expected = (w * (inputs["features"][0] - 0.5)).numpy()
    # float32 dot products of 6 terms of size |w| * |x|: each value is a difference of two of them
    scale = float((w.abs() * inputs["features"][0].abs()).max())
    np.testing.assert_allclose(sv.values, expected, rtol=0, atol=2 * f32_atol(scale, len(w)))
