"""Compiled passes of the RGB histogram: bin counts, exact colour sums and a bit per colour in
one pass over the pixels, and the sorted list of the colours whose bit is set.

In NumPy the same work took a bin-key pass, a bincount, a 16 MB presence table (zeroed, marked,
then scanned). This module imports numba (through :mod:`pipeline.compiled`), so it is imported
only where an image is counted, never by commands that do not quantize.
"""

import numpy as np

from pipeline.colour_ranks import bits_set
from pipeline.compiled import njit


@njit(cache=True)
def rgb_pass(strip, counts, sums, present):
    """Add packed RGB pixels into the 6-bit bins' ``counts`` and ``sums`` ((2^18, 3) int64),
    and set each pixel's colour bit in ``present`` (2^18 uint64 words)."""
    one = np.uint64(1)
    for p in strip:
        c = np.int64(p) & 0xFFFFFF
        r, g, b = c & 255, (c >> 8) & 255, c >> 16
        key = (r >> 2) | ((g >> 2) << 6) | ((b >> 2) << 12)
        counts[key] += 1
        sums[key, 0] += r
        sums[key, 1] += g
        sums[key, 2] += b
        present[c >> 6] |= one << np.uint64(c & 63)


@njit(cache=True)
def _set_bits(present, out):
    """Write the positions of ``present``'s set bits to ``out``, ascending. Set bit by set
    bit (lowest first, its position the count of the bits below it), not all 64 bits of each
    non-empty word: a third of the time on a photo's 10^5 colours."""
    one = np.uint64(1)
    n = 0
    for word_index in range(present.shape[0]):
        word = present[word_index]
        base = word_index << 6
        while word != 0:
            lowest = word & (~word + one)
            out[n] = base + np.int64(bits_set(lowest - one))
            n += 1
            word ^= lowest


def list_colours(present: np.ndarray) -> np.ndarray:
    """The packed colours whose bit is set in ``present``, ascending (uint32)."""
    out = np.empty(int(np.bitwise_count(present).sum()), dtype=np.uint32)
    _set_bits(present, out)
    return out


def warm_up() -> None:
    """Load (or compile, the first time on a machine) the passes on a few pixels."""
    counts = np.zeros(1 << 18, dtype=np.int64)
    sums = np.zeros((1 << 18, 3), dtype=np.int64)
    present = np.zeros(1 << 18, dtype=np.uint64)
    rgb_pass(np.arange(4, dtype=np.uint32), counts, sums, present)
    list_colours(present)
