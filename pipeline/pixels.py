"""Pixels as packed 32-bit words, read in strips so memory stays flat on big photos.

Each pixel is one little-endian uint32: R in bits 0–7, G 8–15, B 16–23, and alpha (or padding
for RGB) in 24–31. Packing keeps every per-pixel pass a single array operation.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from pipeline.settings import STRIP_PIXELS

#: Images up to this many pixels are packed once and kept for every pass (8 MB at most).
CACHE_PIXELS = 1 << 21


@dataclass
class PixelSource:
    """An RGB or RGBA Pillow image seen as packed pixel strips.

    An image of at most CACHE_PIXELS is packed once and kept, so the passes over it share one
    copy; a larger one is read strip by strip each time, so memory stays flat.
    """

    image: Image.Image
    _packed: np.ndarray | None = field(default=None, repr=False)

    @property
    def channels(self) -> int:
        return 4 if self.image.mode == "RGBA" else 3

    @property
    def count(self) -> int:
        return self.image.width * self.image.height

    @property
    def rawmode(self) -> str:
        return "RGBA" if self.channels == 4 else "RGBX"

    @property
    def color_mask(self) -> int:
        """Bits of a packed pixel that carry its colour (padding excluded)."""
        return 0xFFFFFFFF if self.channels == 4 else 0xFFFFFF

    def strips(self) -> Iterator[np.ndarray]:
        """Yield the pixels, top to bottom, as uint32 arrays of about STRIP_PIXELS each."""
        width, height = self.image.size
        rows = max(1, STRIP_PIXELS // width)
        if self.count <= CACHE_PIXELS or rows >= height:
            packed = self.all_pixels()
            for start in range(0, len(packed), rows * width):
                yield packed[start : start + rows * width]
            return
        for top in range(0, height, rows):
            bottom = min(height, top + rows)
            data = raw_rows(self.image, self.rawmode, top, bottom)
            yield np.frombuffer(data, dtype=np.uint32)

    def all_pixels(self) -> np.ndarray:
        """Every packed pixel in one array (kept for images of at most CACHE_PIXELS)."""
        if self._packed is not None:
            return self._packed
        packed = np.frombuffer(self.image.tobytes("raw", self.rawmode), dtype=np.uint32)
        if self.count <= CACHE_PIXELS:
            self._packed = packed
        return packed


#: Bytes per pixel of the raw modes strips are read in.
RAW_PIXEL_BYTES = {"RGBA": 4, "RGBX": 4, "P": 1}


def raw_rows(image: Image.Image, rawmode: str, top: int, bottom: int) -> bytes:
    """Rows ``top`` to ``bottom`` of ``image`` as raw bytes of ``rawmode`` (a key of
    RAW_PIXEL_BYTES): straight from Pillow's raw encoder if it can, else cropped."""
    data = _encoded_rows(image, rawmode, top, bottom)
    return _cropped_rows(image, rawmode, top, bottom) if data is None else data


def _cropped_rows(image: Image.Image, rawmode: str, top: int, bottom: int) -> bytes:
    """:func:`raw_rows` through Pillow's public API."""
    return image.crop((0, top, image.width, bottom)).tobytes("raw", rawmode)


def _encoded_rows(image: Image.Image, rawmode: str, top: int, bottom: int) -> bytes | None:
    """:func:`_cropped_rows`' bytes straight from Pillow's raw encoder set on the rows' box, or
    None if that fails in any way.

    One call and one bytes object, with no cropped copy of the image in between: half the time
    of a strip on the 24 MP photo (read twice, for the histogram and the dithering, and its
    labels once more by the PNG writer). The encoder is Pillow's private API (what ``tobytes``
    itself uses), hence the fallback.
    """
    expected = RAW_PIXEL_BYTES[rawmode] * image.width * (bottom - top)
    try:
        encoder = Image._getencoder(image.mode, "raw", rawmode)
        try:
            encoder.setimage(image.im, (0, top, image.width, bottom))
            _, status, data = encoder.encode(expected)
        finally:
            encoder.cleanup()  # as tobytes does
    except Exception:  # a private API: any change in it means the public route
        return None
    if status != 1 or not isinstance(data, bytes) or len(data) != expected:
        return None
    return data


def unpack(packed: np.ndarray, channels: int) -> np.ndarray:
    """Packed uint32 pixels → (n, channels) uint8 array (a view, no copy)."""
    return packed.view(np.uint8).reshape(-1, 4)[:, :channels]


def pack(colors: np.ndarray) -> np.ndarray:
    """(n, 3 or 4) uint8 colours → packed uint32 (RGB gets zero padding)."""
    colors = np.asarray(colors, dtype=np.uint8)
    padded = np.zeros((len(colors), 4), dtype=np.uint8)
    padded[:, : colors.shape[1]] = colors
    return padded.view(np.uint32).ravel()


#: Pixels per block of element-wise work. Blocks of 256 KB stay in cache and below the size
#: at which malloc maps fresh pages for every temporary, which would cost more than the work.
BLOCK = 1 << 16


def blocks(length: int) -> Iterator[slice]:
    """Slices of ``range(length)`` of BLOCK elements each."""
    for start in range(0, length, BLOCK):
        yield slice(start, min(length, start + BLOCK))


def bin_keys(packed: np.ndarray, bits: int, channels: int) -> np.ndarray:
    """Histogram bin of each pixel: the top ``bits`` of each channel, channel 0 lowest."""
    mask = (1 << bits) - 1
    drop = 8 - bits
    out = np.empty(len(packed), dtype=packed.dtype)
    for part in blocks(len(packed)):
        block = packed[part]
        keys = block >> drop
        keys &= mask
        for channel in range(1, channels):
            # Channel c's top bits sit at 8c + drop; moving them to bits·c is one right shift.
            piece = block >> (8 * channel + drop - bits * channel)
            piece &= mask << (bits * channel)
            keys |= piece
        out[part] = keys
    return out
