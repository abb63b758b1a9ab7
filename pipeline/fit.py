"""Stage 3, fit: choose the palette. Three ways, all seeded and reproducible.

* ``fit_histogram``: the default. Greedy k-means++ (as scikit-learn's), best of three (of
  eight below K=32), seeds on the weighted 5-bit histogram; weighted Lloyd steps follow on the
  5-bit bins, then on the image's exact distinct colours weighted by their exact counts when
  the labels are exact (photos up to a few megapixels; otherwise on the 6-bit bins, and for
  K ≥ 128 on the distinct colours). Steps are over-relaxed (a centre moves 1.8× the way to its
  cluster's mean), which needs a third of plain Lloyd's steps; compiled, with Hamerly's bounds
  (Drake's, tracking each point's runner-up, for long runs) that skip points that cannot change
  cluster (:mod:`pipeline.lloyd`). It comes within about
  0.05 dB of k-means on every pixel at a small fraction of its cost. Everything runs in the
  working coordinates of the chosen space (:mod:`pipeline.space`).
* ``fit_sample``: the seed example exactly: ``KMeans`` on N randomly drawn pixels in [0, 1].
* ``fit_random``: the seed example's baseline: K randomly drawn pixels as the codebook.

``fit_palette`` is the stage on its own: colour counts in (one image's, or the merged counts of
a whole job), the integer palette out. Whatever the fit, ``finish_palette`` gives the palette its
final form: uint8, no repeated colour, and one fully transparent entry last when any pixel is
fully transparent.
"""

import numpy as np

from pipeline.histogram import ColorHistogram
from pipeline.pixels import PixelSource, pack, unpack
from pipeline.settings import SPACES
from pipeline.space import from_working, to_working

#: Bits per channel of the histogram levels the fit climbs through, coarse to fine. The last
#: one is the histogram's own (fine) resolution. (Seeding RGB on 4 bits would make the seeding
#: trials cheaper, but left flower.jpg's Oklab fit 6% above weighted KMeans's inertia at K=64.)
LEVELS = {3: (5, 6), 4: (4, 5)}

#: k-means++ seeds on the coarsest level holding at least this many points per cluster.
SEED_POINTS_PER_CLUSTER = 8

#: k-means++ seedings tried (each with the coarse steps on its level); the best is kept. From
#: SINGLE_SEEDING_FROM_K colours on, one: many small clusters average one seeding's luck out,
#: while each seeding costs in proportion to K (three took 0.14 s of a 24 MP photo at K=256).
SEED_TRIALS, SINGLE_SEEDING_FROM_K = 3, 128

#: Seedings tried below SMALL_K colours, where each is cheap (about 2 ms a photo at K=16) and
#: one seeding's luck weighs most. On the quality mix at K=16, 8 instead of 3 took --dither 0
#: from 9 to 10 of 10 photos above pngquant --nofs in SSIMULACRA2 (grace_hopper.png −1.21 →
#: +0.47, mean +1.0) and left no photo's PSNR lower in the RGB mode (worst against full
#: KMeans −0.014 → −0.003 dB).
SEED_TRIALS_SMALL_K = 8

#: Below this palette size clusters are large: a few fine steps settle them.
SMALL_K, FINE_ITERATIONS_SMALL_K = 32, 4

#: From this palette size on, bins stand for the mean of their distinct colours; below it, for
#: their centre (large clusters do not feel the difference, and it saves a pass).
COLOUR_MEANS_FROM_K = 32

#: Lloyd steps on each coarse level, at most; they stop earlier once centres move less than tol.
COARSE_ITERATIONS = 8

#: Lloyd steps on the fine level after the coarse ones, at most.
FINE_ITERATIONS = 6

#: Largest centre move (0–255 scale) below which Lloyd iterations are considered converged.
TOLERANCE = 0.02

#: Coarse-level tolerance: a coarse level only has to bring the centres near their place.
COARSE_TOLERANCE = 0.2

#: Over-relaxation of each Lloyd step (1: plain Lloyd).
RELAX = 1.8

#: Final Lloyd steps on the distinct colours themselves, from this palette size on. A bin
#: ties all its colours to one cluster, which costs most when clusters are small (large K).
DISTINCT_FROM_K, DISTINCT_ITERATIONS = 128, 5

