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




#: Grid levels (bits per channel) the labeller refines through, coarse to fine.
LEVELS = {3: (4, 5, 6, 7), 4: (3, 4, 5)}

#: Colours compared per block in the exact comparison.
BLOCK_COLORS = 1 << 16

#: A colour no pixel can be near: pads candidate rows of unequal length.
FAR = 1 << 12


class Labeler:
    """Exact nearest palette colour of packed colours, found coarse to fine.

    Built once per palette. At each level of a grid over colour space (4, 5, 6, then 7 bits
    per channel for RGB), every occupied cell that one palette colour wins whole is settled;
    the colours in the other cells go one level finer, keeping only their cell's candidates.
    Colours still unsettled after the finest level are compared exactly with their candidates.
    """

    def __init__(self, palette: np.ndarray):
        self.palette = np.asarray(palette).astype(np.int64)  # (K, channels)
        self.channels = self.palette.shape[1]
        self.levels = LEVELS[self.channels]
        # The palette plus one FAR row, the padding of candidate rows.
        self._padded = np.vstack([self.palette, np.full((1, self.channels), FAR, np.int64)])
        self._padded_f = self._padded.astype(np.float64)
        self._norms = (self._padded * self._padded).sum(axis=1)

    def __call__(self, packed: np.ndarray) -> np.ndarray:
        """Palette index of each packed colour (int16 array of the same length)."""
        packed = np.asarray(packed, dtype=np.uint32)
        labels = np.empty(len(packed), dtype=np.int16)
        if len(self.palette) == 1 or not len(packed):
            labels[:] = 0
            return labels
        for start in range(0, len(packed), BLOCK_COLORS * 4):
            part = slice(start, start + BLOCK_COLORS * 4)
            labels[part] = self._label(packed[part])
        return labels

    def _label(self, packed: np.ndarray) -> np.ndarray:
        labels = np.empty(len(packed), dtype=np.int16)
        where = np.arange(len(packed))  # positions of the colours still unsettled
        rows = None  # candidate rows of the unsettled colours' cells at the previous level
        slots = None  # each unsettled colour's row in ``rows``
        for bits in self.levels:
            keys = bin_keys(packed, bits, self.channels)
            occupied = np.zeros(1 << (bits * self.channels), dtype=bool)
            occupied[keys] = True
            cells = np.flatnonzero(occupied)
            index = np.empty(len(occupied), dtype=np.int32)
            index[cells] = np.arange(len(cells), dtype=np.int32)
            cell_of = index[keys]
            if rows is None:
                nearest, candidates = self._first_level(cells, bits)
            else:
                parent = np.empty(len(cells), dtype=np.int64)
                parent[cell_of] = slots
                nearest, candidates = self._refine(cells, bits, rows[parent])
            unsure = self._unsure(cells, bits, nearest, candidates)
            settled = ~unsure[cell_of]
            labels[where[settled]] = nearest[cell_of[settled]]
            if settled.all():
                return labels
            keep = ~settled
            rank = np.cumsum(unsure) - 1
            slots = rank[cell_of[keep]]
            rows = candidates[unsure]
            packed, where = packed[keep], where[keep]
        labels[where] = self._exact(packed, rows[slots])
        return labels

    def _centres(self, cells: np.ndarray, bits: int) -> np.ndarray:
        width = 1 << (8 - bits)
        return bin_corners(cells, bits, self.channels) + (width - 1) / 2.0

    def _first_level(self, cells: np.ndarray, bits: int):
        """Nearest colour and candidate rows of each cell, against the whole palette."""
        centres = self._centres(cells, bits)
        pal = self._padded_f[:-1]
        squared = centres @ (-2.0 * pal.T)
        squared += self._norms[:-1]
        squared += (centres * centres).sum(1)[:, None]
        return self._candidates(squared, None, bits)

    def _refine(self, cells: np.ndarray, bits: int, parent_rows: np.ndarray):
        """Nearest colour and candidate rows of each cell, among its parent cell's candidates."""
        centres = self._centres(cells, bits)
        diff = self._padded_f[parent_rows] - centres[:, None, :]
        squared = np.einsum("ijk,ijk->ij", diff, diff)
        return self._candidates(squared, parent_rows, bits)

    def _candidates(self, squared: np.ndarray, rows: np.ndarray | None, bits: int):
        """From squared centre distances (n, C): nearest index and ascending candidate rows.

        Colour j can be nearest somewhere in a box only if d_j <= d_min + diameter; the margin
        covers float rounding, so the rows hold a superset of the true candidates.
        """
        n = len(squared)
        best = squared.argmin(axis=1)
        d1 = np.sqrt(np.maximum(squared[np.arange(n), best], 0.0))
        diameter = np.sqrt(self.channels) * ((1 << (8 - bits)) - 1)
        reach = squared <= ((d1 + diameter + 1e-3) ** 2)[:, None]
        top = int(reach.sum(axis=1).max())
        if rows is None:
            columns = np.arange(squared.shape[1])
            if top < squared.shape[1]:
                picked = np.argpartition(squared, top - 1, axis=1)[:, :top]
            else:
                picked = np.broadcast_to(columns, squared.shape).copy()
            inside = np.take_along_axis(reach, picked, axis=1)
            picked = np.where(inside, picked, len(self.palette))
            picked.sort(axis=1)
            nearest = best
        else:
            # Parent rows are ascending with FAR last; a stable sort keeps that order.
            order = np.argsort(~reach, axis=1, kind="stable")[:, :top]
            picked = np.take_along_axis(rows, order, axis=1)
            inside = np.take_along_axis(reach, order, axis=1)
            picked = np.where(inside, picked, len(self.palette))
            nearest = rows[np.arange(n), best]
        return nearest, picked

    def _unsure(self, cells: np.ndarray, bits: int, nearest: np.ndarray, candidates: np.ndarray):
        """Cells where some candidate may beat (or tie with a lower index) the nearest colour.

        |x-ci|^2 - |x-cj|^2 = 2x.(cj-ci) + |ci|^2 - |cj|^2 is linear in x, so its maximum over
        the cell is at the corner picked channel by channel; integers keep the test exact.
        """
        if candidates.shape[1] == 1:
            return np.zeros(len(cells), dtype=bool)
        low = bin_corners(cells, bits, self.channels).astype(np.int64)
        high = low + ((1 << (8 - bits)) - 1)
        ci = self.palette[nearest]
        cj = self._padded[candidates]
        slope = 2 * (cj - ci[:, None, :])
        corner = np.where(slope > 0, high[:, None, :], low[:, None, :])
        worst = np.einsum("ijk,ijk->ij", slope, corner)
        worst += self._norms[nearest][:, None] - self._norms[candidates]
        lower = candidates < nearest[:, None]
        threat = np.where(lower, worst >= 0, worst > 0)
        threat &= candidates != nearest[:, None]
        return threat.any(axis=1)

    def _exact(self, packed: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Exact labels: argmin over each colour's ascending candidate row (lowest index wins)."""
        colors = unpack(packed, self.channels).astype(np.int64)
        diff = self._padded[candidates] - colors[:, None, :]
        distances = np.einsum("ijk,ijk->ij", diff, diff)
        return np.take_along_axis(candidates, distances.argmin(axis=1)[:, None], 1)[:, 0]


def color_table(labeler: Labeler, distinct: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Fill ``table`` (2^24 uint8, indexed by packed RGB) with the exact label of each distinct
    colour; entries of absent colours are left as they were. Returns ``table``."""
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
