"""Stage 4, label: the exact nearest palette colour of every pixel, in bounded time and memory.

Exactness is by construction, not by approximation. A fine histogram bin is a small box of
colours. For each occupied bin we find the palette colour nearest its centre and the *candidates*:
every colour that could be nearest somewhere in the box (its distance to the centre is within the
box's diameter of the nearest one's). Then an exact integer test decides whether the nearest colour
wins in the whole box: the difference of two squared distances is linear in the pixel, so its
maximum over the box sits at a corner. Bins it wins everywhere are labelled through a lookup table;
colours in the remaining bins are compared exactly, in integers, against their bin's candidates.
Ties go to the lowest palette index, as ``argmin`` does.

For RGB, :func:`color_table` goes one step further: it labels each *distinct colour* of the image
once and fills a 2^24-entry table, so labelling a pixel is a single lookup.
"""

import numpy as np

from pipeline.pixels import bin_corners, bin_keys, unpack

#: Marker in the lookup table for bins whose pixels need the exact per-colour comparison.
AMBIGUOUS = -1

#: Bins handled per block while building the table, so the bins × K work stays in cache.
BLOCK_BINS = 4096

#: Colours compared per block in the exact comparison.
BLOCK_COLORS = 1 << 16

#: A colour no pixel can be near: pads candidate rows of unequal length.
FAR = 1 << 12


class Labeler:
    """Labels packed pixels against an integer palette; built once per image."""

    def __init__(self, palette: np.ndarray, occupied_bins: np.ndarray, bits: int):
        self.palette = palette.astype(np.int64)  # (K, channels)
        self.channels = palette.shape[1]
        self.bits = bits
        # The palette plus one FAR row, the padding of candidate rows.
        self._padded = np.vstack([self.palette, np.full((1, self.channels), FAR, np.int64)])
        self.table = np.full(1 << (bits * self.channels), AMBIGUOUS, dtype=np.int16)
        self._slot = None
        self._candidates = np.zeros((0, 1), dtype=np.int16)
        self.ambiguous_bins = 0
        self._build(np.asarray(occupied_bins, dtype=np.int64))

    def _build(self, bins: np.ndarray) -> None:
        if len(self.palette) == 1:
            self.table[bins] = 0
            return
        amb_bins, amb_candidates = [], []
        for start in range(0, len(bins), BLOCK_BINS):
            block = bins[start : start + BLOCK_BINS]
            nearest, candidates = self._bin_candidates(block)
            unsure = self._unsure(block, nearest, candidates)
            self.table[block[~unsure]] = nearest[~unsure]
            if unsure.any():
                amb_bins.append(block[unsure])
                amb_candidates.append(candidates[unsure])
        if not amb_bins:
            return
        width = max(c.shape[1] for c in amb_candidates)
        far = len(self.palette)
        rows = [np.pad(c, ((0, 0), (0, width - c.shape[1])), constant_values=far) for c in amb_candidates]
        unclear = np.concatenate(amb_bins)
        self.ambiguous_bins = len(unclear)
        self._slot = np.full(len(self.table), -1, dtype=np.int32)
        self._slot[unclear] = np.arange(len(unclear), dtype=np.int32)
        self._candidates = np.concatenate(rows).astype(np.int16)

    def _bin_candidates(self, bins: np.ndarray):
        """Nearest colour to each bin centre, and the sorted candidate rows (FAR-padded)."""
        width = 1 << (8 - self.bits)
        corners = bin_corners(bins, self.bits, self.channels)
        centres = corners + (width - 1) / 2.0
        pal = self.palette.astype(np.float64)
        squared = centres @ (-2.0 * pal.T)
        squared += (pal * pal).sum(1)
        squared += (centres * centres).sum(1)[:, None]
        nearest = squared.argmin(axis=1)
        d1 = np.sqrt(np.maximum(squared[np.arange(len(bins)), nearest], 0.0))
        diameter = np.sqrt(self.channels) * (width - 1)
        # Colour j can be nearest somewhere in the box only if d_j <= d1 + diameter; the margin
        # covers float rounding, so the set is a superset of the true candidates.
        limit = (d1 + diameter + 1e-3) ** 2
        reach = squared <= limit[:, None]
        count = reach.sum(axis=1)
        top = int(count.max())
        if top < squared.shape[1]:
            picked = np.argpartition(squared, top - 1, axis=1)[:, :top]
        else:
            picked = np.broadcast_to(np.arange(top), (len(bins), top)).copy()
        inside = np.take_along_axis(reach, picked, axis=1)
        picked = np.where(inside, picked, len(self.palette))
        picked.sort(axis=1)
        return nearest, picked

    def _unsure(self, bins: np.ndarray, nearest: np.ndarray, candidates: np.ndarray):
        """Bins where some candidate may beat (or tie with a lower index) the nearest colour."""
        if candidates.shape[1] == 1:
            return np.zeros(len(bins), dtype=bool)
        width = 1 << (8 - self.bits)
        low = bin_corners(bins, self.bits, self.channels).astype(np.int64)  # (n, ch)
        high = low + (width - 1)
        ci = self.palette[nearest]  # (n, ch)
        cj = self._padded[candidates]  # (n, C, ch)
        slope = 2 * (cj - ci[:, None, :])
        # max over the box of |x-ci|^2 - |x-cj|^2 = 2x.(cj-ci) + |ci|^2 - |cj|^2
        corner = np.where(slope > 0, high[:, None, :], low[:, None, :])
        worst = (slope * corner).sum(axis=2)
        worst += (ci * ci).sum(axis=1)[:, None] - (cj * cj).sum(axis=2)
        lower = candidates < nearest[:, None]
        threat = np.where(lower, worst >= 0, worst > 0)
        threat &= candidates != nearest[:, None]
        return threat.any(axis=1)

    def __call__(self, packed: np.ndarray) -> np.ndarray:
        """Palette index of each packed pixel (int16 array of the same length)."""
        keys = bin_keys(packed, self.bits, self.channels)
        labels = self.table[keys]
        unsure = np.flatnonzero(labels == AMBIGUOUS)
        if len(unsure):
            labels[unsure] = self._exact(packed[unsure], keys[unsure])
        return labels

    def _exact(self, packed: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """Exact labels of colours in ambiguous bins, against their bin's candidates."""
        out = np.empty(len(packed), dtype=np.int16)
        for start in range(0, len(packed), BLOCK_COLORS):
            part = slice(start, start + BLOCK_COLORS)
            candidates = self._candidates[self._slot[keys[part]]]  # (n, C), ascending
            colors = unpack(packed[part], self.channels).astype(np.int64)
            diff = self._padded[candidates] - colors[:, None, :]
            distances = np.einsum("ijk,ijk->ij", diff, diff)
            out[part] = np.take_along_axis(candidates, distances.argmin(axis=1)[:, None], 1)[:, 0]
        return out


def color_table(labeler: Labeler, distinct: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Fill ``table`` (2^24 uint8, indexed by packed RGB) with the exact label of each distinct
    colour; entries of absent colours are left as they were. Returns ``table``."""
    for start in range(0, len(distinct), BLOCK_COLORS * 4):
        colors = distinct[start : start + BLOCK_COLORS * 4]
        table[colors] = labeler(colors)
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
