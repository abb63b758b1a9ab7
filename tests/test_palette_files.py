"""Palette files (.gpl, .act, .ase, .css, our .json) and the image encoders (PNG, WebP, GIF)."""

import io
import json
import struct

import numpy as np
import pytest
from PIL import Image
from PIL.GimpPaletteFile import GimpPaletteFile

from pipeline.outputs import OutputFiles, encode_image, export_files
from pipeline.palette_files import (
    PaletteFileError,
    export_bytes,
    read_act,
    read_ase,
    read_css,
    read_palette_file,
)
from pipeline.params import QuantizeParams, parse_exports
from pipeline.quantize import quantize_image


def random_palette(n: int, seed: int = 0, alpha: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    colors = rng.integers(0, 256, (n, 4 if alpha else 3), dtype=np.uint8)
    if alpha:
        colors[:, 3] = np.maximum(colors[:, 3], 1)
        colors[-1, 3] = 0
    return colors


@pytest.mark.parametrize("n", [1, 7, 256])
def test_gpl_round_trips_through_pillows_reader(n):
    colors = random_palette(n, seed=n)
    data = export_bytes("gpl", colors, "my photo")
    palette, rawmode = GimpPaletteFile(io.BytesIO(data)).getpalette()
    assert rawmode == "RGB"
    assert np.array_equal(np.frombuffer(palette, np.uint8).reshape(-1, 3)[:n], colors)


@pytest.mark.parametrize("n", [2, 64, 256])
def test_act_is_772_bytes_and_round_trips(n):
    colors = random_palette(n, seed=n)
    data = export_bytes("act", colors, "x")
    assert len(data) == 772
    assert struct.unpack(">HH", data[768:]) == (n, 0xFFFF)
    assert np.array_equal(read_act(data), colors)


def test_act_keeps_the_transparent_index():
    colors = random_palette(5, alpha=True)
    data = export_bytes("act", colors, "x")
    assert struct.unpack(">HH", data[768:]) == (5, 4)
    back = read_act(data)
    assert np.array_equal(back[:, :3], colors[:, :3]) and back[:, 3].tolist() == [255] * 4 + [0]


@pytest.mark.parametrize("n", [1, 64, 256])
def test_ase_round_trips(n):
    colors = random_palette(n, seed=n + 1)
    data = export_bytes("ase", colors, "Brand colours ✓")
    assert data[:4] == b"ASEF"
    assert np.array_equal(read_ase(data), colors)


def test_css_round_trips_with_alpha_and_valid_names():
    colors = random_palette(9, alpha=True)
    text = export_bytes("css", colors, "2024 shot (1)").decode()
    assert ":root {" in text and "--c2024-shot-1-0: #" in text
    assert np.array_equal(read_css(text.encode()), colors)


@pytest.mark.parametrize("kind", ["gpl", "act", "ase", "json"])
def test_palette_files_read_as_input(tmp_path, kind):
    colors = random_palette(12, seed=3)
    path = tmp_path / f"brand.{kind}"
    if kind == "json":
        entries = [{"rgb": c, "hex": "#000000", "count": 0} for c in colors.tolist()]
        path.write_text(json.dumps({"colors": entries}))
    else:
        path.write_bytes(export_bytes(kind, colors, "brand"))
    assert np.array_equal(read_palette_file(path), colors)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("brand.txt", b"", "a palette file is .gpl"),
        ("missing.gpl", None, "no such palette file"),
        ("bad.gpl", b"hello\n", "not a valid .gpl palette"),
        ("short.gpl", b"GIMP Palette\n1 2\n", "not a valid .gpl palette"),
        ("big.gpl", b"GIMP Palette\n" + b"1 2 3\n" * 300, "300 colours"),
        ("empty.gpl", b"GIMP Palette\n", "0 colours"),
        ("bad.act", b"\0" * 100, "768 or 772 bytes"),
        ("bad.ase", b"PK\3\4", "no ASEF signature"),
        ("bad.json", b"{", "not a valid .json palette"),
        ("range.json", b'{"colors": [{"rgb": [300, 0, 0]}]}', "outside 0"),
    ],
)
def test_bad_palette_files_give_one_line_reasons(tmp_path, name, content, reason):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(PaletteFileError, match=reason) as caught:
        read_palette_file(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_ase_in_cmyk_is_refused_clearly(tmp_path):
    name = "c".encode("utf-16-be") + b"\0\0"
    body = struct.pack(">H", 2) + name + b"CMYK" + struct.pack(">4f", 0, 0, 0, 1) + b"\0\2"
    data = b"ASEF" + struct.pack(">HHI", 1, 0, 1) + struct.pack(">HI", 1, len(body)) + body
    (tmp_path / "cmyk.ase").write_bytes(data)
    with pytest.raises(PaletteFileError, match="use RGB swatches"):
        read_palette_file(tmp_path / "cmyk.ase")


def test_exports_parse_and_name_their_files(tmp_path):
    assert parse_exports("css, gpl,GPL,.ase") == ("gpl", "ase", "css")
    with pytest.raises(ValueError, match="png"):
        parse_exports("gpl,png")
    files = OutputFiles.of(tmp_path, "a/b c.png", "webp", ("gpl", "css"))
    assert files.output == "a/b c.webp"
    assert [p.name for p in files.every_path()] == [
        "b c.webp",
        "b c.palette.json",
        "b c.gpl",
        "b c.css",
    ]
    exported = export_files(files, random_palette(3))
    assert set(exported) == {tmp_path / "a/b c.gpl", tmp_path / "a/b c.css"}
    with pytest.raises(ValueError, match="leaves the output folder"):
        OutputFiles.of(tmp_path, "../x.png")


def decoded_rgba(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


@pytest.mark.parametrize("fmt", ["png", "webp", "gif"])
def test_each_format_keeps_the_pixels_and_palette(china, fmt):
    result = quantize_image(Image.fromarray(china[:200, :300]), QuantizeParams(k=32))
    expected = np.asarray(result.indexed.convert("RGBA"))
    data = encode_image(result.indexed, fmt)
    assert np.array_equal(decoded_rgba(data), expected)
    assert len(np.unique(decoded_rgba(data).reshape(-1, 4), axis=0)) <= 32
    assert Image.open(io.BytesIO(data)).getexif() == {}


@pytest.mark.parametrize("fmt", ["png", "webp", "gif"])
def test_transparency_survives_each_format(fmt):
    pixels = np.zeros((20, 20, 4), np.uint8)
    pixels[:, 10:] = (200, 40, 40, 255)
    pixels[:10, :10] = (10, 200, 10, 255)
    result = quantize_image(Image.fromarray(pixels, "RGBA"), QuantizeParams(k=4))
    back = decoded_rgba(encode_image(result.indexed, fmt))
    assert (back[10:, :10, 3] == 0).all() and (back[:, 10:, 3] == 255).all()
    assert (back[:, 10:, :3] == (200, 40, 40)).all()


def test_webp_is_smaller_than_png_on_photos(china, flower):
    sizes = {"png": 0, "webp": 0}
    for photo in (china, flower):
        indexed = quantize_image(Image.fromarray(photo), QuantizeParams(k=64)).indexed
        for fmt in sizes:
            sizes[fmt] += len(encode_image(indexed, fmt))
    assert sizes["webp"] < sizes["png"]
