"""Small JPEG previews of originals and results for the HTML report, made in parallel.

A thumbnail is named after the output it belongs to, so a re-run of the report finds it again;
it is reused while it is newer than its image. Only Pillow runs here: no numpy, no
scikit-learn, so the pool processes start in a fraction of a second.
"""

import hashlib
import io
import math
import multiprocessing
import os
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from pipeline.save import write_atomic

#: Largest side of a thumbnail, in pixels: sharp at twice the size the page shows it.
THUMB_BOX = 256

#: JPEG quality of the previews: about 10 KB each, artefacts invisible at this size. JPEG, not
#: WebP: at this size libwebp takes about 7 ms per preview where libjpeg takes 0.3 ms, for files
#: only a third larger, and 10,000 photos make 20,000 previews.
THUMB_QUALITY = 78

#: Colour behind transparent pixels in a preview (JPEG has no alpha): a light grey, so white
#: and transparent stay apart.
MATTE = (236, 238, 242)

#: Below this many thumbnails to make, a process pool costs more than it saves.
INLINE_LIMIT = 24

#: Thumbnails handed to a pool process at a time.
POOL_CHUNK = 16

#: Names this module writes, so that cleaning a thumbnail folder never touches anything else.
THUMB_NAME = re.compile(r"^[0-9a-f]{16}-[or]\.jpg$")


@dataclass(frozen=True)
class ThumbTask:
    """One preview to have: the image it shows and the file it is written to."""

    image: str
    thumb: str

    def up_to_date(self) -> bool:
        try:
            return os.stat(self.thumb).st_mtime_ns >= os.stat(self.image).st_mtime_ns
        except OSError:
            return False


def thumb_name(output: str, kind: str) -> str:
    """The file name of an output's preview; ``kind`` is ``o`` (original) or ``r`` (result)."""
    digest = hashlib.sha1(output.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{digest}-{kind}.jpg"


def make_thumbnail(task: ThumbTask) -> bool:
    """Write one preview; False when the image cannot be read (the page shows a placeholder)."""
    try:
        with Image.open(task.image) as image:
            image.draft("RGB", preview_size(image.size))  # a JPEG decodes at 1/2..1/8 scale
            # Indexed results are shrunk in RGB: Pillow resizes a palette image by nearest
            # neighbour, which turns dithering into noise.
            preview = flattened(ImageOps.exif_transpose(image))
        # reducing_gap 1: a fast box reduction to within 2x of the size, then bicubic.
        preview.thumbnail((THUMB_BOX, THUMB_BOX), reducing_gap=1.0)
        buffer = io.BytesIO()
        preview.save(buffer, "JPEG", quality=THUMB_QUALITY)
        write_atomic(Path(task.thumb), buffer.getvalue())
        return True
    except (OSError, ValueError, Image.DecompressionBombError):
        return False


def preview_size(size: tuple[int, int]) -> tuple[int, int]:
    """The size of an image shrunk to fit in THUMB_BOX × THUMB_BOX, keeping its shape."""
    scale = min(1.0, THUMB_BOX / max(size))
    return max(1, math.ceil(size[0] * scale)), max(1, math.ceil(size[1] * scale))


def flattened(image: Image.Image) -> Image.Image:
    """The image in RGB, transparent parts laid over the matte."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    matte = Image.new("RGB", rgba.size, MATTE)
    matte.paste(rgba, mask=rgba.getchannel("A"))
    return matte


def _make_chunk(tasks: list[ThumbTask]) -> list[bool]:
    return [make_thumbnail(task) for task in tasks]


def make_thumbnails(
    tasks: list[ThumbTask],
    workers: int,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, bool]:
    """Make every preview that is missing or older than its image; return which ones exist.

    Work is spread over ``workers`` spawned processes when there is enough of it.
    """
    present = {}
    todo = []
    for task in tasks:
        if task.up_to_date():
            present[task.thumb] = True
        else:
            todo.append(task)
    chunks = [todo[start : start + POOL_CHUNK] for start in range(0, len(todo), POOL_CHUNK)]
    for chunk, made in zip(chunks, _run_chunks(chunks, workers), strict=True):
        present.update((task.thumb, ok) for task, ok in zip(chunk, made, strict=True))
        if on_progress:
            on_progress(len(chunk))
    return present


def _run_chunks(chunks: list[list[ThumbTask]], workers: int):
    if workers <= 1 or sum(map(len, chunks)) <= INLINE_LIMIT:
        yield from map(_make_chunk, chunks)
        return
    # spawn: the caller may have imported libraries that are not fork-safe (OpenMP).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(chunks)), mp_context=context) as pool:
        yield from pool.map(_make_chunk, chunks)


def remove_unused(folder: Path, keep: set[str]) -> int:
    """Delete previews in ``folder`` that no output needs any more; return how many."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if THUMB_NAME.match(entry.name) and entry.path not in keep:
            try:
                os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:
                pass
    return removed
