"""The site's microphone: engine, track clatter, travel alarm, footsteps and background from one scene.

:func:`render_audio` synthesises a mono clip (4 s at ``rate`` Hz) heard by a
microphone on the RGB-D camera, from the actors' motion sampled by
``_timeline`` at :data:`CONTROL_RATE` and interpolated to the audio rate:

* the excavator's **engine**: firing-frequency harmonics plus firing-modulated
  combustion noise and a hydraulic pump whine. Idle runs at low rpm and level;
  an operating machine at working rpm, its level and pump whine following the
  arm's effort (boom and stick joint speed); driving at high rpm;
* **track clatter** while it drives: one metallic click per track shoe, at the
  rate ``speed / shoe pitch`` for each of the two tracks;
* a **travel alarm** (a square-ish ~1 kHz beep, 0.5 s on, 0.5 s off) on some
  driving machines, whatever the direction of travel;
* **footsteps** of walking workers (a low thump and a gravel crunch each time
  the walked distance passes a step length);
* the site **background** (generator hum, wind, distant traffic) at a random
  signal-to-noise ratio.

Each source is attenuated as 1/r with its distance to the microphone. The clip
is the sum of the sources (``stems``) times the microphone's gain.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from core.data.rgbd_sim._draws import uniform
from core.data.rgbd_sim._site import DURATION_S
from core.data.rgbd_sim._timeline import Timeline

#: Default sample rate of the site's audio (Hz).
AUDIO_RATE = 16000
#: Rate (Hz) at which the actors are sampled for the audio's envelopes (rpm, level, distances, steps).
CONTROL_RATE = 100
#: Audio sources, in the order of ``stems``.
AUDIO_SOURCES = ("engine", "clatter", "alarm", "footsteps", "background")

_MIC_GAIN = 1.2            # amplitude units at the microphone per unit at 1 m
_ENGINE_LEVEL = {"idle": 0.3, "work": 0.8, "drive": 1.1}   # engine amplitude at 1 m
_CLATTER_LEVEL = 1.6       # one track click's peak at 1 m
_ALARM_LEVEL = 0.9         # the travel alarm at 1 m
_FOOT_LEVEL = 0.6          # one footstep's peak at 1 m
_ALARM_P = 0.6             # share of driving machines with a travel alarm
_MIN_R = 1.0               # distances below this do not amplify further (m)


def _interp(tl_t: np.ndarray, values: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.interp(t, tl_t, values)


def _smooth_noise(rng: np.random.Generator, n_ctrl: int, width: int) -> np.ndarray:
    """Slowly varying noise (unit sd) at the control rate: white noise averaged over ``width`` points."""
    x = rng.normal(0.0, 1.0, n_ctrl + width)
    y = np.convolve(x, np.ones(width) / width, mode="valid")[:n_ctrl]
    return y / max(float(y.std()), 1e-9)


def _coloured_noise(rng: np.random.Generator, n: int, rate: int, shape: Callable[[np.ndarray], np.ndarray],
                    decimate: int) -> np.ndarray:
    """Gaussian noise (n samples at ``rate``, unit sd) with amplitude spectrum ``shape(f)``, drawn in the
    frequency domain at ``rate / decimate`` and interpolated up: the sources' noises have little energy above
    that rate's Nyquist frequency, and a shorter FFT keeps the synthesis cheap."""
    m = -(-n // decimate)
    f = np.fft.rfftfreq(m, decimate / rate)
    x = np.fft.irfft((rng.normal(0, 1, len(f)) + 1j * rng.normal(0, 1, len(f))) * shape(f), m)
    if decimate > 1:
        x = np.interp(np.arange(n) / decimate, np.arange(m), x)
    return x / max(float(x.std()), 1e-9)


def _harmonics(phase: np.ndarray, amps: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """``sum_k amps[k-1] sin(k phase)`` and ``2 cos(phase)`` (float32), by the recurrence
    sin((k+1)x) = 2 cos(x) sin(kx) - sin((k-1)x): one sine and one cosine whatever the number of harmonics
    (the recurrence in float32 stays within 1e-5 of the sines over a few dozen harmonics)."""
    two_cos = (2.0 * np.cos(phase)).astype(np.float32)
    cur = np.sin(phase).astype(np.float32)
    prev, tmp = np.zeros_like(cur), np.empty_like(cur)
    out = np.float32(amps[0]) * cur
    for a in amps[1:]:
        np.multiply(two_cos, cur, out=tmp)
        tmp -= prev
        prev, cur, tmp = cur, tmp, prev
        np.multiply(cur, np.float32(a), out=tmp)
        out += tmp
    return out, two_cos


def _engine(tl: Timeline, dist: np.ndarray, t: np.ndarray, rate: int, rng: np.random.Generator,
            info: dict[str, Any]) -> np.ndarray:
    """Engine harmonics, combustion noise and pump whine; rpm and level follow the machine's state."""
    cyl = 6 if rng.random() < 0.7 else 4
    if not tl.operating:
        state, rpm0 = "idle", uniform(rng, 700, 900)
    elif tl.driving:
        state, rpm0 = "drive", uniform(rng, 1850, 2100)
    else:
        state, rpm0 = "work", uniform(rng, 1550, 1800)
    dt = 1.0 / CONTROL_RATE
    # the arm's effort: joint speeds of boom and stick (rad/s), 0 for an idle or still arm
    effort = np.abs(np.gradient(tl.alpha, dt)) + np.abs(np.gradient(tl.beta, dt))
    load = np.clip(effort / 0.4, 0.0, 2.0) if tl.operating else np.zeros_like(effort)
    wobble = _smooth_noise(rng, len(tl.times), 25)
    rpm_c = rpm0 * (1.0 - 0.03 * load) * (1.0 + 0.006 * wobble)
    level_c = _ENGINE_LEVEL[state] * (1.0 + 0.6 * load) / np.maximum(dist, _MIN_R)
    rpm = _interp(tl.times, rpm_c, t)
    level = _interp(tl.times, level_c, t)
    fire = rpm / 60.0 * cyl / 2.0                                  # firing frequency (Hz)
    phase = 2.0 * math.pi * np.cumsum(fire) / rate + uniform(rng, 0, 2 * math.pi)
    n_harm = int(max(3, min(14, 1800.0 / (rpm0 / 60.0 * cyl / 2.0))))
    sig, two_cos = _harmonics(phase, [uniform(rng, 0.5, 1.0) * k ** -0.8 for k in range(1, n_harm + 1)])
    # combustion noise, pulsed at the firing rate, band-limited to about 100-1500 Hz
    noise = 0.35 * _coloured_noise(rng, len(t), rate, lambda f: (f > 100) / (1.0 + (f / 1500.0) ** 2),
                                   max(1, rate // 8000))
    sig += noise * (0.5 + 0.25 * np.maximum(0.0, two_cos)) ** 2
    # hydraulic pump whine (9-piston pump on the crank), with the flow the arm draws
    pump = np.sin(phase * 9.0 / (cyl / 2.0)) * 0.25 * _interp(tl.times, np.minimum(load, 1.5), t)
    info.update({"engine_state": state, "engine_cylinders": cyl, "engine_rpm": round(rpm0, 1),
                 "engine_firing_hz": round(rpm0 / 60.0 * cyl / 2.0, 2)})
    return (sig + pump) * level


def _place(out: np.ndarray, onsets: np.ndarray, gains: np.ndarray, template: np.ndarray) -> None:
    """Add ``template`` scaled by each gain at each onset sample (clipped at the clip's end)."""
    n = len(out)
    for o, g in zip(onsets, gains):
        if 0 <= o < n:
            m = min(len(template), n - o)
            out[o:o + m] += g * template[:m]


def _clatter(tl: Timeline, dist: np.ndarray, n: int, rate: int, rng: np.random.Generator,
             info: dict[str, Any]) -> np.ndarray:
    """Metallic clicks of both tracks' shoes while the excavator drives."""
    out = np.zeros(n)
    if not tl.driving or tl.drive_speed <= 0:
        info["clatter_hz"] = 0.0
        return out
    length = int(0.012 * rate)
    tt = np.arange(length) / rate
    ring = min(uniform(rng, 1800, 3500), 0.4 * rate)            # the shoe's ring, below the Nyquist frequency
    template = (rng.normal(0, 1, length) * np.exp(-tt / 0.0015)
                + 0.8 * np.sin(2 * math.pi * ring * tt) * np.exp(-tt / 0.004))
    pitch = uniform(rng, 0.17, 0.21)                              # track shoe pitch (m)
    rate_hz = tl.drive_speed / pitch
    for _ in range(2):                                            # two tracks, not in step
        period = 1.0 / rate_hz
        clicks = np.arange(uniform(rng, 0, period), DURATION_S, period)
        clicks = clicks + rng.normal(0, 0.08 * period, len(clicks))
        gains = _CLATTER_LEVEL * rng.uniform(0.6, 1.0, len(clicks)) / np.maximum(
            _interp(tl.times, dist, clicks), _MIN_R)
        _place(out, np.round(clicks * rate).astype(int), gains, template)
    info["clatter_hz"] = round(2 * rate_hz, 3)
    return out


def _alarm(tl: Timeline, dist: np.ndarray, t: np.ndarray, rate: int, rng: np.random.Generator,
           info: dict[str, Any]) -> np.ndarray:
    """A travel alarm on some driving machines: a square-ish beep, 0.5 s on, 0.5 s off."""
    has = bool(tl.driving and rng.random() < _ALARM_P)
    info["alarm"] = has
    if not has:
        return np.zeros(len(t))
    freq = uniform(rng, 900, 1200)
    cycle = (t + uniform(rng, 0, 1.0)) % 1.0
    gate = np.clip(np.minimum(cycle, 0.5 - cycle) / 0.005, 0.0, 1.0)   # 5 ms ramps, off in [0.5, 1)
    # odd harmonics below the Nyquist frequency: a square-ish beep
    amps = [1.0 / k if k % 2 and k * freq < 0.45 * rate else 0.0 for k in range(1, 6)]
    tone = _harmonics(2 * math.pi * freq * t, amps)[0]
    info["alarm_hz"] = round(freq, 1)
    return tone * gate * _ALARM_LEVEL / np.maximum(_interp(tl.times, dist, t), _MIN_R)


def _footsteps(tl: Timeline, mic: np.ndarray, n: int, rate: int, rng: np.random.Generator,
               info: dict[str, Any]) -> np.ndarray:
    """A thump and a gravel crunch each time a walking worker's walked distance passes a step length."""
    out = np.zeros(n)
    length = int(0.04 * rate)
    tt = np.arange(length) / rate
    crunch = np.diff(rng.normal(0, 1, length + 2), 2) / 2.0           # high-passed noise: gravel
    template = (np.sin(2 * math.pi * uniform(rng, 60, 110) * tt) * np.exp(-tt / 0.012)
                + 0.7 * crunch * np.exp(-tt / 0.008))
    dt = 1.0 / CONTROL_RATE
    counts = []
    for w in tl.workers:
        speed = np.where(w.speed > 0.3, w.speed, 0.0)                  # a shuffle at drift speed is silent
        walked = np.cumsum(speed) * dt
        step = uniform(rng, 0.65, 0.8)
        idx = np.floor(walked / step)
        at = np.flatnonzero(np.diff(idx) > 0) + 1
        times = tl.times[at] + rng.normal(0, 0.01, len(at))
        r = np.hypot(*(w.pos[at, :2] - mic[:2]).T) if len(at) else np.zeros(0)
        r = np.hypot(r, mic[2])
        gains = _FOOT_LEVEL * rng.uniform(0.6, 1.0, len(at)) / np.maximum(r, _MIN_R)
        _place(out, np.round(times * rate).astype(int), gains, template)
        counts.append(int(len(at)))
    info["footsteps"] = counts
    return out


def _background(n: int, rate: int, rng: np.random.Generator, info: dict[str, Any]) -> np.ndarray:
    """Generator hum, wind (low-passed noise in gusts) and distant traffic (pink noise that swells)."""
    t = np.arange(n) / rate

    def envelope(width_s: float, depth: float) -> np.ndarray:
        ctrl = _smooth_noise(rng, int(DURATION_S * CONTROL_RATE) + 1, max(1, int(width_s * CONTROL_RATE)))
        return np.maximum(0.05, 1.0 + depth * np.interp(t, np.arange(len(ctrl)) / CONTROL_RATE, ctrl))

    corner = uniform(rng, 80, 300)
    wind = _coloured_noise(rng, n, rate, lambda f: 1.0 / (1.0 + (f / corner) ** 2), max(1, rate // 2000))
    wind *= envelope(uniform(rng, 0.5, 1.5), 0.5)
    traffic = _coloured_noise(rng, n, rate, lambda f: (f > 60) / np.sqrt(np.maximum(f, 1.0))
                              / (1.0 + (f / 2000.0) ** 2), max(1, rate // 8000))
    traffic *= envelope(uniform(rng, 1.0, 2.0), 0.4)
    hum = np.zeros(n)
    if rng.random() < 0.7:
        mains = 50.0 if rng.random() < 0.7 else 60.0
        amps = [uniform(rng, 0.2, 1.0) / k for k in range(1, 6)]
        hum = _harmonics(2 * math.pi * mains * t + uniform(rng, 0, 6.3), amps)[0].astype(np.float64)
        hum /= max(float(hum.std()), 1e-9)
        info["hum_hz"] = mains
    else:
        info["hum_hz"] = None
    weights = rng.uniform(0.2, 1.0, 3)
    return weights[0] * wind + weights[1] * traffic + weights[2] * hum


def render_audio(tl: Timeline, mic: np.ndarray, rng: np.random.Generator,
                 rate: int = AUDIO_RATE) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    """The microphone's clip: ``audio`` (rate * 4 s,) float32 within [-1, 1], its ``stems`` (float32,
    one per :data:`AUDIO_SOURCES`; they sum to ``audio``) and a JSON-able ``info`` record.

    ``tl`` samples the scene at :data:`CONTROL_RATE`; ``mic`` is the microphone's position (m).
    """
    n = int(round(DURATION_S * rate))
    t = np.arange(n) / rate
    info: dict[str, Any] = {"rate": int(rate), "mic": "camera", "mic_position": np.round(mic, 3).tolist()}
    dist = np.linalg.norm(tl.engine - mic, axis=1)
    track_dist = np.linalg.norm(tl.center + [0.0, 0.0, 0.5] - mic, axis=1)
    stems = {
        "engine": _engine(tl, dist, t, rate, rng, info),
        "clatter": _clatter(tl, track_dist, n, rate, rng, info),
        "alarm": _alarm(tl, dist, t, rate, rng, info),
        "footsteps": _footsteps(tl, mic, n, rate, rng, info),
    }
    fg = stems["engine"] + stems["clatter"] + stems["alarm"] + stems["footsteps"]
    snr = uniform(rng, 0.0, 20.0)
    bg = _background(n, rate, rng, info)
    bg *= math.sqrt(float(np.mean(fg ** 2)) / 10 ** (snr / 10)) / max(float(bg.std()), 1e-12)
    stems["background"] = bg
    gain = _MIC_GAIN * 10 ** (uniform(rng, -4.0, 4.0) / 20)          # the microphone unit's sensitivity
    peak = float(np.abs(fg + bg).max()) * gain
    if peak > 0.98:                                                 # a limiter keeps 16-bit PCM unclipped
        gain *= 0.98 / peak
    info.update({"snr_db": round(snr, 2), "gain": round(gain, 4), "limited": peak > 0.98,
                 "engine_distance_m": round(float(dist.mean()), 3)})
    stems = {k: (v * gain).astype(np.float32) for k, v in stems.items()}
    audio = np.sum([stems[k].astype(np.float64) for k in AUDIO_SOURCES], axis=0).astype(np.float32)
    return audio, stems, info
