"""How the actors move over a clip: the excavator's drive and arm program, the workers' walks.

Each function draws one actor's motion from the clip's generator and returns
its state at every frame time; the scenario variant decides which motion.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from core.data.rgbd_sim._actors import arm_angles
from core.data.rgbd_sim._draws import uniform
from core.data.rgbd_sim._site import DURATION_S


def _arm_program(mode: str, rng: np.random.Generator, label: str) -> dict[str, float]:
    """The arm's reach/height oscillation, swing and bucket curl for ``mode`` (hold, dig, travel, still)."""
    if mode == "hold":
        return {"r0": uniform(rng, 5.2, 7.0), "z0": uniform(rng, 3.5, 4.4), "ar": uniform(rng, 0.0, 0.15), "az": uniform(rng, 0.0, 0.15),
                "w": uniform(rng, 0.6, 1.5), "ph": uniform(rng, 0, 6.3), "swing_amp": math.radians(uniform(rng, 0, 3)),
                "sw": uniform(rng, 0.5, 1.2), "sph": uniform(rng, 0, 6.3), "curl0": uniform(rng, -0.3, 0.1), "curl_amp": 0.05}
    if mode == "dig":
        big = label == "Safe"
        return {"r0": uniform(rng, 5.0, 7.0), "z0": uniform(rng, 1.0, 3.2), "ar": uniform(rng, 0.5, 1.3), "az": uniform(rng, 0.5, 1.1),
                "w": uniform(rng, 1.2, 2.4), "ph": uniform(rng, 0, 6.3),
                "swing_amp": math.radians(uniform(rng, 10, 35) if big else uniform(rng, 0, 6)),
                "sw": uniform(rng, 0.6, 1.4), "sph": uniform(rng, 0, 6.3), "curl0": uniform(rng, -0.5, 0.2), "curl_amp": 0.5}
    if mode == "travel":
        return {"r0": uniform(rng, 4.2, 5.2), "z0": uniform(rng, 1.4, 2.4), "ar": 0.0, "az": 0.0, "w": 0.0, "ph": 0.0,
                "swing_amp": 0.0, "sw": 0.0, "sph": 0.0, "curl0": uniform(rng, -0.6, 0.0), "curl_amp": 0.0}
    # still
    return {"r0": uniform(rng, 4.5, 7.0), "z0": uniform(rng, 0.8, 4.2), "ar": 0.0, "az": 0.0, "w": 0.0, "ph": 0.0,
            "swing_amp": 0.0, "sw": 0.0, "sph": 0.0, "curl0": uniform(rng, -0.5, 0.2), "curl_amp": 0.0}


