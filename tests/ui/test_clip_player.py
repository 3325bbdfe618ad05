"""The clip player: a sample's clips and audio playing in sync with their contributions (the figure
builder, the frame rate it is told, the Sample explorer on a tiny site experiment, and the figure
playing in Chromium)."""
from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from core.data import frame_rate
from core.errors import ConfigError, DataError
from core.kinds import get_kind
from core.kinds.audio import spectrogram_of, wav_bytes
from tests._experiments import SITE_RUN, TINY_SITE, built_experiment
from tests._tolerance import f32_atol
from ui import figures as F
from ui.figures.clips import MAX_FRAMES, MAX_SIDE, MIN_FRAME_MS, player_frames

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RATE = 8000


def _rgb(t: int = 8, side: int = 16) -> np.ndarray:
    """An RGB clip whose frame k has the value 10 * k everywhere (so a frame is recognised by its pixels)."""
    return np.stack([np.full((side, side, 3), 10 * k, dtype=np.uint8) for k in range(t)])


def _depth(t: int = 8, side: int = 16) -> np.ndarray:
    """A depth clip (metres) from 1 m to 1 + t m, frame k at 1 + k m, one hole (NaN) in every frame."""
    clip = np.stack([np.full((side, side, 1), 1.0 + k, dtype=np.float32) for k in range(t)])
    clip[:, 0, 0] = np.nan
    return clip


def _tubes(values: tuple[float, ...]) -> np.ndarray:
    """Tube contributions of a 2 x 2 grid, one temporal slice per value."""
    return np.stack([np.full((2, 2), v) for v in values])


def _audio(seconds: float = 4.0, explained: bool = True) -> F.AudioTrack:
    wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * RATE)) / RATE)).astype(np.float32)
    db, times, edges = spectrogram_of(wave, sample_rate=RATE, n_mels=16)
    patches = pd.DataFrame([{"band": b, "segment": s, "mel_lo": edges[8 * b], "mel_hi": edges[8 * b + 8],
                             "t0_ms": s * 2000, "t1_ms": s * 2000 + 2000, "phi": 4.0 if (b, s) == (1, 1) else 0.5}
                            for b in range(2) for s in range(2)]) if explained else None
    return F.AudioTrack("audio", db, times, edges, seconds, patches)


def _decoded(value) -> np.ndarray:
    """An array of a figure's JSON (plotly writes numpy arrays as base64 with a dtype and a shape)."""
    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return arr.reshape([int(s) for s in str(shape).split(",")]) if shape else arr
    return np.asarray(value)


# --------------------------------------------------------------------------- the figure


def test_one_picture_per_clip_modality_in_the_runs_order_each_titled_in_its_colour():
    fig = F.make_clip_player_figure({"rgb": _rgb(), "depth": _depth()}, modalities=["rgb", "depth", "audio"],
                                    fps=2.0)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["<b>RGB</b>", "<b>Depth</b>"]
    assert [a.font.color for a in fig.layout.annotations] == [F.modality_color("rgb", ["rgb", "depth", "audio"]),
                                                              F.modality_color("depth", ["rgb", "depth", "audio"])]
    rgb, depth = fig.data
    assert isinstance(rgb, go.Image) and (rgb.xaxis, depth.xaxis) == ("x", "x2")  # one subplot each
    assert isinstance(depth, go.Heatmap) and depth.colorbar.title.text == "Depth"  # the depth scale, not grey RGB
    assert (depth.zmin, depth.zmax) == (1.0, 8.0)  # fixed over the clip: playing never rescales it
    assert np.isnan(depth.z[0, 0]) and depth.z[1, 1] == 1.0  # a hole stays a hole
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis2.scaleanchor == "x2"  # square pixels


