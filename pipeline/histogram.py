"""Stage 2, sample (all pixels): the colour histogram that the k-means fit runs on.

A histogram bin holds every colour that shares the top bits of each channel. For each bin we
keep the pixel count and the per-channel sums, so a bin stands for its pixels by their exact
mean colour, weighted by their number. K-means on these weighted means is k-means on all pixels
with the one constraint that a bin's pixels share a cluster.
"""

from dataclasses import dataclass

import numpy as np

from pipeline.pixels import PixelSource, bin_keys

#: Bits per channel of the fine histogram: 6 for RGB (262,144 bins), 5 for RGBA (1,048,576).
FINE_BITS = {3: 6, 4: 5}

#: Pixel count above which the distinct colours of an RGBA image are not counted exactly.
#: RGB uses a 2^24 presence table; RGBA would need 2^32, so it sorts, which costs O(n log n).
RGBA_DISTINCT_LIMIT = 16_000_000


@dataclass
class ColorHistogram:
    """Counts and colour sums per fine bin, plus what the image holds beyond the bins."""

    channels: int
    bits: int
    counts: np.ndarray  # (bins,) int64
    sums: np.ndarray  # (bins, channels) float64
    distinct: np.ndarray | None  # sorted packed distinct colours (opaque ones for RGBA)
    distinct_count: int
    transparent_count: int
    transparent_sum: np.ndarray  # RGB sum over fully transparent pixels

    def points(self, bits: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Non-empty bins as (mean colours, weights), optionally merged to coarser ``bits``."""
        counts, sums = self.counts, self.sums
        if bits is not None and bits < self.bits:
            counts, sums = _coarsen(counts, sums, self.bits, bits, self.channels)
        nonempty = np.flatnonzero(counts)
        weights = counts[nonempty].astype(np.float64)
        return sums[nonempty] / weights[:, None], weights


def build_histogram(source: PixelSource) -> ColorHistogram:
    """One pass over the pixels: fine-bin counts and sums, distinct colours, transparency."""
    channels = source.channels
    bits = FINE_BITS[channels]
    size = 1 << (bits * channels)
    counts = np.zeros(size, dtype=np.int64)
    sums = np.zeros((channels, size), dtype=np.float64)
    present = np.zeros(1 << 24, dtype=bool) if channels == 3 else None
    opaque_parts = []
    transparent_count = 0
    transparent_sum = np.zeros(3)
    for strip in source.strips():
        if channels == 4:
            clear = (strip >> 24) == 0
            if clear.any():
                transparent_count += int(clear.sum())
                transparent_sum += _channel_sums(strip[clear], 3)
                strip = strip[~clear]
            if source.count <= RGBA_DISTINCT_LIMIT:
                opaque_parts.append(np.unique(strip))
        else:
            present[strip & 0xFFFFFF] = True
        keys = bin_keys(strip, bits, channels)
        counts += np.bincount(keys, minlength=size)
        for channel in range(channels):
            weights = (strip >> (8 * channel)) & 0xFF
            sums[channel] += np.bincount(keys, weights=weights, minlength=size)
    if present is not None:
        distinct = np.flatnonzero(present).astype(np.uint32)
        distinct_count = len(distinct)
    elif source.count <= RGBA_DISTINCT_LIMIT:
        distinct = (
            np.unique(np.concatenate(opaque_parts)) if opaque_parts else np.empty(0, np.uint32)
        )
        distinct_count = len(distinct)
    else:
        distinct, distinct_count = None, int(np.count_nonzero(counts))
    return ColorHistogram(
        channels,
        bits,
        counts,
        sums.T.copy(),
        distinct,
        distinct_count,
        transparent_count,
        transparent_sum,
    )


def _channel_sums(packed: np.ndarray, channels: int) -> np.ndarray:
    return np.array([((packed >> (8 * c)) & 0xFF).sum(dtype=np.int64) for c in range(channels)])


def _coarsen(counts, sums, bits, coarse_bits, channels):
    """Merge fine bins into coarser ones by summing blocks of the bin grid."""
    factor = 1 << (bits - coarse_bits)
    side = 1 << coarse_bits
    shape = []
    for _ in range(channels):
        shape[:0] = [side, factor]  # channel 0 is the fastest-varying axis
    axes = tuple(range(1, 2 * channels, 2))
    coarse_counts = counts.reshape(shape).sum(axis=axes).ravel()
    coarse_sums = np.stack(
        [sums[:, c].reshape(shape).sum(axis=axes).ravel() for c in range(channels)], axis=1
    )
    return coarse_counts, coarse_sums
