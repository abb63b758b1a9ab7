"""Stage 6, save: write the indexed PNG and its palette JSON atomically.

Each file is written to a temp file in the destination folder and then renamed over the final
name, so a reader sees either no file or a whole one. Temp names carry a marker, so a later
writer of the same output removes what a killed writer left behind.
"""

import io
import json
import os
import tempfile
from pathlib import Path

from PIL import Image

from pipeline.settings import PNG_COMPRESS_LEVEL, TEMP_MARKER

#: Placeholder for the colour list while the rest of a palette JSON is indented; it cannot occur
#: in a file name, so replacing it cannot touch anything else.
COLORS_SLOT = "\x00colors\x00"


def temp_prefix(final: Path) -> str:
    return f".{final.name}{TEMP_MARKER}"


def remove_stale_temps(*finals: Path) -> int:
    """Delete temp files earlier, interrupted writers of ``finals`` (all in one folder) left;
    return how many. One listing of the folder serves every name."""
    prefixes = tuple(temp_prefix(final) for final in finals)
    return _remove_matching(finals[0].parent, lambda name: name.startswith(prefixes))


def remove_temps_in(folder: Path) -> int:
    """Delete every colorquant temp file in ``folder`` (when no writer is running there)."""
    return _remove_matching(folder, lambda name: name.startswith(".") and TEMP_MARKER in name)


def _remove_matching(folder: Path, matches) -> int:
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for entry in entries:
        if matches(entry.name):
            try:
                os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:
                pass  # another cleaner got there first
    return removed


def write_atomic(final: Path, data: bytes, *, clear_stale: bool = True) -> None:
    """Write ``data`` to ``final`` so that no reader ever sees a partial file.

    ``clear_stale`` first removes temps a killed writer of ``final`` left (pass False when the
    caller already did, since it lists the whole folder).
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    if clear_stale:
        remove_stale_temps(final)
    try:
        _write_and_rename(final, data)
    except FileNotFoundError:
        if not final.parent.is_dir():
            raise
        # Our temp was taken for a dead writer's and removed by another cleaner: write again.
        _write_and_rename(final, data)


def _write_and_rename(final: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(prefix=temp_prefix(final), dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temp, 0o644)
        os.replace(temp, final)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise


def write_pair_atomic(image: tuple[Path, bytes], palette: tuple[Path, bytes]) -> None:
    """Write an image and its palette JSON so that the image never stays without its palette.

    The image is written first; when the palette cannot be written, the new image is removed
    again, so a later run never mistakes it for a file colorquant did not make.
    """
    write_atomic(image[0], image[1], clear_stale=False)
    try:
        write_atomic(palette[0], palette[1], clear_stale=False)
    except BaseException:
        try:
            os.unlink(image[0])
        except OSError:
            pass
        raise


def png_bytes(indexed: Image.Image, icc_profile: bytes | None = None) -> bytes:
    """Encode a mode-P image as PNG: tRNS when it has transparency, the source's colour
    profile when it had one, and no other metadata (no EXIF, no GPS)."""
    buffer = io.BytesIO()
    options = {"compress_level": PNG_COMPRESS_LEVEL}
    if icc_profile:
        options["icc_profile"] = icc_profile
    if "transparency" in indexed.info:
        options["transparency"] = indexed.info["transparency"]
    indexed.save(buffer, format="PNG", **options)
    return buffer.getvalue()


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
