"""A tiny seeded image+text dataset for tests, examples and benchmarks.

Each class is a shape drawn in a colour; its title names the colour (so text
alone is informative) and its description names the shape with some noise.
The files it writes are an ordinary manifest, exactly what a user provides.
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


def make_synthetic_manifest(folder: str | Path, *, n_classes: int = 4, per_class: int = 12, seed: int = 0,
                            image_size: int = 24, with_split: bool = False) -> Path:
    """Write PNGs and ``manifest.csv`` (id, label, image, title, description[, split])."""
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    colours = list(COLOURS)
    rows = []
    for c in range(n_classes):
        shape, colour = SHAPES[c % len(SHAPES)], colours[c % len(colours)]
        for i in range(per_class):
            sid = f"{shape}-{i:03d}"
            _draw(shape, COLOURS[colour], image_size, rng).save(folder / "images" / f"{sid}.png")
            # the title says the colour most of the time; the description names the shape
            title_colour = colour if rng.random() < 0.8 else colours[int(rng.integers(len(colours)))]
            rows.append({
                "id": sid, "label": shape, "image": f"images/{sid}.png",
                "title": f"{rng.choice(FILLERS)} {title_colour} thing",
                "description": f"{rng.choice(FILLERS)} {shape if rng.random() < 0.7 else rng.choice(SHAPES)} drawing",
            })
    frame = pd.DataFrame(rows)
    if with_split:
        frame["split"] = np.where(frame.groupby("label").cumcount() % 5 == 0, "test",
                                  np.where(frame.groupby("label").cumcount() % 5 == 1, "val", "train"))
    path = folder / "manifest.csv"
    frame.to_csv(path, index=False)
    return path
