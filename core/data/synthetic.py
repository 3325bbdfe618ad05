"""A tiny seeded image+text dataset for tests, examples and benchmarks.

Each class is a shape drawn in a colour; its title names the colour (so text
alone is informative) and its description names the shape with some noise.
Optionally each item comes in tone variants sharing a ``group`` (like emoji
skin tones) and some description cells are empty. :func:`make_synthetic_clips`
writes tiny RGB-D clips (``.npy`` arrays and folders of PNG frames). The files
these write are ordinary manifests, exactly what a user provides.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

SHAPES = ["circle", "square", "triangle", "cross", "ring", "bar"]
COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "orange": (240, 150, 20),
           "purple": (140, 50, 180), "teal": (20, 160, 160)}
FILLERS = ["a", "one", "the", "small", "big", "simple", "drawn"]


def _draw(shape: str, colour: tuple[int, int, int], size: int, rng: np.random.Generator) -> Image.Image:
    im = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(200, 256, 3)))
    d = ImageDraw.Draw(im)
    m = int(size * rng.uniform(0.12, 0.25))
    box = [m, m, size - m, size - m]
    if shape == "circle":
        d.ellipse(box, fill=colour)
    elif shape == "square":
        d.rectangle(box, fill=colour)
    elif shape == "triangle":
        d.polygon([(size / 2, m), (m, size - m), (size - m, size - m)], fill=colour)
    elif shape == "cross":
        w = max(2, size // 6)
        d.rectangle([size / 2 - w, m, size / 2 + w, size - m], fill=colour)
        d.rectangle([m, size / 2 - w, size - m, size / 2 + w], fill=colour)
    elif shape == "ring":
        d.ellipse(box, outline=colour, width=max(2, size // 8))
    else:
        d.rectangle([m, size / 2 - size // 8, size - m, size / 2 + size // 8], fill=colour)
    arr = np.asarray(im).astype(np.int16) + rng.integers(-12, 13, (size, size, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


#: tone variants of an item (like emoji skin tones): the shape's colour scaled by the factor
TONES = {"light": 1.0, "medium": 0.75, "dark": 0.5}


def make_synthetic_manifest(folder: str | Path, *, n_classes: int = 4, per_class: int = 12, seed: int = 0,
                            image_size: int = 24, with_split: bool = False, variants: int = 1,
                            empty_description: float = 0.0) -> Path:
    """Write PNGs and ``manifest.csv`` (id, label[, group], image, title, description[, split]).

    ``per_class`` items per class; with ``variants`` > 1 each item also comes in up to
    ``len(TONES) - 1`` darker tones (ids ``<item>-<tone>``, title ``... thing: <tone> tone``)
    that share the item's ``group``. A fraction ``empty_description`` of the description cells
    is left empty. The defaults write exactly the manifest of earlier versions.
    """
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    extra = np.random.default_rng([seed, 1])  # variants and empty cells: the default draws stay as they were
    tones = list(TONES)[1:max(1, min(int(variants), len(TONES)))]
    colours = list(COLOURS)
    rows = []
    for c in range(n_classes):
        shape, colour = SHAPES[c % len(SHAPES)], colours[c % len(colours)]
        for i in range(per_class):
            sid = f"{shape}-{i:03d}"
            _draw(shape, COLOURS[colour], image_size, rng).save(folder / "images" / f"{sid}.png")
            # the title says the colour most of the time; the description names the shape
            title_colour = colour if rng.random() < 0.8 else colours[int(rng.integers(len(colours)))]
            row = {
                "id": sid, "label": shape, "image": f"images/{sid}.png",
                "title": f"{rng.choice(FILLERS)} {title_colour} thing",
                "description": f"{rng.choice(FILLERS)} {shape if rng.random() < 0.7 else rng.choice(SHAPES)} drawing",
            }
            item = [row]
            for tone in tones:
                vid = f"{sid}-{tone}"
                tinted = tuple(int(v * TONES[tone]) for v in COLOURS[colour])
                _draw(shape, tinted, image_size, extra).save(folder / "images" / f"{vid}.png")
                item.append({**row, "id": vid, "image": f"images/{vid}.png", "title": f"{row['title']}: {tone} tone"})
            for r in item:
                if variants > 1:
                    r["group"] = sid
                if empty_description and extra.random() < empty_description:
                    r["description"] = ""
            rows += item
    frame = pd.DataFrame(rows)
    if variants > 1:
        frame = frame[["id", "label", "group", "image", "title", "description"]]
    if with_split:
        frame["split"] = np.where(frame.groupby("label").cumcount() % 5 == 0, "test",
                                  np.where(frame.groupby("label").cumcount() % 5 == 1, "val", "train"))
    path = folder / "manifest.csv"
    frame.to_csv(path, index=False)
    return path


#: classes of :func:`make_synthetic_clips`: a crate close to the camera or far from it
CLIP_CLASSES = {"near": 1200, "far": 4000}  # depth of the crate in millimetres


def make_synthetic_clips(folder: str | Path, *, n_clips: int = 20, frames: int = 6, size: int = 16, seed: int = 0,
                         frame_folders: float = 0.5) -> Path:
    """Write tiny RGB-D clips and ``clips.csv`` (id, label, rgb, depth): a crate slides across a
    floor; near the camera it looks large and its depth is small, far away small and deep, so
    both modalities tell the class (``near`` / ``far``).

    A fraction ``frame_folders`` of the clips is stored as folders of PNG frames
    (``clips/<id>/rgb/frame_000.png``, 8-bit RGB, and ``clips/<id>/depth/frame_000.png``, 16-bit
    grey in millimetres), the others as ``.npy`` arrays (``clips/<id>/rgb.npy`` (T,H,W,3) uint8,
    ``clips/<id>/depth.npy`` (T,H,W) uint16 millimetres): the same units in both forms.
    """
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    labels = list(CLIP_CLASSES)
    rows = []
    for k in range(n_clips):
        label = labels[k % len(labels)]
        cid = f"clip-{k:03d}"
        near = label == "near"
        side = int(size * (rng.uniform(0.45, 0.6) if near else rng.uniform(0.15, 0.25)))
        colour = rng.integers(60, 230, 3)
        y0 = int(rng.integers(0, size - side + 1))
        x_start, x_end = rng.integers(0, size - side + 1, 2)
        rgb = np.empty((frames, size, size, 3), np.uint8)
        depth = np.empty((frames, size, size), np.uint16)
        floor = np.linspace(6000, 2500, size, dtype=np.float64)[:, None]  # far at the top, near at the bottom
        for t in range(frames):
            x0 = int(round(x_start + (x_end - x_start) * t / max(frames - 1, 1)))
            img = np.clip(rng.normal(110, 12, (size, size, 3)), 0, 255)
            img[y0:y0 + side, x0:x0 + side] = colour
            rgb[t] = img.astype(np.uint8)
            d = np.repeat(floor, size, axis=1) + rng.normal(0, 40, (size, size))
            d[y0:y0 + side, x0:x0 + side] = CLIP_CLASSES[label] + rng.normal(0, 40)
            depth[t] = np.clip(d, 1, 65535).astype(np.uint16)
        out = folder / "clips" / cid
        out.mkdir(parents=True, exist_ok=True)
        if rng.random() < frame_folders:
            for name, clip in (("rgb", rgb), ("depth", depth)):
                (out / name).mkdir(exist_ok=True)
                for t, frame in enumerate(clip):
                    Image.fromarray(frame).save(out / name / f"frame_{t:03d}.png")
            rows.append({"id": cid, "label": label, "rgb": f"clips/{cid}/rgb", "depth": f"clips/{cid}/depth"})
        else:
            np.save(out / "rgb.npy", rgb)
            np.save(out / "depth.npy", depth)
            rows.append({"id": cid, "label": label, "rgb": f"clips/{cid}/rgb.npy", "depth": f"clips/{cid}/depth.npy"})
    path = folder / "clips.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
