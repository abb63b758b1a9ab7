"""Stage 2, sample (all pixels): the colour histogram that the k-means fit runs on.

A histogram bin holds every colour that shares the top bits of each channel. For each bin we
keep the pixel count and its mean colour, so a bin stands for its pixels, weighted by their
number. K-means on these weighted means is k-means on all pixels with the one constraint that a
bin's pixels share a cluster. The same pass lists the image's distinct colours (exactly: the
``colors_in`` metric and the labelling table depend on it).
"""

from dataclasses import dataclass

import numpy as np

from pipeline.pixels import PixelSource, bin_corners, bin_keys, mark_rgb, unpack

#: Bits per channel of the fine histogram: 6 for RGB (262,144 bins), 5 for RGBA (1,048,576).
FINE_BITS = {3: 6, 4: 5}

#: Bin keys gathered before each bincount (4 MB of uint32).
KEY_BUFFER = 1 << 20

#: RGB images of at least this many pixels list their distinct colours in a 2^24 presence table
#: (16 MB, reused as the label table); smaller ones sort their pixels, which costs less than
#: zeroing and scanning the table.
PRESENCE_TABLE_FROM_PIXELS = 1 << 14

#: Pixel count above which the distinct colours of an RGBA image are not counted exactly.
#: RGB uses a 2^24 presence table; RGBA would need 2^32, so it sorts, which costs O(n log n).
RGBA_DISTINCT_LIMIT = 16_000_000


