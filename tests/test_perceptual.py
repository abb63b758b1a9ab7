"""The default output looks better (SSIMULACRA2) than pngquant's default and the example's."""

import shutil
import subprocess

import pytest
from PIL import Image

from pipeline.metrics import ssimulacra2_score
from pipeline.params import QuantizeParams
from pipeline.quantize import quantize_image
from tests.conftest import sample_photo_path, skip_or_fail

K = 64

#: The example's recipe (scikit-learn's KMeans on 1,000 pixels in RGB, no dithering).
EXAMPLE = QuantizeParams(k=K, sample=1000, seed=0, space="rgb", dither=0)


def pngquant_default(source, k: int, folder) -> Image.Image:
    """pngquant's default output (dithered), at its slowest, best speed setting."""
    if shutil.which("pngquant") is None:
        skip_or_fail("pngquant is not installed (apt-get install pngquant)")
    png_in, png_out = folder / "in.png", folder / "out.png"
    source.save(png_in)
    subprocess.run(
        ["pngquant", str(k), "--speed", "1", "--force", "--output", str(png_out), str(png_in)],
        check=True,
        capture_output=True,
    )
    with Image.open(png_out) as result:
        return result.convert("RGB")


@pytest.fixture(scope="module", params=["china.jpg", "flower.jpg"])
def scored(request, tmp_path_factory):
    source = Image.open(sample_photo_path(request.param)).convert("RGB")
    ours = ssimulacra2_score(source, quantize_image(source, QuantizeParams(k=K)).indexed)
    return request.param, source, ours, tmp_path_factory.mktemp("pngquant")


def test_default_beats_the_examples_method(scored):
    name, source, ours, _ = scored
    example = ssimulacra2_score(source, quantize_image(source, EXAMPLE).indexed)
    assert ours > example, f"{name}: {ours:.1f} vs the example's {example:.1f}"


def test_default_beats_pngquants_default(scored):
    name, source, ours, folder = scored
    theirs = ssimulacra2_score(source, pngquant_default(source, K, folder))
    assert ours > theirs, f"{name}: {ours:.1f} vs pngquant's {theirs:.1f}"
