"""``compare`` and ``demo``: the four-panel figure, and numbers that match the images."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from pipeline.compare import PANELS_KEY
from pipeline.metrics import ssimulacra2_score
from pipeline.params import QuantizeParams
from pipeline.quantize import quantize_image
from tests.conftest import psnr, run_cli, sample_photo_path

K = 16

#: The panels, left to right, with the settings each result is made with.
EXPECTED = [
    ("Original", None),
    ("Example's k-means (1,000 px, RGB)", {"sample": 1000, "space": "rgb", "dither": 0.0}),
    ("colorquant default", {}),
    ("Random codebook", {"method": "random", "space": "rgb", "dither": 0.0}),
]


def params(**fields) -> QuantizeParams:
    return QuantizeParams(k=K, **fields)


def image_blocks(figure: Image.Image) -> int:
    """Panels drawn side by side: runs of columns that are mostly non-white across the middle
    band of the figure (where every panel's image is)."""
    pixels = np.asarray(figure.convert("RGB")).astype(int)
    band = pixels[pixels.shape[0] * 2 // 5 : pixels.shape[0] * 3 // 5]
    inked = ((band < 245).any(axis=2)).mean(axis=0) > 0.5
    edges = np.diff(np.concatenate([[0], inked.astype(int), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int(((ends - starts) > 20).sum())


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare")
    photo = folder / "flower.jpg"
    shutil.copyfile(sample_photo_path("flower.jpg"), photo)
    figure = folder / "figure.png"
    done = run_cli("compare", photo, "-o", figure, "-k", K, "--json")
    assert done.returncode == 0, done.stderr
    return photo, figure, json.loads(done.stdout)


def test_the_figure_has_four_panels_titled_as_reported(compared):
    _, figure, document = compared
    assert [row["name"] for row in document["panels"]] == [name for name, _ in EXPECTED]
    with Image.open(figure) as drawn:
        assert image_blocks(drawn) == 4
        titles = json.loads(drawn.text[PANELS_KEY])
    assert titles == [row["title"] for row in document["panels"]]


def test_the_numbers_are_those_of_the_images(compared):
    photo, _, document = compared
    source = Image.open(photo).convert("RGB")
    original = document["panels"][0]
    assert original["colors"] == len(np.unique(np.asarray(source).reshape(-1, 3), axis=0))
    for row, (name, fields) in zip(document["panels"][1:], EXPECTED[1:], strict=True):
        result = quantize_image(source, params(**fields)).indexed
        assert row["colors"] == len(result.getpalette()) // 3 <= K, name
        assert row["psnr"] == pytest.approx(
            psnr(np.asarray(source), np.asarray(result.convert("RGB")))
        )
        assert row["ssimulacra2"] == pytest.approx(ssimulacra2_score(source, result), abs=1e-6)
        assert f"PSNR {row['psnr']:.2f} dB" in row["title"]
        assert f"SSIMULACRA2 {row['ssimulacra2']:.1f}" in row["title"]
        assert f"{row['colors']} colours" in row["title"]


def test_demo_writes_the_example_the_default_and_the_figures(tmp_path):
    out = tmp_path / "demo"
    done = run_cli("demo", "-o", out, "-k", "8", "-j", "1")
    assert done.returncode == 0, done.stderr
    for folder in ("example", "default", "random"):
        assert sorted(p.name for p in (out / folder).glob("*.png")) == ["china.png", "flower.png"]
    example = json.loads((out / "example" / "china.palette.json").read_text())
    assert (example["space"], example["sample"], example["k"]) == ("rgb", 1000, 8)
    default = json.loads((out / "default" / "china.palette.json").read_text())
    assert (default["space"], default["sample"]) == ("oklab", "all")
    for name in ("china", "flower"):
        with Image.open(out / f"{name}-compare.png") as figure:
            assert len(json.loads(figure.text[PANELS_KEY])) == 4
