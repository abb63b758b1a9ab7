"""Colour counts: what a palette is fitted on, in a form that can be merged and stored.

A shared palette is fitted on the colours of many images, counted on many machines, perhaps
twice when a message is redelivered. :class:`ColorCounts` makes that exact: for each occupied
histogram bin it keeps the pixel count and the sum of each channel over those pixels, all as
integers. Adding integers is exact and order-independent, so merging counts in any order, or
merging the same set again, gives the same arrays, and a fit on them gives the same palette.

Bins are the fine bins of :mod:`pipeline.histogram` (6 bits per channel for RGB, 5 for RGBA).
Only occupied bins are kept, so the counts of any number of images stay below 262,144 (RGB) or
1,048,576 (RGBA) rows, and a serialised photo's counts take a few hundred kilobytes.
"""

import io
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pipeline.histogram import FINE_BITS, channel_sums, coarse_keys
from pipeline.pixels import PixelSource, bin_keys

#: An image counts into a dense table of every bin when it has at least 1/this as many pixels
#: as there are bins; a smaller one sorts its own bins (zeroing the table would cost more).
DENSE_FROM_FRACTION = 8

#: Format tag stored with serialised counts, so a file from another tool is refused clearly.
COUNTS_FORMAT = "colorquant-counts-1"


