"""Shared fixtures: real photos (scikit-learn's) and generated images; no mocks."""

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import redis
from PIL import Image

from harness.commands import colorquant_command, run_colorquant
from harness.fixtures import session_redis, skip_or_fail
from harness.images import SAMPLE_PHOTOS, sample_photo_path

__all__ = ["colorquant_launcher", "sample_photo_path", "session_redis", "skip_or_fail"]

#: The ``colorquant`` command of this environment (see harness/commands.py).
colorquant_launcher = colorquant_command

#: The database of the session's redis-server that tests of the job ledger use, emptied before
#: each (the distributed tests' workers use database 0).
LEDGER_DB = 5


@pytest.fixture
def ledger_url(session_redis) -> str:
    """A Redis URL on an empty database of a real redis-server."""
    url = session_redis.database_url(LEDGER_DB)
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


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


def run_cli(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    """Run the ``colorquant`` command as a person would, capturing its output."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("COLORQUANT_DEBUG", None)
    return run_colorquant(*args, env=full_env, timeout=timeout)


def file_digests(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` by relative path, with the SHA-256 of its bytes."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


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
