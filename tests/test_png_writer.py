"""The indexed PNG writer: what Pillow reads back is what was written, at every bit depth, with
transparency and colour profile; rows are unfiltered (the PNG spec's advice for palettes)."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms

from pipeline.save import png_bytes


def _indexed(colors: int, width: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, colors, (5, width)).astype(np.uint8), "P")
    image.putpalette(rng.integers(0, 256, 3 * colors).astype(np.uint8).tobytes())
    return image


def _chunks(data: bytes) -> dict[bytes, bytes]:
    found, position = {}, 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        found[kind] = found.get(kind, b"") + data[position + 8 : position + 8 + length]
        position += 12 + length
    return found


@pytest.mark.parametrize(("colors", "bits"), [(2, 1), (3, 2), (16, 4), (17, 8), (256, 8)])
@pytest.mark.parametrize("width", [1, 7, 33])
def test_pixels_palette_and_alpha_read_back_at_the_smallest_bit_depth(colors, bits, width):
    image = _indexed(colors, width)
    image.info["transparency"] = bytes(range(colors))
    data = png_bytes(image)
    with Image.open(io.BytesIO(data)) as back:
        back.load()
        assert back.mode == "P"
        assert np.array_equal(np.asarray(back.convert("RGBA")), np.asarray(image.convert("RGBA")))
    assert _chunks(data)[b"IHDR"][8] == bits


def test_rows_are_unfiltered():
    data = png_bytes(_indexed(16, 40))
    raw = zlib.decompress(_chunks(data)[b"IDAT"])
    stride = len(raw) // 5
    assert [raw[row * stride] for row in range(5)] == [0] * 5


def test_the_colour_profile_is_kept_and_an_opaque_image_has_no_trns():
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = png_bytes(_indexed(5, 9), profile)
    with Image.open(io.BytesIO(data)) as back:
        assert back.info["icc_profile"] == profile
        assert "transparency" not in back.info


def test_a_dithered_result_is_compressed_at_the_cheaper_level_and_reads_back():
    """zlib records its level class in the stream's second byte (FLEVEL: 1 for levels 2–5,
    2 for level 6), so the header shows which setting wrote the rows."""
    from pipeline.settings import DITHERED_INFO

    image = _indexed(64, 40)
    plain = png_bytes(image)
    image.info[DITHERED_INFO] = True
    dithered = png_bytes(image)
    assert _chunks(plain)[b"IDAT"][1] >> 6 == 2
    assert _chunks(dithered)[b"IDAT"][1] >> 6 == 1
    with Image.open(io.BytesIO(dithered)) as back:
        assert np.array_equal(np.asarray(back), np.asarray(image))
