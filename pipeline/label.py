"""Stage 4, label: the exact nearest palette colour of every pixel, in bounded time and memory.

Exact by arithmetic, not by approximation. For a colour x and palette colour c (integers 0–255),
``|c|² − 2·x·c`` is an integer of magnitude below 2^20, and so is every partial sum a matrix
product forms on the way. float32 holds every integer below 2^24 exactly, so one float32 matrix
product gives the exact squared distances (up to ``|x|²``, the same for every palette colour of a
row), in whatever order BLAS adds them. ``argmin`` then picks the nearest colour, and among exact
ties the lowest palette index.

An RGB photo has far fewer distinct colours than pixels, so the labels are usually computed once
per distinct colour and written into a 2^24-entry table indexed by the packed colour; labelling a
pixel is then a single lookup (:func:`fill_color_table`).
"""

import numpy as np

from pipeline.pixels import unpack

#: Colours per block of the matrix product: (block × K) float32 stays within a few MB.
BLOCK_COLORS = 4096


class Labeler:
    """Exact nearest palette colour of packed colours; built once per palette."""

    def __init__(self, palette: np.ndarray):
        palette = np.asarray(palette)
        self.palette = palette.astype(np.int64)  # (K, channels)
        self.channels = palette.shape[1]
        pal = palette.astype(np.float32)
        self._minus_2c = np.ascontiguousarray(-2.0 * pal.T)  # (channels, K), exact integers
        self._norms = (pal * pal).sum(axis=1)  # exact integers below 2^18

    def __call__(self, packed: np.ndarray) -> np.ndarray:
        """Palette index of each packed colour (uint8 array of the same length)."""
        colors = unpack(np.asarray(packed, dtype=np.uint32), self.channels)
        labels = np.empty(len(colors), dtype=np.uint8)
        if len(self.palette) == 1:
            labels[:] = 0
            return labels
        for start in range(0, len(colors), BLOCK_COLORS):
            block = colors[start : start + BLOCK_COLORS].astype(np.float32)
            distances = block @ self._minus_2c
            distances += self._norms
            labels[start : start + BLOCK_COLORS] = distances.argmin(axis=1)
        return labels


def fill_color_table(labeler: Labeler, distinct: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Write the exact label of each distinct packed RGB colour into ``table`` (2^24 uint8).

    Entries of colours not listed keep whatever they held. Returns ``table``.
    """
    table[distinct] = labeler(distinct)
    return table


def brute_force_labels(colors: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Reference labelling: argmin over every palette colour. For tests and small inputs."""
    diff = colors.astype(np.int64)[:, None, :] - palette.astype(np.int64)[None, :, :]
    return (diff * diff).sum(axis=2).argmin(axis=1)


def squared_error(packed: np.ndarray, labels: np.ndarray, palette: np.ndarray) -> int:
    """Sum over pixels and channels of (source − palette colour)², exactly, as an integer."""
    channels = palette.shape[1]
    colors = unpack(packed, channels).astype(np.int32)
    diff = colors - palette.astype(np.int32)[labels]
    return int(np.einsum("ij,ij->", diff, diff, dtype=np.int64))