#: Final Lloyd steps on the exact distinct colours with their exact counts, when known, by
#: space; they replace the fine level's steps. Bins tie all their colours to one cluster, which
#: costs up to 0.4 dB on photos whose colours crowd a small part of the cube (a dark sky, a
#: retina scan). In RGB (the PSNR mode) 20 steps keep every photo of the quality mix within
#: 0.1 dB of full-data KMeans and at or above pngquant --nofs at K=64 (12 left ihc.png 0.01 dB
#: below it). In Oklab, 5 steps bring china and flower within 1.5% of weighted KMeans's
#: inertia at K=64 (3 steps: 0.9% and 2.0%; bins alone: up to 3% above it). Given as (from
#: palette size, steps): the last pair whose size the palette reaches applies.
#:
#: From K=32 on, Oklab takes fewer: each step after the first costs about 3.6 ms a photo at
#: K=64 on the timing mix (the first 7.5), about a tenth of the undithered mode's time. Mean
#: SSIMULACRA2 on the 10-photo quality mix, 5 / 3 / 2 steps: K=32 47.25 / 47.10 / 46.99, K=64
#: 64.66 / 64.53 / 64.40, K=128 74.96 / 74.69 / 74.46, K=256 81.82 / 81.67 / 81.41; every
#: photo stays above pngquant --nofs (worst margin at K=64 +3.67 / +3.70 / +3.56, at K=256
#: +1.83 / +1.84 / +1.54). Below K=32 the margin is thin (+0.21 at K=16): 5 steps stay.
EXACT_ITERATIONS = {"rgb": ((0, 20),), "oklab": ((0, 5), (32, 2), (128, 3))}

#: The exact-colour steps stop once two in a row have each lowered the inertia by less than
#: this fraction: 20 steps are what the slowest photos need (K=64 and 256 still gain 1e-4 a
#: step at the 20th), while at K=16 most photos settle within 8–12 (gains below 1e-5 a step,
#: under 0.002 dB left against 40 steps).
EXACT_MIN_GAIN = 1e-5

#: Above this many distinct colours the distinct-colour steps are skipped (big photos).
MAX_DISTINCT_POINTS = 400_000


def check_space(space: str) -> str:
    """``space`` when it names a supported colour space; ValueError otherwise."""
    if space not in SPACES:
        raise ValueError(f"space must be one of {', '.join(SPACES)}, got {space!r}")
    return space


def fit_palette(counts, n_colors: int, *, space: str = SPACES[0], seed: int = 0) -> np.ndarray:
    """The palette fitted on colour counts: (n, channels) uint8, n ≤ ``n_colors``.

    ``counts`` is a :class:`pipeline.counts.ColorCounts` (or a histogram, which offers the
    same points). Counts that hold no more colours than ``n_colors`` give those colours as
    they are; otherwise a weighted k-means fit, seeded with ``seed``, in ``space``.
    """
    check_space(space)
    opaque_colors = n_colors - (1 if counts.transparent_count else 0)
    if counts.distinct_count <= opaque_colors:
        raw = counts.colors()
    else:
        raw = round_centres(fit_histogram(counts, opaque_colors, seed, space), space)
    return finish_palette(raw, counts.transparent_count, counts.transparent_sum)


def finish_palette(raw: np.ndarray, transparent_count: int, transparent_sum) -> np.ndarray:
    """A fitted uint8 palette in its final form: repeated colours dropped (first kept); for
    RGBA, alpha 0 reserved for one entry, last, standing for every fully transparent pixel
    (its colour: their mean, which only matters to viewers that ignore alpha)."""
    palette = np.array(raw, dtype=np.uint8)
    clear = transparent_count > 0
    if palette.shape[1] == 4:
        palette = palette[palette[:, 3] > 0] if clear else palette
        palette[:, 3] = np.maximum(palette[:, 3], 1)
    palette = _unique_rows(palette)
    if clear:
        mean_rgb = np.rint(np.asarray(transparent_sum, dtype=np.float64) / transparent_count)
        palette = np.vstack([palette, [*mean_rgb.astype(np.uint8), 0]]).astype(np.uint8)
    return palette


