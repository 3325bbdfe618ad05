"""The site's actors as boxes: the excavator, workers, grey posts, the track and props.

Also their looks (lighting, palette, clothing, drawn from the clip's seed) and
the excavator's footprint distances that define the classes (a worker under
the bucket, close to the cabin). The builders add one frame's boxes to a
:class:`BoxList`; the motion over time comes from ``_motion``.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from core.data.rgbd_sim._draws import jitter, uniform
from core.data.rgbd_sim._geometry import BoxList, yaw_pitch
from core.data.rgbd_sim._site import PART_IDS


# Excavator geometry (metres), a ~20 t tracked excavator.
_TRACK_LEN, _TRACK_W, _TRACK_H, _TRACK_OFF = 4.4, 0.7, 0.9, 1.25
_HOUSE_FWD, _HOUSE_SIZE = -0.3, (3.0, 2.5, 1.0)
_CABIN_FWD, _CABIN_LAT, _CABIN_SIZE, _CABIN_Z0 = 0.45, 0.7, (1.5, 1.0, 1.6), 2.05
_PIVOT_FWD, _PIVOT_LAT, _PIVOT_Z = 1.2, -0.2, 2.0
_BOOM_LEN, _STICK_LEN = 5.0, 2.8
_BUCKET_SIZE = (0.9, 1.05, 0.85)


def sample_look(rng: np.random.Generator) -> dict[str, Any]:
    """The clip's lighting, sky, ground colours, fog and camera exposure/noise levels."""
    elev = math.radians(uniform(rng, 25, 70))
    az = uniform(rng, -math.pi, math.pi)
    overcast = rng.random() < 0.3
    grounds = [((0.52, 0.43, 0.33), (0.42, 0.37, 0.30)),   # dirt
               ((0.55, 0.53, 0.50), (0.45, 0.44, 0.42)),   # gravel
               ((0.47, 0.42, 0.30), (0.38, 0.44, 0.30)),   # dirt and grass
               ((0.60, 0.52, 0.40), (0.50, 0.45, 0.38))]   # sand
    ga, gb = grounds[int(rng.integers(len(grounds)))]
    k = 5
    field = np.column_stack([rng.uniform(-0.6, 0.6, k), rng.uniform(-0.6, 0.6, k),
                             rng.uniform(0, 2 * np.pi, k), rng.uniform(0.05, 0.25, k)])
    warm = uniform(rng, 0.85, 1.0)
    return {
        "sun_dir": [math.cos(elev) * math.cos(az), math.cos(elev) * math.sin(az), math.sin(elev)],
        "sun_color": [1.0, uniform(rng, 0.93, 1.0), warm],
        "ambient_color": [uniform(rng, 0.9, 1.0), uniform(rng, 0.95, 1.0), 1.0],
        "ambient": uniform(rng, 0.55, 0.75) if overcast else uniform(rng, 0.35, 0.55),
        "diffuse": uniform(rng, 0.2, 0.4) if overcast else uniform(rng, 0.55, 0.8),
        "sky_top": (jitter(rng, (0.62, 0.66, 0.70)) if overcast else jitter(rng, (0.42, 0.60, 0.86))).tolist(),
        "haze": jitter(rng, (0.80, 0.82, 0.84), 0.04).tolist(),
        "fog_m": uniform(rng, 120, 500),
        "ground_field": field.tolist(),
        "salt": uniform(rng, 0, 100),
        "ground_a": jitter(rng, ga, 0.03).tolist(),
        "ground_b": jitter(rng, gb, 0.03).tolist(),
        "exposure": uniform(rng, 0.85, 1.15),
        "rgb_noise": uniform(rng, 1.0, 4.0),
        "overcast": overcast,
    }