def test_every_frame_is_an_animation_frame_with_play_pause_and_a_slider_in_seconds():
    fig = F.make_clip_player_figure({"rgb": _rgb(), "depth": _depth()}, fps=2.0)
    assert [f.name for f in fig.frames] == [str(k) for k in range(8)]
    for k, frame in enumerate(fig.frames):  # frame k shows frame k of each clip
        rgb, depth = frame.data
        assert np.all(np.asarray(rgb.z) == 10 * k) and np.nanmax(depth.z) == 1.0 + k
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label.split()[-1] for b in buttons] == ["Play", "Pause"]
    assert buttons[0].args[1]["frame"]["duration"] == 500  # real time: 2 fps
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == [f"{k / 2:.2f} s" for k in range(8)]
    assert [list(s.args[0]) for s in steps] == [[str(k)] for k in range(8)]
    assert fig.layout.sliders[0].currentvalue.prefix == "Time: "
    assert "8 frames at 2 fps (4.0 s)" in fig.layout.title.subtitle.text


def test_without_a_frame_rate_the_slider_counts_frames():
    fig = F.make_clip_player_figure({"rgb": _rgb(5)})
    assert [s.label for s in fig.layout.sliders[0].steps] == ["1", "2", "3", "4", "5"]
    assert fig.layout.sliders[0].currentvalue.prefix == "Frame: "
    assert "frame rate unknown" in fig.layout.title.subtitle.text


def test_overlays_are_drawn_where_explained_on_one_scale_and_follow_the_tubes():
    fig = F.make_clip_player_figure({"rgb": _rgb(), "depth": _depth()},
                                    {"rgb": _tubes((-2.0, 0.5)), "depth": _tubes((1.0, 3.0))}, fps=2.0)
    rgb, rgb_tubes, depth, depth_tubes = fig.data
    assert (rgb_tubes.zmin, rgb_tubes.zmax) == (-3.0, 3.0) == (depth_tubes.zmin, depth_tubes.zmax)  # shared
    assert rgb_tubes.showscale and not depth_tubes.showscale  # one colour bar reads both
    assert rgb_tubes.xaxis == "x" and depth_tubes.xaxis == "x2"
    # frames 0-3 are the first temporal slice, 4-7 the second
    assert [float(np.asarray(f.data[1].z).max()) for f in fig.frames] == [-2.0] * 4 + [0.5] * 4
    assert [float(np.asarray(f.data[3].z).max()) for f in fig.frames] == [1.0] * 4 + [3.0] * 4
    assert list(fig.frames[0].traces) == [0, 1, 2, 3]
    # one modality explained, the other not: only its overlay
    half = F.make_clip_player_figure({"rgb": _rgb(), "depth": _depth()}, {"rgb": None, "depth": _tubes((1.0,))})
    assert [type(t).__name__ for t in half.data] == ["Image", "Heatmap", "Heatmap"]
    assert half.data[2].colorscale[0][1] == F.CONTRIBUTION_COLORSCALE[0][1]
    unexplained = F.make_clip_player_figure({"rgb": _rgb(), "depth": _depth()})
    assert len(unexplained.data) == 2 and "no explanation yet" in unexplained.layout.title.subtitle.text


def test_the_audio_cursor_moves_with_the_frames_and_the_patches_share_the_scale():
    fig = F.make_clip_player_figure({"rgb": _rgb(), "depth": _depth()},
                                    {"rgb": _tubes((-2.0, 0.5)), "depth": None}, audio=[_audio()], fps=2.0)
    names = [t.name for t in fig.data]
    assert names[-1] == "audio cursor" and fig.data[-1].xaxis == "x3"  # the spectrogram's subplot
    spectrogram, patches = fig.data[-3], fig.data[-2]
    assert spectrogram.xaxis == patches.xaxis == "x3" and not spectrogram.showscale and not patches.showscale
    assert (patches.zmin, patches.zmax) == (-4.0, 4.0) == (fig.data[1].zmin, fig.data[1].zmax)  # one scale
    cursor = len(fig.data) - 1
    assert all(f.traces[-1] == cursor for f in fig.frames)
    assert [list(f.data[-1].x) for f in fig.frames] == [[k / 2, k / 2] for k in range(8)]  # at each frame's time
    assert [a.text for a in fig.layout.annotations][-1].startswith("<b>Audio</b>")
    assert fig.layout.xaxis3.title.text == "Time (s)" and "1k" in fig.layout.yaxis3.ticktext
    # no frame rate: the clip spans the audio's seconds, and the subtitle says so
    derived = F.make_clip_player_figure({"rgb": _rgb()}, audio=[_audio(seconds=2.0, explained=False)])
    assert [list(f.data[-1].x)[0] for f in derived.frames] == pytest.approx([k / 4 for k in range(8)])
    assert "assume the clip spans the audio's 2.0 s" in derived.layout.title.subtitle.text
    assert [type(t).__name__ for t in derived.data] == ["Image", "Heatmap", "Scatter"]  # no patches: none drawn
    only_audio = F.make_clip_player_figure({"rgb": _rgb()}, audio=[_audio()], fps=2.0)
    assert "differ in length" not in only_audio.layout.title.subtitle.text  # 8 frames at 2 fps: the audio's 4 s
    longer = F.make_clip_player_figure({"rgb": _rgb()}, audio=[_audio(seconds=6.0)], fps=2.0)
    assert "the clip (4.0 s) and audio (6.0 s) differ in length" in longer.layout.title.subtitle.text
    assert only_audio.data[2].showscale and not only_audio.data[1].showscale  # the patches' bar, never a dB bar


