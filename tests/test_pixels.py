"""Pixel strips: Pillow's raw encoder and its public fallback give the same pixels."""

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import pipeline.pixels
from pipeline.pixels import PixelSource


def noise(mode: str) -> Image.Image:
    data = np.random.default_rng(7).integers(0, 256, (37, 23, len(mode)), dtype=np.uint8)
    return Image.fromarray(data, mode)


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_strips_through_the_encoder_and_the_fallback_are_the_same_pixels(mode, monkeypatch):
    image = noise(mode)
    whole = PixelSource(image).all_pixels()
    # Read strip by strip (5 rows each), not from the one cached copy a small image gets.
    monkeypatch.setattr(pipeline.pixels, "CACHE_PIXELS", 10)
    monkeypatch.setattr(pipeline.pixels, "STRIP_PIXELS", 5 * image.width)
    encoded = list(PixelSource(image).strips())
    assert pipeline.pixels._encoded_rows(image, PixelSource(image).rawmode, 0, 5) is not None

    def broken(*args):
        raise AttributeError("no such encoder")

    # Only the encoder route loses its encoder: the fallback's tobytes keeps Pillow's own.
    monkeypatch.setattr(pipeline.pixels, "Image", SimpleNamespace(_getencoder=broken))
    assert pipeline.pixels._encoded_rows(image, PixelSource(image).rawmode, 0, 5) is None
    fallback = list(PixelSource(image).strips())
    assert [len(strip) for strip in encoded] == [5 * image.width] * 7 + [2 * image.width]
    assert all(np.array_equal(a, b) for a, b in zip(encoded, fallback, strict=True))
    assert np.array_equal(np.concatenate(encoded), whole)


def test_rows_of_a_palette_image_are_its_indices():
    image = noise("RGB").quantize(16)
    rows = pipeline.pixels.raw_rows(image, "P", 3, 9)
    assert pipeline.pixels._encoded_rows(image, "P", 3, 9) == rows
    assert rows == image.crop((0, 3, image.width, 9)).tobytes()