@dataclass(frozen=True)
class ColorCounts:
    """Exact colour counts of one or more images, per occupied fine bin.

    ``keys`` (ascending, unique) are the bins, ``counts`` their pixel counts and ``sums`` the
    per-channel sums of their pixels; fully transparent pixels are counted apart, because they
    all share one palette entry whatever their colour. ``images`` is how many images were merged.
    """

    channels: int
    keys: np.ndarray  # (n,) uint32, ascending
    counts: np.ndarray  # (n,) int64
    sums: np.ndarray  # (n, channels) int64
    transparent_count: int = 0
    transparent_sum: tuple[int, int, int] = (0, 0, 0)
    images: int = 1

    @property
    def bits(self) -> int:
        return FINE_BITS[self.channels]

    @property
    def pixels(self) -> int:
        """Every pixel counted, transparent ones included."""
        return int(self.counts.sum()) + self.transparent_count

    @property
    def distinct_count(self) -> int:
        """Occupied bins: the number of distinct colours these counts can tell apart."""
        return len(self.keys)

    def distinct_points(self) -> None:
        """Single colours are not recorded (a fit on counts refines on bins only)."""
        return None

    def colors(self) -> np.ndarray:
        """Mean colour of each occupied bin, rounded to uint8, (n, channels)."""
        means = np.rint(self.sums / np.maximum(self.counts, 1)[:, None])
        return np.clip(means, 0, 255).astype(np.uint8)

    def points(self, bits: int | None = None, from_colours: bool = True):
        """Occupied bins as (mean colours, weights), optionally merged to coarser ``bits``.

        The means are exact (integer sums over integer counts); ``from_colours`` is accepted
        for the fit's sake and has nothing to choose here.
        """
        keys, counts, sums = self.keys, self.counts, self.sums
        if bits is not None and bits < self.bits:
            coarse = coarse_keys(keys, self.bits, bits, self.channels)
            keys, counts, sums = _sum_by_key(coarse, counts, sums)
        weights = counts.astype(np.float64)
        return sums / weights[:, None], weights

    def with_alpha(self) -> "ColorCounts":
        """These counts as RGBA (opaque), so RGB and RGBA images can share one palette."""
        if self.channels == 4:
            return self
        rgba_bits = FINE_BITS[4]
        keys = coarse_keys(self.keys, self.bits, rgba_bits, 3).astype(np.uint32)
        keys |= np.uint32(((1 << rgba_bits) - 1) << (3 * rgba_bits))  # alpha 255's top bits
        sums = np.column_stack([self.sums, 255 * self.counts])
        keys, counts, sums = _sum_by_key(keys, self.counts, sums)
        return ColorCounts(4, keys, counts, sums, 0, (0, 0, 0), self.images)

    def __add__(self, other: "ColorCounts") -> "ColorCounts":
        return merge_counts([self, other])

    def __eq__(self, other) -> bool:
        if not isinstance(other, ColorCounts):
            return NotImplemented
        return (
            self.channels == other.channels
            and self.transparent_count == other.transparent_count
            and tuple(self.transparent_sum) == tuple(other.transparent_sum)
            and self.images == other.images
            and np.array_equal(self.keys, other.keys)
            and np.array_equal(self.counts, other.counts)
            and np.array_equal(self.sums, other.sums)
        )

    __hash__ = None

    def arrays(self) -> dict[str, np.ndarray]:
        """The counts as named arrays, the form every file of counts stores (see
        :meth:`from_arrays`)."""
        return {
            "channels": np.array(self.channels),
            "keys": self.keys,
            "counts": self.counts,
            "sums": self.sums,
            "transparent": np.array(
                [self.transparent_count, *self.transparent_sum], dtype=np.int64
            ),
            "images": np.array(self.images),
        }

    @classmethod
    def from_arrays(cls, stored) -> "ColorCounts":
        """Counts from the named arrays of :meth:`arrays` (a dict, or an open ``.npz``);
        KeyError when one is missing."""
        channels = int(stored["channels"])
        transparent = [int(value) for value in stored["transparent"]]
        return cls(
            channels,
            stored["keys"].astype(np.uint32),
            stored["counts"].astype(np.int64),
            stored["sums"].astype(np.int64).reshape(-1, channels),
            transparent[0],
            tuple(transparent[1:4]),
            int(stored["images"]),
        )

    def to_bytes(self) -> bytes:
        """A compact, self-describing serialisation (compressed ``.npz``)."""
        buffer = io.BytesIO()
        np.savez_compressed(buffer, format=np.array(COUNTS_FORMAT), **self.arrays())
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "ColorCounts":
        """Inverse of :meth:`to_bytes`; ValueError for anything that is not our counts."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as stored:
                if str(stored["format"]) != COUNTS_FORMAT:
                    raise ValueError("not colorquant colour counts")
                counts = cls.from_arrays(stored)
        except (OSError, KeyError, EOFError) as exc:
            raise ValueError(f"unreadable colour counts: {exc}") from None
        if counts.channels not in FINE_BITS or len(counts.keys) != len(counts.counts):
            raise ValueError("malformed colour counts")
        return counts


def count_colors(image: Image.Image) -> ColorCounts:
    """The exact colour counts of an RGB or RGBA image, one strip at a time.

    Tables are sized to the image: a small image counts its own bins (a sort), a large one
    adds into a dense table of every bin (no sort, but the table costs the same for any size).
    """
    source = PixelSource(image)
    channels = source.channels
    bits = FINE_BITS[channels]
    size = 1 << (bits * channels)
    dense = source.count * DENSE_FROM_FRACTION >= size
    totals = (np.zeros(size, np.int64), np.zeros((size, channels), np.int64)) if dense else None
    parts = []
    transparent_count, transparent_sum = 0, np.zeros(3, dtype=np.int64)
    for strip in source.strips():
        if channels == 4:
            clear = (strip >> 24) == 0
            if clear.any():
                transparent_count += int(clear.sum())
                transparent_sum += channel_sums(strip[clear], 3)
                strip = strip[~clear]
        keys = bin_keys(strip, bits, channels)
        if dense:
            totals[0][:] += np.bincount(keys, minlength=size)
            totals[1][:] += _bin_sums(keys, strip, channels, size)
        else:
            bins, index = np.unique(keys, return_inverse=True)
            sums = _bin_sums(index, strip, channels, len(bins))
            parts.append((bins, np.bincount(index, minlength=len(bins)), sums))
    if dense:
        keys = np.flatnonzero(totals[0])
        counts, sums = totals[0][keys], totals[1][keys]
    else:
        keys, counts, sums = _sum_by_key(*(np.concatenate(a) for a in zip(*parts, strict=True)))
    return ColorCounts(
        channels,
        keys.astype(np.uint32),
        counts.astype(np.int64),
        sums.reshape(-1, channels),
        transparent_count,
        tuple(int(v) for v in transparent_sum),
    )


def _bin_sums(index: np.ndarray, strip: np.ndarray, channels: int, bins: int) -> np.ndarray:
    """(bins, channels) int64 sums of each channel over the pixels of each bin."""
    # float64 sums of 8-bit values are exact below 2^53: far beyond any strip.
    return np.column_stack(
        [
            np.rint(np.bincount(index, (strip >> (8 * channel)) & 0xFF, minlength=bins))
            for channel in range(channels)
        ]
    ).astype(np.int64)


def merge_counts(parts: Iterable[ColorCounts]) -> ColorCounts:
    """The sum of any number of counts (RGB ones become RGBA when any part has alpha).

    Integer addition into one dense table per channel layout: the result does not depend on
    the order of ``parts``, and memory stays at one table however many parts there are.
    """
    accumulator = CountsAccumulator()
    for part in parts:
        accumulator.add(part)
    return accumulator.result()


class CountsAccumulator:
    """Running sum of :class:`ColorCounts`, for a reducer that receives them one by one."""

    def __init__(self):
        self._tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._transparent = np.zeros(4, dtype=np.int64)
        self.images = 0

    def add(self, part: ColorCounts) -> None:
        counts, sums = self._table(part.channels)
        counts[part.keys] += part.counts
        sums[part.keys] += part.sums
        self._transparent += [part.transparent_count, *part.transparent_sum]
        self.images += part.images

    def _table(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        if channels not in self._tables:
            size = 1 << (FINE_BITS[channels] * channels)
            self._tables[channels] = (
                np.zeros(size, dtype=np.int64),
                np.zeros((size, channels), dtype=np.int64),
            )
        return self._tables[channels]

    def result(self) -> ColorCounts:
        """The merged counts (RGB, or RGBA as soon as one part had alpha)."""
        transparent_count, *transparent_sum = (int(v) for v in self._transparent)
        merged = []
        for channels, (counts, sums) in sorted(self._tables.items()):
            occupied = np.flatnonzero(counts)
            merged.append(
                ColorCounts(
                    channels, occupied.astype(np.uint32), counts[occupied], sums[occupied], 0
                )
            )
        if not merged:
            merged.append(ColorCounts(3, *_empty(3), 0))
        if len(merged) == 2:
            rgba = merged[0].with_alpha()
            keys = np.concatenate([rgba.keys, merged[1].keys])
            counts = np.concatenate([rgba.counts, merged[1].counts])
            sums = np.concatenate([rgba.sums, merged[1].sums])
            merged = [ColorCounts(4, *_sum_by_key(keys, counts, sums))]
        if transparent_count and merged[0].channels == 3:
            merged[0] = merged[0].with_alpha()
        only = merged[0]
        return ColorCounts(
            only.channels,
            only.keys,
            only.counts,
            only.sums,
            transparent_count,
            tuple(transparent_sum),
            self.images,
        )


def _sum_by_key(keys: np.ndarray, counts: np.ndarray, sums: np.ndarray):
    """Rows with equal keys added together (integers, exactly); keys come back ascending."""
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    if len(keys) == 0:
        return keys.astype(np.uint32), counts[order], sums[order]
    return (
        keys[starts].astype(np.uint32),
        np.add.reduceat(counts[order], starts),
        np.add.reduceat(sums[order], starts, axis=0),
    )


def _empty(channels: int):
    return (
        np.empty(0, dtype=np.uint32),
        np.empty(0, dtype=np.int64),
        np.empty((0, channels), dtype=np.int64),
    )