def test_a_long_large_clip_is_capped_in_frames_and_pixels_and_says_so():
    t, side = 300, 240
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (t, side, side, 3), dtype=np.uint8)
    depth = rng.random((t, side, side, 1)).astype(np.float32) * 10
    fig = F.make_clip_player_figure({"rgb": rgb, "depth": depth}, {"rgb": rng.normal(size=(4, 3, 3)), "depth": None},
                                    audio=[_audio(seconds=10.0)], fps=30.0)
    kept = player_frames(t)
    assert len(fig.frames) == len(kept) <= MAX_FRAMES and kept[0] == 0 and kept[-1] == t - 1
    image = np.asarray(fig.data[0].z)
    assert image.dtype == np.uint8 and max(image.shape[:2]) <= MAX_SIDE and image.shape[:2] == (80, 80)
    # the first picture is the average of 3 x 3 blocks of the first frame
    np.testing.assert_allclose(image[0, 0], rgb[0, :3, :3].reshape(-1, 3).mean(axis=0), atol=0.5 + f32_atol(255, 9))
    assert max(np.shape(fig.frames[-1].data[0].z)[:2]) <= MAX_SIDE
    subtitle = fig.layout.title.subtitle.text
    assert f"{len(kept)} evenly spaced frames of 300 shown" in subtitle and "240x240 to 80x80 px" in subtitle
    assert len(fig.to_json()) < 3_500_000  # bounded: 32 frames of 80 px in two modalities, and the spectrogram
    # a step of ~9.6 frames at 30 fps lasts ~320 ms: real time, above the redraw floor
    assert fig.layout.updatemenus[0].buttons[0].args[1]["frame"]["duration"] >= MIN_FRAME_MS
    # 30 frames a second kept whole would be shown faster than a browser redraws: slowed, and said so
    fast = F.make_clip_player_figure({"rgb": _rgb(20)}, fps=30.0)
    assert fast.layout.updatemenus[0].buttons[0].args[1]["frame"]["duration"] == MIN_FRAME_MS
    assert "plays at 0.33x speed" in fast.layout.title.subtitle.text


def test_clips_of_different_lengths_share_the_timeline():
    fig = F.make_clip_player_figure({"rgb": _rgb(8), "depth": _depth(4)}, fps=2.0)
    assert len(fig.frames) == 8
    assert [float(np.nanmax(f.data[1].z)) for f in fig.frames] == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]


def test_bad_input_is_refused_and_no_clip_says_so():
    with pytest.raises(DataError, match=r"clip 'rgb' must be \(T, H, W\[, C\]\)"):
        F.make_clip_player_figure({"rgb": np.zeros((4, 4))})
    with pytest.raises(DataError, match="not a frame rate"):
        F.make_clip_player_figure({"rgb": _rgb()}, fps=0.0)
    with pytest.raises(DataError, match="tube values"):
        F.make_clip_player_figure({"rgb": _rgb()}, {"rgb": np.zeros(3)})
    empty = F.make_clip_player_figure({})
    assert "no clips" in empty.layout.annotations[0].text and not empty.frames


