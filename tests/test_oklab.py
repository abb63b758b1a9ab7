"""Oklab conversion: known values, the round trip of every sRGB colour, and the palette path."""

import numpy as np
import pytest

from pipeline.oklab import (
    linear_to_srgb,
    oklab_to_srgb,
    oklab_to_srgb_float,
    srgb_to_linear,
    srgb_to_oklab,
)

#: Published Oklab coordinates of the sRGB primaries and white (CSS Color 4's conversions).
KNOWN = {
    (255, 255, 255): (1.0, 0.0, 0.0),
    (0, 0, 0): (0.0, 0.0, 0.0),
    (255, 0, 0): (0.627955, 0.224863, 0.125846),
    (0, 255, 0): (0.866440, -0.233888, 0.179498),
    (0, 0, 255): (0.452014, -0.032457, -0.311528),
}


@pytest.mark.parametrize("rgb", list(KNOWN))
def test_known_values(rgb):
    np.testing.assert_allclose(srgb_to_oklab(np.array(rgb, np.uint8)), KNOWN[rgb], atol=2e-4)


def test_transfer_function_is_the_piecewise_srgb_one():
    codes = np.arange(256) / 255.0
    linear = srgb_to_linear(codes)
    assert linear[0] == 0 and linear[-1] == pytest.approx(1.0)
    assert linear[10] == pytest.approx(10 / 255 / 12.92)  # below 0.04045: the linear segment
    assert linear[128] == pytest.approx(((128 / 255 + 0.055) / 1.055) ** 2.4)
    np.testing.assert_allclose(linear_to_srgb(linear), codes, atol=1e-12)


def test_every_srgb_colour_survives_the_round_trip():
    """All 2^24 colours, in slabs of one red value: to Oklab and back to the same uint8."""
    green, blue = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    for red in range(0, 256, 1):
        rgb = np.stack([np.full_like(green, red), green, blue], axis=-1).astype(np.uint8)
        assert np.array_equal(oklab_to_srgb(srgb_to_oklab(rgb)), rgb), red


def test_float_input_matches_uint8_input():
    rgb = np.random.default_rng(0).integers(0, 256, size=(1000, 3))
    np.testing.assert_allclose(
        srgb_to_oklab(rgb.astype(np.float64)), srgb_to_oklab(rgb.astype(np.uint8)), atol=1e-12
    )


def test_out_of_gamut_oklab_is_clipped_and_rounded():
    lab = np.array([[1.2, 0.0, 0.0], [-0.1, 0.0, 0.0], [0.6, 0.4, 0.0]])
    rgb = oklab_to_srgb(lab)
    assert rgb.dtype == np.uint8
    assert tuple(rgb[0]) == (255, 255, 255) and tuple(rgb[1]) == (0, 0, 0)
    floats = oklab_to_srgb_float(lab)
    assert floats.min() >= 0 and floats.max() <= 255
    np.testing.assert_array_equal(rgb, np.rint(floats))
