"""Stage 4, label: the exact nearest palette colour of every pixel, in bounded time and memory.

Exact by arithmetic, not by approximation. For a colour x and palette colour c_j (integers,
shifted to −128…127), ``256·(|c_j|² − 2·x·c_j) + j`` is an integer of magnitude below 2^26, and
so is every partial sum a matrix product forms on the way; float64 holds every integer below
2^53 exactly, so one float64 matrix product gives these values exactly, in whatever order BLAS
adds them. Their
minimum over j is the nearest colour (``|x|²`` is the same for every j), and among exact ties
the lowest index, which sits in the low 8 bits. A minimum across rows of a (K, n) matrix is one
vectorised sweep, several times faster than ``argmin`` along short rows.

An RGB photo has far fewer distinct colours than pixels, so the labels are usually computed once
per distinct colour; each pixel then looks its colour's label up
(:mod:`pipeline.colour_ranks`).
"""

import numpy as np

from pipeline.pixels import unpack
from pipeline.space import to_working

#: Entries of the (K × block) distance matrix per block: 2 MB of float64 stays in cache.
BLOCK_ENTRIES = 1 << 18

#: Colours converted to a space's coordinates per block when labelling: 1.5 MB of float64
#: coordinates, and a few temporaries as large while converting. Blocks of 2^18 took 25 MB
#: more while a 24 MP photo's 625,000 colours were labelled; more blocks cost nothing
#: measurable.
CONVERT_BLOCK = 1 << 16

#: Palette indices ride in the low bits of the folded distances: 8 bits in float64 (K ≤ 256);
#: 6 bits in float32 (K ≤ 64), exact there only for colours centred on 0 (see Labeler).
SLOTS = {np.dtype(np.float64): 256, np.dtype(np.float32): 64}


def fold_table(centres: np.ndarray, dtype=np.float64) -> np.ndarray:
    """(K, channels + 1) rows ``[-2s·c, s·|c|² + j]`` (s = SLOTS) for integer-valued centres."""
    slots = SLOTS[np.dtype(dtype)]
    centres = np.asarray(centres, dtype=np.float64)
    if len(centres) > slots:
        raise ValueError(f"at most {slots} centres, got {len(centres)}")
    table = np.empty((len(centres), centres.shape[1] + 1))
    table[:, :-1] = -2.0 * slots * centres
    table[:, -1] = slots * np.einsum("ij,ij->i", centres, centres) + np.arange(len(centres))
    return table.astype(dtype)


def augment(points: np.ndarray, dtype=np.float64) -> np.ndarray:
    """(n, channels) integer-valued points → (n, channels + 1) with a column of ones."""
    out = np.ones((len(points), points.shape[1] + 1), dtype=dtype)
    out[:, :-1] = points
    return out