@dataclass
class ColorHistogram:
    """Counts and colour sums per fine bin, plus what the image holds beyond the bins.

    For RGB the pass over the pixels records only bin counts and which colours are present; a
    bin's mean colour is then taken as the mean of its distinct colours (see :attr:`sums`), which
    saves three weighted passes over every pixel. Counts, distinct colours and everything the
    metrics use stay exact; only the points the fit runs on are this close approximation.
    """

    channels: int
    bits: int
    counts: np.ndarray  # (bins,) int64
    distinct_count: int
    transparent_count: int
    transparent_sum: np.ndarray  # RGB sum over fully transparent pixels
    #: RGB: a 2^24 uint8 table, non-zero at each colour present (reusable as a label table);
    #: None for small images, which list their distinct colours directly.
    present: np.ndarray | None = None
    #: Sorted packed distinct colours (RGBA: the opaque ones; None above RGBA_DISTINCT_LIMIT).
    _distinct: np.ndarray | None = None
    #: (occupied bins, channels) float64 colour sums; RGBA fills them exactly, RGB on first use.
    _sums: np.ndarray | None = None
    _occupied: np.ndarray | None = None

    @property
    def has_distinct(self) -> bool:
        """Whether the distinct colours were recorded (always for RGB)."""
        return self.present is not None or self._distinct is not None

    @property
    def distinct(self) -> np.ndarray | None:
        """Sorted packed distinct colours (opaque ones for RGBA), or None when not counted.

        For RGB, read this before :attr:`present` is reused for anything else.
        """
        if self._distinct is None and self.present is not None:
            self._distinct = np.flatnonzero(self.present.view(bool)).astype(np.uint32)
        return self._distinct

    def colors(self) -> np.ndarray:
        """The distinct colours as (n, channels) uint8 rows (opaque ones for RGBA)."""
        return unpack(self.distinct, self.channels).copy()

    def sums(self, from_colours: bool = True) -> np.ndarray:
        """Colour sums of the non-empty bins (in :attr:`occupied` order). Exact for RGBA. For
        RGB: count × mean of the bin's distinct colours (a bin spans 4 levels per channel, so
        this stays within a level or two of the exact mean), or with ``from_colours=False``
        count × the bin's centre, which skips a pass over the distinct colours."""
        if self._sums is not None:
            return self._sums
        occupied = self.occupied
        if not from_colours:
            half = ((1 << (8 - self.bits)) - 1) / 2.0
            centres = bin_corners(occupied, self.bits, self.channels) + half
            return centres * self.counts[occupied][:, None]
        index = np.empty(len(self.counts), dtype=np.int64)
        index[occupied] = np.arange(len(occupied))
        colors = self.distinct
        slot = index[bin_keys(colors, self.bits, self.channels)]
        listed = np.bincount(slot, minlength=len(occupied)).astype(np.float64)
        scale = self.counts[occupied] / listed
        self._sums = np.stack(
            [
                np.bincount(slot, weights=(colors >> (8 * c)) & 0xFF, minlength=len(occupied))
                * scale
                for c in range(self.channels)
            ],
            axis=1,
        )
        return self._sums

    @property
    def occupied(self) -> np.ndarray:
        """Keys of the non-empty bins, ascending."""
        if self._occupied is None:
            self._occupied = np.flatnonzero(self.counts)
        return self._occupied

    def distinct_points(self) -> tuple[np.ndarray, np.ndarray] | None:
        """RGB: the distinct colours as points, each weighted by an equal share of its bin's
        count (the counts of single colours are not recorded). None for RGBA."""
        if self.channels != 3:
            return None
        colors = self.distinct
        keys = bin_keys(colors, self.bits, self.channels)
        listed = np.bincount(keys, minlength=len(self.counts))
        weights = self.counts[keys] / listed[keys]
        return unpack(colors, self.channels).astype(np.float64), weights

    def points(
        self, bits: int | None = None, from_colours: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Non-empty bins as (mean colours, weights), optionally merged to coarser ``bits``;
        ``from_colours`` as for :meth:`sums`."""
        occupied = self.occupied
        counts, sums = self.counts[occupied], self.sums(from_colours)
        if bits is not None and bits < self.bits:
            coarse = coarse_keys(occupied, self.bits, bits, self.channels)
            size = 1 << (bits * self.channels)
            merged = np.bincount(coarse, weights=counts, minlength=size)
            keep = np.flatnonzero(merged)
            counts = merged[keep]
            sums = np.stack(
                [
                    np.bincount(coarse, weights=sums[:, c], minlength=size)[keep]
                    for c in range(self.channels)
                ],
                axis=1,
            )
        weights = counts.astype(np.float64)
        return sums / weights[:, None], weights


def build_histogram(source: PixelSource) -> ColorHistogram:
    """One pass over the pixels: fine-bin counts, distinct colours, transparency (and, for
    RGBA, the exact colour sums per bin)."""
    if source.channels == 3:
        return _build_rgb(source)
    return _build_rgba(source)


def _build_rgb(source: PixelSource) -> ColorHistogram:
    bits = FINE_BITS[3]
    size = 1 << (3 * bits)
    counts = np.zeros(size, dtype=np.int64)
    if source.count < PRESENCE_TABLE_FROM_PIXELS:
        distinct = np.unique(source.all_pixels() & np.uint32(0xFFFFFF))
        counts += np.bincount(bin_keys(source.all_pixels(), bits, 3), minlength=size)
        return ColorHistogram(3, bits, counts, len(distinct), 0, np.zeros(3), None, distinct)
    present = np.zeros(1 << 24, dtype=np.uint8)
    # Keys gather over several strips: one bincount per KEY_BUFFER pixels, not one per strip.
    keys = np.empty(min(source.count, KEY_BUFFER), dtype=np.uint32)
    filled = 0
    for strip in source.strips():
        mark_rgb(present, strip)
        if filled + len(strip) > len(keys):
            counts += np.bincount(keys[:filled], minlength=size)
            filled = 0
        keys[filled : filled + len(strip)] = bin_keys(strip, bits, 3)
        filled += len(strip)
    counts += np.bincount(keys[:filled], minlength=size)
    distinct = np.flatnonzero(present.view(bool)).astype(np.uint32)
    return ColorHistogram(3, bits, counts, len(distinct), 0, np.zeros(3), present, distinct)


def _build_rgba(source: PixelSource) -> ColorHistogram:
    channels = 4
    bits = FINE_BITS[channels]
    size = 1 << (bits * channels)
    counts = np.zeros(size, dtype=np.int64)
    sums = np.zeros((channels, size), dtype=np.float64)
    opaque_parts = []
    transparent_count = 0
    transparent_sum = np.zeros(3)
    for strip in source.strips():
        clear = (strip >> 24) == 0
        if clear.any():
            transparent_count += int(clear.sum())
            transparent_sum += channel_sums(strip[clear], 3)
            strip = strip[~clear]
        if source.count <= RGBA_DISTINCT_LIMIT:
            opaque_parts.append(np.unique(strip))
        keys = bin_keys(strip, bits, channels)
        counts += np.bincount(keys, minlength=size)
        for channel in range(channels):
            weights = (strip >> (8 * channel)) & 0xFF
            sums[channel] += np.bincount(keys, weights=weights, minlength=size)
    if source.count <= RGBA_DISTINCT_LIMIT:
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
        distinct_count,
        transparent_count,
        transparent_sum,
        None,
        distinct,
        sums.T[np.flatnonzero(counts)].copy(),
    )


def channel_sums(packed: np.ndarray, channels: int) -> np.ndarray:
    return np.array([((packed >> (8 * c)) & 0xFF).sum(dtype=np.int64) for c in range(channels)])


def coarse_keys(keys: np.ndarray, bits: int, coarse_bits: int, channels: int) -> np.ndarray:
    """Bin keys at ``bits`` per channel → the keys of their bins at ``coarse_bits``."""
    drop = bits - coarse_bits
    mask = (1 << coarse_bits) - 1
    coarse = np.zeros_like(keys)
    for channel in range(channels):
        coarse |= ((keys >> (bits * channel + drop)) & mask) << (coarse_bits * channel)
    return coarse
