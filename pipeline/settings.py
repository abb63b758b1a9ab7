"""Named settings of the image pipeline, each with what it is and why it has its value."""

import math
import os

#: File name endings treated as images; anything else in a folder is ignored, not failed.
IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".png",
        ".apng",
        ".gif",
        ".webp",
        ".tif",
        ".tiff",
        ".bmp",
        ".dib",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
        ".heic",
        ".heif",
        ".hif",
        ".avif",
    }
)

#: Pillow decoders we allow. Image.open sniffs content, so without this list a file named .png
#: could reach any parser, EPS (Ghostscript) included.
#: HEIF (HEIC) is decoded by pillow-heif's libheif, AVIF by Pillow's own libavif plugin.
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "DIB", "PPM", "HEIF", "AVIF")

#: Environment variable that sets the pixel limit (width × height) an image may have.
MAX_PIXELS_ENV = "COLORQUANT_MAX_PIXELS"

#: Default pixel limit: 120 MP, above any camera photo of today, below a decompression bomb.
DEFAULT_MAX_PIXELS = 120_000_000

#: Smallest and largest palette size accepted for -k.
MIN_COLORS, MAX_COLORS = 2, 256

#: Largest seed: seeds are 32-bit, as numpy's RandomState takes them.
MAX_SEED = 2**32 - 1

#: Default error-diffusion strength (``--dither``): 0 is exact labelling, 1 passes on all of
#: each pixel's error. Chosen by benchmarks/dither.py (SSIMULACRA2 at pngquant's file size).
DEFAULT_DITHER = 1.0

#: The methods a user can pick.
METHODS = ("kmeans", "random")

#: The colour spaces k-means can measure distance in; the first is the default.
SPACES = ("oklab", "rgb")

#: The levels of ``--metrics``: ``basic`` (MSE, PSNR, counts; the default) or ``full`` (adds
#: SSIMULACRA2, which costs more than the quantization itself).
METRICS_LEVELS = ("basic", "full")

#: Image formats ``--format`` accepts; the first is the default.
IMAGE_FORMATS = ("png", "webp", "gif")

#: Palette file formats ``--export`` writes beside each output, by file extension.
EXPORT_FORMATS = ("gpl", "act", "ase", "css")

#: Where each image's palette comes from (``--palette``), besides a palette file.
PER_IMAGE, SHARED = "per-image", "shared"

#: The shared palette's file in OUT (``--palette shared``); its exports sit beside it.
SHARED_PALETTE_NAME = "palette.json"

#: Suffix of the palette sidecar written next to every output PNG.
PALETTE_SUFFIX = ".palette.json"

#: Marker inside the names of temp files, so a later writer can find and remove leftovers.
TEMP_MARKER = ".colorquant-tmp-"

#: Pixels processed per strip when building histograms and labels, bounding memory on big photos.
STRIP_PIXELS = 1 << 18

#: Deflate level of the indexed PNGs (zlib-ng's levels; see pipeline.save). Measured on the
#: timing mix at K=64 (output of --dither 0): level 6 wrote 2.01 MB in 15 ms a photo, level 5
#: 2.06 MB in 10 ms; the standard library's zlib at 6 wrote 2.02 MB in 31 ms.
PNG_COMPRESS_LEVEL = 6

#: Deflate level of dithered PNGs. Dithered indices are noisy, and the dearer levels spend their
#: lazy match search on them for little. zlib-ng's level 3 wrote the quality mix's default
#: results at K=16/64/256 in 3/5/7 ms a photo, 1.3% smaller / 1.0% smaller / 1.0% larger than
#: the standard library's zlib at level 4 (8/11/12 ms); its level 4 is about 1% smaller again
#: for up to a third more time (24 MP photo: 0.19 s at level 3, 0.25 s at 4, 6.93 and 6.78 MB).
PNG_DITHERED_COMPRESS_LEVEL = 3

#: Key of a quantized image's ``info`` that marks it as dithered (the PNG writer reads it).
DITHERED_INFO = "colorquant_dithered"


def positive_env_number(
    env: str, default: float, unit: str = "number", *, whole: bool = False
) -> float:
    """The positive number in environment variable ``env``, or ``default`` when it is unset.

    The one parser of numeric settings for both runners. ``whole`` truncates to an int first (so
    0.5 pixels is refused, not read as 0). A bad value raises ValueError with a one-line reason
    naming the variable, which the CLI prints as a usage error.
    """
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{env}={raw!r} is not a {unit}") from None
    if not math.isfinite(value):
        raise ValueError(f"{env}={raw!r} is not a {unit}")
    if whole:
        value = int(value)
    if value <= 0:
        raise ValueError(f"{env} must be positive, got {raw}")
    return value


def max_pixels() -> int:
    """The pixel limit in force: COLORQUANT_MAX_PIXELS if set, else DEFAULT_MAX_PIXELS."""
    return positive_env_number(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS, "number of pixels", whole=True)
