"""Every registered video encoder: shapes, gradients, determinism, preprocessing, spec round trip."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.encoders import ENCODERS, create_encoder, list_encoders
from core.encoders import VideoEncoder
from core.errors import ConfigError, DataError
from tests._tolerance import f32_atol

VIDEO = ENCODERS.names(kind="video")
CHANNELS = [1, 3, 4]
BATCH, FRAMES, SIZE, DIM = 2, 8, 32, 16


def _build(name: str, in_channels: int, seed: int = 0) -> VideoEncoder:
    torch.manual_seed(seed)
    return create_encoder(name, in_channels=in_channels, num_frames=FRAMES, image_size=SIZE, out_dim=DIM)


def _inputs(in_channels: int, seed: int = 1, batch: int = BATCH) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"clips": torch.randn(batch, in_channels, FRAMES, SIZE, SIZE, generator=g)}


def _uint8_clips(in_channels: int, frames: int, height: int, width: int, n: int = BATCH, seed: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(frames, height, width, in_channels), dtype=np.uint8) for _ in range(n)]


def _depth_clips(in_channels: int, frames: int, height: int, width: int, n: int = BATCH, seed: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.5, 12.0, size=(frames, height, width, in_channels)).astype(np.float32) for _ in range(n)]


def test_video_encoders_registered() -> None:
    assert {"c3d", "slowfast", "timesformer"} <= set(VIDEO)
    assert set(VIDEO) == set(list_encoders("video"))


@pytest.mark.parametrize("in_channels", CHANNELS)
@pytest.mark.parametrize("name", VIDEO)
def test_shape_and_finite(name: str, in_channels: int) -> None:
    enc = _build(name, in_channels)
    assert enc.kind == "video" and enc.out_dim == DIM
    out = enc(_inputs(in_channels))
    assert out.shape == (BATCH, DIM)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("in_channels", CHANNELS)
@pytest.mark.parametrize("name", VIDEO)
def test_gradients_reach_every_parameter_and_input(name: str, in_channels: int) -> None:
    enc = _build(name, in_channels).train()
    inputs = _inputs(in_channels)
    inputs["clips"].requires_grad_(True)
    out = enc(inputs)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(2))
    (out * weights).sum().backward()
    params = list(enc.named_parameters())
    assert params
    for pname, p in params:
        assert p.grad is not None, f"{pname} got no gradient"
        assert p.grad.abs().sum() > 0, f"{pname} got an all-zero gradient"
    assert inputs["clips"].grad is not None and inputs["clips"].grad.abs().sum() > 0


@pytest.mark.parametrize("in_channels", CHANNELS)
@pytest.mark.parametrize("name", VIDEO)
def test_deterministic_with_seed(name: str, in_channels: int) -> None:
    a, b = _build(name, in_channels).eval(), _build(name, in_channels).eval()
    inputs = _inputs(in_channels)
    with torch.no_grad():   # same seed, inputs and process: bit for bit
        assert torch.equal(a(inputs), b(inputs))
        assert torch.equal(a(inputs), a(inputs))
    c = _build(name, in_channels, seed=1).eval()
    with torch.no_grad():
        assert not torch.equal(a(inputs), c(inputs)), "the seed does not reach the initialisation"


@pytest.mark.parametrize("in_channels", CHANNELS)
@pytest.mark.parametrize("name", VIDEO)
def test_prepare_resamples_and_resizes(name: str, in_channels: int) -> None:
    enc = _build(name, in_channels)
    batches = {
        "uint8 longer and larger": _uint8_clips(in_channels, frames=13, height=48, width=40),
        "float shorter and smaller": _depth_clips(in_channels, frames=5, height=20, width=24),
    }
    for label, clips in batches.items():
        inputs = enc.prepare(clips)
        assert set(inputs) == {"clips"}, label
        assert inputs["clips"].shape == (BATCH, in_channels, FRAMES, SIZE, SIZE), label
        assert inputs["clips"].dtype == torch.float32, label
        assert torch.isfinite(inputs["clips"]).all(), label
        assert enc(inputs).shape == (BATCH, DIM), label


def test_prepare_samples_nearest_frames_and_scales_uint8() -> None:
    enc = _build("c3d", 1)
    # Frame t holds the value t, so the sampled indices can be read back exactly.
    longer = np.broadcast_to(np.arange(16, dtype=np.float32)[:, None, None, None], (16, SIZE, SIZE, 1))
    shorter = np.broadcast_to(np.arange(4, dtype=np.float32)[:, None, None, None], (4, SIZE, SIZE, 1))
    clips = enc.prepare([longer, shorter])["clips"]
    assert clips[0, 0, :, 0, 0].tolist() == [1, 3, 5, 7, 9, 11, 13, 15]
    assert clips[1, 0, :, 0, 0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    white = np.full((FRAMES, SIZE, SIZE, 1), 255, dtype=np.uint8)
    assert torch.equal(enc.prepare([white])["clips"], torch.ones(1, 1, FRAMES, SIZE, SIZE))   # 255 / 255: exact
    # A (T, H, W) array is a one-channel clip.
    assert enc.prepare([white[..., 0]])["clips"].shape == (1, 1, FRAMES, SIZE, SIZE)


def test_prepare_copies_read_only_clips(recwarn: pytest.WarningsRecorder) -> None:
    enc = _build("c3d", 1)
    clips = [np.zeros((FRAMES, SIZE, SIZE, 1), dtype=dtype) for dtype in (np.float32, np.uint8)]
    for clip in clips:
        clip.flags.writeable = False  # as from np.load(..., mmap_mode="r")
    inputs = enc.prepare(clips)
    inputs["clips"].add_(1.0)
    assert all((clip == 0).all() for clip in clips)
    assert not [w for w in recwarn if "not writable" in str(w.message)]


@pytest.mark.parametrize("in_channels", CHANNELS)
@pytest.mark.parametrize("name", VIDEO)
def test_wrong_channel_count_is_a_clear_error(name: str, in_channels: int) -> None:
    enc = _build(name, in_channels)
    wrong = 2 if in_channels != 2 else 3
    clips = _uint8_clips(in_channels, FRAMES, SIZE, SIZE, n=1) + _uint8_clips(wrong, FRAMES, SIZE, SIZE, n=1)
    with pytest.raises(DataError) as err:
        enc.prepare(clips)
    message = str(err.value)
    assert "clip 1" in message and f"{wrong} channel" in message and f"in_channels={in_channels}" in message
    assert "Fix:" in message
    with pytest.raises(DataError):
        enc.fit_preprocessing(clips)
    with pytest.raises(DataError):
        enc(_inputs(wrong))


@pytest.mark.parametrize("name", VIDEO)
def test_bad_clips_are_clear_errors(name: str) -> None:
    enc = _build(name, 1)
    holes = _depth_clips(1, FRAMES, SIZE, SIZE, n=1)[0]
    holes[2, 5, 5, 0] = np.nan
    with pytest.raises(DataError, match="clip 0 contains NaN"):
        enc.prepare([holes])
    with pytest.raises(DataError, match="no clips"):
        enc.prepare([])
    with pytest.raises(DataError, match="clip 0 has shape"):
        enc.prepare([np.zeros((SIZE, SIZE), dtype=np.float32)])


@pytest.mark.parametrize("in_channels", CHANNELS)
@pytest.mark.parametrize("name", VIDEO)
def test_fit_preprocessing_centres_training_data(name: str, in_channels: int) -> None:
    enc = _build(name, in_channels)
    rng = np.random.default_rng(5)
    # Channels with very different scales: uint8 colour and metres of depth.
    train = [
        (rng.uniform(2.0, 9.0, size=(11, 40, 40, in_channels)) * np.arange(1, in_channels + 1)).astype(np.float32)
        for _ in range(4)
    ]
    assert enc.fit_preprocessing(train) is enc
    clips = enc.prepare(train)["clips"]
    per_channel = clips.transpose(0, 1).flatten(1)
    # float64 statistics rounded to float32, then float32 reductions over n values of size |x|
    n = per_channel.shape[1]
    tol = f32_atol(float(per_channel.abs().max()), n)
    assert per_channel.mean(1).abs().max() <= tol
    # torch's std divides by n - 1, the statistics by n: sqrt(n / (n - 1)) - 1 ~ 1 / (2n) more
    assert (per_channel.std(1) - 1).abs().max() <= tol + 1 / n
    # 0 in normalised space is the dataset mean.
    mean_clip = np.broadcast_to(enc.mean.numpy(), (FRAMES, SIZE, SIZE, in_channels)).astype(np.float32)
    # (mean - mean) / std up to the rounding of the resampled mean: a few ulps of mean / std
    assert enc.prepare([mean_clip])["clips"].abs().max() <= f32_atol(float((enc.mean / enc.std).abs().max()))
    uint8 = _uint8_clips(in_channels, 9, 36, 36)
    enc.fit_preprocessing(uint8)
    assert (enc.mean > 0.4).all() and (enc.mean < 0.6).all(), "uint8 is scaled to [0, 1] first"
    prepared = enc.prepare(uint8)["clips"]
    assert prepared.mean().abs() <= f32_atol(float(prepared.abs().max()), prepared.numel())


@pytest.mark.parametrize("in_channels", CHANNELS)
@pytest.mark.parametrize("name", VIDEO)
def test_spec_round_trips(name: str, in_channels: int) -> None:
    enc = _build(name, in_channels)
    enc.fit_preprocessing(_depth_clips(in_channels, FRAMES, SIZE, SIZE))
    spec = json.loads(json.dumps(enc.spec()))
    assert spec["name"] == name
    assert {"in_channels", "num_frames", "image_size", "out_dim"} <= set(spec["kwargs"])
    torch.manual_seed(123)  # a different initialisation, overwritten by the weights
    rebuilt = create_encoder(spec["name"], **spec["kwargs"])
    rebuilt.load_state_dict(enc.state_dict(), strict=True)
    assert torch.equal(rebuilt.mean, enc.mean) and torch.equal(rebuilt.std, enc.std)   # copied buffers
    enc.eval(), rebuilt.eval()
    clips = _uint8_clips(in_channels, 10, 30, 30)
    with torch.no_grad():   # same weights, inputs and process: bit for bit
        assert torch.equal(enc(enc.prepare(clips)), rebuilt(rebuilt.prepare(clips)))


@pytest.mark.parametrize("in_channels", CHANNELS)
@pytest.mark.parametrize("name", VIDEO)
def test_structure_describes_the_grid(name: str, in_channels: int) -> None:
    enc = _build(name, in_channels)
    grid = enc.structure(_inputs(in_channels))
    assert {"frames": FRAMES, "height": SIZE, "width": SIZE, "channels": in_channels}.items() <= grid.items()
    if name == "timesformer":
        patch = enc.spec()["kwargs"]["patch_size"]
        assert grid["patch_size"] == patch
        assert grid["tokens_per_frame"] == (SIZE // patch) ** 2
        assert grid["num_tokens"] == 1 + grid["tokens_per_frame"] * FRAMES


def test_slowfast_handles_frames_not_divisible_by_alpha() -> None:
    torch.manual_seed(0)
    enc = create_encoder("slowfast", in_channels=3, num_frames=6, image_size=SIZE, out_dim=DIM, alpha=4)
    clips = torch.randn(BATCH, 3, 6, SIZE, SIZE)
    assert enc({"clips": clips}).shape == (BATCH, DIM)


def test_timesformer_config_errors() -> None:
    with pytest.raises(ConfigError, match="patch_size"):
        create_encoder("timesformer", image_size=30, patch_size=8)
    with pytest.raises(ConfigError, match="num_heads"):
        create_encoder("timesformer", hidden_size=30, num_heads=4)
    enc = create_encoder("timesformer", num_frames=FRAMES, image_size=SIZE, out_dim=DIM)
    with pytest.raises(DataError, match="prepare"):
        enc({"clips": torch.randn(1, 3, FRAMES + 1, SIZE, SIZE)})


def test_statcnn_summaries_keep_a_flashing_pixel_and_the_motion_sign() -> None:
    from core.encoders import ENCODERS

    summaries = ENCODERS.get("statcnn").summaries
    clips = torch.zeros(1, 1, 4, 3, 3)
    clips[0, 0, 1::2, 0, 0] = 1.0            # a lamp lit in every other frame
    clips[0, 0, 2:, 2, 2] = 2.0              # something appears in the second half
    s = summaries(clips)[0]                  # (5, H, W): mean, max, min, std, late - early
    assert s.shape == (5, 3, 3)
    assert float(s[0, 0, 0]) == pytest.approx(0.5) and float(s[1, 0, 0]) == 1.0 and float(s[2, 0, 0]) == 0.0
    assert float(s[3, 0, 0]) == pytest.approx(0.5) and float(s[4, 0, 0]) == pytest.approx(0.0)
    assert float(s[4, 2, 2]) == pytest.approx(2.0) and float(s[4, 1, 1]) == 0.0


def test_statcnn_summaries_match_the_textbook_formulas() -> None:
    """The one-pass standard deviation (mean of squares) against torch.std, on normalised-scale inputs."""
    summaries = ENCODERS.get("statcnn").summaries
    clips = torch.randn(3, 2, FRAMES, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    s = summaries(clips)
    half = FRAMES // 2
    ref = torch.cat([clips.mean(2), clips.amax(2), clips.amin(2), clips.std(2, unbiased=False),
                     clips[:, :, half:].mean(2) - clips[:, :, :half].mean(2)], 1)
    # the square root of a float32 variance v carries eps*|x|^2*sqrt(T) / (2 sqrt(v)); sqrt(v) >= 0.1 here
    assert float((clips.std(2, unbiased=False)).min()) > 0.1
    torch.testing.assert_close(s, ref, rtol=0, atol=f32_atol(scale=float(clips.abs().max()) ** 2, n=FRAMES) / 0.2)
    flat = summaries(torch.full((1, 1, FRAMES, 2, 2), 3.0))  # a constant pixel: std exactly 0, not NaN
    assert torch.isfinite(flat).all() and float(flat[0, 3].abs().max()) < 1e-3


@pytest.mark.parametrize("in_channels", [1, 3])
def test_statcnn_training_inputs_give_the_same_embedding_and_augmentation(in_channels: int) -> None:
    """Training on summaries computed once equals training on clips: the same embedding, and an augmented
    summary equals the summary of the same augmented clip (same random draws)."""
    enc = _build("statcnn", in_channels).eval()
    x = _inputs(in_channels, batch=5)
    t = enc.training_inputs(x)
    assert set(t) == {"summaries"} and t["summaries"].shape == (5, 5 * in_channels, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(enc(t), enc(x), rtol=0, atol=f32_atol(scale=10.0, n=9 * 16 * 5 * in_channels))
    for seed in range(6):  # flips and shifts in both directions
        torch.manual_seed(seed)
        from_clips = enc.summaries(enc.augment(x)["clips"])
        torch.manual_seed(seed)
        from_summaries = enc.augment(t)["summaries"]
        torch.testing.assert_close(from_summaries, from_clips, rtol=0, atol=f32_atol(scale=16.0, n=FRAMES))
    with pytest.raises(DataError, match="training_inputs"):
        enc({"summaries": torch.zeros(2, 4, SIZE, SIZE)})


@pytest.mark.parametrize("name", VIDEO)
def test_training_inputs_are_identity_or_accepted_by_forward(name: str) -> None:
    enc = _build(name, 3).eval()
    x = _inputs(3)
    with torch.no_grad():
        torch.testing.assert_close(enc(enc.training_inputs(x)), enc(x), rtol=0, atol=f32_atol(scale=10.0, n=4096))


def test_prepare_normalises_in_place_like_stack_then_normalise() -> None:
    enc = create_encoder("statcnn", in_channels=3, num_frames=FRAMES, image_size=SIZE, out_dim=DIM)
    clips = _uint8_clips(3, FRAMES, SIZE, SIZE, n=4)
    enc.fit_preprocessing(clips)
    got = enc.prepare(clips)["clips"]
    raw = torch.stack([torch.tensor(c, dtype=torch.float32).div(255).permute(3, 0, 1, 2) for c in clips])
    want = (raw - enc.mean.view(1, -1, 1, 1, 1)) / enc.std.view(1, -1, 1, 1, 1)
    torch.testing.assert_close(got, want, rtol=0, atol=f32_atol(scale=4.0, n=1))


def test_fill_depth_holes_uses_the_pixels_other_frames_then_the_clip_median() -> None:
    from core.encoders import fill_depth_holes

    d = torch.tensor([[[1.0, 0.0], [3.0, 0.0]],
                      [[2.0, 5.0], [0.0, -1.0]],
                      [[0.0, 7.0], [4.0, 0.0]]])
    filled = fill_depth_holes(d)
    valid = d > 0
    assert torch.equal(filled[valid], d[valid])                      # an estimate is never changed
    assert filled[2, 0, 0] == 1.0                                    # median of (1, 2): torch takes the lower
    assert filled[0, 0, 1] == 5.0                                    # median of (5, 7)
    assert filled[1, 1, 0] == 3.0                                    # median of (3, 4)
    assert (filled[:, 1, 1] == torch.median(d[valid])).all()         # no frame has it: the clip's median (3)
    whole = torch.full((2, 3, 3), 4.0)
    assert fill_depth_holes(whole) is whole                          # nothing to fill
    empty = torch.zeros(2, 3, 3)
    assert torch.equal(fill_depth_holes(empty), empty)               # nothing to fill from


@pytest.mark.parametrize("name", VIDEO)
@pytest.mark.parametrize("in_channels", [1, 4])
def test_log_depth_input_reads_the_filled_depth_channel_in_log_metres(name: str, in_channels: int) -> None:
    from core.encoders import fill_depth_holes

    clips = _depth_clips(in_channels, FRAMES, SIZE, SIZE)
    clips[0][1, 2:5, 3:6, -1] = 0.0
    clips[1][4, 7, 7, -1] = np.nan                                   # NaN holes are holes too
    plain = _build(name, in_channels)
    logged = create_encoder(name, in_channels=in_channels, num_frames=FRAMES, image_size=SIZE, out_dim=DIM,
                            depth_input="log")
    expected = []
    for c in clips:
        c = torch.tensor(c)
        depth = fill_depth_holes(torch.nan_to_num(c[..., -1], nan=0.0))
        expected.append(torch.cat([c[..., :-1], depth.log()[..., None]], -1).numpy())
    np.testing.assert_allclose(logged.prepare(clips)["clips"].numpy(), plain.prepare(expected)["clips"].numpy(),
                               rtol=0, atol=f32_atol(float(np.log(12.0))))
    with pytest.raises(DataError, match="NaN or infinite.*depth_input"):
        plain.prepare(clips)                                         # metres: a NaN hole is an error naming the fix
    spec = logged.spec()
    assert spec["kwargs"]["depth_input"] == "log" and spec["kwargs"]["depth_channel"] == in_channels - 1
    again = create_encoder(spec["name"], **json.loads(json.dumps(spec["kwargs"])))
    assert again.depth_input == "log" and again.depth_channel == in_channels - 1
    assert "depth_input" not in plain.spec()["kwargs"]                # bundles saved before it load as metres


def test_filled_depth_input_keeps_metres_and_rgb_channels() -> None:
    clip = _depth_clips(4, FRAMES, SIZE, SIZE, n=1)[0]
    clip[0, 0, 0, 3] = 0.0
    clip[0, 0, 0, 0] = 0.0                                           # a black RGB pixel is not a hole
    by_hand = clip.copy()
    by_hand[0, 0, 0, 3] = np.median(clip[1:, 0, 0, 3])               # 7 other frames: one median
    plain = _build("statcnn", 4)
    filled = create_encoder("statcnn", in_channels=4, num_frames=FRAMES, image_size=SIZE, out_dim=DIM,
                            depth_input="filled")
    assert torch.equal(filled.prepare([clip])["clips"], plain.prepare([by_hand])["clips"])


@pytest.mark.parametrize("kwargs, match", [({"depth_input": "inverse"}, "unknown depth_input"),
                                           ({"depth_input": "log", "depth_channel": 4}, "depth_channel=4"),
                                           ({"depth_input": "log", "depth_channel": True}, "depth_channel=True")])
def test_bad_depth_input_settings_are_clear_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        create_encoder("statcnn", in_channels=4, num_frames=FRAMES, image_size=SIZE, out_dim=DIM, **kwargs)
