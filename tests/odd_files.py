"""Generators of the files people really have in photo folders, good and broken."""

import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import sample_photo_path


def photo(size=(64, 48), seed=0) -> np.ndarray:
    """A photo-like RGB array: a crop of china.jpg resized, so colours are natural."""
    base = Image.open(sample_photo_path("china.jpg")).convert("RGB")
    rng = np.random.default_rng(seed)
    left, top = int(rng.integers(0, 300)), int(rng.integers(0, 200))
    return np.asarray(base.crop((left, top, left + 120, top + 90)).resize(size))


def png_header_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width × height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def make_good_files(folder: Path) -> dict[str, str]:
    """Write one file per odd-but-valid kind; return {relative path: what it is}."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = photo()
    kinds = {}

    def save(name, image, **options):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, **options)
        kinds[name] = name

    save("plain.jpg", Image.fromarray(rgb), quality=92)
    save("gray.png", Image.fromarray(rgb[:, :, 1]))
    save("gray16.png", Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257))
    save("cmyk.jpg", Image.fromarray(rgb).convert("CMYK"))
    save("palette.gif", Image.fromarray(rgb).convert("P"))
    alpha = np.dstack(
        [rgb, np.linspace(0, 255, rgb.shape[1], dtype=np.uint8)[None, :].repeat(rgb.shape[0], 0)]
    )
    save("alpha.png", Image.fromarray(alpha, "RGBA"))
    rotated = Image.fromarray(rgb)
    exif = rotated.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    exif[0x8825] = {2: (1.0, 2.0, 3.0)}  # GPS, which must not reach the output
    save("rotated.jpg", rotated, exif=exif)
    frames = [Image.fromarray(np.full((16, 24, 3), c, np.uint8)) for c in (10, 120, 240)]
    path = folder / "animated.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50)
    kinds["animated.gif"] = "animated.gif"
    save("lossless.webp", Image.fromarray(rgb), lossless=True)
    save("scan.tiff", Image.fromarray(rgb))
    save("old.bmp", Image.fromarray(rgb))
    save("dot.png", Image.new("RGB", (1, 1), (200, 10, 30)))
    few = np.zeros((20, 20, 3), np.uint8)
    few[:10] = (255, 0, 0)
    few[10:, :10] = (0, 0, 255)
    save("three colours.png", Image.fromarray(few))
    save("ünïcödé/naïve photo.jpg", Image.fromarray(rgb))
    save("deep/er/nested.jpg", Image.fromarray(rgb))
    save("same.jpg", Image.fromarray(rgb))
    save("same.png", Image.fromarray(rgb))
    return kinds


def make_broken_files(folder: Path, outside: Path) -> dict[str, str]:
    """Write one broken or hostile file per kind; return {name: expected reason fragment}."""
    folder.mkdir(parents=True, exist_ok=True)
    good_jpeg = folder / "tmp.jpg"
    Image.fromarray(photo(size=(200, 150))).save(good_jpeg, quality=95)
    data = good_jpeg.read_bytes()
    good_jpeg.unlink()
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "random.png").write_bytes(np.random.default_rng(3).bytes(4096))
    (folder / "text.jpg").write_text("not a picture at all\n")
    (folder / "bomb.png").write_bytes(png_header_bomb(60000, 60000))
    secret = outside / "secret.jpg"
    secret.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo()).save(secret)
    os.symlink(secret, folder / "escape.jpg")
    os.mkfifo(folder / "pipe.jpg")
    os.symlink(folder / "deleted.jpg", folder / "dangling.jpg")  # its target is gone
    return {
        "empty.jpg": "empty file",
        "truncated.jpg": "truncated",
        "random.png": "not an image",
        "text.jpg": "not an image",
        "bomb.png": "exceeds the 120 MP limit",
        "escape.jpg": "outside the input tree",
        "pipe.jpg": "not a regular file",
        "dangling.jpg": "a broken link",
    }


def make_ignored_files(folder: Path) -> list[str]:
    (folder / "notes.txt").write_text("trip notes")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "README").write_text("hello")
    return ["notes.txt", ".DS_Store", "README"]
