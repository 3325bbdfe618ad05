"""Procedural RGB-D construction-site simulator (railway works, excavator, workers).

Every clip is a small 3D scene built from boxes standing on a ground plane,
seen by a pinhole camera and rendered with a z-buffer into an RGB sequence
(uint8, ``T,H,W,3``) and an exact metric depth sequence (float32 metres along
the optical axis, ``T,H,W``), optionally degraded the way a monocular depth
estimator would degrade it (:func:`degrade_depth`).

The four classes arise from what the actors do (where the workers walk, what
the excavator does), never from a colour or watermark. The scenario variants
are built so that each modality carries information the other lacks;
``docs/SIMULATOR.md`` lists which cue lives in which modality, and each clip's
``meta["reliance"]`` says which modality is needed to tell it from its nearest
look-alike of another class (:data:`RELIANCE`).

The package by job (private modules; import from here, never from them):

================  =============================================================
``_site``         classes, variants, reliance ground truth and expected order, parts, distances
``_geometry``     boxes, the box list, the pinhole camera
``_render``       the z-buffer rasteriser and shader (boxes -> RGB, depth, parts)
``_actors``       the excavator, workers, posts, track and props as boxes; looks
``_motion``       how the actors move over a clip
``_scene``        one clip's scene over time, computed once (``Scene``)
``_scenarios``    per-variant layout of actors and camera, and its constraints
``_rgbd``         the RGB-D camera: render a scene, sensor exposure and noise
``_depth``        depth degradation (a monocular estimate)
``_clip``         one clip start to finish (:func:`simulate`)
``_dataset``      a dataset on disk (:func:`generate_dataset`)
``_draws``        seeded draws shared by the scene and the degradation
``_timeline``     the scene's actors at any time (for the audio and tag rates)
``_audio``        the site's microphone: engine, clatter, alarm, footsteps, background
``_tags``         the workers' and the machine's tags: location summary, trajectories
``_site_clip``    one clip in five modalities (:func:`simulate_site`)
``_site_dataset`` a five-modality dataset on disk (:func:`generate_site_dataset`)
================  =============================================================

The site's other modalities (audio, tag location, trajectories) are renderers
over the same ``_scene.Scene``, sampled at their own rates by ``_timeline``
and drawn from their own branch of the clip's seed, so the RGB-D arrays stay
those of :func:`simulate`; :data:`RELIANCE5` is their ground truth.
"""
from __future__ import annotations

from core.data.rgbd_sim._clip import SimulatedClip, clip_variant, simulate, simulate_clip
from core.data.rgbd_sim._dataset import generate_dataset, recorded_duration
from core.data.rgbd_sim._depth import degrade_depth
from core.data.rgbd_sim._geometry import Box, Camera
from core.data.rgbd_sim._render import render_boxes
from core.data.rgbd_sim._audio import AUDIO_RATE, AUDIO_SOURCES
from core.data.rgbd_sim._site_clip import SiteClip, simulate_site
from core.data.rgbd_sim._site_dataset import generate_site_dataset
from core.data.rgbd_sim._tags import LOCATION_COLUMNS, TAG_RANGE_M, TRAJECTORY_CHANNELS, TRAJECTORY_RATE
from core.data.rgbd_sim._site import (CABIN_CLOSE_M, CLASSES, DURATION_S, EXPECTED_DEPTH_ORDER, MAX_DEPTH, PART_IDS,
                                      PARTS, RELIANCE, RELIANCE5, SAFE_BUCKET_M, SAFE_CABIN_M, SIMULATOR_VERSION,
                                      SITE_MODALITIES, SITE_VERSION, UNDER_BUCKET_M, VARIANT_WEIGHTS, VARIANTS)

__all__ = [
    "CLASSES",
    "VARIANTS",
    "VARIANT_WEIGHTS",
    "RELIANCE",
    "EXPECTED_DEPTH_ORDER",
    "PARTS",
    "PART_IDS",
    "MAX_DEPTH",
    "DURATION_S",
    "SIMULATOR_VERSION",
    "UNDER_BUCKET_M",
    "CABIN_CLOSE_M",
    "SAFE_BUCKET_M",
    "SAFE_CABIN_M",
    "Camera",
    "Box",
    "render_boxes",
    "SimulatedClip",
    "simulate",
    "simulate_clip",
    "clip_variant",
    "degrade_depth",
    "generate_dataset",
    "recorded_duration",
    "SITE_VERSION",
    "SITE_MODALITIES",
    "RELIANCE5",
    "AUDIO_RATE",
    "AUDIO_SOURCES",
    "LOCATION_COLUMNS",
    "TAG_RANGE_M",
    "TRAJECTORY_CHANNELS",
    "TRAJECTORY_RATE",
    "SiteClip",
    "simulate_site",
    "generate_site_dataset",
]
