"""The colour space k-means measures distance in: ``rgb`` (the seed's) or ``oklab``.

Both are handled as "working coordinates" on a 0–255-like scale, so the fitting code (its
tolerances and integer grid) serves both unchanged:

* ``rgb``: the sRGB code values themselves.
* ``oklab``: Oklab × 255, so L runs 0–255 and a, b stay within about ±100. Alpha, when there is
  one, rides along as a fourth coordinate on its 0–255 scale (as in ``rgb``), so a step from
  opaque to transparent weighs like one from black to white.

Palettes are always written in sRGB: :func:`from_working` maps centres back, clipped to the gamut.
"""

import numpy as np

from pipeline.oklab import oklab_to_srgb_float, srgb_to_oklab
from pipeline.settings import SPACES

__all__ = ["SPACES", "from_working", "to_working"]

#: Oklab coordinates are multiplied by this, to share the 0–255 scale of the RGB code values.
OKLAB_SCALE = 255.0


def to_working(colors: np.ndarray, space: str) -> np.ndarray:
    """(n, 3 or 4) sRGB(A) colours on the 0–255 scale (integers or floats) → float64 working
    coordinates of ``space``."""
    colors = np.asarray(colors)
    if space == "rgb":
        return colors.astype(np.float64)
    out = np.empty(colors.shape, dtype=np.float64)
    out[:, :3] = srgb_to_oklab(colors[:, :3]) * OKLAB_SCALE
    out[:, 3:] = colors[:, 3:]
    return out


def from_working(centres: np.ndarray, space: str) -> np.ndarray:
    """Working coordinates of ``space`` → float sRGB(A) on the 0–255 scale (to be rounded)."""
    centres = np.asarray(centres, dtype=np.float64)
    if space == "rgb":
        return centres
    out = np.empty(centres.shape, dtype=np.float64)
    out[:, :3] = oklab_to_srgb_float(centres[:, :3] / OKLAB_SCALE)
    out[:, 3:] = centres[:, 3:]
    return out
