"""The simulated site's vocabulary and ground truth: classes, scenario variants, reliance, parts.

The four classes arise from what the actors do (where the workers walk, what
the excavator does), never from a colour or watermark. Each class has scenario
variants built so that each modality carries information the other lacks;
:data:`RELIANCE` is the designed ground truth of which modality a variant
needs (``docs/SIMULATOR.md`` explains each one). The distances that define the
classes are here too, so the scene sampler and the tests share them.
"""
from __future__ import annotations

#: Bumped whenever the same settings would render other arrays (it seeds every clip,
#: and ``generate_dataset`` re-renders clip files made by another version).
SIMULATOR_VERSION = 3

CLASSES: list[str] = ["Bucket-Worker", "Cabin-Worker", "Track-Excavator", "Safe"]

#: Scenario variants per class, drawn uniformly from the clip's seed.
VARIANTS: dict[str, tuple[str, ...]] = {
    "Bucket-Worker": ("walk_under", "stand_under"),
    "Cabin-Worker": ("arm_moving", "arm_still"),
    "Track-Excavator": ("drive_to_track",),
    "Safe": (
        "clear",
        "behind_bucket",
        "post_under_bucket",
        "idle_near_cabin",
        "front_of_cabin",
        "drive_parallel_or_away",
    ),
}

#: How often each variant is drawn within its class (relative weights; a variant not named weighs 1). The
#: Safe look-alikes of another class's clips weigh twice the plain Safe scenes, so that each look-alike is seen
#: about as often as a model needs to learn the cue that tells it apart (with equal weights each was 1/24 of
#: the clips, and models learned to call every worker under a bucket a Bucket-Worker).
VARIANT_WEIGHTS: dict[str, int] = {
    "behind_bucket": 2, "post_under_bucket": 2, "idle_near_cabin": 2, "front_of_cabin": 2,
}

#: Which modality alone separates a variant from its nearest look-alike of another
#: class: "rgb", "depth", "either" (each alone suffices) or "both" (needs the two
#: together). This is the designed ground truth for modality reliance.
RELIANCE: dict[str, str] = {
    "walk_under": "depth",
    "stand_under": "both",
    "arm_moving": "depth",
    "arm_still": "both",
    "drive_to_track": "either",
    "clear": "either",
    "behind_bucket": "depth",
    "post_under_bucket": "rgb",
    "idle_near_cabin": "rgb",
    "front_of_cabin": "depth",
    "drive_parallel_or_away": "either",
}

#: The documented ordering of per-variant depth shares (``docs/SIMULATOR.md``, "Cues": "higher
#: depth shares on behind_bucket / front_of_cabin / walk_under than on post_under_bucket /
#: idle_near_cabin"), as tiers from the highest expected depth share to the lowest: the
#: depth-reliant variants, then those that need both or either modality, then the RGB-reliant
#: ones. Variants within a tier are tied. The RGB share follows the reverse order. The trust
#: check (``fusionlens check``, ``docs/TRUST.md``) rank-correlates measured shares against it.
EXPECTED_DEPTH_ORDER: tuple[tuple[str, ...], ...] = (
    ("walk_under", "arm_moving", "behind_bucket", "front_of_cabin"),
    ("stand_under", "arm_still", "drive_to_track", "clear", "drive_parallel_or_away"),
    ("post_under_bucket", "idle_near_cabin"),
)

#: Segmentation ids stored in each clip's ``parts`` array.
PARTS: dict[int, str] = {
    0: "sky",
    1: "ground",
    2: "track",
    3: "excavator_undercarriage",
    4: "excavator_house",
    5: "excavator_cabin",
    6: "excavator_beacon",
    7: "excavator_arm",
    8: "excavator_bucket",
    9: "key_worker",
    10: "other_worker",
    11: "grey_post",
    12: "prop",
}
#: Part name -> segmentation id.
PART_IDS: dict[str, int] = {name: idx for idx, name in PARTS.items()}

MAX_DEPTH = 100.0        # far plane (metres); sky and anything beyond read as this value
DURATION_S = 4.0         # every clip spans 4 s whatever its frame count

# Distances that define the classes (metres, horizontal).
UNDER_BUCKET_M = 0.8       # worker centre within this of the bucket centre = under it
CABIN_CLOSE_M = 1.8        # worker within this of the cabin footprint = too close
SAFE_BUCKET_M = 2.5        # other workers stay at least this far from the bucket
SAFE_CABIN_M = 3.5         # ... and from the cabin

#: Version of the site's other modalities (audio, tag location, trajectories) rendered by ``simulate_site``;
#: bumped whenever the same settings would give other audio, location or trajectories. The RGB-D arrays of a
#: clip are those of ``SIMULATOR_VERSION`` whatever this is.
SITE_VERSION = 1

#: The modalities of a ``simulate_site`` clip, in the order the ground truth names them.
SITE_MODALITIES: tuple[str, ...] = ("rgb", "depth", "audio", "location", "trajectory")

#: For each variant, the smallest sets of the five site modalities that alone separate it from its nearest
#: look-alike(s) of another class ("depth": depth alone suffices; "rgb+depth": the two together, neither
#: alone). The designed ground truth of modality reliance for all five modalities (``docs/SIMULATOR.md``,
#: "Reliance over the five modalities"); ``RELIANCE`` keeps the RGB-vs-depth view.
RELIANCE5: dict[str, tuple[str, ...]] = {
    "walk_under": ("depth",),
    "stand_under": ("rgb+depth", "depth+location"),
    "arm_moving": ("depth",),
    "arm_still": ("rgb+depth", "audio+depth"),
    "drive_to_track": ("rgb", "depth", "trajectory"),
    "clear": ("rgb", "depth", "location", "trajectory"),
    "behind_bucket": ("depth",),
    "post_under_bucket": ("rgb", "location"),
    "idle_near_cabin": ("rgb", "audio"),
    "front_of_cabin": ("depth",),
    "drive_parallel_or_away": ("rgb", "depth", "trajectory"),
}
