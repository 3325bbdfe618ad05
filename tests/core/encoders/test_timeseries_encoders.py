"""Every registered time-series encoder: shapes, gradients, determinism, variable lengths, and the
standardisation fitted on training series, saved with the weights and restored."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.encoders import ENCODERS, create_encoder
from core.errors import ConfigError, DataError
from core.kinds.series_files import resample_series
from tests._tolerance import f32_atol

SMALL = {"gru": {"hidden": 8, "out_dim": 6}, "tcn": {"width": 8, "levels": 2, "out_dim": 6}}


def _series(n: int, seed: int = 0, channels: int = 3) -> list[np.ndarray]:
    """Series of lengths 9 to 15, channel c around 10 * c with scale c + 1."""
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(int(rng.integers(9, 16)), channels)) * np.arange(1, channels + 1)
             + 10.0 * np.arange(channels)).astype(np.float32) for _ in range(n)]


def test_every_timeseries_encoder_is_tested():
    assert set(ENCODERS.names(kind="timeseries")) == set(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_timeseries_encoder_contract(name):
    torch.manual_seed(0)
    enc = create_encoder(name, in_channels=3, **SMALL[name])
    train = _series(12)
    enc.fit_preprocessing(train)
    assert enc.length == int(np.floor(np.median([len(s) for s in train]) + 0.5))  # the training median
    inputs = enc.prepare(_series(4, seed=1))  # other lengths: every one resampled to enc.length
    assert inputs["series"].shape == (4, enc.length, 3) and inputs["series"].dtype == torch.float32
    out = enc(inputs)
    assert out.shape == (4, 6) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in enc.parameters() if p.requires_grad)
    enc.eval()
    with torch.no_grad():
        assert torch.equal(enc(inputs), enc(inputs))  # deterministic in eval mode
        one = enc(enc.prepare(_series(4, seed=1)[:1]))
        assert torch.allclose(one[0], enc(inputs)[0], rtol=0, atol=f32_atol(float(one.abs().max()) + 1, 64))
    # the spec (with the fitted length) and the state (with the statistics) rebuild the same encoder
    spec = enc.spec()
    assert spec["name"] == name and spec["kwargs"]["length"] == enc.length and spec["kwargs"]["in_channels"] == 3
    state = {k: v.clone() for k, v in enc.state_dict().items()}
    assert {"mean", "std"} <= set(state)
    twin = create_encoder(spec["name"], **spec["kwargs"])
    twin.load_state_dict(state, strict=True)
    twin.eval()
    with torch.no_grad():
        assert torch.equal(twin(twin.prepare(_series(4, seed=1))), enc(inputs))
    assert enc.structure(inputs) == {"length": enc.length, "channels": ["c0", "c1", "c2"],
                                     "channel_groups": [["c0", "c1", "c2"]]}


def test_standardisation_uses_the_training_statistics_of_the_resampled_series():
    enc = create_encoder("gru", in_channels=3, length=12, hidden=4, out_dim=2)
    train = _series(20)
    enc.fit_preprocessing(train)
    assert enc.length == 12  # a given length is kept
    stacked = np.concatenate([resample_series(s, 12) for s in train])
    np.testing.assert_allclose(enc.mean.numpy(), stacked.mean(0), rtol=0, atol=f32_atol(25.0))
    np.testing.assert_allclose(enc.std.numpy(), stacked.std(0), rtol=0, atol=f32_atol(5.0))
    x = enc.prepare(train)["series"]
    assert x.mean(dim=(0, 1)).abs().max() <= f32_atol(5.0, x.shape[0] * x.shape[1])
    np.testing.assert_allclose(x.std(dim=(0, 1), unbiased=False).numpy(), 1.0, atol=f32_atol(5.0, 240))
    const = create_encoder("gru", in_channels=1, hidden=4, out_dim=2)
    const.fit_preprocessing([np.full(10, 3.0), np.full(12, 3.0)])
    assert float(const.std[0]) == 1.0 and (const.prepare([np.full(7, 3.0)])["series"] == 0).all()  # only centred


def test_gaps_and_empty_channels_in_the_encoder():
    enc = create_encoder("tcn", in_channels=2, length=5, width=4, levels=1, out_dim=2)
    enc.fit_preprocessing([np.stack([np.arange(5.0), np.full(5, np.nan)], axis=1), np.ones((5, 2))])
    assert float(enc.mean[1]) == 1.0  # of the valid values only
    x = enc.prepare([np.array([[0.0, np.nan], [np.nan, np.nan], [2.0, np.nan], [3.0, np.nan], [4.0, np.nan]])])
    assert (x["series"][0, :, 1] == 0).all()  # an empty channel: the training mean
    expected = (np.arange(5.0) - float(enc.mean[0])) / float(enc.std[0])  # the gap at step 1 interpolated
    np.testing.assert_allclose(x["series"][0, :, 0].numpy(), expected, rtol=0, atol=f32_atol(5.0))


def test_bad_series_and_arguments_are_refused():
    enc = create_encoder("gru", in_channels=2, hidden=4, out_dim=2)
    with pytest.raises(ConfigError, match="does not know its length yet.*Fix: call fit_preprocessing"):
        enc.prepare([np.zeros((4, 2))])
    enc.fit_preprocessing([np.zeros((4, 2)), np.ones((6, 2))])
    with pytest.raises(DataError, match=r"series 0 has 3 channel\(s\) but this encoder expects in_channels=2"):
        enc.prepare([np.zeros((4, 3))])
    with pytest.raises(DataError, match=r"series 1 has shape \(2, 2, 2\)"):
        enc.prepare([np.zeros((4, 2)), np.zeros((2, 2, 2))])
    with pytest.raises(DataError, match="series 0: series holds 1 infinite value"):
        enc.prepare([np.array([[0.0, 1.0], [np.inf, 1.0]])])
    with pytest.raises(ConfigError, match="needs in_channels"):
        create_encoder("gru")
    with pytest.raises(ConfigError, match="length must be an integer >= 2"):
        create_encoder("tcn", in_channels=1, length=1)
    with pytest.raises(ConfigError, match="channel_groups leaves out 'b'"):
        create_encoder("gru", in_channels=2, channels=["a", "b"], channel_groups=[["a"]])
