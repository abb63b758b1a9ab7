"""Stage 2, sample (all pixels): the colour histogram that the k-means fit runs on.

A histogram bin holds every colour that shares the top bits of each channel. For each bin we
keep the pixel count and the exact sum of its colours, so a bin stands for its pixels at their
mean, weighted by their number. K-means on these weighted means is k-means on all pixels with
the one constraint that a bin's pixels share a cluster. The same pass lists the image's distinct
colours (exactly: the ``colors_in`` metric and the labelling table depend on it).
"""

from dataclasses import dataclass, field

import numpy as np

from pipeline.distinct import sorted_distinct
from pipeline.pixels import PixelSource, bin_keys, unpack
from pipeline.space import to_working

#: Bits per channel of the fine histogram: 6 for RGB (262,144 bins), 5 for RGBA (1,048,576).
FINE_BITS = {3: 6, 4: 5}

#: Images of at least this many pixels (by channels) count into dense tables of every bin (RGB:
#: 8 MB of counts and sums and a 2 MB bit per colour, zeroed, filled in one compiled pass;
#: RGBA: 40 MB); smaller ones sort their pixels, which costs less than setting up the tables,
#: so a thumbnail costs a thumbnail's work.
DENSE_FROM_PIXELS = {3: 1 << 15, 4: 1 << 17}

#: Pixel count above which the distinct colours of an RGBA image are not counted exactly.
#: RGB lists them from a bit per colour (2^24 bits); RGBA would need 2^32, so it sorts, which
#: costs O(n log n).
RGBA_DISTINCT_LIMIT = 16_000_000


