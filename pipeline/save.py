"""Stage 6, save: write the indexed PNG and its palette JSON atomically.

Each file is written to a temp file in the destination folder and then renamed over the final
name, so a reader sees either no file or a whole one.

The temp file of an output has one fixed name (:func:`temp_path`), so the next writer of that
output finds what a killed writer left directly, without listing the folder: listing per image
would make a run over a crowded folder quadratic. A writer holds an exclusive ``flock`` on its
temp file while it writes; the kernel drops the lock when the process dies, however it dies. So
a temp file nobody holds a lock on is a dead writer's, and is reused or removed; one that is
locked belongs to a live writer of the same output (a task delivered twice), and the next writer
waits for it. Temp files of other names (from older versions) are removed by a sweep of each
output folder once per run or job (:func:`remove_temps_in`).
"""

import errno
import fcntl
import json
import os
import struct
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from zlib_ng import zlib_ng

from pipeline.pixels import raw_rows
from pipeline.settings import (
    DITHERED_INFO,
    PNG_COMPRESS_LEVEL,
    PNG_DITHERED_COMPRESS_LEVEL,
    TEMP_MARKER,
)

#: Placeholder for the colour list while the rest of a palette JSON is indented; it cannot occur
#: in a file name, so replacing it cannot touch anything else.
COLORS_SLOT = "\x00colors\x00"

#: Suffix after TEMP_MARKER of the one temp name of each output.
TEMP_SUFFIX = "partial"

#: Seconds a writer waits for a live writer of the same output to finish before it gives up
#: with a transient error (retried later): writing one file takes milliseconds.
LOCK_PATIENCE_S = 30.0

#: Seconds between two tries of a lock another writer holds.
LOCK_POLL_S = 0.01

#: Attempts at claiming or renaming a temp file that others keep taking away.
WRITE_ATTEMPTS = 20


def temp_path(final: Path) -> Path:
    """The temp file every writer of ``final`` uses, hidden, in the same folder."""
    return final.with_name(f".{final.name}{TEMP_MARKER}{TEMP_SUFFIX}")


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and TEMP_MARKER in name


def discard_temps(*finals: Path) -> int:
    """Remove what dead writers of ``finals`` left (no listing); return how many files."""
    return sum(_remove_if_dead(temp_path(final)) for final in finals)


def remove_temps_in(folder: Path) -> int:
    """Remove every colorquant temp file in ``folder`` that no live writer holds; one listing
    of the folder. Return how many were removed."""
    try:
        entries = [entry.path for entry in os.scandir(folder) if is_temp_name(entry.name)]
    except (FileNotFoundError, NotADirectoryError):
        return 0
    return sum(_remove_if_dead(Path(path)) for path in entries)


class FolderSweeper:
    """Sweeps each folder once per job, in one process (see :func:`remove_temps_in`)."""

    #: Folders remembered at most; past it the memory starts afresh (a sweep more, no harm).
    REMEMBERED = 100_000

    def __init__(self):
        self.swept: set[tuple[str, str]] = set()

    def sweep(self, job: str, folder: Path) -> None:
        key = (job, str(folder))
        if key in self.swept:
            return
        if len(self.swept) >= self.REMEMBERED:
            self.swept.clear()
        self.swept.add(key)
        remove_temps_in(folder)


