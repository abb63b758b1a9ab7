"""Stage 1, load: open an image safely and bring it to upright 8-bit RGB or RGBA.

Safety comes first: only regular files inside the input tree are opened, only allowlisted
decoders run, and the pixel count is checked from the header before any pixel is decoded.
"""

import functools
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.settings import ALLOWED_FORMATS, max_pixels

#: Modes that carry transparency once converted; they are quantized as RGBA.
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})

#: 16-bit and wider single-channel modes that Pillow would clip, not scale, when converting to L.
WIDE_GRAY_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})


class ImageRejected(Exception):
    """A file that is not a usable image. The message is the one-line reason shown to users."""


@dataclass
class LoadedImage:
    """An upright 8-bit image ready to quantize: ``image`` is in mode RGB or RGBA."""

    image: Image.Image
    bytes_in: int
    format: str
    icc_profile: bytes | None = None  # kept so the output shows the same colours as the source

    @property
    def has_alpha(self) -> bool:
        return self.image.mode == "RGBA"


def check_inside(path: Path, root: Path) -> Path:
    """Resolve ``path`` and require it to stay inside ``root``; return the resolved path."""
    real = Path(os.path.realpath(path))
    real_root = Path(os.path.realpath(root))
    if real != real_root and real_root not in real.parents:
        raise ImageRejected("path leaves the input tree; not read")
    return real


def load_image(path: Path, root: Path) -> LoadedImage:
    """Open, validate and decode one file. Raises ImageRejected with a one-line reason."""
    real = check_inside(path, root)
    try:
        stat = os.stat(real)
    except FileNotFoundError:
        raise ImageRejected("file not found") from None
    except OSError as exc:
        raise ImageRejected(f"cannot read file: {exc.strerror}") from None
    if not os.path.isfile(real):
        raise ImageRejected("not a regular file")
    if stat.st_size == 0:
        raise ImageRejected("empty file (0 bytes)")
    limit = max_pixels()
    decoders = register_decoders()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open(real, "rb") as handle, _pixel_limit(limit):
                image = Image.open(handle, formats=decoders)
                _check_size(image, limit)
                fmt = image.format or "image"
                image.seek(0)
                image.load()
                icc_profile = image.info.get("icc_profile")
                # In place: a returned copy would hold a second full image in memory.
                ImageOps.exif_transpose(image, in_place=True)
                upright = _to_working_mode(image)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(_bomb_reason(str(exc), limit)) from None
    except UnidentifiedImageError:
        raise ImageRejected("not an image (or not a supported format)") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        raise ImageRejected(_decode_reason(exc, locals().get("fmt"))) from None
    except MemoryError:
        raise ImageRejected("out of memory while decoding") from None
    if image.mode == "CMYK":
        icc_profile = None  # a CMYK profile does not describe the converted RGB
    return LoadedImage(upright, stat.st_size, fmt, icc_profile or None)


@functools.cache
def register_decoders() -> tuple[str, ...]:
    """Register every plugin (Pillow's own, and pillow-heif's HEIF decoder for the phones' HEIC
    photos) once per process, and return the allowlisted formats this install can decode.
    A name with no decoder behind it (no pillow-heif, a Pillow built without AVIF) would make
    ``Image.open`` raise KeyError for every file, so it is left out instead."""
    Image.init()
    try:
        import pillow_heif
    except ImportError:  # an install without it reads every other format
        pass
    else:
        pillow_heif.register_heif_opener(thumbnails=False)
    return tuple(name for name in ALLOWED_FORMATS if name in Image.OPEN)


class _pixel_limit:
    """Replaces Pillow's bomb check by ours (same idea, our limit and our message) for one open.

    Pillow checks width × height in ``Image.open`` from the header; :func:`_check_size` does the
    same right after it, still before any pixel is decoded.
    """

    def __init__(self, limit: int):
        self.limit = limit

    def __enter__(self):
        self.saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None

    def __exit__(self, *exc):
        Image.MAX_IMAGE_PIXELS = self.saved


def _check_size(image: Image.Image, limit: int) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageRejected(f"image has no pixels ({width}×{height})")
    if width * height > limit:
        raise ImageRejected(
            f"{width}×{height} exceeds the {_megapixels(limit)} MP limit (COLORQUANT_MAX_PIXELS)"
        )


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:g}"


def _bomb_reason(message: str, limit: int) -> str:
    return (
        f"decompression bomb: {message.split('.')[0].lower()}; the limit is {_megapixels(limit)} MP"
    )


def _decode_reason(exc: Exception, fmt: str | None) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    kind = fmt or "image"
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return f"truncated {kind} file"
    return f"cannot decode {kind}: {text}"


def _to_working_mode(image: Image.Image) -> Image.Image:
    """Bring any Pillow mode to 8-bit RGB, or RGBA when the image has transparency."""
    mode = image.mode
    if mode in WIDE_GRAY_MODES:
        return _wide_gray_to_rgb(image)
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in ALPHA_MODES or (mode in ("P", "L", "RGB") and "transparency" in image.info):
        return _drop_opaque_alpha(image if mode == "RGBA" else image.convert("RGBA"))
    return image.convert("RGB")


def _drop_opaque_alpha(image: Image.Image) -> Image.Image:
    """An alpha channel that is 255 everywhere carries nothing: such an image is quantized as
    RGB, so its output gets no transparency chunk and its metrics cover the three channels."""
    return image.convert("RGB") if image.getchannel("A").getextrema() == (255, 255) else image


def _wide_gray_to_rgb(image: Image.Image) -> Image.Image:
    """Scale 16-bit (or float) gray to 0–255 by value range, not by clipping."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        top = 1.0 if values.size and np.nanmax(values) <= 1.0 else 255.0
    elif image.mode == "I" and values.size and values.max() <= 255 and values.min() >= 0:
        top = 255.0
    else:
        top = 65535.0
    scaled = np.clip(np.rint(np.nan_to_num(values) * (255.0 / top)), 0, 255).astype(np.uint8)
    return Image.fromarray(scaled, "L").convert("RGB")
