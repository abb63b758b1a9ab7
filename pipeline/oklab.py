"""Oklab, a perceptual colour space: sRGB uint8 ↔ Oklab, vectorised in NumPy.

Björn Ottosson's Oklab ("A perceptual color space for image processing", 2020): linear sRGB →
an LMS-like cone response → cube root → L (lightness), a (green–red), b (blue–yellow). Equal
distances there look about equally different, unlike distances between sRGB code values, so
k-means in Oklab spends its palette entries where the eye sees differences. L runs from 0
(black) to 1 (white); a and b stay within about ±0.4 for sRGB colours.

The sRGB transfer function is the exact piecewise one of IEC 61966-2-1, not a 2.2 gamma.
"""

import numpy as np

#: Linear sRGB → LMS (Ottosson's M1, for sRGB primaries and D65 white).
LINEAR_TO_LMS = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)

#: Cube-rooted LMS → Oklab (Ottosson's M2).
LMS_TO_OKLAB = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)

#: Oklab → cube-rooted LMS and LMS → linear sRGB: the inverses, as Ottosson publishes them.
OKLAB_TO_LMS = np.array(
    [
        [1.0, 0.3963377774, 0.2158037573],
        [1.0, -0.1055613458, -0.0638541728],
        [1.0, -0.0894841775, -1.2914855480],
    ]
)
LMS_TO_LINEAR = np.array(
    [
        [4.0767416621, -3.3077115913, 0.2309699292],
        [-1.2684380046, 2.6097574011, -0.3413193965],
        [-0.0041960863, -0.7034186147, 1.7076147010],
    ]
)

#: The sRGB transfer function (IEC 61966-2-1): linear below the threshold, a 2.4 power above.
SRGB_THRESHOLD, SRGB_LINEAR_SLOPE, SRGB_OFFSET, SRGB_GAMMA = 0.04045, 12.92, 0.055, 2.4

#: The same threshold on the linear side (0.04045 / 12.92).
LINEAR_THRESHOLD = 0.0031308


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """sRGB code values scaled to [0, 1] → linear light, elementwise."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(
        values <= SRGB_THRESHOLD,
        values / SRGB_LINEAR_SLOPE,
        ((values + SRGB_OFFSET) / (1 + SRGB_OFFSET)) ** SRGB_GAMMA,
    )


def linear_to_srgb(values: np.ndarray) -> np.ndarray:
    """Linear light → sRGB in [0, 1] scale (not clipped), elementwise; inverse of the above."""
    values = np.asarray(values, dtype=np.float64)
    magnitude = np.abs(values)
    encoded = np.where(
        magnitude <= LINEAR_THRESHOLD,
        magnitude * SRGB_LINEAR_SLOPE,
        (1 + SRGB_OFFSET) * magnitude ** (1 / SRGB_GAMMA) - SRGB_OFFSET,
    )
    return np.copysign(encoded, values)


#: Linear light of each of the 256 sRGB code values: uint8 input converts through this table.
_LINEAR_OF_CODE = srgb_to_linear(np.arange(256) / 255.0)


def srgb_to_oklab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB uint8 (or integer-valued 0–255) → (..., 3) float64 Oklab."""
    rgb = np.asarray(rgb)
    if np.issubdtype(rgb.dtype, np.integer):
        linear = _LINEAR_OF_CODE[rgb]
    else:
        linear = srgb_to_linear(rgb / 255.0)
    return linear_to_oklab(linear)


def linear_to_oklab(linear: np.ndarray) -> np.ndarray:
    """(..., 3) linear sRGB → (..., 3) Oklab."""
    lms = np.cbrt(linear @ LINEAR_TO_LMS.T)
    return lms @ LMS_TO_OKLAB.T


def oklab_to_linear(lab: np.ndarray) -> np.ndarray:
    """(..., 3) Oklab → (..., 3) linear sRGB (may fall outside [0, 1] for out-of-gamut colours)."""
    lms = np.asarray(lab, dtype=np.float64) @ OKLAB_TO_LMS.T
    return (lms * lms * lms) @ LMS_TO_LINEAR.T


def oklab_to_srgb_float(lab: np.ndarray) -> np.ndarray:
    """(..., 3) Oklab → (..., 3) sRGB on the 0–255 scale as floats, clipped to the gamut."""
    return np.clip(linear_to_srgb(oklab_to_linear(lab)) * 255.0, 0.0, 255.0)


def oklab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """(..., 3) Oklab → (..., 3) sRGB uint8, rounded and clipped: how a palette is written."""
    return np.rint(oklab_to_srgb_float(lab)).astype(np.uint8)