def sample_palette(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The clip's colours: excavator body, track, steel, beacon, ballast, sleepers, posts, clothing choices."""
    body = [(0.95, 0.72, 0.08), (0.93, 0.50, 0.10), (0.90, 0.85, 0.20), (0.85, 0.85, 0.82), (0.75, 0.15, 0.12)]
    vest = [(0.80, 0.98, 0.10), (1.00, 0.45, 0.05), (0.98, 0.85, 0.05)]
    helmet = [(0.95, 0.95, 0.93), (0.98, 0.85, 0.10), (1.0, 0.5, 0.1), (0.2, 0.35, 0.8)]
    trousers = [(0.12, 0.14, 0.25), (0.20, 0.20, 0.22), (0.08, 0.08, 0.08), (0.95, 0.45, 0.08)]
    skin = [(0.87, 0.70, 0.58), (0.62, 0.45, 0.33), (0.40, 0.28, 0.20), (0.95, 0.80, 0.70)]
    pick = lambda options: jitter(rng, options[int(rng.integers(len(options)))], 0.04)  # noqa: E731
    return {
        "body": pick(body),
        "track": jitter(rng, (0.16, 0.16, 0.17), 0.03),
        "steel": jitter(rng, (0.30, 0.30, 0.32), 0.03),
        "glass": jitter(rng, (0.10, 0.13, 0.17), 0.02),
        "beacon_on": np.array([1.0, uniform(rng, 0.8, 0.9), uniform(rng, 0.35, 0.5)]) * 1.2,
        "beacon_off": np.array([0.30, 0.22, 0.12]),
        "ballast": jitter(rng, (0.50, 0.49, 0.47), 0.04),
        "sleeper": pick([(0.62, 0.61, 0.58), (0.38, 0.28, 0.20)]),
        "rail": jitter(rng, (0.40, 0.36, 0.33), 0.03),
        "post": jitter(rng, (0.55, 0.55, 0.55), 0.05),
        "_vest": vest, "_helmet": helmet, "_trousers": trousers, "_skin": skin,
    }


def worker_look(rng: np.random.Generator, pal: dict[str, Any]) -> dict[str, Any]:
    """One worker's vest, helmet, trousers, skin and sleeve colours."""
    pick = lambda options: jitter(rng, options[int(rng.integers(len(options)))], 0.04)  # noqa: E731
    vest = pick(pal["_vest"])
    return {"vest": vest, "helmet": pick(pal["_helmet"]), "trousers": pick(pal["_trousers"]),
            "skin": pick(pal["_skin"]),
            "sleeve": vest if rng.random() < 0.5 else pick([(0.3, 0.35, 0.5), (0.5, 0.5, 0.5), (0.2, 0.2, 0.2)])}


def arm_angles(reach: float, tip_z: float) -> tuple[float, float]:
    """Boom and stick pitch (absolute, radians) that put the stick tip at (reach, tip_z)."""
    dx, dz = reach - _PIVOT_FWD, tip_z - _PIVOT_Z
    dist = math.hypot(dx, dz)
    dist_c = min(max(dist, abs(_BOOM_LEN - _STICK_LEN) + 0.05), _BOOM_LEN + _STICK_LEN - 0.05)
    phi = math.atan2(dz, dx)
    cos_b = (_BOOM_LEN ** 2 + dist_c ** 2 - _STICK_LEN ** 2) / (2 * _BOOM_LEN * dist_c)
    alpha = phi + math.acos(max(-1.0, min(1.0, cos_b)))
    bx, bz = _BOOM_LEN * math.cos(alpha), _BOOM_LEN * math.sin(alpha)
    tx, tz = dist_c * math.cos(phi), dist_c * math.sin(phi)
    beta = math.atan2(tz - bz, tx - bx)
    return alpha, beta


def excavator_boxes(bl: BoxList, st: dict[str, Any], pal: dict[str, Any]) -> dict[str, np.ndarray]:
    """Add one frame's excavator boxes; return its key points."""
    base = np.array([st["x"], st["y"], 0.0])
    ty, hy = st["track_yaw"], st["house_yaw"]
    lt = np.array([-math.sin(ty), math.cos(ty), 0.0])
    fh = np.array([math.cos(hy), math.sin(hy), 0.0])
    lh = np.array([-math.sin(hy), math.cos(hy), 0.0])
    up = np.array([0.0, 0.0, 1.0])
    body, dark = pal["body"], pal["track"]
    for side in (-1.0, 1.0):
        bl.add(base + lt * side * _TRACK_OFF + up * _TRACK_H / 2, (_TRACK_LEN, _TRACK_W, _TRACK_H), dark,
               yaw=ty, part=PART_IDS["excavator_undercarriage"])
    bl.add(base + up * 0.6, (2.4, 1.9, 0.5), dark * 1.3, yaw=ty, part=PART_IDS["excavator_undercarriage"])
    bl.add(base + up * 0.98, (1.7, 1.7, 0.16), dark * 1.1, yaw=hy, part=PART_IDS["excavator_house"])
    house_c = base + fh * _HOUSE_FWD + up * (1.05 + _HOUSE_SIZE[2] / 2)
    bl.add(house_c, _HOUSE_SIZE, body, yaw=hy, part=PART_IDS["excavator_house"])
    bl.add(base - fh * 2.1 + up * 1.6, (0.8, 2.5, 1.0), body * 0.8, yaw=hy, part=PART_IDS["excavator_house"])
    cabin_c = base + fh * _CABIN_FWD + lh * _CABIN_LAT + up * (_CABIN_Z0 + _CABIN_SIZE[2] / 2)
    bl.add(cabin_c, _CABIN_SIZE, body, yaw=hy, part=PART_IDS["excavator_cabin"])
    bl.add(cabin_c + up * 0.2, (_CABIN_SIZE[0] + 0.03, _CABIN_SIZE[1] + 0.03, 0.75), pal["glass"], yaw=hy,
           part=PART_IDS["excavator_cabin"])
    beacon_c = cabin_c + fh * (-0.3) + lh * 0.1 + up * (_CABIN_SIZE[2] / 2 + 0.31)
    on = bool(st["beacon"])
    # the lamp sits on a dark housing so that its flashing stands out on any body colour
    bl.add(beacon_c - up * 0.25, (0.7, 0.7, 0.12), pal["glass"], yaw=hy, part=PART_IDS["excavator_beacon"])
    bl.add(beacon_c, (0.5, 0.5, 0.38), pal["beacon_on"] if on else pal["beacon_off"], yaw=hy,
           part=PART_IDS["excavator_beacon"], emissive=on)
    alpha, beta = st["alpha"], st["beta"]
    pivot = base + fh * _PIVOT_FWD + lh * _PIVOT_LAT + up * _PIVOT_Z
    bdir = fh * math.cos(alpha) + up * math.sin(alpha)
    bl.add(pivot + bdir * _BOOM_LEN / 2, (_BOOM_LEN, 0.5, 0.6), body, yaw=hy, pitch=alpha, part=PART_IDS["excavator_arm"])
    stick0 = pivot + bdir * _BOOM_LEN
    sdir = fh * math.cos(beta) + up * math.sin(beta)
    bl.add(stick0 + sdir * _STICK_LEN / 2, (_STICK_LEN, 0.38, 0.45), body * 0.9, yaw=hy, pitch=beta,
           part=PART_IDS["excavator_arm"])
    tip = stick0 + sdir * _STICK_LEN
    gamma = beta + math.pi / 2 + st["curl"]
    rb = yaw_pitch(hy, gamma)
    bucket_c = tip - rb[:, 2] * 0.42
    bl.add(bucket_c, _BUCKET_SIZE, pal["steel"], rotation=rb, part=PART_IDS["excavator_bucket"])
    half = np.asarray(_BUCKET_SIZE) / 2
    signs = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)])
    bottom = float((bucket_c + (signs * half) @ rb.T)[:, 2].min())
    return {"center": base, "house_yaw": hy, "track_yaw": ty, "cabin": cabin_c, "beacon": beacon_c,
            "bucket": bucket_c, "bucket_bottom": bottom, "tip": tip, "pivot": pivot}


