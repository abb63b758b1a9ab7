"""Seed compatibility: with the example's space (``--space rgb``) and no dithering, our
--sample/--method random reproduce scikit-learn's example exactly."""

import numpy as np
import pytest
from PIL import Image
from sklearn.cluster import KMeans
from sklearn.utils import shuffle

from pipeline.params import QuantizeParams
from pipeline.quantize import quantize_image

#: The example's recipe, as flags: RGB distances.
EXAMPLE = {"space": "rgb", "dither": 0}


def seed_codebook(pixels: np.ndarray, k: int, seed: int, n_samples: int) -> np.ndarray:
    """The example's own calls, verbatim: fit on a 1,000-pixel sample of pixels / 255."""
    data = np.array(pixels, dtype=np.float64) / 255
    sample = shuffle(data.reshape(-1, 3), random_state=seed, n_samples=n_samples)
    model = KMeans(n_clusters=k, random_state=seed).fit(sample)
    return np.clip(np.rint(model.cluster_centers_ * 255), 0, 255).astype(np.uint8)


def random_codebook(pixels: np.ndarray, k: int, seed: int) -> np.ndarray:
    data = np.array(pixels, dtype=np.float64) / 255
    codebook = shuffle(data.reshape(-1, 3), random_state=seed, n_samples=k)
    return np.clip(np.rint(codebook * 255), 0, 255).astype(np.uint8)


def as_rows(palette: np.ndarray) -> list:
    return sorted(map(tuple, palette.tolist()))


def test_kmeans_sample_reproduces_the_example_codebook(china):
    ours = quantize_image(
        Image.fromarray(china), QuantizeParams(k=64, sample=1000, seed=0, **EXAMPLE)
    )
    expected = seed_codebook(china, 64, 0, 1000)
    assert as_rows(ours.palette) == as_rows(np.unique(expected, axis=0))


def test_random_method_reproduces_the_example_codebook(china):
    ours = quantize_image(
        Image.fromarray(china), QuantizeParams(k=64, method="random", seed=0, **EXAMPLE)
    )
    expected = random_codebook(china, 64, 0)
    assert as_rows(ours.palette) == as_rows(np.unique(expected, axis=0))


@pytest.mark.parametrize("seed", [1, 7])
def test_other_seeds_follow_the_example_too(flower, seed):
    ours = quantize_image(
        Image.fromarray(flower), QuantizeParams(k=16, sample=500, seed=seed, **EXAMPLE)
    )
    assert as_rows(ours.palette) == as_rows(np.unique(seed_codebook(flower, 16, seed, 500), axis=0))


def test_same_seed_same_palette_and_other_seed_differs(flower):
    image = Image.fromarray(flower)
    first = quantize_image(image, QuantizeParams(k=32, seed=3)).palette
    again = quantize_image(image, QuantizeParams(k=32, seed=3)).palette
    other = quantize_image(image, QuantizeParams(k=32, seed=4)).palette
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