def palette_positions(raw: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Where each colour of ``raw`` (an RGB palette before :func:`finish_palette`) sits in
    ``palette`` (after it): the index of its first copy, as repeated colours are dropped."""
    keys, wanted = pack(palette), pack(raw)
    order = np.argsort(keys)
    return order[np.searchsorted(keys, wanted, sorter=order)]


def round_centres(centres: np.ndarray, space: str = "rgb") -> np.ndarray:
    """Float centres (working coordinates of ``space``) → uint8 sRGB(A) palette colours,
    rounded and clipped to the gamut."""
    return np.clip(np.rint(from_working(centres, space)), 0, 255).astype(np.uint8)


def _unique_rows(palette: np.ndarray) -> np.ndarray:
    """Drop repeated colours, keeping the first of each, so every entry is distinct."""
    _, first = np.unique(pack(palette), return_index=True)
    return palette[np.sort(first)]


def fit_histogram(
    histogram: ColorHistogram,
    n_colors: int,
    seed: int,
    space: str = "rgb",
    exact: tuple | None = None,
) -> np.ndarray:
    """Palette centres (working coordinates of ``space``) from the weighted colour histogram.

    ``exact``, the image's distinct colours in the working coordinates of ``space`` ((n,
    channels) float64) with their pixel counts, lets the last Lloyd steps run on the exact data
    instead of on bins (see EXACT_ITERATIONS); a third item, the colours packed (RGB), lets
    their first search start from their bins' clusters.
    """
    return fit_histogram_bounded(histogram, n_colors, seed, space, exact)[0]


def fit_histogram_bounded(
    histogram: ColorHistogram,
    n_colors: int,
    seed: int,
    space: str = "rgb",
    exact: tuple | None = None,
):
    """:func:`fit_histogram`'s centres, with the :class:`pipeline.lloyd.LloydBounds` of its
    last steps on the ``exact`` colours (None without them): what they hold of each colour
    gives its exact label against the rounded palette for little more than a Lloyd step."""
    levels = [bits for bits in LEVELS[histogram.channels] if bits <= histogram.bits]
    fine_steps = FINE_ITERATIONS if n_colors >= SMALL_K else FINE_ITERATIONS_SMALL_K
    from_colours = n_colors >= COLOUR_MEANS_FROM_K
    points = {}
    for bits in levels:
        points[bits] = _in_space(histogram.points(bits, from_colours), space)
        if len(points[bits][0]) >= SEED_POINTS_PER_CLUSTER * n_colors:
            break
    seed_bits = bits
    seed_points, seed_weights = points[seed_bits]
    if len(seed_points) < n_colors:
        raise ValueError("fewer histogram points than colours")
    tol = TOLERANCE if seed_bits == levels[-1] else COARSE_TOLERANCE
    centres, seed_labels = _best_seeding(seed_points, seed_weights, n_colors, seed, tol)
    # Lloyd on the last two levels: the coarse one moves the centres most of the way cheaply.
    for bits in levels[-2:]:
        if bits <= seed_bits:
            continue  # the seeding level's steps were taken while choosing the seeding
        last = bits == levels[-1]
        if last and bits > seed_bits and exact is not None:
            continue  # the exact colours take the fine level's place
        level_points, level_weights = points.get(bits) or _in_space(
            histogram.points(bits, from_colours), space
        )
        centres = weighted_lloyd(
            level_points,
            level_weights,
            centres,
            fine_steps if last and bits > seed_bits else COARSE_ITERATIONS,
            TOLERANCE if last else COARSE_TOLERANCE,
        )
        seed_labels = None  # the seeding level's clusters are out of date
    if exact is not None:
        points, counts = exact[:2]
        weights = counts.astype(np.float64)
        steps = exact_iterations(space, n_colors)
        from pipeline.lloyd import EXACT_TIGHT_FROM_STEPS  # numba only where images are fitted

        guesses = None
        if len(exact) > 2 and seed_labels is not None and histogram.channels == 3:
            guesses = _guesses(histogram, seed_bits, seed_labels, exact[2])
        return weighted_lloyd(
            points,
            weights,
            centres,
            steps,
            None,
            EXACT_MIN_GAIN,
            tight=steps >= EXACT_TIGHT_FROM_STEPS,
            keep_bounds=True,
            guesses=guesses,
        )
    if n_colors >= DISTINCT_FROM_K and 0 < histogram.distinct_count <= MAX_DISTINCT_POINTS:
        distinct = histogram.distinct_points()
        if distinct is not None:
            distinct = _in_space(distinct, space)
            centres = weighted_lloyd(*distinct, centres, DISTINCT_ITERATIONS, TOLERANCE)
    return centres, None


def exact_iterations(space: str, n_colors: int) -> int:
    """The Lloyd steps on the exact colours for a palette of ``n_colors`` in ``space``."""
    return [steps for size, steps in EXACT_ITERATIONS[space] if n_colors >= size][-1]


def _best_seeding(points, weights, n_colors: int, seed: int, tol: float) -> np.ndarray:
    """The best of a few (:func:`_seedings`) k-means++ seedings, each followed by the coarse
    Lloyd steps on the seeding level: the one with the lowest inertia there. One seeding's luck
    moves a photo's score by a point of SSIMULACRA2 or a few hundredths of a dB either way; the
    best of three rarely loses to any one of them."""
    from pipeline.lloyd import inertia, kmeans_plusplus

    best, best_inertia = None, np.inf
    for trial in range(_seedings(n_colors)):
        centres = kmeans_plusplus(points, weights, n_colors, (seed, trial))
        centres, labels = weighted_lloyd(
            points, weights, centres, COARSE_ITERATIONS, tol, keep_labels=True
        )
        score = inertia(points, weights, centres)
        if score < best_inertia:
            best, best_inertia = (centres, labels), score
    return best


def _guesses(histogram, bits: int, labels: np.ndarray, packed: np.ndarray) -> np.ndarray:
    """For each exact colour (``packed``, RGB), the cluster the seeding level's steps gave its
    bin (``labels``, of the bins at ``bits`` in key order): nearly always its nearest centre
    still, so the exact steps' first search from it ends at once (about 1 ms a photo of that
    pass's 8 at K=64, against the previous colour's)."""
    from pipeline.histogram import coarse_keys
    from pipeline.lloyd import labels_by_bin

    keys = histogram.occupied
    if bits < histogram.bits:  # the bins histogram.points(bits) merges, in its order
        coarse = coarse_keys(keys, histogram.bits, bits, histogram.channels)
        size = 1 << (bits * histogram.channels)
        keys = np.flatnonzero(np.bincount(coarse, weights=histogram.counts, minlength=size))
    return labels_by_bin(packed, bits, keys, labels)


def _seedings(n_colors: int) -> int:
    """How many k-means++ seedings :func:`_best_seeding` tries for ``n_colors`` colours."""
    if n_colors < SMALL_K:
        return SEED_TRIALS_SMALL_K
    return SEED_TRIALS if n_colors < SINGLE_SEEDING_FROM_K else 1


def _in_space(points_and_weights, space: str):
    points, weights = points_and_weights
    return to_working(points, space), weights


def fit_distinct(
    colors: np.ndarray, counts: np.ndarray, n_colors: int, seed: int, space: str = "rgb"
) -> np.ndarray:
    """Palette centres (working coordinates) from exact distinct colours with their counts."""
    from pipeline.lloyd import kmeans_plusplus  # numba only where images are fitted

    points = to_working(colors, space)
    weights = counts.astype(np.float64)
    centres = kmeans_plusplus(points, weights, n_colors, seed)
    return weighted_lloyd(points, weights, centres, COARSE_ITERATIONS + FINE_ITERATIONS)


def weighted_lloyd(
    points,
    weights,
    centres,
    iterations,
    tol=None,
    min_gain=0.0,
    tight=None,
    keep_bounds=False,
    keep_labels=False,
    guesses=None,
):
    """Lloyd's k-means steps on weighted points, over-relaxed by RELAX; an empty cluster keeps
    its previous centre. They stop early once centres move less than ``tol``, or once two steps
    in a row each gain less than ``min_gain`` of the inertia (0: never). Compiled, with
    Hamerly's bounds (:func:`pipeline.lloyd.lloyd`): late steps, where few points change
    cluster, cost little more than the centre update; ``tight``: runner-up bounds too (None:
    from TIGHT_FROM_STEPS steps).
    With ``keep_bounds``: (centres, the run's :class:`pipeline.lloyd.LloydBounds`); with
    ``keep_labels``: (centres, each point's cluster); ``guesses``: each point's first guess
    of its centre (see :func:`pipeline.lloyd.lloyd`)."""
    from pipeline.lloyd import weighted_lloyd as compiled_lloyd  # numba only where images fit

    tol = TOLERANCE if tol is None else tol
    return compiled_lloyd(
        points,
        weights,
        centres,
        iterations,
        tol,
        RELAX,
        min_gain,
        tight,
        keep_bounds,
        keep_labels,
        guesses,
    )


def sample_indices(n_pixels: int, n_samples: int, seed: int) -> np.ndarray:
    """The pixel indices ``sklearn.utils.shuffle(X, random_state=seed, n_samples=...)`` draws."""
    from sklearn.utils import shuffle

    return shuffle(np.arange(n_pixels), random_state=seed, n_samples=min(n_samples, n_pixels))


def fit_sample(
    source: PixelSource, n_colors: int, n_samples: int, seed: int, space: str = "rgb"
) -> np.ndarray:
    """The seed's fit: ``KMeans(n_clusters, random_state=seed)`` on N pixels scaled to [0, 1]
    (in ``rgb``, exactly the example's; in another space, its working coordinates / 255)."""
    from sklearn.cluster import KMeans

    pixels = unpack(source.all_pixels(), source.channels)
    drawn = to_working(pixels[sample_indices(len(pixels), n_samples, seed)], space) / 255.0
    n_fit = min(n_colors, len(np.unique(drawn, axis=0)))
    model = KMeans(n_clusters=n_fit, random_state=seed).fit(drawn)
    return model.cluster_centers_ * 255.0


def fit_random(source: PixelSource, n_colors: int, seed: int, space: str = "rgb") -> np.ndarray:
    """The seed's baseline: K pixels drawn at random form the codebook (working coordinates)."""
    pixels = unpack(source.all_pixels(), source.channels)
    return to_working(pixels[sample_indices(len(pixels), n_colors, seed)], space)
