"""Inputs people really have: each comes out right or is named as failed, and the batch ends."""

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.discover import InputItem
from pipeline.load import ImageRejected, load_image
from pipeline.params import QuantizeParams
from pipeline.process import quantize_file
from tests.conftest import psnr, run_cli
from tests.odd_files import make_broken_files, make_good_files, make_ignored_files, photo


@pytest.fixture
def odd_folder(tmp_path):
    folder = tmp_path / "in"
    good = make_good_files(folder)
    broken = make_broken_files(folder, tmp_path / "elsewhere")
    ignored = make_ignored_files(folder)
    return folder, good, broken, ignored


def test_a_folder_of_odd_and_broken_files_finishes_with_exit_1(odd_folder, tmp_path):
    folder, good, broken, ignored = odd_folder
    out = tmp_path / "out"
    completed = run_cli("run", folder, "-o", out, "-k", "16", "--json")
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr + completed.stdout
    report = json.loads(completed.stdout)
    assert report["done"] == len(good)
    assert report["failed"] == len(broken)
    assert report["ignored"] == len(ignored)
    reasons = {failure["path"]: failure["error"] for failure in report["failures"]}
    assert set(reasons) == set(broken)
    for name, fragment in broken.items():
        assert fragment in reasons[name], (name, reasons[name])
        assert "\n" not in reasons[name]
    for palette in out.rglob("*.palette.json"):
        document = json.loads(palette.read_text())
        assert (out / document["output"]).is_file()
    written = {json.loads(p.read_text())["source"] for p in out.rglob("*.palette.json")}
    assert written == set(good)
    leftovers = [p for p in out.rglob("*") if "tmp" in p.name]
    assert leftovers == []


def _quantize(tmp_path, folder: Path, name: str, k=16):
    item = InputItem(str(folder), name, name, Path(name).stem + ".png")
    return quantize_file(item, tmp_path / "out", QuantizeParams(k=k)), tmp_path / "out"


def test_exif_orientation_is_applied_and_metadata_dropped(tmp_path):
    folder = tmp_path / "in"
    make_good_files(folder)
    result, out = _quantize(tmp_path, folder, "rotated.jpg")
    assert result.status == "done"
    with Image.open(folder / "rotated.jpg") as source, Image.open(out / "rotated.png") as output:
        assert output.size == (source.height, source.width)
        assert "exif" not in output.info and not output.getexif()


def test_alpha_is_kept_with_one_clear_entry_and_rgba_psnr(tmp_path):
    folder = tmp_path / "in"
    rgb = photo()
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:, :10] = 0
    alpha[:, 10:20] = 128
    folder.mkdir()
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(folder / "a.png")
    result, out = _quantize(tmp_path, folder, "a.png", k=8)
    assert result.status == "done"
    output = Image.open(out / "a.png")
    assert output.mode == "P" and "transparency" in output.info
    rgba_out = np.asarray(output.convert("RGBA"), dtype=np.float64)
    source = np.asarray(Image.open(folder / "a.png"), dtype=np.float64)
    assert np.all(rgba_out[:, :10, 3] == 0)
    document = json.loads((out / "a.palette.json").read_text())
    clear = [c for c in document["colors"] if c.get("alpha") == 0]
    assert len(clear) == 1 and clear[0]["count"] == rgb.shape[0] * 10
    assert document["metrics"]["psnr"] == pytest.approx(psnr(source, rgba_out), abs=1e-3)


