"""Perceptual quality: the SSIMULACRA2 score of a result against its source.

SSIMULACRA2 (Cloudinary / JPEG XL) compares two images in the XYB colour space over six scales,
with SSIM-like terms plus terms for ringing and blur, mapped to a score where about 90 is
visually lossless, 70 high quality, 50 medium and 30 low (it can go below 0). It costs more than
the quantization itself (about 1.5 s per megapixel with the ``ssimulacra2`` package, pure
NumPy/SciPy), so it is computed only when asked for (``--metrics full``).

Transparency: the score is taken with both images composited on a dark and on a light
background, and the worse of the two is kept, so an error hidden by one background still counts.
"""

import io

import numpy as np
from PIL import Image

#: Grey levels (0–1) of the backgrounds a transparent image is composited on.
BACKGROUNDS = (0.1, 0.9)

#: Smallest width and height SSIMULACRA2 can score (its first scale needs 8×8 pixels).
MIN_SIDE = 8


def ssimulacra2_score(source: Image.Image, result: Image.Image) -> float | None:
    """SSIMULACRA2 of ``result`` against ``source`` (same size; any modes Pillow converts to
    RGBA); None for images too small to score."""
    if min(source.size) < MIN_SIDE:
        return None
    original = np.asarray(source.convert("RGBA"), dtype=np.float64)
    distorted = np.asarray(result.convert("RGBA"), dtype=np.float64)
    opaque = original[..., 3].min() == 255 and distorted[..., 3].min() == 255
    backgrounds = BACKGROUNDS[:1] if opaque else BACKGROUNDS
    return min(_score(_flatten(original, b), _flatten(distorted, b)) for b in backgrounds)


def _flatten(rgba: np.ndarray, background: float) -> np.ndarray:
    """RGBA (0–255 floats) composited on a grey background → RGB uint8."""
    alpha = rgba[..., 3:] / 255.0
    rgb = rgba[..., :3] * alpha + background * 255.0 * (1.0 - alpha)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _score(original: np.ndarray, distorted: np.ndarray) -> float:
    from ssimulacra2 import compute_ssimulacra2  # scipy: only where a score is asked for

    return float(compute_ssimulacra2(_ppm(original), _ppm(distorted)))


def _ppm(rgb: np.ndarray) -> io.BytesIO:
    """An in-memory uncompressed image the package can open (it reads files, not arrays)."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PPM")
    buffer.seek(0)
    return buffer
