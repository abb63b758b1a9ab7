"""Flatness weights: flat areas weigh fully, texture little, and the Oklab fit gives a smooth
gradient more palette colours than plain k-means does."""

import numpy as np
from PIL import Image

from pipeline import quantize
from pipeline.flatness import (
    FLATNESS_MAX_PIXELS,
    FLOOR_DITHERED,
    FLOOR_UNDITHERED,
    flatness_floor,
    pixel_weights,
)
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
    for floor in (FLOOR_UNDITHERED, FLOOR_DITHERED):
        assert np.allclose(pixel_weights(checker.convert("RGB"), floor), floor**2)


def test_oklab_is_weighted_more_gently_when_dithered_and_rgb_and_big_photos_not_at_all():
    assert flatness_floor("oklab", 0.0, 100) == FLOOR_UNDITHERED
    assert flatness_floor("oklab", 0.5, 100) == FLOOR_DITHERED > FLOOR_UNDITHERED
    assert flatness_floor("rgb", 0.0, 100) is None
    assert flatness_floor("oklab", 0.0, FLATNESS_MAX_PIXELS + 1) is None


def test_the_weighted_fit_gives_the_gradient_more_colours(monkeypatch):
    image = _gradient_over_texture()
    params = QuantizeParams(k=16, space="oklab", dither=0.0)

    def colours_in_sky() -> int:
        labels = np.asarray(quantize.quantize_image(image, params).indexed)
        return len(np.unique(labels[: image.height // 2]))

    weighted = colours_in_sky()
    monkeypatch.setattr(quantize, "flatness_floor", lambda space, dither, pixels: None)
    assert weighted > colours_in_sky()
