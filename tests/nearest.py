"""Reference nearest-colour search for the tests, written apart from pipeline/label.py.

Distances are plain squared differences, one colour against every palette colour. Oklab is
computed here from Björn Ottosson's published formulas, not through pipeline/oklab.py, so a
mistake there cannot hide itself.
"""

import numpy as np

#: Tolerance on Oklab distances (working scale, Oklab × 255): two palette colours whose
#: distances differ by less than this are a tie that float rounding may break either way.
OKLAB_TIE = 1e-6


def reference_oklab(rgb: np.ndarray) -> np.ndarray:
    """(n, 3) sRGB 0–255 → (n, 3) Oklab × 255, straight from the formulas."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    r, g, b = linear[:, 0], linear[:, 1], linear[:, 2]
    long = np.cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b)
    medium = np.cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b)
    short = np.cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b)
    lightness = 0.2104542553 * long + 0.7936177850 * medium - 0.0040720468 * short
    green_red = 1.9779984951 * long - 2.4285922050 * medium + 0.4505937099 * short
    blue_yellow = 0.0259040371 * long + 0.7827717662 * medium - 0.8086757660 * short
    return np.stack([lightness, green_red, blue_yellow], axis=1) * 255.0


def coordinates(colors: np.ndarray, space: str) -> np.ndarray:
    """Colours (n, 3 or 4) on the 0–255 scale in the coordinates of ``space``; alpha kept."""
    colors = np.asarray(colors, dtype=np.float64)
    if space == "rgb":
        return colors
    return np.column_stack([reference_oklab(colors[:, :3]), colors[:, 3:]])


def distances(colors: np.ndarray, palette: np.ndarray, space: str) -> np.ndarray:
    """(n, K) squared distances of every colour to every palette colour in ``space``."""
    diff = coordinates(colors, space)[:, None, :] - coordinates(palette, space)[None, :, :]
    return (diff * diff).sum(axis=2)


def brute_force_labels(colors: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """RGB: the nearest palette colour by exact integer distance, lowest index on a tie."""
    diff = colors.astype(np.int64)[:, None, :] - palette.astype(np.int64)[None, :, :]
    return (diff * diff).sum(axis=2).argmin(axis=1)


def assert_nearest(labels: np.ndarray, colors: np.ndarray, palette: np.ndarray, space: str):
    """Every label is a nearest palette colour in ``space``: exactly the lowest-index one in
    RGB; in Oklab, any whose distance is within OKLAB_TIE of the minimum."""
    labels = np.asarray(labels).astype(np.intp)
    if space == "rgb":
        expected = brute_force_labels(colors, palette)
        wrong = np.flatnonzero(labels != expected)
        assert not len(wrong), f"{len(wrong)} wrong labels, first at {wrong[:5]}"
        return
    table = distances(colors, palette, space)
    chosen = table[np.arange(len(labels)), labels]
    excess = chosen - table.min(axis=1)
    assert excess.max(initial=0) <= OKLAB_TIE, f"a label is {excess.max():.3g} too far"
