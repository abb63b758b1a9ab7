"""Error-diffusion dithering: exact search, consistent Oklab, alpha, banding, determinism."""

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from pipeline import compiled, dither
from pipeline.oklab import srgb_to_oklab
from pipeline.params import QuantizeParams
from pipeline.pixels import PixelSource
from pipeline.quantize import label_image, quantize_image
from pipeline.settings import DEFAULT_DITHER, DITHERED_INFO

REPO = Path(__file__).parent.parent


def random_colors(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 3), dtype=np.uint8)


def test_in_loop_oklab_agrees_with_the_vectorised_conversion():
    colors = np.vstack([random_colors(200_000, 1), [[0, 0, 0], [255, 255, 255], [1, 0, 0]]])
    packed = dither.pack_colors(colors)
    ours = dither.working_coordinates(packed, False, "oklab")
    np.testing.assert_allclose(ours[:, :3], srgb_to_oklab(colors), rtol=0, atol=2e-6)
    assert np.all(ours[:, 3] == np.float32(dither.ALPHA_WEIGHT))


def test_rgb_working_space_is_srgb_scaled_to_one():
    colors = random_colors(1000, 2)
    ours = dither.working_coordinates(dither.pack_colors(colors), False, "rgb")
    np.testing.assert_allclose(ours[:, :3], colors / 255.0, atol=1e-7)


@pytest.mark.parametrize("space", ["oklab", "rgb"])
@pytest.mark.parametrize("k", [2, 16, 64, 256])
def test_without_error_every_pixel_gets_its_exact_nearest_colour(space, k):
    """A strength so small that no error is ever passed on leaves only the nearest-colour
    search, which must be exact: the grid's candidate lists never drop the nearest entry."""
    pixels = random_colors(128 * 128, 3).reshape(128, 128, 3)
    palette = random_colors(k, 4)
    labels = dither.dither_labels(PixelSource(Image.fromarray(pixels)), palette, 1e-9, space)
    points = dither.working_coordinates(dither.pack_colors(pixels.reshape(-1, 3)), False, space)
    entries = dither.working_coordinates(dither.pack_colors(palette), False, space)
    distances = ((points[:, None, :].astype(np.float64) - entries[None]) ** 2).sum(axis=2)
    chosen = distances[np.arange(len(points)), labels]
    assert np.all(chosen <= distances.min(axis=1) + 1e-12)


def gradient(width=512, height=64) -> Image.Image:
    """A smooth two-colour ramp, the case where undithered palettes show bands."""
    ramp = np.linspace(0.0, 1.0, width)[None, :, None]
    left, right = np.array([20.0, 60.0, 120.0]), np.array([200.0, 170.0, 90.0])
    pixels = left + (right - left) * ramp
    return Image.fromarray(np.repeat(pixels, height, axis=0).round().astype(np.uint8))


def blurred_error(source: Image.Image, result: Image.Image) -> float:
    """Mean difference of the two images as an eye at a distance sees them (blurred)."""
    blur = ImageFilter.GaussianBlur(2)
    a = np.asarray(source.convert("RGB").filter(blur), dtype=np.float64)
    b = np.asarray(result.convert("RGB").filter(blur), dtype=np.float64)
    return float(np.abs(a - b)[4:-4, 4:-4].mean())


def test_dithering_hides_the_bands_of_a_gradient():
    image = gradient()
    plain = quantize_image(image, QuantizeParams(k=8, dither=0)).indexed
    dithered = quantize_image(image, QuantizeParams(k=8, dither=1)).indexed
    assert blurred_error(image, dithered) < 0.5 * blurred_error(image, plain)
    # Bands are long runs of one entry along the ramp; dithering breaks them up.
    row = np.asarray(dithered)[32]
    assert np.count_nonzero(np.diff(row)) > 4 * np.count_nonzero(np.diff(np.asarray(plain)[32]))


def test_flat_colour_stays_flat():
    """An area of one colour is not sprinkled with dots just because errors are tiny."""
    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[:] = (101, 149, 201)
    pixels[:, 32:] = (10, 200, 30)
    palette = np.array([[100, 150, 200], [10, 200, 30], [0, 0, 0], [255, 255, 255]], np.uint8)
    labels = label_image(Image.fromarray(pixels), palette, dither=1.0).indexed
    assert set(np.asarray(labels)[:, :32].ravel()) == {0}
    assert set(np.asarray(labels)[:, 32:].ravel()) == {1}