# --------------------------------------------------------------------------- frame rate, sound bytes


class _Data:
    def __init__(self, root: Path, options: dict) -> None:
        self.root, self.options = root, options


def test_the_frame_rate_comes_from_the_option_or_the_simulators_record(tmp_path):
    assert frame_rate(_Data(tmp_path, {"rgb": {"fps": 25}}), "rgb", 16) == 25.0
    assert frame_rate(_Data(tmp_path, {}), "rgb", 16) is None  # a user's clips without fps: unknown
    (tmp_path / "simulator.json").write_text(json.dumps({"duration_s": 4.0, "frames": 16}))
    assert frame_rate(_Data(tmp_path, {}), "rgb", 16) == 4.0  # the simulator's 16 frames over 4 s
    (tmp_path / "simulator.json").write_text("{not json")
    assert frame_rate(_Data(tmp_path, {}), "rgb", 16) is None  # unreadable: unknown, never a crash
    frame = pd.DataFrame({"id": ["a"], "rgb": ["a.npy"]})
    with pytest.raises(ConfigError, match=r"fps = -1 is not a frame rate"):
        get_kind("video").check_cells(frame, "rgb", {"fps": -1}, {})
    assert get_kind("video").check_cells(frame, "rgb", {"fps": 12.5}, {}) is frame


def test_wav_bytes_round_trip():
    sf = pytest.importorskip("soundfile")
    import io

    wave = (0.5 * np.sin(np.arange(800) / 7.0)).astype(np.float32)
    back, rate = sf.read(io.BytesIO(wav_bytes(wave, RATE)), dtype="float32")
    assert rate == RATE and back.shape == wave.shape
    np.testing.assert_allclose(back, wave, atol=1.0 / 32768 + f32_atol())  # 16-bit PCM: one step


# --------------------------------------------------------------------------- the Sample explorer


