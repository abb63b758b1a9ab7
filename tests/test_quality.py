"""Quality of the default method, and exact metrics from small photos to a 24-megapixel one.

No timings here: speed is measured side by side in benchmarks/, never asserted in tests.
"""

import math

import numpy as np
import pytest
from PIL import Image

from pipeline.params import QuantizeParams
from pipeline.quantize import quantize_image


def recomputed_mse(source: Image.Image, indexed: Image.Image, rows: int = 512) -> float:
    """Mean squared error over all pixels and channels, recomputed from the two images in strips
    of rows (so a 24 MP check stays small in memory)."""
    mode = source.mode
    total, width, height = 0, source.width, source.height
    for top in range(0, height, rows):
        box = (0, top, width, min(height, top + rows))
        a = np.asarray(source.crop(box), dtype=np.int64)
        b = np.asarray(indexed.crop(box).convert(mode), dtype=np.int64)
        total += int(((a - b) ** 2).sum())
    return total / (width * height * len(mode))


def psnr_of(mse: float) -> float:
    return 10 * math.log10(255**2 / mse)


@pytest.mark.parametrize("k", [16, 64, 256])
@pytest.mark.parametrize("photo", ["china", "flower"])
def test_rgb_beats_the_seed_method_in_psnr(request, photo, k):
    image = Image.fromarray(request.getfixturevalue(photo))
    ours = quantize_image(image, QuantizeParams(k=k, space="rgb", dither=0))
    seed = quantize_image(image, QuantizeParams(k=k, sample=1000, seed=0, space="rgb", dither=0))
    assert ours.psnr > seed.psnr
    # The reported figures are the ones anyone recomputes from source and output.
    assert ours.mse == pytest.approx(recomputed_mse(image, ours.indexed), rel=1e-12)
    assert ours.psnr == pytest.approx(psnr_of(recomputed_mse(image, ours.indexed)), rel=1e-12)
    assert len(ours.palette) <= k
    assert ours.colors_in == len(np.unique(np.asarray(image).reshape(-1, 3), axis=0))


@pytest.mark.slow
def test_a_24_megapixel_photo_goes_through_with_exact_metrics(china, flower):
    """6000×4000, made by resizing the two photos side by side (many distinct colours)."""
    sheet = Image.new("RGB", (1280, 427))
    sheet.paste(Image.fromarray(china), (0, 0))
    sheet.paste(Image.fromarray(flower), (640, 0))
    big = sheet.resize((6000, 4000), Image.Resampling.BILINEAR)
    result = quantize_image(big, QuantizeParams(k=64))
    assert result.indexed.size == (6000, 4000)
    assert result.indexed.mode == "P"
    assert len(result.palette) == 64
    assert result.counts.sum() == 24_000_000
    assert result.mse == pytest.approx(recomputed_mse(big, result.indexed), rel=1e-12)
    # The default dithers, which trades about 3 dB of PSNR for the look (the undithered RGB
    # fit scores about 31 dB here); a broken fit or labelling falls far below this.
    assert result.psnr > 27


@pytest.mark.slow
def test_a_large_rgba_image_goes_through_with_exact_metrics(china):
    """~5 MP with transparency takes the RGBA route, which labels pixel by pixel."""
    tiled = Image.fromarray(np.tile(china, (4, 4, 1))).convert("RGBA")
    alpha = np.full((tiled.height, tiled.width), 255, dtype=np.uint8)
    alpha[:, :300] = 0
    alpha[:, 300:600] = 128
    tiled.putalpha(Image.fromarray(alpha))
    result = quantize_image(tiled, QuantizeParams(k=64))
    assert result.alphas is not None and (result.alphas == 0).sum() == 1
    assert result.mse == pytest.approx(recomputed_mse(tiled, result.indexed), rel=1e-12)
