"""The pipeline's stages on their own: colour counts → merge → fit → label with a given palette."""

import numpy as np
import pytest
from PIL import Image

from pipeline.counts import ColorCounts, count_colors, merge_counts
from pipeline.fit import fit_palette
from pipeline.histogram import FINE_BITS
from pipeline.params import QuantizeParams
from pipeline.quantize import label_image, quantize_image
from tests.nearest import brute_force_labels


def brute_counts(pixels: np.ndarray) -> dict:
    """Reference counts: {bin key: (count, per-channel sums)} by plain Python arithmetic."""
    channels = pixels.shape[-1]
    bits = FINE_BITS[channels]
    flat = pixels.reshape(-1, channels).astype(np.int64)
    if channels == 4:
        flat = flat[flat[:, 3] > 0]
    keys = sum((flat[:, c] >> (8 - bits)) << (bits * c) for c in range(channels))
    table = {}
    for key in np.unique(keys):
        chosen = flat[keys == key]
        table[int(key)] = (len(chosen), chosen.sum(axis=0).tolist())
    return table


def as_table(counts: ColorCounts) -> dict:
    return {
        int(key): (int(count), sums.tolist())
        for key, count, sums in zip(counts.keys, counts.counts, counts.sums, strict=True)
    }


@pytest.mark.parametrize("size", [(1, 1), (40, 30), (600, 500)])
def test_counts_are_exact_for_small_and_large_images(size):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)
    counts = count_colors(Image.fromarray(pixels))
    assert counts.pixels == size[0] * size[1]
    if size[0] * size[1] < 1000:
        assert as_table(counts) == brute_counts(pixels)
    else:  # the dense path: check the totals and a sample of bins
        assert counts.sums.sum(axis=0).tolist() == pixels.reshape(-1, 3).sum(axis=0).tolist()
        reference = brute_counts(pixels[:50])
        small = as_table(count_colors(Image.fromarray(pixels[:50])))
        assert small == reference


def test_counts_of_transparent_images_keep_clear_pixels_apart():
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)
    pixels[..., 3] |= 1
    pixels[:5, :, 3] = 0
    counts = count_colors(Image.fromarray(pixels, "RGBA"))
    assert counts.transparent_count == 150
    assert list(counts.transparent_sum) == pixels[:5, :, :3].reshape(-1, 3).sum(axis=0).tolist()
    assert as_table(counts) == brute_counts(pixels)


def test_merge_is_exact_order_independent_and_survives_serialisation(china, flower):
    parts = [
        count_colors(Image.fromarray(china[:200])),
        count_colors(Image.fromarray(flower)),
        count_colors(Image.fromarray(china[200:])),
    ]
    merged = merge_counts(parts)
    assert merged == merge_counts(parts[::-1]) == parts[1] + (parts[2] + parts[0])
    whole = count_colors(Image.fromarray(china)) + parts[1]
    assert as_table(merged) == as_table(whole)  # the halves add up exactly
    assert merged.images == 3
    assert merged.pixels == china.shape[0] * china.shape[1] + flower.size // 3
    stored = merged.to_bytes()
    assert ColorCounts.from_bytes(stored) == merged
    assert len(stored) < 600_000  # compact: occupied bins only, compressed
    with pytest.raises(ValueError):
        ColorCounts.from_bytes(b"not counts")


def test_rgb_and_rgba_counts_merge_into_rgba(china):
    rgb = count_colors(Image.fromarray(china[:100, :100]))
    rgba_pixels = np.dstack([china[:100, :100], np.full((100, 100), 255, np.uint8)])
    rgba_pixels[:10, :, 3] = 0
    rgba = count_colors(Image.fromarray(rgba_pixels, "RGBA"))
    merged = merge_counts([rgb, rgba])
    assert merged.channels == 4 and merged.transparent_count == 1000
    assert merged.pixels == rgb.pixels + rgba.pixels
    assert merged.sums[:, :3].sum() == rgb.sums.sum() + rgba.sums[:, :3].sum()


def test_fit_on_merged_counts_is_deterministic_and_within_k(china, flower):
    merged = merge_counts(count_colors(Image.fromarray(p)) for p in (china, flower))
    palette = fit_palette(merged, 32, space="rgb", seed=0)
    assert palette.shape == (32, 3) and palette.dtype == np.uint8
    assert np.array_equal(palette, fit_palette(merge_counts([merged]), 32, space="rgb", seed=0))
    assert len(np.unique(palette, axis=0)) == len(palette)


def test_fit_on_few_colours_gives_them_exactly():
    pixels = np.zeros((8, 8, 3), np.uint8)
    pixels[:4] = (250, 10, 10)
    pixels[4:, :4] = (10, 250, 10)
    palette = fit_palette(count_colors(Image.fromarray(pixels)), 16)
    assert sorted(map(tuple, palette.tolist())) == [(0, 0, 0), (10, 250, 10), (250, 10, 10)]


def test_labelling_with_a_given_palette_uses_only_it_and_the_nearest_colour(china):
    palette = np.array([[0, 0, 0], [255, 255, 255], [200, 30, 30], [30, 120, 200]], np.uint8)
    result = label_image(Image.fromarray(china), palette, space="rgb", dither=0)
    assert result.timings_ms["fit"] < 1000 and np.array_equal(result.palette, palette)
    labels = np.asarray(result.indexed).ravel()
    expected = brute_force_labels(china.reshape(-1, 3), palette)
    assert np.array_equal(labels, expected)
    assert result.counts.tolist() == np.bincount(expected, minlength=4).tolist()


def test_quantize_image_is_its_fit_then_labelling_with_that_palette(flower):
    image = Image.fromarray(flower)
    own = quantize_image(image, QuantizeParams(k=48))
    relabelled = label_image(image, own.palette)
    assert np.array_equal(np.asarray(own.indexed), np.asarray(relabelled.indexed))
    assert relabelled.mse == pytest.approx(own.mse)


def test_rgb_palette_on_transparent_image_gains_one_clear_entry():
    pixels = np.full((10, 10, 4), 255, np.uint8)
    pixels[:, :5] = (0, 0, 0, 0)
    pixels[:, 5:, :3] = (250, 5, 5)
    result = label_image(Image.fromarray(pixels, "RGBA"), np.array([[255, 0, 0], [0, 0, 255]]))
    assert result.alphas.tolist() == [255, 255, 0]
    assert result.counts.tolist() == [50, 0, 50]


def test_label_image_refuses_unsupported_settings(china):
    image = Image.fromarray(china[:10, :10])
    with pytest.raises(ValueError, match="space"):
        label_image(image, np.zeros((2, 3), np.uint8), space="lab")
    with pytest.raises(ValueError, match="palette"):
        label_image(image, np.zeros((300, 3), np.uint8))
