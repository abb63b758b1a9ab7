"""Named settings of the image pipeline, each with what it is and why it has its value."""

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
    }
)

#: Pillow decoders we allow. Image.open sniffs content, so without this list a file named .png
#: could reach any parser, EPS (Ghostscript) included.
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "DIB", "PPM")

#: Environment variable that sets the pixel limit (width × height) an image may have.
MAX_PIXELS_ENV = "COLORQUANT_MAX_PIXELS"

#: Default pixel limit: 120 MP, above any camera photo of today, below a decompression bomb.
DEFAULT_MAX_PIXELS = 120_000_000

#: Smallest and largest palette size accepted for -k.
MIN_COLORS, MAX_COLORS = 2, 256

#: Default error-diffusion strength (``--dither``): 0 is exact labelling, 1 passes on all of
#: each pixel's error. Chosen by benchmarks/dither.py (SSIMULACRA2 at pngquant's file size).
DEFAULT_DITHER = 1.0

#: The methods a user can pick.
METHODS = ("kmeans", "random")

#: Suffix of the palette sidecar written next to every output PNG.
PALETTE_SUFFIX = ".palette.json"

#: Marker inside the names of temp files, so a later writer can find and remove leftovers.
TEMP_MARKER = ".colorquant-tmp-"

#: Pixels processed per strip when building histograms and labels, bounding memory on big photos.
STRIP_PIXELS = 1 << 18

#: zlib level of the indexed PNGs; 6 is Pillow's and libpng's default balance of size and time.
PNG_COMPRESS_LEVEL = 6


def max_pixels() -> int:
    """The pixel limit in force: COLORQUANT_MAX_PIXELS if set, else DEFAULT_MAX_PIXELS."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(raw))
    except ValueError:
        raise ValueError(f"{MAX_PIXELS_ENV}={raw!r} is not a number of pixels") from None
    if value <= 0:
        raise ValueError(f"{MAX_PIXELS_ENV} must be positive, got {raw}")
    return value