def excavator_states(label: str, variant: str, rng: np.random.Generator, times: np.ndarray) -> dict[str, Any]:
    """The excavator's per-frame ``states`` for ``variant`` (drive, swing, arm, beacon) and its program."""
    side = 1.0 if rng.random() < 0.5 else -1.0          # which side of the track it stands on
    drive = variant in ("drive_to_track", "drive_parallel_or_away")
    speed = uniform(rng, 0.5, 0.9) if drive else 0.0
    if variant == "drive_to_track":
        yaw = math.atan2(-side, 0.0) + uniform(rng, -0.3, 0.3)
    elif variant == "drive_parallel_or_away":
        if rng.random() < 0.6:
            yaw = (0.0 if rng.random() < 0.5 else math.pi) + uniform(rng, -0.1, 0.1)
        else:
            yaw = math.atan2(side, 0.0) + uniform(rng, -0.3, 0.3)
    else:
        yaw = uniform(rng, -math.pi, math.pi)
    travel = speed * DURATION_S
    near = max(6.0, travel + 4.0)
    y0 = side * uniform(rng, near, near + 3.5)
    x0 = uniform(rng, -3, 3)
    if drive:
        swing0 = uniform(rng, -0.25, 0.25) if rng.random() < 0.8 else uniform(rng, -math.pi, math.pi)
    else:
        swing0 = uniform(rng, -math.pi, math.pi)
    if variant in ("walk_under", "stand_under", "behind_bucket", "post_under_bucket"):
        mode = "hold"
    elif variant == "clear":
        mode = "dig"
    elif variant in ("arm_moving", "arm_still", "front_of_cabin"):
        # the depth-only look-alike (front_of_cabin) shares Cabin-Worker's arm behaviour
        mode = "dig" if (variant == "arm_moving" or (variant == "front_of_cabin" and rng.random() < 0.5)) else "still"
    elif variant == "idle_near_cabin":
        mode = "still"
    else:
        mode = "travel"
    operating = variant != "idle_near_cabin"
    arm = _arm_program(mode, rng, label)
    run = int(rng.integers(1, 3))
    phase = int(rng.integers(0, 2 * run))
    program = {"x0": x0, "y0": y0, "yaw": yaw, "speed": speed, "swing0": swing0, "arm": arm}
    states = []
    for k, t in enumerate(times):
        st = excavator_pose(program, t)
        st["beacon"] = bool(operating and ((k + phase) // run) % 2 == 0)
        states.append(st)
    return {"states": states, "side": side, "mode": mode, "operating": operating, "speed": speed,
            "heading": yaw, "drive": drive, "program": program}


def excavator_pose(program: dict[str, Any], t: float) -> dict[str, Any]:
    """The excavator's pose at time ``t`` (s) under ``program`` (``excavator_states(...)["program"]``):
    position, track and house yaw, boom/stick/bucket angles, and the arm tip's ``reach``/``tip_z``.
    Defined at any time, so the other modalities sample the very motion the frames show."""
    arm, yaw = program["arm"], program["yaw"]
    x = program["x0"] + program["speed"] * t * math.cos(yaw)
    y = program["y0"] + program["speed"] * t * math.sin(yaw)
    reach = arm["r0"] + arm["ar"] * math.sin(arm["w"] * t + arm["ph"])
    tip_z = arm["z0"] + arm["az"] * math.cos(arm["w"] * t + arm["ph"])
    alpha, beta = arm_angles(reach, tip_z)
    return {
        "x": x, "y": y, "track_yaw": yaw,
        "house_yaw": yaw + program["swing0"] + arm["swing_amp"] * math.sin(arm["sw"] * t + arm["sph"]),
        "alpha": alpha, "beta": beta,
        "curl": arm["curl0"] + arm["curl_amp"] * math.sin(arm["w"] * t + arm["ph"] + 1.0),
        "reach": reach, "tip_z": tip_z,
    }


def walk(rng: np.random.Generator, times: np.ndarray, goal: np.ndarray, walking: bool,
          arrive: float | None = None) -> dict[str, Any]:
    """A trajectory that reaches ``goal`` (walking in) or lingers around it (standing)."""
    n = len(times)
    if walking:
        t_arr = arrive if arrive is not None else uniform(rng, 0.3, 0.65) * DURATION_S
        speed = uniform(rng, 0.7, 1.4)
        ang = uniform(rng, -math.pi, math.pi)
        d = np.array([math.cos(ang), math.sin(ang), 0.0])
        start = goal - d * speed * t_arr
        drift = uniform(rng, 0.0, 0.2)
        pos = np.empty((n, 3))
        for k, t in enumerate(times):
            pos[k] = start + d * speed * t if t <= t_arr else goal + d * drift * (t - t_arr)
        heading = np.full(n, ang)
        moving = times <= t_arr
        gait = np.cumsum(np.where(moving, speed, drift) * (DURATION_S / n)) / 0.7 * math.pi
        swing = np.where(moving, math.radians(uniform(rng, 20, 30)), math.radians(4))
        path = {"kind": "arrive", "start": start, "goal": goal, "dir": d, "speed": speed, "arrive": t_arr,
                "drift": drift}
    else:
        ang = uniform(rng, -math.pi, math.pi)
        d = np.array([math.cos(ang), math.sin(ang), 0.0])
        sway = uniform(rng, 0.0, 0.06)
        sway_w = uniform(rng, 1, 3)
        pos = goal[None] + d[None] * (sway * np.sin(times * sway_w))[:, None]
        heading = np.full(n, uniform(rng, -math.pi, math.pi))
        gait = np.zeros(n)
        swing = np.zeros(n)
        path = {"kind": "stand", "goal": goal, "dir": d, "sway": sway, "sway_w": sway_w}
    return {"pos": pos, "heading": heading, "gait": gait, "swing": swing, "walking": walking, "path": path}


def free_walk(rng: np.random.Generator, times: np.ndarray, center: np.ndarray) -> dict[str, Any]:
    """A bystander's trajectory: walking straight through ``center`` or standing at it."""
    walking = rng.random() < 0.6
    if walking:
        speed = uniform(rng, 0.6, 1.4)
        ang = uniform(rng, -math.pi, math.pi)
        d = np.array([math.cos(ang), math.sin(ang), 0.0])
        pos = center[None] + d[None] * (speed * (times - DURATION_S / 2))[:, None]
        gait = speed * times / 0.7 * math.pi
        return {"pos": pos, "heading": np.full(len(times), ang), "gait": gait,
                "swing": np.full(len(times), math.radians(uniform(rng, 20, 30))), "walking": True,
                "path": {"kind": "pass", "center": center, "dir": d, "speed": speed}}
    return walk(rng, times, center, walking=False)


def map_along_ray(traj: dict[str, Any], cam_pos: np.ndarray, s: float) -> dict[str, Any]:
    """Slide a trajectory along the camera's horizontal viewing rays by factor s."""
    out = dict(traj)
    c = np.array([cam_pos[0], cam_pos[1], 0.0])
    out["pos"] = c + s * (traj["pos"] - c)
    out["path"] = {**traj["path"], "ray": (c, s)}
    return out


def worker_track(traj: dict[str, Any], times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A worker's feet position (N, 3) and walking speed (N,, m/s) at any ``times`` (s), from the path
    :func:`walk` / :func:`free_walk` drew (and :func:`map_along_ray` slid): the frames' positions are
    this path at the frame times. Speed is 0 while standing; a worker who arrived drifts at ``drift``."""
    p = traj["path"]
    t = np.asarray(times, np.float64)[:, None]
    if p["kind"] == "arrive":
        moving = t <= p["arrive"]
        pos = np.where(moving, p["start"] + p["dir"] * p["speed"] * t,
                       p["goal"] + p["dir"] * p["drift"] * (t - p["arrive"]))
        speed = np.where(moving[:, 0], p["speed"], p["drift"])
    elif p["kind"] == "pass":
        pos = p["center"] + p["dir"] * (p["speed"] * (t - DURATION_S / 2))
        speed = np.full(len(t), p["speed"])
    else:
        pos = p["goal"] + p["dir"] * (p["sway"] * np.sin(t * p["sway_w"]))
        speed = np.zeros(len(t))
    if "ray" in p:
        c, s = p["ray"]
        pos = c + s * (pos - c)
        speed = speed * abs(s)
    return pos, speed

