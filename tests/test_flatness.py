"""Flatness weights: flat areas weigh fully, texture little, and the undithered Oklab fit gives
a smooth gradient more palette colours than plain k-means does."""

import numpy as np
from PIL import Image

from pipeline import quantize
from pipeline.flatness import FLATNESS_FLOOR, pixel_weights, weighs_flatness
from pipeline.params import QuantizeParams


def _gradient_over_texture() -> Image.Image:
    """Top half: a smooth blue sky gradient; bottom half: wide-ranging random texture."""
    rng = np.random.default_rng(0)
    height, width = 64, 96
    sky = np.zeros((height // 2, width, 3), dtype=np.uint8)
    ramp = np.linspace(0, 1, width)
    sky[..., 0] = np.rint(60 + 50 * ramp).astype(np.uint8)
    sky[..., 1] = np.rint(100 + 50 * ramp).astype(np.uint8)
    sky[..., 2] = np.rint(170 + 40 * ramp).astype(np.uint8)
    texture = rng.integers(0, 256, (height // 2, width, 3), dtype=np.uint8)
    return Image.fromarray(np.vstack([sky, texture]))


def test_flat_pixels_weigh_fully_and_texture_weighs_the_floor():
    flat = Image.new("RGB", (16, 16), (90, 120, 200))
    checker = Image.fromarray((np.indices((16, 16)).sum(axis=0) % 2 * 255).astype(np.uint8))
    assert np.allclose(pixel_weights(flat), 1.0)
    assert np.allclose(pixel_weights(checker.convert("RGB")), FLATNESS_FLOOR**2)


def test_only_undithered_oklab_is_weighted():
    assert weighs_flatness("oklab", 0.0)
    assert not weighs_flatness("oklab", 1.0)
    assert not weighs_flatness("rgb", 0.0)


def test_the_weighted_fit_gives_the_gradient_more_colours(monkeypatch):
    image = _gradient_over_texture()
    params = QuantizeParams(k=16, space="oklab", dither=0.0)

    def colours_in_sky() -> int:
        labels = np.asarray(quantize.quantize_image(image, params).indexed)
        return len(np.unique(labels[: image.height // 2]))

    weighted = colours_in_sky()
    monkeypatch.setattr(quantize, "weighs_flatness", lambda space, dither: False)
    assert weighted > colours_in_sky()
