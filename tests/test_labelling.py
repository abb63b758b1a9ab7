"""Labelling is exact: every pixel gets its nearest palette colour, ties to the lowest index."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import pipeline.quantize as quantize_module
from pipeline.colour_ranks import RankedLabels
from pipeline.fit import round_centres
from pipeline.label import Labeler, SpaceLabeler
from pipeline.lloyd import weighted_lloyd
from pipeline.params import QuantizeParams
from pipeline.pixels import pack
from pipeline.quantize import quantize_image
from pipeline.space import to_working
from tests.nearest import assert_nearest, brute_force_labels

SPACES = ("rgb", "oklab")


def palette_with_near_ties(rng: np.random.Generator, k: int, channels: int) -> np.ndarray:
    """A palette where many colours sit 1–2 levels from another, so ties and near-ties abound."""
    base = rng.integers(0, 256, size=(max(1, k // 2), channels))
    near = base[rng.integers(0, len(base), size=k - len(base))]
    near = near + rng.integers(-2, 3, size=near.shape)
    return np.clip(np.vstack([base, near]), 0, 255).astype(np.uint8)


def colours_near(rng: np.random.Generator, palette: np.ndarray, n: int) -> np.ndarray:
    """Colours near the palette (where ties live) and anywhere in the cube."""
    k, channels = palette.shape
    around = palette[rng.integers(0, k, size=n)].astype(int) + rng.integers(-3, 4, (n, channels))
    return np.where(
        rng.random((n, 1)) < 0.5, np.clip(around, 0, 255), rng.integers(0, 256, (n, channels))
    ).astype(np.uint8)


#: One labelling case: palette size, channels (RGB or RGBA), pixel count and seed.
LABELLING_CASE = {
    "k": st.integers(2, 256),
    "channels": st.sampled_from([3, 4]),
    "n": st.integers(1, 3000),
    "seed": st.integers(0, 2**32 - 1),
}


@settings(max_examples=60, deadline=None)
@given(**LABELLING_CASE)
def test_labeler_equals_brute_force(k, channels, n, seed):
    rng = np.random.default_rng(seed)
    palette = palette_with_near_ties(rng, k, channels)
    colors = colours_near(rng, palette, n)
    assert np.array_equal(Labeler(palette)(pack(colors)), brute_force_labels(colors, palette))


@settings(max_examples=40, deadline=None)
@given(**LABELLING_CASE, distinct=st.booleans())
def test_oklab_labeler_equals_brute_force(k, channels, n, seed, distinct):
    rng = np.random.default_rng(seed)
    palette = palette_with_near_ties(rng, k, channels)
    colors = colours_near(rng, palette, n)
    if distinct:
        colors = unpack_sorted(colors)
    labels = SpaceLabeler(palette, "oklab")(pack(colors), distinct=distinct)
    assert_nearest(labels, colors, palette, "oklab")


@settings(max_examples=40, deadline=None)
@given(
    k=st.integers(2, 64),
    n=st.integers(1, 2000),
    steps=st.integers(0, 4),
    tight=st.booleans(),
    space=st.sampled_from(SPACES),
    seed=st.integers(0, 2**32 - 1),
)
def test_labels_from_lloyd_bounds_equal_brute_force(k, n, steps, tight, space, seed):
    """The labels a fit's Lloyd bounds give against its rounded palette (the undithered
    path's) are exactly the float64 nearest, lowest index on a tie, in the working
    coordinates: also when some targets repeat one another or sit far from their centres."""
    rng = np.random.default_rng(seed)
    palette = palette_with_near_ties(rng, k, 3)
    colors = unpack_sorted(colours_near(rng, palette, n))
    points = to_working(colors, space)
    start = to_working(palette, space) + rng.normal(0, 2, (k, 3))
    centres, bounds = weighted_lloyd(
        points, rng.random(len(points)), start, steps, 0.0, 1.8, tight=tight, keep_bounds=True
    )
    targets = to_working(round_centres(centres, space), space)
    moved = rng.random(k) < 0.2
    targets[moved] = targets[rng.integers(0, k, moved.sum())]  # copies of other targets
    targets[rng.integers(0, k)] += rng.normal(0, 30, 3)  # one far from its centre
    diff = points[:, None, :] - targets[None, :, :]
    squared = (
        diff[..., 0] * diff[..., 0] + diff[..., 1] * diff[..., 1] + diff[..., 2] * diff[..., 2]
    )
    assert np.array_equal(bounds.nearest(targets), squared.argmin(axis=1))


def unpack_sorted(colors: np.ndarray) -> np.ndarray:
    """The distinct colours, in packed order (what the histogram lists)."""
    packed = np.unique(pack(colors))
    return packed.view(np.uint8).reshape(-1, 4)[:, : colors.shape[1]]


def test_exact_ties_go_to_the_lowest_index():
    colors = np.array([[1, 0, 0], [5, 5, 5], [0, 0, 0]], dtype=np.uint8)
    for palette in ([[0, 0, 0], [2, 0, 0]], [[2, 0, 0], [0, 0, 0]], [[4, 4, 4], [6, 6, 6]]):
        palette = np.array(palette, dtype=np.uint8)
        expected = brute_force_labels(colors, palette)
        assert np.array_equal(Labeler(palette)(pack(colors)), expected)
    # Equidistant from both: index 0 wins whichever colour it is.
    assert Labeler(np.array([[0, 0, 0], [2, 0, 0]], np.uint8))(pack(colors[:1]))[0] == 0
    assert Labeler(np.array([[2, 0, 0], [0, 0, 0]], np.uint8))(pack(colors[:1]))[0] == 0


def test_extreme_colours_and_a_single_entry_palette():
    corners = np.array(
        [[r, g, b] for r in (0, 255) for g in (0, 255) for b in (0, 255)], dtype=np.uint8
    )
    palette = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 255]], np.uint8)
    assert np.array_equal(Labeler(palette)(pack(corners)), brute_force_labels(corners, palette))
    assert not Labeler(palette[:1])(pack(corners)).any()


def test_labels_looked_up_by_colour_rank_equal_brute_force():
    """Each distinct colour labelled once, each pixel finding its colour's label by rank (the
    bit per colour set as the histogram sets it), equals brute force on every pixel."""
    rng = np.random.default_rng(7)
    palette = palette_with_near_ties(rng, 256, 3)
    pixels = rng.integers(0, 256, (20_000, 3)).astype(np.uint8)
    pixels[:64] = [[0, 0, 0], [255, 255, 255]] * 32  # first and last colour, bits 0 and 63
    packed = pack(pixels)
    present = np.zeros(1 << 18, dtype=np.uint64)
    np.bitwise_or.at(present, packed >> 6, np.uint64(1) << (packed & 63).astype(np.uint64))
    ranked = RankedLabels(present, Labeler(palette)(np.unique(packed), distinct=True))
    assert np.array_equal(ranked(packed), brute_force_labels(pixels, palette))


def image_labels_match_brute_force(image: Image.Image, k: int, space: str) -> None:
    """quantize_image's indexed result: each opaque pixel is its palette's nearest colour in
    ``space``, and the reported mse is the exact one."""
    result = quantize_image(image, QuantizeParams(k=k, space=space, dither=0))
    source = np.asarray(image).reshape(-1, len(image.mode)).astype(np.int64)
    labels = np.asarray(result.indexed).ravel()
    palette = result.palette.astype(np.int64)
    if result.alphas is not None:
        palette = np.column_stack([palette, result.alphas])
        opaque = source[:, 3] > 0
        clear_entry = np.flatnonzero(result.alphas == 0)
        assert np.all(np.isin(labels[~opaque], clear_entry))
        entries = np.flatnonzero(result.alphas > 0)
        assert np.all(np.isin(labels[opaque], entries))
        position = np.searchsorted(entries, labels[opaque])
        assert_nearest(position, source[opaque], palette[entries], space)
    else:
        assert_nearest(labels, source, palette, space)
    error = ((source - palette[labels]) ** 2).sum()
    assert result.mse == pytest.approx(error / source.size, rel=1e-12, abs=1e-12)
    assert result.counts.sum() == len(source)
    assert np.array_equal(result.counts, np.bincount(labels, minlength=len(palette)))


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("k", [2, 16, 64, 256])
def test_random_rgb_image(k, space):
    rng = np.random.default_rng(k)
    pixels = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    image_labels_match_brute_force(Image.fromarray(pixels), k, space)


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("k", [3, 32, 256])
def test_structured_rgb_image(k, space):
    """Gradients and flat areas: many colours on bin edges and exact ties."""
    y, x = np.mgrid[0:96, 0:128]
    pixels = np.stack([x * 2, y * 2 + x // 4, (x + y) % 256], axis=2).astype(np.uint8)
    pixels[:20, :20] = (128, 128, 128)
    image_labels_match_brute_force(Image.fromarray(pixels), k, space)


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("k", [2, 17, 256])
def test_rgba_image_with_transparency(k, space):
    rng = np.random.default_rng(k)
    pixels = rng.integers(0, 256, (50, 70, 4), dtype=np.uint8)
    pixels[:10, :, 3] = 0
    pixels[10:20, :, 3] = 255
    image_labels_match_brute_force(Image.fromarray(pixels, "RGBA"), k, space)


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("photo", ["china", "flower"])
def test_photos_label_exactly(request, photo, space):
    """A real photo through the whole path (histogram fit, distinct-colour table)."""
    image = Image.fromarray(request.getfixturevalue(photo)[::2, ::2].copy())
    image_labels_match_brute_force(image, 64, space)


@pytest.mark.parametrize("use_table", [True, False])
def test_both_rgb_labelling_routes(monkeypatch, use_table):
    """The lookup by distinct colour and the per-pixel product give the same exact labels
    (the image is large enough for the compiled histogram, whose bit per colour the lookup
    reads)."""
    monkeypatch.setattr(quantize_module, "_COST_LOOKUP", 0.0 if use_table else 1e18)
    routes = []
    choose = quantize_module._colour_labels

    def recorded(*args):
        lookup = choose(*args)
        routes.append(lookup is not None)
        return lookup

    monkeypatch.setattr(quantize_module, "_colour_labels", recorded)
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (40, 3))
    pixels = base[rng.integers(0, 40, (192, 192))] + rng.integers(-6, 7, (192, 192, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    image_labels_match_brute_force(image, 64, "rgb")
    assert routes == [use_table]


def test_fewer_colours_than_k_is_lossless():
    pixels = np.zeros((20, 30, 3), dtype=np.uint8)
    pixels[:, 10:] = (10, 200, 30)
    pixels[5:, 20:] = (255, 255, 255)
    result = quantize_image(Image.fromarray(pixels), QuantizeParams(k=16))
    assert result.mse == 0 and result.psnr is None
    assert len(result.palette) == 3
