"""Compiled passes of the flatness weights (:mod:`pipeline.flatness`): the 3×3 contrast of
every pixel and its weight in one compiled function, and the per-bin sums of the weights.

In NumPy the contrast took a dozen whole-image passes (padded copies, four subtractions, four
maxima, four sums, a clipped table read): 6.6 ms a photo on the timing mix; the binning a key
pass and a weighted ``bincount`` (4.4 ms). This module imports numba (through
:mod:`pipeline.compiled`), so it is imported only where an image is fitted.
"""

import numpy as np

from pipeline.compiled import njit


@njit(cache=True, inline="always")
def _clamped(i, n):
    """Index i held inside 0..n-1: the edge pixel repeats, as NumPy's ``pad(mode="edge")``."""
    return 0 if i < 0 else (n - 1 if i >= n else i)


#: Rows of the image worked on at a time: the temporaries of a band stay in cache, and no
#: image-sized temporary is allocated (fresh pages of three 8 MB arrays cost more than the
#: arithmetic on a 2 MP photo).
BAND_ROWS = 64


@njit(cache=True)
def _curvature_row(luma, y, out):
    """``out``: |4·L − the four neighbours| along row y, edges repeated."""
    h, w = luma.shape
    up, down, row = luma[_clamped(y - 1, h)], luma[_clamped(y + 1, h)], luma[y]
    for x in range(1, w - 1):  # plain neighbours: the loop vectorises
        v = 4 * np.int32(row[x]) - up[x] - down[x] - row[x - 1] - row[x + 1]
        out[x] = v if v >= 0 else -v
    for x in (0, w - 1):  # the edge pixels, whose missing neighbour is themselves
        left, right = row[_clamped(x - 1, w)], row[_clamped(x + 1, w)]
        v = 4 * np.int32(row[x]) - up[x] - down[x] - left - right
        out[x] = v if v >= 0 else -v


@njit(cache=True)
def contrast_weights(luma, table, out):
    """``out`` (float32, the image's shape): the weight of each pixel, ``table[min(s, last)]``
    where s is the 3×3 sum of the 3×3 maxima of its absolute Laplacian, edges repeated: the
    same integers as NumPy gave with padded whole-image arrays, band by band."""
    h, w = luma.shape
    last = np.uint64(table.shape[0] - 1)
    across_max = np.empty((BAND_ROWS + 4, w), np.int32)  # a row's maxima of 3 along it
    maxima = np.empty((BAND_ROWS + 2, w), np.int32)  # 3×3 maxima
    curvature = np.empty(w, np.int32)
    sums = np.empty(w, np.int32)
    for top in range(0, h, BAND_ROWS):
        bottom = min(top + BAND_ROWS, h)
        first, end = max(top - 2, 0), min(bottom + 2, h)  # rows whose row maxima are needed
        for y in range(first, end):
            _curvature_row(luma, y, curvature)
            target = across_max[y - first]
            for x in range(1, w - 1):
                target[x] = max(max(curvature[x - 1], curvature[x]), curvature[x + 1])
            for x in (0, w - 1):
                left, right = curvature[_clamped(x - 1, w)], curvature[_clamped(x + 1, w)]
                target[x] = max(max(left, curvature[x]), right)
        low, high = max(top - 1, 0), min(bottom + 1, h)  # rows whose 3×3 maxima are needed
        for y in range(low, high):
            above = across_max[_clamped(y - 1, h) - first]
            below = across_max[_clamped(y + 1, h) - first]
            middle, target = across_max[y - first], maxima[y - low]
            for x in range(w):
                target[x] = max(max(above[x], middle[x]), below[x])
        for y in range(top, bottom):
            above = maxima[_clamped(y - 1, h) - low]
            below = maxima[_clamped(y + 1, h) - low]
            middle = maxima[y - low]
            for x in range(w):
                sums[x] = above[x] + middle[x] + below[x]
            row = out[y]
            for x in range(1, w - 1):
                total = sums[x - 1] + sums[x] + sums[x + 1]
                # Unsigned: the sum is never negative, and numba then skips the wrap test.
                row[x] = table[min(np.uint64(total), last)]
            for x in (0, w - 1):
                total = sums[_clamped(x - 1, w)] + sums[x] + sums[_clamped(x + 1, w)]
                row[x] = table[min(np.uint64(total), last)]


@njit(cache=True)
def bin_weights(strip, weights, bits, channels, out):
    """Add each packed pixel's weight into ``out`` at its histogram bin (the top ``bits`` of
    each channel, channel 0 lowest, as :func:`pipeline.pixels.bin_keys`), in pixel order."""
    mask = (1 << bits) - 1
    drop = 8 - bits
    for i in range(strip.shape[0]):
        p = np.int64(strip[i])
        key = 0
        for c in range(channels):
            key |= ((p >> (8 * c + drop)) & mask) << (bits * c)
        out[key] += weights[i]


def warm_up() -> None:
    """Load (or compile, the first time on a machine) the passes on a few pixels."""
    table = np.ones(4, dtype=np.float32)
    out = np.empty((3, 3), dtype=np.float32)
    contrast_weights(np.zeros((3, 3), dtype=np.uint8), table, out)
    bin_weights(np.zeros(2, dtype=np.uint32), np.ones(2, np.float32), 6, 3, np.zeros(1 << 18))