def worker_boxes(bl: BoxList, pos: np.ndarray, heading: float, height: float, gait: float, swing: float,
                  look: dict[str, Any], part: int) -> None:
    """Add one worker's boxes (legs, torso, arms, head, helmet) at ``pos`` in a walking pose."""
    s = height / 1.8
    up = np.array([0.0, 0.0, 1.0])
    f = np.array([math.cos(heading), math.sin(heading), 0.0])
    lat = np.array([-math.sin(heading), math.cos(heading), 0.0])
    hip = pos + up * 0.88 * s
    ang = swing * math.sin(gait)
    for side, a in ((1.0, ang), (-1.0, -ang)):
        r = yaw_pitch(heading, -math.pi / 2 + a)          # box x axis points down the leg
        bl.add(hip + lat * side * 0.11 + r[:, 0] * 0.425 * s, (0.85 * s, 0.17, 0.17), look["trousers"], rotation=r,
               part=part)
    bl.add(hip + up * 0.31 * s, (0.26, 0.44, 0.62 * s), look["vest"], yaw=heading, part=part)
    shoulder = pos + up * 1.46 * s
    for side, a in ((1.0, -ang), (-1.0, ang)):
        r = yaw_pitch(heading, -math.pi / 2 + 0.8 * a)
        bl.add(shoulder + lat * side * 0.29 + r[:, 0] * 0.3 * s, (0.6 * s, 0.12, 0.12), look["sleeve"], rotation=r,
               part=part)
    bl.add(pos + up * 1.61 * s + f * 0.01, (0.2, 0.2, 0.22 * s), look["skin"], yaw=heading, part=part)
    bl.add(pos + up * 1.74 * s, (0.27, 0.27, 0.12 * s), look["helmet"], yaw=heading, part=part)