def test_dither_zero_is_exactly_the_undithered_labelling(china):
    image = Image.fromarray(china[:200, :300])
    plain = quantize_image(image, QuantizeParams(k=16, dither=0))
    given = label_image(image, plain.palette, dither=0)
    assert np.array_equal(np.asarray(plain.indexed), np.asarray(given.indexed))
    dithered = label_image(image, plain.palette, dither=DEFAULT_DITHER)
    assert not np.array_equal(np.asarray(plain.indexed), np.asarray(dithered.indexed))
    # Only the dithered result is marked for the PNG writer's cheaper compression.
    assert dithered.indexed.info.get(DITHERED_INFO) and DITHERED_INFO not in plain.indexed.info


def png_of(result) -> bytes:
    buffer = io.BytesIO()
    result.indexed.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("space", ["oklab", "rgb"])
def test_same_input_and_settings_give_the_same_bytes(flower, space):
    image = Image.fromarray(flower)
    params = QuantizeParams(k=32, space=space, dither=0.8)
    assert png_of(quantize_image(image, params)) == png_of(quantize_image(image, params))


def test_strips_do_not_change_the_result(china, monkeypatch):
    """Big images are fed to the loop strip by strip; the seams must not show in the labels."""
    import pipeline.pixels

    image = Image.fromarray(china)
    palette = quantize_image(image, QuantizeParams(k=16, dither=0)).palette
    whole = dither.dither_labels(PixelSource(image), palette, 1.0)
    monkeypatch.setattr(pipeline.pixels, "CACHE_PIXELS", 1000)
    monkeypatch.setattr(pipeline.pixels, "STRIP_PIXELS", 640 * 7)
    source = PixelSource(image)
    assert len(list(source.strips())) > 10
    assert np.array_equal(dither.dither_labels(source, palette, 1.0), whole)


def transparent_image() -> Image.Image:
    """A photo-like ramp with a fully transparent hole, an opaque band and an alpha ramp."""
    rgb = np.asarray(gradient(256, 96))
    alpha = np.full((96, 256), 255, np.uint8)
    alpha[10:40, 20:120] = 0
    alpha[60:90, :] = np.linspace(1, 254, 256).astype(np.uint8)[None, :]
    return Image.fromarray(np.dstack([rgb, alpha]), "RGBA")


@pytest.mark.parametrize("space", ["oklab", "rgb"])
def test_transparency_survives_dithering(space):
    image = transparent_image()
    result = quantize_image(image, QuantizeParams(k=16, space=space, dither=1.0))
    out = np.asarray(result.indexed.convert("RGBA"))[..., 3]
    alpha = np.asarray(image)[..., 3]
    assert np.all(out[alpha == 0] == 0), "fully transparent pixels stay fully transparent"
    assert np.all(out[alpha == 255] == 255), "opaque pixels stay opaque"
    assert np.all(out[alpha == 255] > 0) and np.all(out[(alpha > 0)] > 0)
    # The alpha ramp keeps its average opacity (error diffusion works on alpha there).
    ramp = (alpha > 0) & (alpha < 255)
    assert abs(out[ramp].mean() - alpha[ramp].mean()) < 8


def test_level_out_of_range_is_refused():
    with pytest.raises(ValueError, match="dither"):
        QuantizeParams(dither=1.5)
    with pytest.raises(ValueError, match="dither"):
        QuantizeParams(dither="lots")
    assert QuantizeParams(dither="0.5").dither == 0.5


def test_palette_json_records_the_level():
    params = QuantizeParams(dither=0.25)
    assert params.to_json()["dither"] == 0.25
    assert QuantizeParams.from_json(params.to_json()) == params
    # A palette file from before dithering existed was undithered.
    legacy = {key: value for key, value in params.to_json().items() if key != "dither"}
    assert QuantizeParams.from_json(legacy).dither == 0.0


