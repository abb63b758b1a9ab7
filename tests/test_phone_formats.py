"""Photos as phones write them, HEIC/HEIF and AVIF, quantize like their PNG twins, as safely."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.load import ImageRejected, load_image, register_decoders
from tests.conftest import load_rgb, psnr, run_cli, sample_photo_path

#: EXIF GPS IFD tag: what must never reach an output.
GPS_IFD = 0x8825


def phone_twins(folder: Path) -> dict[str, Path]:
    """china.jpg saved as PNG, HEIC and AVIF (the last two with GPS in their EXIF)."""
    register_decoders()
    folder.mkdir()
    photo = Image.open(sample_photo_path("china.jpg")).convert("RGB")
    exif = Image.Exif()
    exif[GPS_IFD] = {1: "N", 2: (52.0, 31.0, 0.0)}
    twins = {"png": folder / "twin.png", "heic": folder / "phone.heic", "avif": folder / "cam.avif"}
    photo.save(twins["png"])
    photo.save(twins["heic"], quality=95, exif=exif.tobytes())
    photo.save(twins["avif"], quality=95, exif=exif.tobytes())
    return twins


def test_heic_and_avif_quantize_like_their_png_twin(tmp_path):
    twins = phone_twins(tmp_path / "in")
    assert Image.open(twins["heic"]).getexif().get(GPS_IFD) is not None  # the source has GPS
    out = tmp_path / "out"
    result = run_cli("run", tmp_path / "in", "-o", out, "-k", "32", "-j", "1", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["done"] == 3
    source = load_rgb(twins["png"])
    scores = {}
    for kind, twin in twins.items():
        output = tmp_path / "out" / (twin.stem + ".png")
        palette = json.loads((tmp_path / "out" / (twin.stem + ".palette.json")).read_text())
        with Image.open(output) as image:
            assert image.mode == "P" and image.size == (640, 427)
            assert not image.getexif() and "exif" not in image.info
        assert len(palette["colors"]) == 32
        scores[kind] = psnr(source, load_rgb(output))
    # The phone formats are lossy copies, so their results sit a little below the PNG's.
    assert scores["heic"] > scores["png"] - 1.0 and scores["avif"] > scores["png"] - 1.0


@pytest.mark.parametrize("kind", ["heic", "avif"])
def test_phone_formats_keep_the_pixel_limit_from_the_header(tmp_path, monkeypatch, kind):
    twins = phone_twins(tmp_path / "in")
    monkeypatch.setenv("COLORQUANT_MAX_PIXELS", "100000")
    with pytest.raises(ImageRejected, match="exceeds the 0.1 MP limit"):
        load_image(twins[kind], tmp_path / "in")


def test_a_heic_named_png_is_still_read_by_content_within_the_allowlist(tmp_path):
    twins = phone_twins(tmp_path / "in")
    disguised = tmp_path / "in" / "disguised.png"
    disguised.write_bytes(twins["heic"].read_bytes())
    loaded = load_image(disguised, tmp_path / "in")
    assert loaded.format == "HEIF"
    assert np.asarray(loaded.image).shape == (427, 640, 3)


def test_an_install_without_pillow_heif_still_reads_every_other_format(tmp_path):
    """With no HEIF decoder, a non-image named .jpg is 'not an image', not a KeyError, and a
    PNG still loads."""
    import subprocess
    import sys

    (tmp_path / "fake.jpg").write_bytes(b"not an image")
    Image.new("RGB", (4, 3), (10, 20, 30)).save(tmp_path / "real.png")
    probe = "\n".join(
        [
            "import sys; sys.modules['pillow_heif'] = None",
            "from pathlib import Path",
            "from pipeline.load import ImageRejected, load_image, register_decoders",
            "assert 'HEIF' not in register_decoders()",
            f"root = Path({str(tmp_path)!r})",
            "print(load_image(root / 'real.png', root).image.size)",
            "try: load_image(root / 'fake.jpg', root)",
            "except ImageRejected as exc: print(exc)",
        ]
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == ["(4, 3)", "not an image (or not a supported format)"]