def _remove_if_dead(temp: Path) -> bool:
    try:
        fd = os.open(temp, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False  # gone already, or not ours to open
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False  # a live writer holds it
    try:
        if not _is_at(fd, temp):
            return False
        os.unlink(temp)
        return True
    finally:
        os.close(fd)


def _is_at(fd: int, path: Path) -> bool:
    """True when the open file ``fd`` is still the file at ``path`` (not renamed or replaced)."""
    try:
        here = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (opened.st_dev, opened.st_ino)


def write_atomic(final: Path, data: bytes) -> None:
    """Write ``data`` to ``final`` so that no reader ever sees a partial file."""
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path(final)
    for _ in range(WRITE_ATTEMPTS):
        fd = claim_temp(temp)
        try:
            _write_and_rename(fd, temp, final, data)
            return
        except FileNotFoundError:
            if not final.parent.is_dir():
                raise
            # A sweep took our temp between the claim and the rename: write again.
        finally:
            os.close(fd)
    raise OSError(errno.EAGAIN, f"could not write {final.name}: its temp file kept vanishing")


def claim_temp(temp: Path) -> int:
    """Open and lock ``temp`` (created if missing, a dead writer's reused); return the fd."""
    deadline = time.monotonic() + LOCK_PATIENCE_S
    for _ in range(WRITE_ATTEMPTS):
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        try:
            _lock(fd, deadline)
            if _is_at(fd, temp):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # renamed or removed while we waited: claim the new one
    raise OSError(errno.EAGAIN, f"could not claim the temp file {temp.name}")


def _lock(fd: int, deadline: float) -> None:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise OSError(errno.EAGAIN, "another writer of this output is still busy") from None
            time.sleep(LOCK_POLL_S)


def _fill(fd: int, data: bytes) -> None:
    """Write ``data`` as the whole content of the claimed temp file ``fd``."""
    os.ftruncate(fd, 0)  # a dead writer's half file, when we took over its temp
    os.fchmod(fd, 0o644)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_and_rename(fd: int, temp: Path, final: Path, data: bytes) -> None:
    try:
        _fill(fd, data)
        os.replace(temp, final)
    except FileNotFoundError:
        raise
    except BaseException:
        if _is_at(fd, temp):
            os.unlink(temp)  # we hold the lock: nobody else writes it
        raise


def write_pair_atomic(image: tuple[Path, bytes], palette: tuple[Path, bytes]) -> None:
    """Write an image and its palette JSON, each atomically, so that neither a failed write
    nor a killed writer leaves an image colorquant would later refuse as not its own.

    Both temp files are written in full before either is renamed, so a full disk fails the
    pair with nothing renamed. Then the JSON is renamed first, because it is what makes an
    output colorquant's (pipeline/ownership.py): a writer killed between the two renames
    (SIGKILL, the OOM killer, a power cut) leaves a JSON beside a missing or stale image, which
    the up-to-date check redoes, since the JSON records the image's size. The other order
    would leave an image without its JSON, which the next run must treat as a file colorquant
    did not make and refuse to replace: that image of the job failed for good.
    """
    for final, _ in (palette, image):
        final.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(WRITE_ATTEMPTS):
        try:
            _write_pair_once(palette, image)
            return
        except FileNotFoundError:
            if not (palette[0].parent.is_dir() and image[0].parent.is_dir()):
                raise
            # A sweep took a temp between its claim and its rename: write the pair again.
    raise OSError(errno.EAGAIN, f"could not write {image[0].name}: its temp file kept vanishing")


def _write_pair_once(first: tuple[Path, bytes], second: tuple[Path, bytes]) -> None:
    claimed = []
    try:
        for final, data in (first, second):
            temp = temp_path(final)
            claimed.append((claim_temp(temp), temp, final))
            _fill(claimed[-1][0], data)
        for _, temp, final in claimed:
            os.replace(temp, final)
    except FileNotFoundError:
        raise
    except BaseException:
        for fd, temp, _ in claimed:
            if _is_at(fd, temp):
                os.unlink(temp)  # we hold its lock: nobody else writes it
        raise
    finally:
        for fd, _, _ in claimed:
            os.close(fd)


def png_bytes(indexed: Image.Image, icc_profile: bytes | None = None) -> bytes:
    """Encode a mode-P image as PNG: tRNS when it has transparency, the source's colour
    profile when it had one, and no other metadata (no EXIF, no GPS).

    Written here rather than by Pillow because Pillow filters the rows of 1–4-bit palette
    images (Sub, Up, Paeth on packed indices), which the PNG spec advises against: at K=16
    its files came out 12–25% larger than the same pixels unfiltered (pngquant's own files),
    the whole of the file-size gap to pngquant. Rows go unfiltered (filter type 0), packed at
    the smallest bit depth that holds the palette, and are compressed strip by strip so no
    second copy of a big image is held. A dithered image (``info[DITHERED_INFO]``) is
    compressed at a cheaper zlib level: its noisy rows gain little from the dearer search.
    """
    if indexed.mode != "P":
        raise ValueError(f"png_bytes encodes palette (mode P) images, got mode {indexed.mode}")
    width, height = indexed.size
    palette = bytes(indexed.getpalette("RGB") or [0, 0, 0])
    colors = min(len(palette) // 3, 256)
    bits = _bit_depth(colors)
    header = struct.pack(">IIBBBBB", width, height, bits, 3, 0, 0, 0)  # type 3: palette
    chunks = [PNG_SIGNATURE, _png_chunk(b"IHDR", header)]
    if icc_profile:
        profile = ICC_PROFILE_NAME + b"\0\0" + zlib.compress(icc_profile)  # method 0: zlib
        chunks.append(_png_chunk(b"iCCP", profile))
    chunks.append(_png_chunk(b"PLTE", palette[: 3 * colors]))
    alphas = _alphas(indexed.info.get("transparency"), colors)
    if alphas:
        chunks.append(_png_chunk(b"tRNS", alphas))
    # The image data is joined once, with the rest: not into one stream, then a chunk, then
    # the file (three more copies of a 24 MP photo's 7 MB).
    chunks += _png_chunk_parts(b"IDAT", _compressed_rows(indexed, bits))
    chunks.append(_png_chunk(b"IEND", b""))
    return b"".join(chunks)


#: The eight bytes every PNG file starts with.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: The profile name of the iCCP chunk (Pillow's).
ICC_PROFILE_NAME = b"ICC Profile"

#: Uncompressed bytes of index rows packed and compressed at a time.
PNG_STRIP_BYTES = 1 << 20


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return b"".join(_png_chunk_parts(kind, [data]))


def _png_chunk_parts(kind: bytes, parts: list[bytes]) -> list[bytes]:
    """A chunk whose data is ``parts`` joined, as a list of pieces to join."""
    crc = zlib_ng.crc32(kind)
    for part in parts:
        crc = zlib_ng.crc32(part, crc)
    length = sum(len(part) for part in parts)
    return [struct.pack(">I", length), kind, *parts, struct.pack(">I", crc)]


def _bit_depth(colors: int) -> int:
    """The smallest PNG palette bit depth (1, 2, 4 or 8) with room for ``colors`` entries."""
    return next(bits for bits in (1, 2, 4, 8) if colors <= 1 << bits)


def _alphas(transparency, colors: int) -> bytes:
    """The tRNS entries: Pillow's ``transparency`` info (bytes per entry, or the one index
    that is fully transparent), at most one per palette entry; empty when opaque."""
    if isinstance(transparency, int) and 0 <= transparency < colors:
        return bytes([255] * transparency + [0])
    return bytes(transparency[:colors]) if isinstance(transparency, bytes) else b""


def _compressed_rows(indexed: Image.Image, bits: int) -> list[bytes]:
    """The zlib stream of the image's rows (in pieces), each a filter byte 0 and its packed
    indices.

    Deflated by zlib-ng, not the standard library's zlib: the same zlib format, written in
    half the time or less at each level, and no larger (timing mix at K=64: level 6 in 15 ms
    a photo instead of 31 ms, 0.5% fewer bytes; see PNG_COMPRESS_LEVEL).
    """
    width, height = indexed.size
    dithered = indexed.info.get(DITHERED_INFO, False)
    level = PNG_DITHERED_COMPRESS_LEVEL if dithered else PNG_COMPRESS_LEVEL
    compressor = zlib_ng.compressobj(level)
    parts = []
    rows = max(1, PNG_STRIP_BYTES // max(width, 1))
    for top in range(0, height, rows):
        strip = raw_rows(indexed, "P", top, min(height, top + rows))
        labels = np.frombuffer(strip, dtype=np.uint8).reshape(-1, width)
        parts.append(compressor.compress(_packed_rows(labels, bits)))
    parts.append(compressor.flush())
    return parts


def _packed_rows(labels: np.ndarray, bits: int) -> bytes:
    """(rows, width) indices → the rows' bytes: filter byte 0 then the indices, ``bits`` each,
    the first pixel in the highest bits, the last byte of a row padded with zeros."""
    per_byte = 8 // bits
    height, width = labels.shape
    row_bytes = -(-width // per_byte)
    out = np.zeros((height, row_bytes + 1), dtype=np.uint8)
    if bits == 8:
        out[:, 1:] = labels
        return out.tobytes()
    padded = np.zeros((height, row_bytes * per_byte), dtype=np.uint8)
    padded[:, :width] = labels
    groups = padded.reshape(height, row_bytes, per_byte)
    packed = out[:, 1:]
    for j in range(per_byte):
        packed |= groups[:, :, j] << (8 - bits * (j + 1))
    return out.tobytes()


def json_bytes(document: dict) -> bytes:
    """The document as UTF-8 JSON, one colour per line, readable non-ASCII names.

    A file name that is not valid UTF-8 reaches Python with its bad bytes as lone surrogates
    (PEP 383); they are written as JSON escapes (``\\udcff`` for the byte 0xff), which every JSON
    reader accepts and ``os.fsencode`` turns back into the original bytes.
    """
    return (json_text(document) + "\n").encode("utf-8", "backslashreplace")


def json_text(document: dict) -> str:
    """Indented JSON, except that each entry of ``colors`` stays on one line (64 colours make
    64 lines, not 670)."""
    colors = document.get("colors")
    if not isinstance(colors, list) or not colors:
        return json.dumps(document, indent=1, ensure_ascii=False)
    text = json.dumps({**document, "colors": COLORS_SLOT}, indent=1, ensure_ascii=False)
    entries = ",\n".join(f"  {json.dumps(color, ensure_ascii=False)}" for color in colors)
    return text.replace(json.dumps(COLORS_SLOT), f"[\n{entries}\n ]", 1)