@pytest.fixture(scope="module")
def site_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A tiny site experiment (RGB, depth and audio of 16 simulated clips, 8 frames of 16 px over 4 s),
    trained, with one test sample explained."""
    from core.data import load_experiment_dataset
    from core.explain import explain_sample

    with built_experiment(tmp_path_factory.mktemp("site-player"), TINY_SITE) as (_, root):
        ds, _ = load_experiment_dataset(root / "tiny-site")
        sample = ds.ids("test")[0]
        explain_sample(root / "tiny-site" / SITE_RUN, sample, store=True)
        yield root, sample


def test_the_explorer_plays_the_clips_and_audio_once_full_width(site_root, monkeypatch):
    from streamlit.testing.v1 import AppTest

    root, sample = site_root
    monkeypatch.setenv("FUSIONLENS_RUNS", str(root))
    built = []
    monkeypatch.setattr(F, "make_clip_player_figure",
                        lambda *a, _make=F.make_clip_player_figure, **k: built.append(1) or _make(*a, **k))
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120)
    for key, value in {"page": "explorer", "exp": "tiny-site", "run": SITE_RUN, "sample": sample}.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, "\n".join(str(e.value) for e in at.exception)
    assert not at.error, "\n".join(str(e.value) for e in at.error)
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    players = [s for s in specs if s["layout"]["title"]["text"] == "RGB + Depth + Audio: the clip playing"]
    assert len(players) == 1  # once, not per modality
    player = players[0]
    # full width below the two columns (in the detail column its pictures were ~110 px); the viewers stay there
    in_columns = [json.loads(c.proto.spec)["layout"]["title"]["text"] for col in at.columns
                  for c in col.get("plotly_chart")]
    assert "rgb: frame 1 of 8, tube contributions" in in_columns
    assert player["layout"]["title"]["text"] not in in_columns
    assert [t["type"] for t in player["data"]] == ["image", "heatmap", "heatmap", "heatmap", "heatmap", "heatmap",
                                                   "scatter"]  # rgb + tubes, depth + tubes, spectrogram + patches
    assert len(player["frames"]) == 8
    # the simulator's 8 frames span 4 s: 2 fps; the cursor is at each frame's time
    assert [s["label"] for s in player["layout"]["sliders"][0]["steps"]] == [f"{k / 2:.2f} s" for k in range(8)]
    assert [_decoded(f["data"][-1]["x"]).tolist() for f in player["frames"]] == [[k / 2, k / 2] for k in range(8)]
    assert "8 frames at 2 fps (4.0 s)" in player["layout"]["title"]["subtitle"]["text"]
    assert _decoded(player["data"][0]["z"]).shape == (16, 16, 3)
    # the frame slider is kept for stepping; one audio player (by the clip player), with its note
    assert {s.key for s in at.slider} >= {"frame_rgb", "frame_depth"}
    assert len(at.get("audio")) == 1
    assert any("plays on its own" in c.value for c in at.caption)
    assert len(built) == 1
    at.slider(key="frame_rgb").set_value(5).run()  # stepping still works, and the player is served from the cache
    assert not at.exception and len(built) == 1
    assert any(s["layout"]["title"]["text"] == "rgb: frame 5 of 8, tube contributions"
               for s in (json.loads(c.proto.spec) for c in at.get("plotly_chart")))


# --------------------------------------------------------------------------- in a browser


@pytest.mark.e2e
def test_the_player_renders_and_plays_in_chromium(tmp_path):
    from tests._browser import CHROMIUM, chromium_page

    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing: install it with `apt-get install -y chromium`")
    pytest.importorskip("playwright.sync_api")
    fig = F.make_clip_player_figure({"rgb": _rgb(), "depth": _depth()}, {"rgb": _tubes((-2.0, 0.5))},
                                    audio=[_audio()], fps=2.0)
    page_file = tmp_path / "player.html"
    fig.write_html(page_file, include_plotlyjs=True, auto_play=False)  # plotly.js inline: no network
    with chromium_page(1100, 1000) as page:
        page.goto(page_file.as_uri())
        page.wait_for_selector(".plotly .main-svg")
        assert page.locator("g.updatemenu-button").count() == 2
        assert page.locator("g.updatemenu-button").first.text_content().endswith("Play")
        assert page.locator(".layer-above image, .imagelayer image, g.im image").count() >= 1  # pictures drawn
        page.locator("g.updatemenu-button").first.click()
        deadline = time.monotonic() + 20
        active = 0
        while time.monotonic() < deadline and active < 3:
            active = page.evaluate("() => document.querySelector('.plotly-graph-div')._fullLayout.sliders[0].active")
            time.sleep(0.2)
        assert active >= 3  # it plays: the slider follows the frames
        cursor = page.evaluate("() => { const gd = document.querySelector('.plotly-graph-div');"
                               " return gd._fullData[gd._fullData.length - 1].x[0]; }")
        assert cursor == pytest.approx(active / 2, abs=0.5 + 1e-9)  # the cursor within a frame of the slider


# --------------------------------------------------------------------------- in the report


def test_the_reports_clip_cards_show_frames_the_spectrogram_and_a_player(site_root, monkeypatch):
    import re

    from core.explain import Explanation
    from ui.report import write_report

    root, sample = site_root
    # the tiny model's prediction barely depends on its inputs (a "flat" explanation, drawn without
    # overlays); taken as not flat here, so the overlays of the explained card are drawn
    monkeypatch.setattr(Explanation, "flat", property(lambda self: False))
    document = write_report(root, "tiny-site", SITE_RUN, output=root.parent / "site.html").read_text(encoding="utf-8")
    samples = document[document.index('<section id="samples">'):]
    # every card: the first and the middle frame of each clip; the explained one with its tubes over them
    assert "frame 1 of 8" in samples and "frame 5 of 8" in samples
    assert "tube contributions" in samples
    assert "Audio: patch contributions" in samples or "Audio: log-mel spectrogram" in samples
    # the clip player of at most two cards, waiting for Play (plotly's autoplay would hide the pictures)
    assert "<h3>Clips playing</h3>" in samples and "at most 32 evenly spaced frames of at most 96 pixels" in samples
    players = re.findall(r'"text":"[^"]*true [^"]*predicted [^"]*"', samples)
    assert 1 <= len(players) <= 2
    assert "Plotly.addFrames" in samples and "Plotly.animate" not in samples
