"""Stage 3, fit: choose the palette. Three ways, all seeded and reproducible.

* ``fit_histogram``: the default. k-means++ seeding from scikit-learn on a coarse histogram,
  then weighted Lloyd steps, first on the coarse bins and then on the fine bins. It reaches the
  quality of k-means on every pixel at a small fraction of its cost, because a photo has tens of
  thousands of occupied bins but millions of pixels.
* ``fit_sample``: the seed example exactly: ``KMeans`` on N randomly drawn pixels in [0, 1].
* ``fit_random``: the seed example's baseline: K randomly drawn pixels as the codebook.
"""

import numpy as np

from pipeline.histogram import ColorHistogram
from pipeline.pixels import PixelSource, unpack

#: Bits per channel of the coarse histogram the fit starts on (RGB 5: ≤32,768 bins).
COARSE_BITS = {3: 5, 4: 4}

#: Lloyd steps on the coarse bins, at most; they stop earlier once centres move less than tol.
COARSE_ITERATIONS = 30

#: Lloyd steps on the fine bins after the coarse ones, at most.
FINE_ITERATIONS = 6

#: Largest centre move (0–255 scale) below which Lloyd iterations are considered converged.
TOLERANCE = 0.2

#: Below this many points per cluster, the fit runs on the exact distinct colours instead.
MIN_POINTS_PER_CLUSTER = 4


def fit_histogram(histogram: ColorHistogram, n_colors: int, seed: int) -> np.ndarray:
    """Palette centres (float, 0–255) from the weighted colour histogram."""
    from sklearn.cluster import kmeans_plusplus

    coarse, coarse_weights = histogram.points(COARSE_BITS[histogram.channels])
    fine, fine_weights = histogram.points()
    if len(coarse) < MIN_POINTS_PER_CLUSTER * n_colors:
        coarse, coarse_weights = fine, fine_weights
    if len(coarse) < n_colors:
        raise ValueError("fewer histogram points than colours")
    centres, _ = kmeans_plusplus(coarse, n_colors, sample_weight=coarse_weights, random_state=seed)
    centres = weighted_lloyd(coarse, coarse_weights, centres, COARSE_ITERATIONS)
    if coarse is not fine:
        centres = weighted_lloyd(fine, fine_weights, centres, FINE_ITERATIONS)
    return centres


def fit_distinct(colors: np.ndarray, counts: np.ndarray, n_colors: int, seed: int) -> np.ndarray:
    """Palette centres from exact distinct colours with their counts (small-colour images)."""
    from sklearn.cluster import kmeans_plusplus

    points = colors.astype(np.float64)
    weights = counts.astype(np.float64)
    centres, _ = kmeans_plusplus(points, n_colors, sample_weight=weights, random_state=seed)
    return weighted_lloyd(points, weights, centres, COARSE_ITERATIONS + FINE_ITERATIONS)


def weighted_lloyd(points, weights, centres, iterations, tol=TOLERANCE) -> np.ndarray:
    """Lloyd's k-means steps on weighted points; an empty cluster keeps its previous centre."""
    points32 = points.astype(np.float32)
    weighted = points * weights[:, None]
    centres = np.asarray(centres, dtype=np.float64)
    n_clusters, channels = centres.shape
    for _ in range(iterations):
        c32 = centres.astype(np.float32)
        distances = points32 @ (-2.0 * c32.T)
        distances += (c32 * c32).sum(axis=1)
        labels = distances.argmin(axis=1)
        totals = np.bincount(labels, weights=weights, minlength=n_clusters)
        moved = np.empty_like(centres)
        for channel in range(channels):
            moved[:, channel] = np.bincount(
                labels, weights=weighted[:, channel], minlength=n_clusters
            )
        filled = totals > 0
        moved[filled] /= totals[filled, None]
        moved[~filled] = centres[~filled]
        shift = np.abs(moved - centres).max()
        centres = moved
        if shift < tol:
            break
    return centres


def sample_indices(n_pixels: int, n_samples: int, seed: int) -> np.ndarray:
    """The pixel indices ``sklearn.utils.shuffle(X, random_state=seed, n_samples=...)`` draws."""
    from sklearn.utils import shuffle

    return shuffle(np.arange(n_pixels), random_state=seed, n_samples=min(n_samples, n_pixels))


def fit_sample(source: PixelSource, n_colors: int, n_samples: int, seed: int) -> np.ndarray:
    """The seed's fit: ``KMeans(n_clusters, random_state=seed)`` on N pixels scaled to [0, 1]."""
    from sklearn.cluster import KMeans

    pixels = unpack(source.all_pixels(), source.channels)
    drawn = pixels[sample_indices(len(pixels), n_samples, seed)] / 255.0
    n_fit = min(n_colors, len(np.unique(drawn, axis=0)))
    model = KMeans(n_clusters=n_fit, random_state=seed).fit(drawn)
    return model.cluster_centers_ * 255.0


def fit_random(source: PixelSource, n_colors: int, seed: int) -> np.ndarray:
    """The seed's baseline: K pixels drawn at random form the codebook."""
    pixels = unpack(source.all_pixels(), source.channels)
    return pixels[sample_indices(len(pixels), n_colors, seed)].astype(np.float64)
