"""Image files: read any format Pillow opens, and SVG with the optional resvg-py.

:func:`load_image` returns ``HxWx3`` uint8 with transparency composited on
white; SVG files are rasterised (static rendering, nothing in the file runs)
so that their longer side is the encoder's ``image_size``. :func:`image_problem`
is the cheap check ``prepare`` runs on every image file of a manifest.
Pillow and resvg-py are imported when a file is read, not with the module
(the dashboard's pages import it through :mod:`core.kinds`).
"""
from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import DataError

#: the common raster formats named in messages (Pillow opens more; any it opens is accepted)
COMMON_IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WebP")
SVG_SUFFIXES = (".svg", ".svgz")
#: side in pixels an SVG is rasterised at when no encoder size is known
DEFAULT_SVG_SIZE = 256
MAX_SVG_BYTES = 20_000_000
SVG_FIX = ("install the optional SVG support with `pip install -r requirements-extra.txt` (the package resvg-py; "
           "no system library needed), or convert the files to PNG, e.g. `rsvg-convert -w 256 in.svg -o in.png` "
           "(Debian package librsvg2-bin), and point the manifest at the PNGs")


def supported_image_formats() -> str:
    """The image formats readable here, for messages: the common raster ones, and SVG when resvg-py is installed."""
    from PIL import Image

    Image.init()
    opened = set(Image.OPEN)
    names = [f for f in COMMON_IMAGE_FORMATS if f.upper() in opened]
    return ", ".join(names) + (", SVG" if svg_support() else "") + " (and the other formats Pillow opens)"


def svg_support() -> bool:
    """Whether the optional SVG rasteriser (resvg-py) is installed."""
    import importlib.util

    return importlib.util.find_spec("resvg_py") is not None


def is_svg(path: Path) -> bool:
    """An SVG file, by suffix or by content (``<svg`` near the start)."""
    if path.suffix.lower() in SVG_SUFFIXES:
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(1024).lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    except OSError:
        return False
    return head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head)


def _svg_text(path: Path) -> str:
    with open(path, "rb") as fh:
        data = fh.read(MAX_SVG_BYTES + 1)
    if data[:2] == b"\x1f\x8b":  # .svgz
        with gzip.open(io.BytesIO(data)) as gz:
            data = gz.read(MAX_SVG_BYTES + 1)
    if len(data) > MAX_SVG_BYTES:
        raise ValueError(f"larger than {MAX_SVG_BYTES // 1_000_000} MB")
    return data.decode("utf-8")


def rasterise_svg(path: str | Path, size: int = DEFAULT_SVG_SIZE) -> np.ndarray:
    """Rasterise an SVG file with resvg-py so that its longer side is ``size`` pixels; ``HxWx3`` uint8
    with transparency composited on white. Nothing in the file is executed (resvg renders static SVG)."""
    from PIL import Image

    path = Path(path)
    try:
        import resvg_py
    except ImportError as exc:
        raise DataError(f"image file {path} is an SVG (vector) image, and the optional package resvg-py that "
                        "rasterises it is not installed", fix=SVG_FIX) from exc
    try:
        text = _svg_text(path)
        png = resvg_py.svg_to_bytes(svg_string=text, width=int(size))
        with Image.open(io.BytesIO(bytes(png))) as im:
            if im.height > im.width:  # taller than wide: the height is the longer side
                png = resvg_py.svg_to_bytes(svg_string=text, height=int(size))
        with Image.open(io.BytesIO(bytes(png))) as im:
            return _to_rgb(im)
    except (ValueError, OSError, UnicodeDecodeError, RuntimeError) as exc:
        raise DataError(f"image file {path} is an SVG that cannot be rasterised ({exc})",
                        fix="check that it is a valid SVG (open it in a browser), or convert it to PNG") from exc


def _to_rgb(im: Any) -> np.ndarray:
    from PIL import Image

    im.load()
    if im.mode in ("RGBA", "LA", "P", "PA"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def load_image(path: str | Path, size: int | None = None) -> np.ndarray:
    """Read an image file as ``HxWx3`` uint8; transparency is composited on white.

    SVG files are rasterised (with the optional resvg-py) so that their longer side is
    ``size`` pixels (the encoder's image size; :data:`DEFAULT_SVG_SIZE` when not given).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file {path} does not exist", fix="fix the path in the manifest (paths are relative to it)")
    if is_svg(path):
        return rasterise_svg(path, size or DEFAULT_SVG_SIZE)
    try:
        with Image.open(path) as im:
            return _to_rgb(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"image file {path} is unreadable ({exc})",
                        fix=f"replace or remove that file from the manifest; readable formats: "
                            f"{supported_image_formats()}") from exc


def image_problem(path: Path) -> str | None:
    """Why ``path`` cannot be used as an image (None when it can): a cheap check run at prepare.

    Raster files are opened with Pillow and verified (header and, for PNG, chunk checksums)
    without decoding; SVG files are rasterised at a small size.
    """
    from PIL import Image, UnidentifiedImageError

    if is_svg(path):
        if not svg_support():
            return "SVG, and resvg-py is not installed"
        try:
            rasterise_svg(path, 16)
        except DataError as exc:
            return str(exc.problem).rsplit("(", 1)[-1].rstrip(")")
        return None
    try:
        with Image.open(path) as im:
            im.verify()
    except UnidentifiedImageError:
        return "not an image format Pillow reads"
    except Exception as exc:  # Pillow raises many types for a damaged file
        text = str(exc).replace(str(path), "").strip(" :'\"") or type(exc).__name__
        return f"damaged ({text[:80]})"
    return None