def post_boxes(bl: BoxList, pos: np.ndarray, yaw: float, height: float, color: np.ndarray) -> None:
    """A grey worker-sized signpost: same silhouette and size as a worker, no colours."""
    s = height / 1.8
    up = np.array([0.0, 0.0, 1.0])
    bl.add(pos + up * 0.44 * s, (0.3, 0.4, 0.88 * s), color, yaw=yaw, part=PART_IDS["grey_post"])
    bl.add(pos + up * 1.17 * s, (0.28, 0.68, 0.58 * s), color * 0.95, yaw=yaw, part=PART_IDS["grey_post"])
    bl.add(pos + up * 1.62 * s, (0.22, 0.22, 0.36 * s), color * 1.05, yaw=yaw, part=PART_IDS["grey_post"])



def track_boxes(bl: BoxList, pal: dict[str, Any], x_mid: float) -> None:
    """Add the active track along the world x axis at y = 0: ballast bed, sleepers, two rails."""
    length = 240.0
    bl.add((x_mid, 0.0, 0.15), (length, 3.4, 0.3), pal["ballast"], part=PART_IDS["track"], texture=2)
    spacing = 0.75
    first = math.floor((x_mid - 30) / spacing) * spacing
    for i in range(int(60 / spacing)):
        bl.add((first + i * spacing, 0.0, 0.33), (0.26, 2.6, 0.16), pal["sleeper"], part=PART_IDS["track"])
    for y in (-0.75, 0.75):
        bl.add((x_mid, y, 0.48), (length, 0.12, 0.14), pal["rail"], part=PART_IDS["track"])


def prop_boxes(bl: BoxList, rng: np.random.Generator, spot: Callable[..., np.ndarray | None],
               obstacles: list) -> None:
    """Traffic cones, material piles, pallets, a container and a light tower at free ``spot``s."""
    def place(radius: float, lo: float, hi: float, track_clear: float) -> np.ndarray | None:
        p = spot(radius, lo, hi, track_clear)
        if p is not None:
            obstacles.append((p, radius))
        return p

    orange = jitter(rng, (1.0, 0.42, 0.05), 0.04)
    for _ in range(int(rng.integers(2, 7))):                       # traffic cones
        p = place(0.3, 2.0, 12.0, 1.9)
        if p is None:
            continue
        bl.add(p + [0, 0, 0.02], (0.4, 0.4, 0.04), orange * 0.6)
        bl.add(p + [0, 0, 0.3], (0.2, 0.2, 0.55), orange)
        bl.add(p + [0, 0, 0.36], (0.22, 0.22, 0.1), (0.92, 0.92, 0.9))
    for _ in range(int(rng.integers(0, 3))):                       # material piles (sand, gravel)
        p = place(1.7, 5.0, 16.0, 2.0)
        if p is None:
            continue
        col = jitter(rng, [(0.72, 0.62, 0.42), (0.5, 0.49, 0.47), (0.45, 0.35, 0.25)][int(rng.integers(3))], 0.03)
        yaw = uniform(rng, 0, math.pi)
        sc = uniform(rng, 0.6, 1.1)
        for i, (w, d, h) in enumerate([(3.0, 2.5, 0.5), (2.2, 1.8, 0.5), (1.2, 1.0, 0.4)]):
            bl.add(p + [0, 0, sc * (0.25 + 0.5 * i)], (w * sc, d * sc, h * sc), col * (1 + 0.04 * i), yaw=yaw,
                   texture=1)
    for _ in range(int(rng.integers(0, 3))):                       # pallets of blocks / pipe stacks
        p = place(1.0, 4.0, 14.0, 2.0)
        if p is None:
            continue
        col = jitter(rng, [(0.35, 0.38, 0.45), (0.15, 0.15, 0.15), (0.6, 0.6, 0.58)][int(rng.integers(3))], 0.04)
        w, h = uniform(rng, 1.0, 3.0), uniform(rng, 0.5, 1.0)
        bl.add(p + [0, 0, h / 2], (w, 1.1, h), col, yaw=uniform(rng, 0, math.pi))
    if rng.random() < 0.5:                                         # site container
        p = place(3.2, 9.0, 20.0, 2.5)
        if p is not None:
            col = jitter(rng, [(0.2, 0.35, 0.6), (0.25, 0.45, 0.25), (0.65, 0.2, 0.15), (0.85, 0.85, 0.82)]
                          [int(rng.integers(4))], 0.04)
            bl.add(p + [0, 0, 1.3], (6.0, 2.4, 2.6), col, yaw=uniform(rng, 0, math.pi))
    if rng.random() < 0.4:                                         # light tower
        p = place(1.0, 6.0, 18.0, 2.5)
        if p is not None:
            bl.add(p + [0, 0, 0.5], (1.5, 1.2, 1.0), jitter(rng, (0.9, 0.8, 0.2)))
            bl.add(p + [0, 0, 3.5], (0.15, 0.15, 5.0), (0.5, 0.5, 0.5))
            bl.add(p + [0, 0, 6.1], (1.0, 0.3, 0.5), (0.9, 0.9, 0.85))



