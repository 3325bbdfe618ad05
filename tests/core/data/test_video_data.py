"""Loading a user's own RGB-D clips, and the errors and repairs for bad pairs."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from core.kinds.video_files import load_clip, resample_frames, resize_nearest, validate_pair
from core.errors import DataError
from tests._tolerance import EPS32


def _rgb(t=4, h=8, w=10):
    return np.random.default_rng(0).integers(0, 255, (t, h, w, 3), dtype=np.uint8)


def _depth(t=4, h=8, w=10):
    return np.random.default_rng(1).uniform(1, 20, (t, h, w)).astype(np.float32)


# --------------------------------------------------------------------- load_clip

def test_load_npy_adds_channel_axis_and_keeps_uint8(tmp_path):
    np.save(tmp_path / "d.npy", _depth().astype(np.float64))
    np.save(tmp_path / "c.npy", _rgb())
    d = load_clip(tmp_path / "d.npy", "depth")
    c = load_clip(tmp_path / "c.npy", "rgb")
    assert d.shape == (4, 8, 10, 1) and d.dtype == np.float32
    np.testing.assert_allclose(d[..., 0], _depth(), rtol=EPS32 / 2)         # one rounding to float32
    assert c.shape == (4, 8, 10, 3) and c.dtype == np.uint8 and np.array_equal(c, _rgb())


def test_load_npz_by_modality_name_or_only_array(tmp_path):
    np.savez_compressed(tmp_path / "both.npz", rgb=_rgb(), depth=_depth().astype(np.float16))
    np.savez(tmp_path / "only.npz", anything=_depth())
    np.savez(tmp_path / "two.npz", a=_depth(), b=_depth())
    assert load_clip(tmp_path / "both.npz", "rgb").shape == (4, 8, 10, 3)
    d = load_clip(tmp_path / "both.npz", "depth")
    assert d.shape == (4, 8, 10, 1) and d.dtype == np.float32
    assert load_clip(tmp_path / "only.npz", "depth").shape == (4, 8, 10, 1)
    with pytest.raises(DataError, match=r"clip 'c7'.*\['a', 'b'\].*'depth'"):
        load_clip(tmp_path / "two.npz", "depth", clip_id="c7")


def test_load_frames_folder_sorted_rgb_and_16bit(tmp_path):
    rgb_dir, depth_dir = tmp_path / "rgb", tmp_path / "depth"
    rgb_dir.mkdir()
    depth_dir.mkdir()
    frames = _rgb(t=3)
    for k in (2, 0, 1):                                    # written out of order, read sorted
        Image.fromarray(frames[k]).save(rgb_dir / f"frame_{k:03d}.png")
        Image.fromarray((np.full((8, 10), 1000 + k)).astype(np.uint16)).save(depth_dir / f"frame_{k:03d}.png")
    (rgb_dir / "notes.txt").write_text("ignored")
    c = load_clip(rgb_dir, "rgb")
    assert c.shape == (3, 8, 10, 3) and c.dtype == np.uint8 and np.array_equal(c, frames)
    d = load_clip(depth_dir, "depth")
    assert d.shape == (3, 8, 10, 1) and d.dtype == np.float32
    assert d[:, 0, 0, 0].tolist() == [1000, 1001, 1002]   # millimetres kept as they are


def test_load_frames_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="holds no images"):
        load_clip(empty, "rgb", clip_id="e1")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.fromarray(_rgb()[0]).save(mixed / "a.png")
    Image.fromarray(_rgb(h=9)[0]).save(mixed / "b.png")
    with pytest.raises(DataError, match=r"clip 'm1': frame b.png is 10x9"):
        load_clip(mixed, "rgb", clip_id="m1")


def test_missing_file_names_clip_and_path(tmp_path):
    path = tmp_path / "clips" / "clip_00042.npz"
    with pytest.raises(DataError) as exc:
        load_clip(path, "depth", clip_id="clip_00042")
    msg = str(exc.value)
    assert "clip_00042" in msg and str(path) in msg and "missing" in msg and "Fix:" in msg


def test_bad_shapes_types_and_channels(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((8, 10)))
    np.save(tmp_path / "rgba.npy", np.zeros((2, 8, 10, 4), np.uint8))
    np.save(tmp_path / "chfirst.npy", np.zeros((2, 3, 8, 10), np.uint8))
    (tmp_path / "clip.mp4").write_bytes(b"\x00")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match=r"shape \(8, 10\)"):
        load_clip(tmp_path / "flat.npy", "depth", clip_id="x")
    with pytest.raises(DataError, match="4 channels.*Fix: .*drop alpha"):
        load_clip(tmp_path / "rgba.npy", "rgb", clip_id="x")
    with pytest.raises(DataError, match="channels-first"):
        load_clip(tmp_path / "chfirst.npy", "rgb", clip_id="x")
    with pytest.raises(DataError, match="unsupported type '.mp4'"):
        load_clip(tmp_path / "clip.mp4", "rgb", clip_id="x")
    with pytest.raises(DataError, match="unreadable"):
        load_clip(tmp_path / "junk.npy", "rgb", clip_id="x")


# --------------------------------------------------------------------- validate_pair

def test_valid_pair_passes_through():
    rgb, depth = validate_pair(_rgb(), _depth(), "ok")
    assert rgb.shape == (4, 8, 10, 3) and depth.shape == (4, 8, 10, 1)


@pytest.mark.parametrize("case, rgb, depth, pattern", [
    ("frames", _rgb(t=4), _depth(t=6), r"RGB has 4 frames but depth has 6"),
    ("size", _rgb(h=8, w=10), _depth(h=16, w=20), r"RGB frames are 10x8 .* depth frames are 20x16"),
    ("rgb-channels", _rgb()[..., :1], _depth(), r"RGB has 1 channels, expected 3"),
    ("rgba", np.zeros((4, 8, 10, 4), np.uint8), _depth(), r"RGB has 4 channels"),
    ("depth-3-equal", _rgb(), np.repeat(_depth()[..., None], 3, -1), r"depth has 3 channels \(all equal\)"),
    ("depth-colormap", _rgb(), _rgb().astype(np.float32), r"colour-mapped"),
    ("nan", _rgb(), np.where(np.arange(10) == 3, np.nan, _depth()), r"depth holds 32 NaN/inf values"),
])
def test_each_problem_names_the_clip_and_the_fix(case, rgb, depth, pattern):
    with pytest.raises(DataError, match=pattern) as exc:
        validate_pair(rgb, depth, f"clip_{case}")
    msg = str(exc.value)
    assert msg.startswith(f"clip 'clip_{case}'") and "Fix: " in msg
    assert exc.value.problem and exc.value.fix


def test_repair_resamples_resizes_and_fills(caplog):
    depth = _depth(t=8, h=16, w=20)
    depth[0, 0, 0] = np.nan
    depth[3, 1, 1] = np.inf
    with caplog.at_level(logging.WARNING, logger="core.kinds.video_files"):
        rgb, fixed = validate_pair(_rgb(t=4)[..., :1], depth, "c9", repair=True)
    assert rgb.shape == (4, 8, 10, 3) and fixed.shape == (4, 8, 10, 1)
    assert np.isfinite(fixed).all()
    # nearest index in time: RGB frame k takes depth frame floor((k + 0.5) * 8 / 4) = 1, 3, 5, 7
    clean = np.where(np.isfinite(depth), depth, 0)
    np.testing.assert_array_equal(fixed[..., 0], clean[[1, 3, 5, 7]][:, 1::2, 1::2])
    assert fixed[1, 0, 0, 0] == 0                          # the inf became a hole (0)
    assert len(caplog.records) == 4 and all("c9" in r.getMessage() for r in caplog.records)


def test_repair_keeps_one_of_three_equal_depth_channels_but_never_guesses_a_colormap():
    d3 = np.repeat(_depth()[..., None], 3, -1)
    _, fixed = validate_pair(_rgb(), d3, "c1", repair=True)
    assert fixed.shape == (4, 8, 10, 1) and np.array_equal(fixed[..., 0], _depth())
    with pytest.raises(DataError, match="colour-mapped"):
        validate_pair(_rgb(), _rgb().astype(np.float32), "c2", repair=True)


def test_resample_and_resize_helpers():
    clip = np.arange(5)[:, None, None, None] * np.ones((5, 2, 2, 1))
    assert resample_frames(clip, 10)[:, 0, 0, 0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert resample_frames(clip, 2)[:, 0, 0, 0].tolist() == [1, 3]
    img = np.arange(16).reshape(1, 4, 4, 1)
    assert resize_nearest(img, 2, 2)[0, :, :, 0].tolist() == [[5, 7], [13, 15]]
    assert resize_nearest(img, 8, 8).shape == (1, 8, 8, 1)


def test_simulated_clip_round_trips_through_the_loader(tmp_path):
    from core.data.rgbd_sim import simulate_clip

    rgb, depth, _ = simulate_clip("Cabin-Worker", 0, frames=3, size=24)
    np.savez_compressed(tmp_path / "clip.npz", rgb=rgb, depth=depth.astype(np.float16))
    r = load_clip(tmp_path / "clip.npz", "rgb", clip_id="sim")
    d = load_clip(tmp_path / "clip.npz", "depth", clip_id="sim")
    r, d = validate_pair(r, d, "sim")
    assert np.array_equal(r, rgb)
    np.testing.assert_allclose(d[..., 0], depth, rtol=np.finfo(np.float16).eps / 2)   # stored as float16
