"""Stage 4, label: the exact nearest palette colour of every pixel, in bounded time and memory.

Exactness is by construction, not by approximation. A fine histogram bin is a small cube of
colours. When one palette colour is nearer to every point of the cube than any other could be
(its distance to the cube centre, plus the cube's radius, is below every other colour's
distance minus that radius), all pixels in the bin get it through a lookup table. Pixels in the
few remaining bins are compared exactly, in integers, against that bin's candidate colours.
Ties go to the lowest palette index, as ``argmin`` does.
"""

import numpy as np

from pipeline.pixels import bin_corners, bin_keys, unpack

#: Marker in the lookup table for bins whose pixels need the exact per-pixel comparison.
AMBIGUOUS = -1


class Labeler:
    """Labels packed pixels against an integer palette; built once per image."""

    def __init__(self, palette: np.ndarray, occupied_bins: np.ndarray, bits: int):
        self.palette = palette.astype(np.int32)  # (K, channels)
        self.channels = palette.shape[1]
        self.bits = bits
        self.table = np.full(1 << (bits * self.channels), AMBIGUOUS, dtype=np.int16)
        self._candidates = np.zeros((len(self.table), 0), dtype=np.int16)
        self._build(occupied_bins)

    def _build(self, bins: np.ndarray) -> None:
        width = 1 << (8 - self.bits)
        centres = bin_corners(bins, self.bits, self.channels) + (width - 1) / 2.0
        radius = np.sqrt(self.channels) * (width - 1) / 2.0
        pal = self.palette.astype(np.float64)
        distances = np.sqrt(
            np.maximum((centres**2).sum(1)[:, None] - 2.0 * centres @ pal.T + (pal**2).sum(1), 0.0)
        )
        order = np.argsort(distances, axis=1, kind="stable")
        nearest = distances[np.arange(len(bins)), order[:, 0]]
        if len(pal) > 1:
            second = distances[np.arange(len(bins)), order[:, 1]]
            # The 1e-9 margin keeps float rounding from ever declaring a tie clear.
            clear = second - nearest > 2.0 * radius + 1e-9
        else:
            clear = np.ones(len(bins), dtype=bool)
        self.table[bins[clear]] = order[clear, 0]
        unclear = ~clear
        self.ambiguous_bins = int(unclear.sum())
        if not self.ambiguous_bins:
            return
        # Candidates: every colour that could be nearest for some point of the cube.
        reach = distances[unclear] <= (nearest[unclear] + 2.0 * radius + 1e-9)[:, None]
        width_needed = int(reach.sum(1).max())
        ranked = np.where(reach, np.arange(len(pal))[None, :], len(pal))
        ranked.sort(axis=1)
        candidates = ranked[:, :width_needed]
        # Pad with the first candidate: a repeat cannot change the argmin.
        pad = candidates >= len(pal)
        candidates[pad] = np.broadcast_to(candidates[:, :1], candidates.shape)[pad]
        self._slot = np.full(len(self.table), -1, dtype=np.int32)
        self._slot[bins[unclear]] = np.arange(self.ambiguous_bins)
        self._candidates = candidates.astype(np.int16)

    def __call__(self, packed: np.ndarray) -> np.ndarray:
        """Palette index of each packed pixel (int16 array of the same length)."""
        keys = bin_keys(packed, self.bits, self.channels)
        labels = self.table[keys]
        unsure = np.flatnonzero(labels == AMBIGUOUS)
        if len(unsure):
            labels[unsure] = self._exact(packed[unsure], keys[unsure])
        return labels

    def _exact(self, packed: np.ndarray, keys: np.ndarray) -> np.ndarray:
        candidates = self._candidates[self._slot[keys]]  # (n, C)
        colors = unpack(packed, self.channels).astype(np.int32)  # (n, channels)
        diff = self.palette[candidates] - colors[:, None, :]
        distances = np.einsum("ijk,ijk->ij", diff, diff)
        return candidates[np.arange(len(candidates)), distances.argmin(axis=1)]


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