@dataclass
class ColorHistogram:
    """Pixel counts and exact colour sums per occupied fine bin, plus the image's distinct
    colours and its fully transparent pixels.

    Only occupied bins are kept (``keys``, ascending), so the histogram's size follows the
    image's colours, not the number of possible bins.
    """

    channels: int
    bits: int
    keys: np.ndarray  # (bins,) occupied bin keys, ascending
    counts: np.ndarray  # (bins,) int64 pixels per bin
    bin_sums: np.ndarray  # (bins, channels) float64 exact colour sums per bin
    distinct_count: int
    transparent_count: int
    transparent_sum: np.ndarray  # RGB sum over fully transparent pixels
    #: Sorted packed distinct colours (RGBA: the opaque ones; None above RGBA_DISTINCT_LIMIT);
    #: for a large RGB image, listed from ``present`` on first use (see :attr:`distinct`).
    listed: np.ndarray | None = None
    #: Pixels of each distinct colour, when the build counted them (small images).
    colour_counts: np.ndarray | None = None
    #: The distinct colours' working coordinates, by space, once asked for (fit and labels).
    _working: dict = field(default_factory=dict, repr=False)
    #: Large RGB images: a bit per 24-bit colour, set for each colour present (2^18 uint64).
    present: np.ndarray | None = field(default=None, repr=False)

    @property
    def has_distinct(self) -> bool:
        """Whether the distinct colours were recorded (always for RGB)."""
        return self.listed is not None or self.present is not None

    @property
    def distinct(self) -> np.ndarray | None:
        """Sorted packed distinct colours, or None when not recorded. A large RGB image lists
        them from its bits only when asked: a dithered result needs just their number, and
        the list of a 24 MP photo's colours takes over 10 MB."""
        if self.listed is None and self.present is not None:
            from pipeline.binning import list_colours  # numba only where pixels are counted

            self.listed = list_colours(self.present)
        return self.listed

    @property
    def pixels(self) -> int:
        """Pixels counted in the bins (fully transparent ones are apart)."""
        return int(self.counts.sum())

    def colors(self) -> np.ndarray:
        """The distinct colours as (n, channels) uint8 rows (opaque ones for RGBA)."""
        return unpack(self.distinct, self.channels).copy()

    def distinct_working(self, space: str) -> np.ndarray:
        """The distinct colours in the working coordinates of ``space`` ((n, channels)
        float64), converted once and kept: the fit's last steps and the label table of an
        undithered image both run on them."""
        if space not in self._working:
            self._working[space] = to_working(unpack(self.distinct, self.channels), space)
        return self._working[space]

    def converted(self, space: str) -> np.ndarray | None:
        """:meth:`distinct_working` if it has been asked for already, else None."""
        return self._working.get(space)

    def sums(self, from_colours: bool = True) -> np.ndarray:
        """Exact colour sums of the occupied bins (``from_colours`` is accepted for the fit's
        sake: the sums are exact either way)."""
        return self.bin_sums

    @property
    def occupied(self) -> np.ndarray:
        """Keys of the non-empty bins, ascending."""
        return self.keys

    def distinct_points(self) -> tuple[np.ndarray, np.ndarray] | None:
        """RGB: the distinct colours as points, each weighted by its pixel count when known,
        else by an equal share of its bin's count. None for RGBA."""
        if self.channels != 3 or self.distinct is None:
            return None
        colors = self.distinct
        if self.colour_counts is not None:
            weights = self.colour_counts.astype(np.float64)
        else:
            slot = np.searchsorted(self.keys, bin_keys(colors, self.bits, self.channels))
            listed = np.bincount(slot, minlength=len(self.keys))
            weights = self.counts[slot] / listed[slot]
        return unpack(colors, self.channels).astype(np.float64), weights

    def points(
        self, bits: int | None = None, from_colours: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Non-empty bins as (mean colours, weights), optionally merged to coarser ``bits``."""
        counts, sums = self.counts, self.bin_sums
        if bits is not None and bits < self.bits:
            coarse = coarse_keys(self.keys, self.bits, bits, self.channels)
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
    """One pass over the pixels: per-bin counts and colour sums, distinct colours,
    transparency. Small images sort their pixels; larger ones count into dense tables."""
    if source.count < DENSE_FROM_PIXELS[source.channels]:
        return _build_sorted(source)
    if source.channels == 3:
        return _build_rgb_dense(source)
    return _build_rgba(source)


def _build_sorted(source: PixelSource) -> ColorHistogram:
    """A small image: its distinct colours and their counts by one sort of its pixels; the
    bins from those."""
    channels = source.channels
    bits = FINE_BITS[channels]
    pixels = source.all_pixels() & np.uint32(source.color_mask)
    transparent_count, transparent_sum = 0, np.zeros(3)
    if channels == 4:
        clear = (pixels >> 24) == 0
        transparent_count = int(clear.sum())
        transparent_sum = channel_sums(pixels[clear], 3).astype(np.float64)
        pixels = pixels[~clear]
    distinct, colour_counts = np.unique(pixels, return_counts=True)
    distinct = distinct.astype(np.uint32)
    keys, slot = np.unique(bin_keys(distinct, bits, channels), return_inverse=True)
    counts = np.bincount(slot, weights=colour_counts, minlength=len(keys)).astype(np.int64)
    values = unpack(distinct, channels)
    sums = np.zeros((len(keys), channels))
    for c in range(channels):
        sums[:, c] = np.bincount(slot, weights=values[:, c] * colour_counts, minlength=len(keys))
    return ColorHistogram(
        channels,
        bits,
        keys.astype(np.uint32),
        counts,
        sums,
        len(distinct),
        transparent_count,
        transparent_sum,
        distinct,
        colour_counts.astype(np.int64),
    )


def _build_rgb_dense(source: PixelSource) -> ColorHistogram:
    """A larger RGB image: one compiled pass into dense per-bin tables and a bit per colour."""
    from pipeline.binning import rgb_pass  # numba only where pixels are counted

    bits = FINE_BITS[3]
    size = 1 << (3 * bits)
    counts = np.zeros(size, dtype=np.int64)
    sums = np.zeros((size, 3), dtype=np.int64)
    present = np.zeros(1 << 18, dtype=np.uint64)  # one bit per 24-bit colour
    for strip in source.strips():
        rgb_pass(strip, counts, sums, present)
    keys = np.flatnonzero(counts)
    return ColorHistogram(
        3,
        bits,
        keys.astype(np.uint32),
        counts[keys],
        sums[keys].astype(np.float64),
        int(np.bitwise_count(present).sum()),
        0,
        np.zeros(3),
        present=present,
    )


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
            opaque_parts.append(sorted_distinct(strip))
        keys = bin_keys(strip, bits, channels)
        counts += np.bincount(keys, minlength=size)
        for channel in range(channels):
            weights = (strip >> (8 * channel)) & 0xFF
            sums[channel] += np.bincount(keys, weights=weights, minlength=size)
    occupied = np.flatnonzero(counts)
    if source.count <= RGBA_DISTINCT_LIMIT:
        parts = np.concatenate(opaque_parts) if opaque_parts else np.empty(0, np.uint32)
        distinct = sorted_distinct(parts)
        distinct_count = len(distinct)
    else:
        distinct, distinct_count = None, len(occupied)
    return ColorHistogram(
        channels,
        bits,
        occupied.astype(np.uint32),
        counts[occupied],
        sums.T[occupied].copy(),
        distinct_count,
        transparent_count,
        transparent_sum,
        distinct,
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
