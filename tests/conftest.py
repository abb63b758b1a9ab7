"""Shared fixtures: real photos (scikit-learn's) and generated images; no mocks."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SAMPLE_PHOTOS = ("china.jpg", "flower.jpg")


def sample_photo_path(name: str) -> Path:
    from sklearn.datasets import __file__ as datasets_init

    return Path(datasets_init).parent / "images" / name


@pytest.fixture(scope="session")
def china() -> np.ndarray:
    return np.asarray(Image.open(sample_photo_path("china.jpg")).convert("RGB"))


@pytest.fixture(scope="session")
def flower() -> np.ndarray:
    return np.asarray(Image.open(sample_photo_path("flower.jpg")).convert("RGB"))


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """A small folder of real photos: the two bundled ones plus crops of them, nested."""
    folder = tmp_path / "photos"
    (folder / "trip" / "day 2").mkdir(parents=True)
    for name in SAMPLE_PHOTOS:
        shutil.copyfile(sample_photo_path(name), folder / name)
    china_image = Image.open(sample_photo_path("china.jpg"))
    china_image.crop((100, 50, 420, 300)).save(folder / "trip" / "crop.jpg", quality=90)
    flower_image = Image.open(sample_photo_path("flower.jpg"))
    flower_image.resize((320, 213)).save(folder / "trip" / "day 2" / "small.png")
    return folder


def skip_or_fail(reason: str) -> None:
    """Skip a test that lacks a tool or a privilege; under CI (``CI`` set) fail instead, since
    the CI machine is set up to run everything (``.ci/run`` installs it)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI is set: this test must run there")
    pytest.skip(reason)


def colorquant_launcher() -> list[str]:
    """The ``colorquant`` script of this interpreter's environment (the working tree, installed
    editable), never whichever copy is first on PATH; else ``python -m cli``."""
    script = Path(sys.executable).with_name("colorquant")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "cli"]


def run_cli(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    """Run the ``colorquant`` command as a person would, capturing its output."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("COLORQUANT_DEBUG", None)
    return subprocess.run(
        [*colorquant_launcher(), *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=Path(__file__).resolve().parent.parent,
    )


def load_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


def psnr(reference: np.ndarray, result: np.ndarray) -> float:
    mse = np.mean((reference.astype(np.float64) - result.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def check_output_against_source(source: Path, output: Path, document: dict) -> None:
    """Check an output against its source and its palette JSON from the files alone: every
    pixel's colour is one of the palette's, each entry's count is its pixels, and the PSNR
    recomputed against the upright source is the one recorded."""
    from PIL import ImageOps

    has_alpha = any("alpha" in colour for colour in document["colors"])
    mode = "RGBA" if has_alpha else "RGB"
    with Image.open(output) as image:
        assert image.mode == "P", f"{output.name}: mode {image.mode}, not indexed"
        indices = np.asarray(image)
        pixels = np.asarray(image.convert(mode)).reshape(-1, len(mode))
    entries = np.array(
        [[*colour["rgb"], colour.get("alpha", 255)][: len(mode)] for colour in document["colors"]]
    )
    packed = pixels.astype(np.int64) @ (256 ** np.arange(len(mode)))
    palette_packed = entries.astype(np.int64) @ (256 ** np.arange(len(mode)))
    strays = np.unique(pixels[~np.isin(packed, palette_packed)], axis=0)
    assert not len(strays), f"{output.name}: colours not in its palette JSON: {strays[:5]}"
    counts = np.bincount(indices.ravel(), minlength=len(entries))
    assert counts.tolist() == [colour["count"] for colour in document["colors"]], output.name
    with Image.open(source) as original:
        upright = np.asarray(ImageOps.exif_transpose(original).convert(mode))
    recomputed = psnr(upright.reshape(-1, len(mode)), pixels)
    recorded = document["metrics"]["psnr"]
    if recorded is None:
        assert recomputed == float("inf"), f"{output.name}: lossy but recorded as lossless"
    else:
        assert recorded == pytest.approx(recomputed, abs=1e-3), output.name