def nearest(rows: np.ndarray, table: np.ndarray):
    """Nearest centre of each augmented row (lowest index among exact ties) and
    ``|c|² − 2·x·c`` for it."""
    n, k = len(rows), len(table)
    slots = SLOTS[table.dtype]
    mask = slots - 1
    labels = np.empty(n, dtype=np.intp)
    first = np.empty(n)
    step = max(256, BLOCK_ENTRIES // k)
    for start in range(0, n, step):
        part = slice(start, start + step)
        folded = table @ rows[part].T  # (K, block)
        low = folded.min(axis=0)
        index = low.astype(np.int64) & mask
        labels[part] = index
        first[part] = (low - index) / slots
    return labels, first


class Labeler:
    """Exact nearest palette colour of packed colours; built once per palette.

    It works in float32, twice as fast as float64, on groups of up to 64 palette colours: with
    colours and palette shifted by −128, every partial sum of ``64·(|c|² − 2·x·c) + j`` stays
    below 64·(3 + 6)·128² < 2^24 in magnitude (RGBA: 64·(4 + 8)·128² < 2^24 too), so float32
    holds it exactly. Each group gives its exact nearest colour and distance; the nearest over
    the groups, earliest group on a tie, is the nearest overall with the lowest index.
    """

    def __init__(self, palette: np.ndarray):
        palette = np.asarray(palette)
        self.palette = palette.astype(np.int64)  # (K, channels)
        self.channels = palette.shape[1]
        group = SLOTS[np.dtype(np.float32)]
        self._groups = [
            (start, fold_table(self.palette[start : start + group] - 128, np.float32))
            for start in range(0, len(palette), group)
        ]

    def __call__(self, packed: np.ndarray, distinct: bool = False) -> np.ndarray:
        """Palette index of each packed colour (uint8 array of the same length); ``distinct``
        is accepted for symmetry with :class:`SpaceLabeler` (each colour costs the same here)."""
        colors = unpack(np.asarray(packed, dtype=np.uint32), self.channels)
        labels = np.empty(len(colors), dtype=np.uint8)
        step = 1 << 16
        for start in range(0, len(colors), step):
            part = slice(start, start + step)
            rows = augment(colors[part].astype(np.int16) - 128, np.float32)
            labels[part] = self._nearest(rows)
        return labels

    def label_fitted(self, fitted) -> np.ndarray:
        """See :func:`label_fitted` (``fitted``: a :class:`pipeline.quantize.FittedColours`);
        in RGB, squared distances between integer colours are
        exact in float64, so the result equals this labeler's."""
        return label_fitted(fitted.bounds, fitted.positions, self.palette.astype(np.float64))

    def _nearest(self, rows: np.ndarray) -> np.ndarray:
        offset, table = self._groups[0]
        best, best_distance = nearest(rows, table)
        for offset, table in self._groups[1:]:
            labels, distance = nearest(rows, table)
            closer = distance < best_distance  # strict: an earlier group wins a tie
            best = np.where(closer, labels + offset, best)
            best_distance = np.minimum(distance, best_distance)
        return best


class SpaceLabeler:
    """Nearest palette colour of packed colours in a space's working coordinates (Oklab).

    Oklab coordinates are not integers, so the exact-integer trick of :class:`Labeler` does not
    apply: squared distances are formed in float64 and the lowest wins (the lowest index among
    exact ties), by a compiled search that tries palette colours outwards from the previous
    colour's nearest and stops once the triangle inequality rules the rest out
    (:func:`pipeline.lloyd.nearest_centres`). Each distinct colour is converted and compared
    once.
    """

    def __init__(self, palette: np.ndarray, space: str):
        palette = np.asarray(palette)
        self.palette = palette.astype(np.int64)
        self.channels = palette.shape[1]
        self.space = space
        self._centres = to_working(self.palette, space)

    def __call__(self, packed: np.ndarray, distinct: bool = False) -> np.ndarray:
        """Palette index of each packed colour (uint8); ``distinct`` says the colours are
        already distinct, which saves finding the distinct ones."""
        packed = np.asarray(packed, dtype=np.uint32)
        if not distinct:
            unique, inverse = np.unique(packed, return_inverse=True)
            return self(unique, distinct=True)[inverse]
        labels = np.empty(len(packed), dtype=np.uint8)
        for start in range(0, len(packed), CONVERT_BLOCK):
            part = slice(start, start + CONVERT_BLOCK)
            points = to_working(unpack(packed[part], self.channels), self.space)
            labels[part] = self.label_points(points)
        return labels

    def label_points(self, points: np.ndarray) -> np.ndarray:
        """Palette index (uint8) of each colour already in the space's coordinates."""
        from pipeline.lloyd import nearest_centres  # numba only where pixels are labelled

        return nearest_centres(points, self._centres)

    def label_fitted(self, fitted) -> np.ndarray:
        """See :func:`label_fitted` (``fitted``: a :class:`pipeline.quantize.FittedColours`):
        the same labels as :meth:`label_points` gives."""
        return label_fitted(fitted.bounds, fitted.positions, self._centres)


def label_fitted(bounds, positions: np.ndarray, working: np.ndarray) -> np.ndarray:
    """Palette index (uint8) of each point of a Lloyd run whose ``bounds``
    (:class:`pipeline.lloyd.LloydBounds`) the fit kept, its palette (``working``: in working
    coordinates) rounded from the run's centres, ``positions[c]`` being centre c's colour's
    index in it: each point's exact nearest palette colour, the lowest index on an exact tie.

    Searched over the centres' colours (copies of palette rows), lowest centre index on a tie:
    that centre holds the first copy of its colour, and ``positions`` keeps the palette's
    order, so it maps to the lowest palette index among the nearest."""
    return positions[bounds.nearest(working[positions])].astype(np.uint8)


def make_labeler(palette: np.ndarray, space: str):
    """The exact labeler of ``space``: integer-exact :class:`Labeler` for ``rgb``,
    :class:`SpaceLabeler` otherwise. Both map packed colours to palette indices."""
    return Labeler(palette) if space == "rgb" else SpaceLabeler(palette, space)


def squared_error(packed: np.ndarray, labels: np.ndarray, palette: np.ndarray) -> int:
    """Sum over pixels and channels of (source − palette colour)², exactly, as an integer."""
    channels = palette.shape[1]
    colors = unpack(packed, channels).astype(np.int32)
    diff = colors - palette.astype(np.int32)[labels]
    return int(np.einsum("ij,ij->", diff, diff, dtype=np.int64))
