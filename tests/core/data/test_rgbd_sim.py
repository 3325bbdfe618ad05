"""The RGB-D site simulator: determinism, geometry, class semantics, dataset files."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from core.data import rgbd_sim as sim
from core.data.rgbd_sim import (CLASSES, MAX_DEPTH, PARTS, Box, Camera, degrade_depth, generate_dataset,
                                render_boxes, simulate_clip)
from core.kinds.video_files import load_clip
from core.errors import ConfigError, DataError
from tests._tolerance import f32_atol, f32_rtol, f64_atol

SMALL = {"frames": 4, "size": 32}
PART_ID = {name: idx for idx, name in PARTS.items()}


def _find(label: str, variant: str, *, start: int = 0, **kw):
    """First seed whose clip of ``label`` draws ``variant`` (with parts)."""
    for seed in range(start, start + 200):
        if sim.clip_variant(label, seed) == variant:
            clip = sim.simulate(label, seed, frames=kw.get("frames", 4), size=kw.get("size", 32),
                                degrade=kw.get("degrade", False))
            return seed, (clip.rgb, clip.depth, clip.parts, clip.meta)
    raise AssertionError(f"no seed draws {variant}")


def test_shapes_and_dtypes():
    rgb, depth, meta = simulate_clip("Safe", 3, frames=5, size=40)
    assert rgb.shape == (5, 40, 40, 3) and rgb.dtype == np.uint8
    assert depth.shape == (5, 40, 40) and depth.dtype == np.float32
    assert np.isfinite(depth).all() and depth.min() >= 0
    assert meta["label"] == "Safe" and meta["variant"] in sim.VARIANTS["Safe"]
    assert meta["reliance"] in {"rgb", "depth", "either", "both"}
    rgb2, depth2, _ = simulate_clip("Safe", 3, frames=5, size=40, degrade=False)
    assert np.array_equal(rgb, rgb2)                 # degradation touches depth only
    assert (depth2 > 0).all() and depth2.max() <= MAX_DEPTH


def test_same_seed_same_arrays_and_seeds_differ():
    a = simulate_clip("Bucket-Worker", 7, **SMALL)
    b = simulate_clip("Bucket-Worker", 7, **SMALL)
    c = simulate_clip("Bucket-Worker", 8, **SMALL)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[1], c[1])
    assert not np.array_equal(a[0], simulate_clip("Safe", 7, **SMALL)[0])


#: sha256 (first 16 hex digits) of (rgb, depth as stored in float16, parts) of clips at frames=4, size=32,
#: made by the simulator of SIMULATOR_VERSION 3. Every dataset folder is reused by its options, so the
#: same options must keep giving the same arrays: change the renderer or the scene sampler only with a
#: SIMULATOR_VERSION bump (then update these digests).
GOLDEN = [
    ("Bucket-Worker", 1, True, "stand_under", "807a406c635ffd08"),
    ("Cabin-Worker", 1, False, "arm_still", "72f58e22c17543b6"),
    ("Track-Excavator", 1, True, "drive_to_track", "616e8a55514ba7f3"),
    ("Safe", 8, True, "behind_bucket", "51dd7d5f090b3f9b"),
]


@pytest.mark.parametrize("label, seed, degrade, variant, digest", GOLDEN)
def test_clips_match_the_version_they_claim(label, seed, degrade, variant, digest):
    assert sim.SIMULATOR_VERSION == 3
    clip = sim.simulate(label, seed, frames=4, size=32, degrade=degrade)
    assert clip.meta["variant"] == variant == sim.clip_variant(label, seed)
    h = hashlib.sha256()
    for arr in (clip.rgb, clip.depth.astype(np.float16), clip.parts):
        h.update(str(arr.shape).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    assert h.hexdigest()[:16] == digest
    rgb, depth, meta = simulate_clip(label, seed, frames=4, size=32, degrade=degrade)
    assert np.array_equal(rgb, clip.rgb) and np.array_equal(depth, clip.depth) and meta == clip.meta


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="Track-Excavator"):
        simulate_clip("Excavator", 0)
    with pytest.raises(ConfigError):
        simulate_clip("Safe", 0, size=4)
    with pytest.raises(ConfigError, match="negative"):
        sim.clip_variant("Safe", -1)


def test_depth_is_exact_on_the_ground_plane():
    # camera 2 m up looking along +x: a ground pixel at row v sees depth 2 f / (v + 0.5 - cy)
    cam = Camera.look_at((0, 0, 2.0), (10, 0, 2.0), focal=40.0, size=32)
    _, depth, part = render_boxes(cam, [], supersample=1)
    rows = np.arange(17, 32)
    expected = 2.0 * 40.0 / (rows + 0.5 - 16.0)
    # float32 ray directions, a float64 plane intersection, the depth stored as float32
    np.testing.assert_allclose(depth[rows, 16], expected, rtol=f32_rtol(3))
    assert (part[:16] == PART_ID["sky"]).all() and (depth[:16] == MAX_DEPTH).all()
    # with the default supersampling depth still rises monotonically toward the horizon
    _, depth_ss, _ = render_boxes(cam, [])
    col = depth_ss[17:, 16]
    assert (np.diff(col) < 0).all()


def test_nearer_object_has_smaller_depth_and_occludes():
    cam = Camera.look_at((0, 0, 1.0), (10, 0, 1.0), focal=40.0, size=32)
    near = Box(center=(8.0, 0.0, 1.0), size=(1.0, 1.0, 1.0), color=(1, 0, 0), part=PART_ID["key_worker"])
    far = Box(center=(20.0, 0.0, 1.5), size=(2.0, 8.0, 3.0), color=(0, 0, 1), part=PART_ID["prop"])
    rgb, depth, part = render_boxes(cam, [far, near], supersample=1)
    n_mask, f_mask = part == PART_ID["key_worker"], part == PART_ID["prop"]
    assert n_mask.sum() > 4 and f_mask.sum() > 4
    # float32 slab intersections: a few operations on values of the size of the depth
    np.testing.assert_allclose(depth[n_mask], 7.5, rtol=0, atol=f32_atol(7.5, 3))   # front face of the near box
    np.testing.assert_allclose(depth[f_mask], 19.0, rtol=0, atol=f32_atol(19.0, 3))
    assert part[16, 16] == PART_ID["key_worker"]                   # the near box hides the far one
    assert rgb[16, 16, 0] > rgb[16, 16, 2]                          # and its colour wins too
    # projecting the box centre lands on its own pixels
    u, v, z = cam.project(np.array([8.0, 0.0, 1.0]))
    assert part[int(v), int(u)] == PART_ID["key_worker"] and z == pytest.approx(8.0, abs=f64_atol(8.0, 3))


def test_simulated_ground_depth_grows_with_distance():
    clip = sim.simulate("Safe", 2, frames=2, size=48, degrade=False)
    depth, parts = clip.depth, clip.parts
    ground = parts[0] == PART_ID["ground"]
    # along every image column, ground pixels higher in the image are farther away (a rank correlation:
    # depth grows like 1 / (row - horizon), far from linear near the horizon)
    from scipy.stats import spearmanr

    for col in range(0, 48, 6):
        rows = np.nonzero(ground[:, col])[0]
        d = depth[0, rows, col]
        if len(d) > 3:
            assert spearmanr(rows, d).statistic < -0.8


def test_degrade_depth_changes_depth_but_stays_finite():
    _, exact, _ = simulate_clip("Cabin-Worker", 1, degrade=False, **SMALL)
    rng = np.random.default_rng(0)
    est = degrade_depth(exact, rng)
    assert est.shape == exact.shape and est.dtype == np.float32
    assert np.isfinite(est).all() and est.min() >= 0
    assert (est == 0).any()                                         # holes are 0 by default
    valid = est > 0
    rel = np.abs(est[valid] - exact[valid]) / exact[valid]
    assert np.median(rel) > 0.005
    assert np.corrcoef(est[valid], exact[valid])[0, 1] > 0.8         # still a depth map of the same scene
    with_nan = degrade_depth(exact, np.random.default_rng(0), hole_value=float("nan"))
    assert np.isnan(with_nan).any()
    np.testing.assert_array_equal(np.isnan(with_nan), est == 0)
    single = degrade_depth(exact[0], np.random.default_rng(1))      # one frame (H, W) works too
    assert single.shape == exact.shape[1:]


def test_degraded_depth_blurs_within_parts_only():
    # a 6 x 6 px object 10 m away in front of a background at 100 m
    depth = np.full((2, 32, 32), 100.0)
    depth[:, 12:18, 12:18] = 10.0
    parts = (depth < 50).astype(np.uint8)
    obj = parts == 1
    kw = dict(scale_range=(1.0, 1.0), blur_sigma=(1.4, 1.4), noise=(0.0, 0.0), temporal_jitter=0.0)
    spread = {}
    for name, seg in (("frame", None), ("parts", parts)):
        est = degrade_depth(depth, np.random.default_rng(3), parts=seg, **kw)
        inside = est[obj & (est > 0)]                # holes read 0
        spread[name] = inside.max() / inside.min()
    # within the object only the smooth +-5 % field and the far-range compression remain; over the whole frame
    # the background's 100 m bleeds into the object's border pixels
    assert spread["parts"] < 1.25 and spread["frame"] > 2.0
    with pytest.raises(DataError, match="segmentation"):
        degrade_depth(depth, np.random.default_rng(0), parts=parts[:, :-1])


def test_degraded_depth_keeps_the_behind_the_bucket_cue():
    """The depth-only cue of `behind_bucket` survives the estimate's degradation: the worker's pixels read metres
    farther than the bucket's, an under-the-bucket worker's about as far (before version 3 the blur mixed the
    sky's 100 m into the bucket's few pixels and the two overlapped)."""
    def gap(label, variant):
        seeds = [s for s in range(200) if sim.clip_variant(label, s) == variant][:4]
        out = []
        for seed in seeds:
            clip = sim.simulate(label, seed, frames=4, size=64, degrade=True)
            d, p = clip.depth[-1], clip.parts[-1]
            out.append(np.median(d[p == PART_ID["key_worker"]]) - np.median(d[p == PART_ID["excavator_bucket"]]))
        return np.array(out)

    behind = gap("Safe", "behind_bucket")
    under = np.concatenate([gap("Bucket-Worker", "stand_under"), gap("Bucket-Worker", "walk_under")])
    assert behind.min() > 2.0 and under.max() < 2.0 and behind.min() - under.max() > 0.5


def test_classes_come_from_what_the_actors_do():
    for seed in range(3):
        for label in CLASSES:
            _, _, meta = simulate_clip(label, seed, **SMALL)
            ex, kw = meta["excavator"], meta["key_worker"]
            late = [k for k, t in enumerate(meta["times_s"]) if t >= 0.65 * sim.DURATION_S]
            if label == "Bucket-Worker":
                assert max(kw["bucket_dist_m"][k] for k in late) <= sim.UNDER_BUCKET_M
            elif label == "Cabin-Worker":
                assert max(kw["cabin_dist_m"][k] for k in late) <= sim.CABIN_CLOSE_M and ex["operating"]
                assert any(ex["beacon_on"]) and not all(ex["beacon_on"])   # the warning light flashes
            elif label == "Track-Excavator":
                assert ex["track_distance_m"][-1] < ex["track_distance_m"][0] - 0.5
            else:
                if kw is not None:
                    assert min(kw["bucket_dist_m"]) > 1.5 and min(kw["cabin_dist_m"]) > 2.0 or not ex["operating"]
                assert ex["track_distance_m"][-1] >= ex["track_distance_m"][0] - 0.4


def test_worker_behind_bucket_overlaps_it_in_rgb_but_not_in_depth():
    _, (_, d_behind, p_behind, m_behind) = _find("Safe", "behind_bucket", size=64)
    _, (_, d_under, p_under, m_under) = _find("Bucket-Worker", "stand_under", size=64)

    def relation(depth, parts, meta):
        cam = Camera(np.array(meta["camera"]["position"]), np.array(meta["camera"]["rotation"]),
                     meta["camera"]["focal"], meta["camera"]["size"])
        k = len(meta["times_s"]) - 1
        bucket = cam.project(np.array(meta["excavator"]["bucket"][k]))
        feet = np.array(meta["key_worker"]["pos"][k])
        head = cam.project(feet + [0, 0, meta["key_worker"]["height"]])
        gap_px = head[1] - bucket[1]             # head below the bucket centre, in pixels
        # back-project the depth map: where do the worker's and the bucket's pixels lie on the ground plane?
        points = cam.position + cam.rays() * depth[k][..., None]
        w = np.median(points[parts[k] == PART_ID["key_worker"]], axis=0)
        b = np.median(points[parts[k] == PART_ID["excavator_bucket"]], axis=0)
        return abs(head[0] - bucket[0]), gap_px, float(np.hypot(*(w - b)[:2]))

    du, gap_b, apart_behind = relation(d_behind, p_behind, m_behind)
    assert du < 4.0 and 0 < gap_b < 20           # same image column, just under the bucket in RGB
    assert apart_behind > 1.5                     # ... but depth puts it metres away from the bucket
    du, gap_u, apart_under = relation(d_under, p_under, m_under)
    assert du < 4.0 and 0 < gap_u < 20
    assert apart_under < 1.0


def test_every_variant_renders_its_defining_actor():
    for label, variants in sim.VARIANTS.items():
        for variant in variants:
            _, (_, _, parts, meta) = _find(label, variant)
            assert meta["variant"] == variant
            if meta["key_worker"] is not None:
                assert (parts == PART_ID["key_worker"]).any()
            if variant == "post_under_bucket":
                assert (parts == PART_ID["grey_post"]).any()


def test_generate_dataset_balanced_resumable_and_worker_independent(tmp_path):
    out = tmp_path / "sim"
    manifest = generate_dataset(out, n_clips=16, seed=5, workers=1, progress=False, **SMALL)
    df = pd.read_csv(manifest)
    assert list(df.columns) == ["id", "label", "split", "group", "rgb", "depth"]
    assert df["label"].value_counts().to_dict() == {c: 4 for c in CLASSES}
    assert set(df["split"]) == {"train", "val", "test"}
    for label, g in df.groupby("label"):
        assert sorted(g["split"].value_counts().to_dict().items()) == [("test", 1), ("train", 2), ("val", 1)]
    assert df["id"].is_unique
    first = df.iloc[0]
    rgb = load_clip(manifest.parent / first["rgb"], "rgb", clip_id=first["id"])
    depth = load_clip(manifest.parent / first["depth"], "depth", clip_id=first["id"])
    assert rgb.shape == (4, 32, 32, 3) and rgb.dtype == np.uint8
    assert depth.shape == (4, 32, 32, 1) and depth.dtype == np.float32
    meta = pd.read_parquet(out / "clips_meta.parquet")
    assert list(meta["id"]) == list(df["id"]) and set(meta["reliance"]) <= {"rgb", "depth", "either", "both"}

    # resumable: existing clips are kept (same bytes, same mtime), a deleted one comes back identical
    clip0 = out / first["rgb"]
    stamp, data = clip0.stat().st_mtime_ns, clip0.read_bytes()
    victim = out / df.iloc[5]["rgb"]
    victim_bytes = victim.read_bytes()
    victim.unlink()
    generate_dataset(out, n_clips=16, seed=5, workers=1, progress=False, **SMALL)
    assert clip0.stat().st_mtime_ns == stamp and clip0.read_bytes() == data
    assert victim.read_bytes() == victim_bytes
    assert pd.read_csv(manifest).equals(df)

    # two worker processes render the very same arrays
    out2 = tmp_path / "sim2"
    generate_dataset(out2, n_clips=6, seed=5, workers=2, progress=False, **SMALL)
    for cid in df["id"][:6]:
        with np.load(out / "clips" / f"{cid}.npz") as a, np.load(out2 / "clips" / f"{cid}.npz") as b:
            for key in ("rgb", "depth", "parts"):
                assert np.array_equal(a[key], b[key])

    with pytest.raises(DataError, match="other settings"):
        generate_dataset(out, n_clips=16, seed=5, workers=1, progress=False, frames=4, size=48)