def _rect_dist(p: np.ndarray, center: np.ndarray, yaw: float, half_len: float, half_w: float) -> float:
    """Horizontal distance from point p to an oriented rectangle (0 inside)."""
    d = p[:2] - center[:2]
    c, s = math.cos(yaw), math.sin(yaw)
    lx, ly = d[0] * c + d[1] * s, -d[0] * s + d[1] * c
    ex, ey = max(abs(lx) - half_len, 0.0), max(abs(ly) - half_w, 0.0)
    return math.hypot(ex, ey)


def excavator_clearance(p: np.ndarray, ex: dict[str, Any]) -> float:
    """Horizontal distance from p to the excavator's ground footprint (tracks and house)."""
    tracks = _rect_dist(p, ex["center"], ex["track_yaw"], _TRACK_LEN / 2, _TRACK_OFF + _TRACK_W / 2)
    fh = np.array([math.cos(ex["house_yaw"]), math.sin(ex["house_yaw"]), 0.0])
    house = _rect_dist(p, ex["center"] - fh * 0.6, ex["house_yaw"], 1.95, 1.25)
    return min(tracks, house)


def cabin_dist(p: np.ndarray, ex: dict[str, Any]) -> float:
    """Horizontal distance from p to the cabin's footprint (0 inside)."""
    return _rect_dist(p, ex["cabin"], ex["house_yaw"], _CABIN_SIZE[0] / 2, _CABIN_SIZE[1] / 2)


def bucket_dist(p: np.ndarray, ex: dict[str, Any]) -> float:
    """Horizontal distance from p to the bucket's centre."""
    return float(np.hypot(*(p[:2] - ex["bucket"][:2])))



def excavator_points(center: np.ndarray, house_yaw: np.ndarray, alpha: np.ndarray, beta: np.ndarray,
                     curl: np.ndarray) -> dict[str, np.ndarray]:
    """The key points :func:`excavator_boxes` returns (``cabin``, ``bucket``, ``tip``) plus the ``engine``
    (the rear of the house), for N poses at once (arrays of length N; points are (N, 3)). The same geometry
    without building boxes, so the audio and tag renderers can sample them at their own rates."""
    hy = np.asarray(house_yaw, np.float64)
    c, s = np.cos(hy), np.sin(hy)
    zero, one = np.zeros_like(hy), np.ones_like(hy)
    fh = np.stack([c, s, zero], axis=1)
    lh = np.stack([-s, c, zero], axis=1)
    up = np.stack([zero, zero, one], axis=1)
    base = np.asarray(center, np.float64)
    cabin = base + fh * _CABIN_FWD + lh * _CABIN_LAT + up * (_CABIN_Z0 + _CABIN_SIZE[2] / 2)
    pivot = base + fh * _PIVOT_FWD + lh * _PIVOT_LAT + up * _PIVOT_Z
    a, b = np.asarray(alpha)[:, None], np.asarray(beta)[:, None]
    tip = pivot + (fh * np.cos(a) + up * np.sin(a)) * _BOOM_LEN + (fh * np.cos(b) + up * np.sin(b)) * _STICK_LEN
    gamma = np.asarray(beta) + math.pi / 2 + np.asarray(curl)
    # third column of yaw_pitch(house_yaw, gamma): the bucket's own z axis
    axis_z = np.stack([-c * np.sin(gamma), -s * np.sin(gamma), np.cos(gamma)], axis=1)
    bucket = tip - axis_z * 0.42
    engine = base - fh * 1.4 + up * 1.6
    return {"cabin": cabin, "bucket": bucket, "tip": tip, "engine": engine}
