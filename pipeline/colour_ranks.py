"""Labels of a large RGB image's pixels, looked up by the rank of each pixel's colour.

An RGB photo is labelled once per distinct colour, and each pixel then takes its colour's label.
A table of 2^24 labels indexed by the packed colour did that in one lookup, but a photo's
colours reach nearly every page of it: 16 MB resident on a 24 MP photo (625,000 colours), on top
of its 96 MB decoded image and 24 MB of labels, about 5% of the whole process's peak memory.

The histogram already holds a bit per colour (``present``, 2 MB), so a colour's rank among the
sorted distinct colours is the number of set bits before its own: the count before its 64-bit
word (kept per word, 1 MB) plus the set bits below it in that word. Its label is then
``labels[rank]``, one byte per distinct colour. One compiled pass does that per pixel about as
fast as NumPy's table lookup. This module imports numba (through :mod:`pipeline.compiled`), so
it is imported only where pixels are labelled.
"""

from dataclasses import dataclass

import numpy as np

from pipeline.compiled import njit


@njit(cache=True)
def bits_set(word):
    """Set bits of a uint64 (the usual SWAR count, on unsigned constants only: numba turns
    mixed signed/unsigned arithmetic into floats)."""
    word = word - ((word >> np.uint64(1)) & np.uint64(0x5555555555555555))
    word = (word & np.uint64(0x3333333333333333)) + (
        (word >> np.uint64(2)) & np.uint64(0x3333333333333333)
    )
    word = (word + (word >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (word * np.uint64(0x0101010101010101)) >> np.uint64(56)


@njit(cache=True)
def _lookup(strip, present, before, labels, out):
    """``out[i]`` = the label of pixel ``strip[i]``'s colour, by its rank (see the module)."""
    one = np.uint64(1)
    for i in range(strip.shape[0]):
        colour = np.int64(strip[i]) & 0xFFFFFF
        word = colour >> 6
        below = present[word] & ((one << np.uint64(colour & 63)) - one)
        out[i] = labels[before[word] + np.int64(bits_set(below))]


@dataclass
class RankedLabels:
    """The label of each distinct colour of an RGB image, found from a packed colour by its
    rank: ``present`` is the histogram's bit per colour (2^18 uint64 words), ``labels`` the
    labels of the sorted distinct colours (uint8, one per set bit)."""

    present: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        bits = np.bitwise_count(self.present).astype(np.int32)
        self.before = np.zeros(len(bits), dtype=np.int32)  # set bits in the words before
        np.cumsum(bits[:-1], out=self.before[1:])

    def __call__(self, packed: np.ndarray) -> np.ndarray:
        """The label (uint8) of each packed RGB pixel; its colour must be one of the image's."""
        out = np.empty(len(packed), dtype=np.uint8)
        _lookup(packed, self.present, self.before, self.labels, out)
        return out


def warm_up() -> None:
    """Load (or compile, the first time on a machine) the lookup on a few pixels."""
    present = np.zeros(1 << 18, dtype=np.uint64)
    present[0] = np.uint64(0b1011)
    RankedLabels(present, np.arange(3, dtype=np.uint8))(np.array([0, 1, 3], dtype=np.uint32))