def test_commands_that_do_not_quantize_do_not_load_numba():
    code = (
        "import sys, cli, pipeline.quantize, pipeline.process, pipeline.batch; "
        "assert 'numba' not in sys.modules, 'numba imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_warm_up_loads_the_dithering_loop():
    code = "import sys, pipeline.threads as t; t.warm_up(); assert 'pipeline.dither' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_cache_folder_falls_back_when_the_package_is_read_only(tmp_path, monkeypatch):
    environ = {"HOME": str(tmp_path)}
    writable = {str(tmp_path), str(tmp_path / ".cache")}
    monkeypatch.setattr(compiled.os, "access", lambda path, mode: str(path) in writable)
    chosen = compiled.cache_dir_for(Path("/usr/lib/somewhere/pipeline"), environ)
    assert chosen is not None and chosen.startswith(str(tmp_path))
    assert compiled.cache_dir_for(Path("/x"), {"NUMBA_CACHE_DIR": "/set"}) is None
    assert compiled.cache_dir_for(tmp_path, environ) is None  # package folder writable


@pytest.mark.parametrize("image", ["rgb", "rgba"])
def test_the_tally_counts_every_label_and_the_exact_squared_error(china, image):
    """The loop counts labels and squared error as it goes; both must equal a recount."""
    from pipeline.label import squared_error

    if image == "rgb":
        source = PixelSource(Image.fromarray(china[:120, :200]))
        palette = random_colors(24, 5)
    else:
        source = PixelSource(transparent_image())
        palette = np.column_stack([random_colors(15, 6), np.full(15, 255, np.uint8)])
        palette[:5, 3] = 128
        palette = np.vstack([palette, [0, 0, 0, 0]]).astype(np.uint8)
    labels, counts, error = dither.dither(source, palette, 1.0)
    assert np.array_equal(counts, np.bincount(labels, minlength=len(palette)))
    assert error == squared_error(source.all_pixels(), labels, palette) > 0


def reference_dither(pixels: np.ndarray, palette: np.ndarray, space: str) -> np.ndarray:
    """The dithering rules written plainly, pixel by pixel in float64 (images without alpha):
    serpentine Floyd–Steinberg, selectivity weights, errors below MIN_ERROR dropped, the
    incoming error clipped, large outgoing errors damped, ties to the lower index."""
    height, width, _ = pixels.shape
    packed = dither.pack_colors(pixels.reshape(-1, 3))
    source = dither.working_coordinates(packed, False, space)[:, :3].astype(np.float64)
    source = source.reshape(height, width, 3)
    entries = dither.working_coordinates(dither.pack_colors(palette), False, space)
    entries = entries[:, :3].astype(np.float64)
    labels = np.empty((height, width), np.int64)
    here = np.zeros((width + 2, 3))
    for y in range(height):
        above, row, below = source[max(y - 1, 0)], source[y], source[min(y + 1, height - 1)]
        left, right = (
            row[np.maximum(np.arange(width) - 1, 0)],
            row[np.minimum(np.arange(width) + 1, width - 1)],
        )
        contrast = np.maximum(np.abs(left + right - 2 * row), np.abs(above + below - 2 * row))
        flat = np.maximum(dither.EDGE_FLOOR, 1.0 - dither.EDGE_GAIN * contrast.max(axis=1))
        weights = DEFAULT_DITHER * (flat * flat)
        ahead = np.zeros((width + 2, 3))
        side = 1 if y % 2 == 0 else -1
        for x in range(width) if side == 1 else range(width - 1, -1, -1):
            i = x + 1
            error = here[i] * weights[x]
            target = row[x]
            if (error * error).sum() >= dither.MIN_ERROR**2:
                target = row[x] + np.clip(error, -dither.CLIP, dither.CLIP)
            distances = ((entries - target) ** 2).sum(axis=1)
            labels[y, x] = nearest = int(np.argmin(distances))  # the first of equal ones
            damp = dither.DAMPING if distances[nearest] > dither.MAX_ERROR**2 else 1.0
            passed = -(entries[nearest] - target) * damp
            here[i + side] += passed * (7.0 / 16.0)
            ahead[i - side] += passed * (3.0 / 16.0)
            ahead[i] += passed * (5.0 / 16.0)
            ahead[i + side] += passed * (1.0 / 16.0)
        here = ahead
    return labels.ravel()


@pytest.mark.parametrize("space", ["oklab", "rgb"])
def test_the_compiled_loop_labels_as_the_plain_rules_do(space):
    """Every shortcut of the compiled loop (the grid, errors kept in registers, weights a
    channel at a time) must label exactly as the rules do: a noisy ramp against a coarse
    palette, so that errors are clipped, damped and passed on, above a flat area halfway
    between two palette colours a code value either side, where the errors are too small to
    pass on and are dropped."""
    rng = np.random.default_rng(7)
    ramp = np.linspace(0.0, 1.0, 40)[None, :, None] * np.array([230.0, 160.0, 90.0])
    pixels = np.clip(ramp + rng.normal(0, 12, (24, 40, 3)), 0, 255).astype(np.uint8)
    pixels[16:] = [120, 130, 141]
    palette = np.vstack([random_colors(6, 8), [[120, 130, 140], [120, 130, 142]]])
    labels = dither.dither_labels(PixelSource(Image.fromarray(pixels)), palette, 1.0, space)
    assert np.array_equal(labels, reference_dither(pixels, palette, space))


def test_a_full_grid_pool_changes_no_label(china, monkeypatch):
    """Once the grid's pool of candidate lists is full, cells not listed yet are searched
    without it: the labels stay the same."""
    source = PixelSource(Image.fromarray(china[:80, :120]))
    palette = random_colors(32, 9)
    expected = dither.dither_labels(source, palette, 1.0)
    monkeypatch.setattr(dither, "GRID_POOL", 8)  # a few cells' lists, then full
    assert np.array_equal(dither.dither_labels(source, palette, 1.0), expected)
