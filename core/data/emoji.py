"""The embedded image+text demo: Twitter emoji artwork and names.

Source: the npm package ``emoji-datasource-twitter`` (graphics by Twitter,
CC-BY 4.0), fetched with ``npm pack`` into a cache folder outside git and
never committed. Modalities: ``image`` (the 64 px PNG), ``title`` (the emoji
name) and ``description`` (its short names as words). Label: the emoji
subcategory. Skin-tone variants share their base emoji's ``group`` so a split
never puts an emoji and its variants on both sides.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pandas as pd

from core.errors import DataError
from core.io import atomic_path

PACKAGE = "emoji-datasource-twitter"
VERSION = "16.0.0"
MODALITIES = {"image": "image", "title": "text", "description": "text"}
SKIN_TONES = {
    "1F3FB": "light skin tone", "1F3FC": "medium-light skin tone", "1F3FD": "medium skin tone",
    "1F3FE": "medium-dark skin tone", "1F3FF": "dark skin tone",
}


def cache_root() -> Path:
    """Where downloaded third-party data lives (``$FUSIONLENS_CACHE`` or ``~/.cache/fusionlens``)."""
    return Path(os.environ.get("FUSIONLENS_CACHE", Path.home() / ".cache" / "fusionlens")).expanduser()


def fetch_emoji_package(cache: Path | None = None, version: str = VERSION) -> Path:
    """Download and unpack the npm package once; return its ``package/`` folder."""
    folder = (cache or cache_root()) / f"{PACKAGE}-{version}"
    package = folder / "package"
    if (package / "emoji.json").is_file() and (package / "img" / "twitter" / "64").is_dir():
        return package
    npm = shutil.which("npm")
    if npm is None:
        raise DataError(
            "the emoji demo data needs npm to fetch the package emoji-datasource-twitter, and npm is not installed",
            fix=f"install Node.js/npm (e.g. apt-get install -y npm), or run `npm pack {PACKAGE}@{version}` elsewhere "
            f"and unpack the .tgz so that {package}/emoji.json exists",
        )
    folder.mkdir(parents=True, exist_ok=True)
    try:
        out = subprocess.run([npm, "pack", f"{PACKAGE}@{version}", "--silent"], cwd=folder, check=True,
                             capture_output=True, text=True, timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise DataError(f"`npm pack {PACKAGE}@{version}` failed: {detail.strip()[-500:]}",
                        fix="check access to the npm registry, or unpack the package by hand into " + str(folder)) from exc
    tgz = folder / out.stdout.strip().splitlines()[-1]
    staging = folder / "package.partial"
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(tgz) as tar:
        members = [m for m in tar.getmembers()
                   if m.name in ("package/emoji.json", "package/LICENSE", "package/README.md")
                   or m.name.startswith("package/img/twitter/64/")]
        tar.extractall(staging, members=members, filter="data")
    shutil.rmtree(package, ignore_errors=True)
    os.replace(staging / "package", package)
    shutil.rmtree(staging, ignore_errors=True)
    tgz.unlink(missing_ok=True)
    return package


def _words(short_names: list[str]) -> str:
    return " ".join(s.replace("_", " ").replace("-", " ") for s in short_names).strip()


def build_emoji_manifest(cache: Path | None = None, version: str = VERSION) -> Path:
    """Write ``manifest.csv`` (id, label, group, image, title, description) beside the package."""
    package = fetch_emoji_package(cache, version)
    manifest = package.parent / "manifest.csv"
    if manifest.is_file():
        return manifest
    records = json.loads((package / "emoji.json").read_text())
    img_dir = package / "img" / "twitter" / "64"
    rows = []
    for e in records:
        if not e.get("has_img_twitter"):
            continue
        name = (e.get("name") or e["short_name"]).lower()
        desc = _words(e.get("short_names") or [e["short_name"]])
        variants = [(e["unified"], e["image"], name, desc)]
        for tone_key, v in (e.get("skin_variations") or {}).items():
            if not v.get("has_img_twitter", True):
                continue
            tones = ", ".join(SKIN_TONES.get(t, t) for t in tone_key.split("-"))
            variants.append((v["unified"], v["image"], f"{name}: {tones}", f"{desc} {tones}"))
        for uid, image, title, description in variants:
            if not (img_dir / image).is_file():
                continue
            rows.append({"id": uid, "label": e["subcategory"], "group": e["unified"],
                         "image": f"package/img/twitter/64/{image}", "title": title, "description": description})
    frame = pd.DataFrame(rows).drop_duplicates("id")
    with atomic_path(manifest) as tmp:
        frame.to_csv(tmp, index=False)
    return manifest