def test_sixteen_bit_gray_is_scaled_not_clipped(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    ramp = (np.linspace(0, 65535, 64)[None, :].repeat(8, 0)).astype(np.uint16)
    Image.fromarray(ramp).save(folder / "ramp16.png")
    loaded = load_image(folder / "ramp16.png", folder)
    values = np.asarray(loaded.image)[0, :, 0]
    assert values[0] == 0 and values[-1] == 255
    assert np.all(np.diff(values.astype(int)) >= 0) and len(np.unique(values)) > 30


def test_animated_gif_uses_the_first_frame(tmp_path):
    folder = tmp_path / "in"
    make_good_files(folder)
    loaded = load_image(folder / "animated.gif", folder)
    assert np.all(np.asarray(loaded.image) == 10)


def test_fewer_colours_than_k_is_lossless_with_a_smaller_palette(tmp_path):
    folder = tmp_path / "in"
    make_good_files(folder)
    result, out = _quantize(tmp_path, folder, "three colours.png", k=64)
    document = json.loads((out / "three colours.palette.json").read_text())
    assert len(document["colors"]) == 3
    assert document["metrics"] == {**document["metrics"], "mse": 0.0, "psnr": None}
    assert np.array_equal(
        np.asarray(Image.open(out / "three colours.png").convert("RGB")),
        np.asarray(Image.open(folder / "three colours.png")),
    )


def test_one_pixel_image(tmp_path):
    folder = tmp_path / "in"
    make_good_files(folder)
    result, out = _quantize(tmp_path, folder, "dot.png", k=2)
    assert result.status == "done"
    assert Image.open(out / "dot.png").convert("RGB").getpixel((0, 0)) == (200, 10, 30)


def test_bomb_is_refused_from_its_header_quickly_and_cheaply(tmp_path):
    folder = tmp_path / "in"
    make_broken_files(folder, tmp_path / "elsewhere")
    script = (
        "import resource, time, sys\n"
        "from pathlib import Path\n"
        "from pipeline.load import load_image, ImageRejected\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "start = time.perf_counter()\n"
        "try:\n"
        f"    load_image(Path({str(folder / 'bomb.png')!r}), Path({str(folder)!r}))\n"
        "except ImageRejected as exc:\n"
        "    print(exc)\n"
        "grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
        "print(grew)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    reason, grew_kib = completed.stdout.strip().splitlines()
    assert "60000×60000 exceeds" in reason
    assert int(grew_kib) < 50_000  # decoding it would need 10 GB


def test_pixel_limit_is_configurable(tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo(size=(100, 100))).save(folder / "p.png")
    monkeypatch.setenv("COLORQUANT_MAX_PIXELS", "5000")
    with pytest.raises(ImageRejected, match="100×100 exceeds the 0.005 MP limit"):
        load_image(folder / "p.png", folder)
    monkeypatch.setenv("COLORQUANT_MAX_PIXELS", "10000")
    assert load_image(folder / "p.png", folder).image.size == (100, 100)


def test_symlink_out_of_the_tree_is_never_opened(tmp_path):
    folder = tmp_path / "in"
    broken = make_broken_files(folder, tmp_path / "elsewhere")
    assert "escape.jpg" in broken
    secret = tmp_path / "elsewhere" / "secret.jpg"
    before = os.stat(secret).st_atime_ns
    os.utime(secret, ns=(before - 10**9, os.stat(secret).st_mtime_ns))
    stamped = os.stat(secret).st_atime_ns
    with pytest.raises(ImageRejected, match="leaves the input tree"):
        load_image(folder / "escape.jpg", folder)
    time.sleep(0.01)
    assert os.stat(secret).st_atime_ns == stamped


def test_eps_and_other_formats_outside_the_allowlist_are_not_decoded(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "fake.jpg").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")
    with pytest.raises(ImageRejected, match="not an image"):
        load_image(folder / "fake.jpg", folder)
    Image.fromarray(photo()).save(folder / "icon.ico")
    os.rename(folder / "icon.ico", folder / "icon.png")
    with pytest.raises(ImageRejected, match="not an image"):
        load_image(folder / "icon.png", folder)


def test_memory_stays_bounded_on_the_bad_files(tmp_path):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    folder = tmp_path / "in"
    make_broken_files(folder, tmp_path / "elsewhere")
    for name in ("truncated.jpg", "random.png", "text.jpg", "bomb.png"):
        with pytest.raises(ImageRejected):
            load_image(folder / name, folder)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000


def test_colour_profile_is_carried_over_so_colours_stay_right(tmp_path):
    from PIL import ImageCms

    folder = tmp_path / "in"
    folder.mkdir()
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(photo()).save(folder / "tagged.jpg", icc_profile=profile)
    result, out = _quantize(tmp_path, folder, "tagged.jpg")
    assert result.status == "done"
    assert Image.open(out / "tagged.png").info["icc_profile"] == profile


def few_colour_pattern(colours: np.ndarray, shape=(6, 9), block=3, seed=7) -> np.ndarray:
    """A random, asymmetric layout of ``colours`` (each used), blown up into blocks: every
    rotation or mirror of it differs, and it has fewer colours than K, so it quantizes
    losslessly and can be compared exactly."""
    rng = np.random.default_rng(seed)
    index = rng.permutation(np.resize(np.arange(len(colours)), shape[0] * shape[1]))
    layout = colours[index.reshape(shape)]
    return layout.repeat(block, axis=0).repeat(block, axis=1)


#: Six distinct colours, sRGB uint8.
SIX_COLOURS = np.array(
    [(200, 30, 40), (20, 160, 60), (30, 40, 190), (240, 220, 30), (10, 10, 10), (250, 250, 250)],
    np.uint8,
)

#: How each EXIF orientation stores an upright image: the inverse of the turn or mirror a viewer
#: applies (EXIF 2.3, tag 0x0112), written with numpy so it does not lean on Pillow's own.
STORED_AS = {
    1: lambda up: up,
    2: lambda up: up[:, ::-1],
    3: lambda up: up[::-1, ::-1],
    4: lambda up: up[::-1],
    5: lambda up: up.transpose(1, 0, 2),
    6: lambda up: np.rot90(up, 1),  # the viewer turns it 90° clockwise
    7: lambda up: up[::-1, ::-1].transpose(1, 0, 2),
    8: lambda up: np.rot90(up, -1),  # the viewer turns it 90° anticlockwise
}


def output_rgb(out: Path, name: str) -> np.ndarray:
    with Image.open(out / name) as image:
        return np.asarray(image.convert("RGB"))


@pytest.mark.parametrize("orientation", sorted(STORED_AS))
def test_every_exif_orientation_comes_out_upright_pixel_for_pixel(tmp_path, orientation):
    upright = few_colour_pattern(SIX_COLOURS)
    stored = np.ascontiguousarray(STORED_AS[orientation](upright))
    assert orientation == 1 or not np.array_equal(stored, upright)
    folder = tmp_path / "in"
    folder.mkdir()
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(folder / "turned.png", exif=exif)
    result, out = _quantize(tmp_path, folder, "turned.png")
    assert result.status == "done", result.error
    assert np.array_equal(output_rgb(out, "turned.png"), upright)


@pytest.mark.parametrize(
    ("name", "make"),
    [
        (
            "cmyk.tiff",
            lambda: Image.fromarray(few_colour_pattern(SIX_COLOURS[:, [0, 1, 2, 0]]), "CMYK"),
        ),
        ("gray.png", lambda: Image.fromarray(few_colour_pattern(SIX_COLOURS[:, 0]))),
        ("palette.gif", lambda: Image.fromarray(few_colour_pattern(SIX_COLOURS)).quantize(8)),
    ],
    ids=["cmyk", "grayscale", "palette-gif"],
)
def test_non_rgb_inputs_keep_the_colours_pillow_converts_them_to(tmp_path, name, make):
    """CMYK, grayscale and palette images come out with exactly the RGB colours Pillow's own
    ``convert("RGB")`` gives the source (few colours: the quantization itself is lossless)."""
    folder = tmp_path / "in"
    folder.mkdir()
    make().save(folder / name)
    with Image.open(folder / name) as source:
        assert source.mode in ("CMYK", "L", "P")
        reference = np.asarray(source.convert("RGB"))
    result, out = _quantize(tmp_path, folder, name)
    assert result.status == "done", result.error
    assert np.array_equal(output_rgb(out, Path(name).stem + ".png"), reference)
