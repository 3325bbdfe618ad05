"""The scenario variants: where the actors are and where the camera looks, under each variant's constraints.

:func:`layout` samples one clip's :class:`~core.data.rgbd_sim._scene.Scene` for a
variant (the key worker walks under the bucket, stands by the cabin, passes
behind the bucket seen from the camera, ...), with the camera on the cabin
side framing the action, other workers, posts and props kept clear of it, and
raises :class:`Reject` when a draw breaks a constraint (the caller draws again
from the same generator). :func:`actors_visible` checks a rendering shows the
actors that define the variant.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from core.data.rgbd_sim._actors import (bucket_dist, cabin_dist, excavator_boxes, excavator_clearance, post_boxes,
                                        prop_boxes, sample_palette, track_boxes, worker_look)
from core.data.rgbd_sim._draws import uniform
from core.data.rgbd_sim._geometry import BoxList, Camera
from core.data.rgbd_sim._motion import excavator_states, free_walk, map_along_ray, walk
from core.data.rgbd_sim._scene import Scene
from core.data.rgbd_sim._site import (CABIN_CLOSE_M, DURATION_S, PART_IDS, SAFE_BUCKET_M, SAFE_CABIN_M,
                                      UNDER_BUCKET_M)


class Reject(Exception):
    """A sampled layout breaks a constraint of its variant: the caller samples again."""


def _sample_camera(rng: np.random.Generator, size: int, target: np.ndarray, house_yaw: float,
                   grow: float) -> Camera:
    az = house_yaw + math.radians(uniform(rng, 25, 155))     # always on the cabin (left) side
    dist = uniform(rng, 6.5, 10.0) * grow
    height = uniform(rng, 4.0, 7.5)
    pos = np.array([target[0] + dist * math.cos(az), target[1] + dist * math.sin(az), height])
    aim = target + np.array([uniform(rng, -0.8, 0.8), uniform(rng, -0.8, 0.8), uniform(rng, 0.0, 1.0)])
    return Camera.look_at(pos, aim, focal=size * uniform(rng, 1.2, 1.6), size=size,
                          roll=math.radians(uniform(rng, -3, 3)))


def _in_frame(cam: Camera, pts: np.ndarray, margin: float = 0.06) -> bool:
    uvz = cam.project(pts)
    m = margin * cam.size
    return bool((uvz[:, 2] > 1.0).all() and (uvz[:, 0] > m).all() and (uvz[:, 0] < cam.size - m).all()
                and (uvz[:, 1] > m).all() and (uvz[:, 1] < cam.size - m).all())


def _late(times: np.ndarray) -> float:
    """From when on the key worker must be in place: 65 % of the clip, or the last frame when a clip of very
    few frames has none that late (2 frames: 0 s and 2 s)."""
    return min(0.65 * DURATION_S, float(times[-1]))


def layout(label: str, variant: str, rng: np.random.Generator, times: np.ndarray, size: int,
           look: dict[str, Any]) -> Scene:
    """Sample one clip's actors and camera for ``variant``; raise :class:`Reject` when a constraint fails."""
    n = len(times)
    ex = excavator_states(label, variant, rng, times)
    pal = sample_palette(rng)
    scratch = BoxList()
    kin = [excavator_boxes(scratch, st, pal) for st in ex["states"]]
    mid = n // 2
    bucket_under = variant in ("walk_under", "stand_under", "behind_bucket", "post_under_bucket")
    if bucket_under and min(k["bucket_bottom"] for k in kin) < 2.35:
        raise Reject("bucket too low")
    track_pt = np.array([kin[0]["center"][0], 0.0, 0.45])
    key_pts = [kin[0]["center"] + [0, 0, 1.5], kin[-1]["center"] + [0, 0, 1.5], kin[mid]["bucket"], track_pt]
    target = np.mean([kin[mid]["center"], kin[mid]["bucket"], kin[mid]["cabin"] * [1, 1, 0]], axis=0)
    target = target * 0.85 + track_pt * [0.15, 0.15, 0]

    height_key = uniform(rng, 1.6, 1.95)
    key: dict[str, Any] | None = None
    post_pos: np.ndarray | None = None
    for attempt in range(12):
        cam = _sample_camera(rng, size, target, kin[mid]["house_yaw"], 1.08 ** attempt)
        key, post_pos = None, None
        try:
            if variant in ("walk_under", "stand_under", "behind_bucket"):
                off = rng.uniform(-0.3, 0.3, 3) * [1, 1, 0]
                goal = kin[mid]["bucket"] * [1, 1, 0] + off
                walking = variant == "walk_under" or (variant == "behind_bucket" and rng.random() < 0.5)
                traj = walk(rng, times, goal, walking)
                if variant == "behind_bucket":
                    cdist = float(np.hypot(*(goal[:2] - cam.position[:2])))
                    delta = uniform(rng, 2.5, 4.5)
                    s = 1.0 + delta / cdist
                    # an under-the-bucket worker of this height would look the same in RGB
                    h_u = cam.position[2] - (cam.position[2] - height_key) / s
                    if h_u + 0.1 > min(k["bucket_bottom"] for k in kin):
                        raise Reject("behind worker would overlap the bucket")
                    traj = map_along_ray(traj, cam.position, s)
                    if min(bucket_dist(p, k) for p, k in zip(traj["pos"], kin)) < 1.6:
                        raise Reject("behind worker too close to the bucket")
                else:
                    after = [(bucket_dist(p, k), k) for p, k, t in zip(traj["pos"], kin, times)
                             if t >= _late(times)]
                    if max(d for d, _ in after) > UNDER_BUCKET_M:
                        raise Reject("worker not under the bucket")
                    if min(k["bucket_bottom"] for _, k in after) < height_key + 0.3:
                        raise Reject("bucket hits the worker")
                key = traj
            elif variant in ("arm_moving", "arm_still", "idle_near_cabin", "front_of_cabin"):
                k = kin[mid]
                fh = np.array([math.cos(k["house_yaw"]), math.sin(k["house_yaw"]), 0.0])
                lh = np.array([-fh[1], fh[0], 0.0])
                goal = k["center"] + fh * uniform(rng, -0.5, 1.4) + lh * uniform(rng, 1.9, 3.0)
                traj = walk(rng, times, goal * [1, 1, 0], walking=rng.random() < 0.5)
                if variant == "front_of_cabin":
                    cdist = float(np.hypot(*(goal[:2] - cam.position[:2])))
                    s = 1.0 - uniform(rng, 2.5, 5.0) / cdist
                    if s < 0.35:
                        raise Reject("camera too close")
                    traj = map_along_ray(traj, cam.position, s)
                    if min(cabin_dist(p, kk) for p, kk in zip(traj["pos"], kin)) < SAFE_CABIN_M - 1.0:
                        raise Reject("front worker too close to the cabin")
                else:
                    late = [cabin_dist(p, kk) for p, kk, t in zip(traj["pos"], kin, times)
                            if t >= _late(times)]
                    if max(late) > CABIN_CLOSE_M:
                        raise Reject("worker not close to the cabin")
                key = traj
            elif variant == "post_under_bucket":
                post_pos = kin[mid]["bucket"] * [1, 1, 0] + rng.uniform(-0.3, 0.3, 3) * [1, 1, 0]
                if min(k["bucket_bottom"] for k in kin) < height_key + 0.3:
                    raise Reject("bucket hits the post")
            if key is not None:
                for p, k in zip(key["pos"], kin):
                    if excavator_clearance(p, k) < 0.3:
                        raise Reject("worker inside the excavator")
                    # one danger per clip: the key worker is safe from every hazard but its own
                    if label != "Bucket-Worker" and ex["operating"] and bucket_dist(p, k) < 1.6:
                        raise Reject("worker under the bucket")
                    if label != "Cabin-Worker" and ex["operating"] and cabin_dist(p, k) < 2.5:
                        raise Reject("worker near the cabin")
                head = key["pos"] + [0, 0, height_key]
                pts = np.concatenate([np.array(key_pts), key["pos"][[0, mid, -1]], head[[0, mid, -1]]])
            else:
                pts = np.array(key_pts)
            if post_pos is not None:
                pts = np.concatenate([pts, [post_pos, post_pos + [0, 0, 1.8]]])
            if not _in_frame(cam, pts):
                raise Reject("out of frame")
            break
        except Reject:
            continue
    else:
        raise Reject("no camera frames the action")

    # Other workers, posts and props keep safe distances from the action.
    obstacles: list[tuple[np.ndarray, float]] = []
    for k in kin:
        obstacles.append((k["center"], 3.6))
        obstacles.append((k["bucket"] * [1, 1, 0], 1.2))
    if key is not None:
        obstacles += [(p, 0.8) for p in key["pos"][:: max(1, n // 4)]]
    if post_pos is not None:
        obstacles.append((post_pos, 0.8))
    cam_xy = cam.position * [1, 1, 0]

    def blocks_view(p: np.ndarray, radius: float) -> bool:
        # keep the wedge between the camera and the action free of props
        a, b = cam_xy, target * [1, 1, 0]
        ab = b - a
        t = float(np.clip(np.dot(p - a, ab) / np.dot(ab, ab), 0.0, 1.2))
        return float(np.hypot(*(p - (a + t * ab))[:2])) < radius + 2.5

    def free(p: np.ndarray, radius: float, view: bool = True) -> bool:
        if any(np.hypot(*(p - c)[:2]) < r + radius for c, r in obstacles):
            return False
        if float(np.hypot(*(p - cam_xy)[:2])) < radius + 3.0:
            return False
        return not (view and blocks_view(p, radius))

    def spot(radius: float, r_lo: float, r_hi: float, track_clear: float, view: bool = True) -> np.ndarray | None:
        for _ in range(30):
            ang = uniform(rng, -math.pi, math.pi)
            p = target * [1, 1, 0] + uniform(rng, r_lo, r_hi) * np.array([math.cos(ang), math.sin(ang), 0.0])
            if abs(p[1]) < track_clear + radius:
                continue
            if free(p, radius, view):
                return p
        return None

    others = []
    n_other = int(rng.integers(1, 4)) if variant == "clear" else int(rng.integers(0, 3))
    for _ in range(n_other):
        for _try in range(10):
            c = spot(0.5, 4.0, 13.0, 0.0, view=False)
            if c is None:
                break
            traj = free_walk(rng, times, c)
            ok = all(
                excavator_clearance(p, k) > 2.5 and bucket_dist(p, k) > SAFE_BUCKET_M
                and cabin_dist(p, k) > SAFE_CABIN_M and np.hypot(*(p - cam_xy)[:2]) > 3.0
                for p, k in zip(traj["pos"], kin))
            if ok:
                traj["height"] = uniform(rng, 1.6, 1.95)
                traj["look"] = worker_look(rng, pal)
                others.append(traj)
                obstacles.extend((p, 0.8) for p in traj["pos"][:: max(1, n // 4)])
                break

    static = BoxList()
    posts = []
    if post_pos is not None:
        posts.append((post_pos, uniform(rng, -math.pi, math.pi), height_key))
    for _ in range(int(rng.integers(0, 3))):
        p = spot(0.5, 3.0, 14.0, 2.2)
        if p is not None:
            posts.append((p, uniform(rng, -math.pi, math.pi), uniform(rng, 1.6, 1.95)))
            obstacles.append((p, 0.6))
    for p, yaw, h in posts:
        post_boxes(static, p, yaw, h, pal["post"])
    track_boxes(static, pal, target[0])
    prop_boxes(static, rng, spot, obstacles)
    key_look = worker_look(rng, pal)
    return Scene(label=label, variant=variant, times=times, look=look, excavator=ex, kinematics=kin, palette=pal,
                 camera=cam, key_worker=key, key_height=height_key, key_look=key_look, others=others, posts=posts,
                 static=static, target=target)



def actors_visible(variant: str, parts: np.ndarray) -> bool:
    """Whether the actors that define ``variant`` are seen (``parts``: T, H, W part ids)."""
    n = parts.shape[0]
    area = parts.shape[1] * parts.shape[2]
    min_px = max(2, area // 300)   # 13 px of 64 x 64: a worker or post the size of a few vest pixels and more
    if variant in ("walk_under", "stand_under", "behind_bucket", "arm_moving", "arm_still", "idle_near_cabin",
                   "front_of_cabin"):
        seen = ((parts == PART_IDS["key_worker"]).sum(axis=(1, 2)) >= min_px).sum()
        if seen < 0.6 * n:
            return False
    if variant in ("arm_still", "idle_near_cabin"):
        if ((parts == PART_IDS["excavator_beacon"]).sum(axis=(1, 2)) >= max(2, area // 2000)).sum() < 0.6 * n:
            return False
    if variant == "post_under_bucket":
        if ((parts == PART_IDS["grey_post"]).sum(axis=(1, 2)) >= min_px).sum() < 0.6 * n:
            return False
    if variant in ("walk_under", "stand_under", "behind_bucket", "post_under_bucket"):
        if ((parts == PART_IDS["excavator_bucket"]).sum(axis=(1, 2)) >= 1).sum() < 0.6 * n:
            return False
    return True
