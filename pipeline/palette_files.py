"""Palette files that design tools open, written beside each output and read as ``--palette``.

* GIMP ``.gpl``: text, one ``R G B name`` line per colour (GIMP, Inkscape, Krita, Pillow).
* Adobe Color Table ``.act``: 256 RGB triples, then the number of colours and the transparent
  index as big-endian 16-bit integers: 772 bytes (Photoshop's "Save for Web" writes these).
* Adobe Swatch Exchange ``.ase``: ``ASEF`` blocks with UTF-16 names and float RGB values
  (Illustrator, Photoshop, InDesign, Affinity).
* CSS ``.css``: one custom property per colour on ``:root``.
* colorquant's own palette JSON (read only: it is written by :mod:`pipeline.process`).

Colours are (n, 3) or (n, 4) uint8 arrays; alpha survives only where the format has it (CSS
and JSON carry it, ACT keeps the one fully transparent entry, GIMP and ASE drop it).
"""

import json
import re
import struct
from pathlib import Path

import numpy as np

#: The palette files ``--palette FILE`` reads, by file extension.
READABLE_FORMATS = ("gpl", "act", "ase", "json")

#: Colours in an Adobe Color Table, and its size with the count and transparent index.
ACT_COLORS, ACT_BYTES = 256, 772

#: The "no transparent colour" index of a Color Table.
ACT_NO_TRANSPARENCY = 0xFFFF

#: Largest palette file read as ``--palette``: far above any real palette, below a mistake.
MAX_PALETTE_FILE_BYTES = 4 << 20

#: Swatch Exchange block types, and the colour type of an ordinary (global) swatch.
ASE_COLOR_BLOCK, ASE_GROUP_START, ASE_GROUP_END, ASE_GLOBAL = 0x0001, 0xC001, 0xC002, 0


class PaletteFileError(ValueError):
    """A palette file that cannot be used; the message is the one-line reason."""


def hex_color(color) -> str:
    """``#rrggbb``, or ``#rrggbbaa`` for a colour with alpha below 255."""
    values = [int(v) for v in color]
    if len(values) == 4 and values[3] == 255:
        values = values[:3]
    return "#" + "".join(f"{v:02x}" for v in values)


def export_bytes(kind: str, colors: np.ndarray, name: str) -> bytes:
    """The palette ``colors`` in the export format ``kind`` (one of EXPORT_FORMATS)."""
    writers = {"gpl": gpl_bytes, "act": act_bytes, "ase": ase_bytes, "css": css_bytes}
    return writers[kind](np.asarray(colors, dtype=np.uint8), name)


def gpl_bytes(colors: np.ndarray, name: str) -> bytes:
    # Three header lines at most, so Pillow's reader (which stops after 259 lines) sees 256.
    lines = ["GIMP Palette", f"Name: {_one_line(name)}", "Columns: 16"]
    lines += [f"{r:3d} {g:3d} {b:3d}\t{hex_color((r, g, b))}" for r, g, b in colors[:, :3].tolist()]
    return ("\n".join(lines) + "\n").encode("utf-8")


def act_bytes(colors: np.ndarray, name: str) -> bytes:
    table = np.zeros((ACT_COLORS, 3), dtype=np.uint8)
    table[: len(colors)] = colors[:, :3]
    clear = ACT_NO_TRANSPARENCY
    if colors.shape[1] == 4 and (colors[:, 3] == 0).any():
        clear = int(np.flatnonzero(colors[:, 3] == 0)[0])
    return table.tobytes() + struct.pack(">HH", len(colors), clear)


def ase_bytes(colors: np.ndarray, name: str) -> bytes:
    blocks = [_ase_block(ASE_GROUP_START, _ase_name(name))]
    for color in colors[:, :3].tolist():
        body = _ase_name(hex_color(color)) + b"RGB " + struct.pack(">3f", *(v / 255 for v in color))
        blocks.append(_ase_block(ASE_COLOR_BLOCK, body + struct.pack(">H", ASE_GLOBAL)))
    blocks.append(_ase_block(ASE_GROUP_END, b""))
    return b"ASEF" + struct.pack(">HHI", 1, 0, len(blocks)) + b"".join(blocks)


def css_bytes(colors: np.ndarray, name: str) -> bytes:
    prefix = css_identifier(name)
    lines = [f"/* colorquant palette {_one_line(name).replace('*/', '')}: {len(colors)} colours */"]
    lines.append(":root {")
    lines += [f"  --{prefix}-{index}: {hex_color(c)};" for index, c in enumerate(colors.tolist())]
    lines.append("}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def css_identifier(name: str) -> str:
    """A custom-property-safe version of ``name`` (letters, digits, ``-`` and ``_``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "palette"
    return cleaned if not cleaned[0].isdigit() else f"c{cleaned}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _ase_name(name: str) -> bytes:
    encoded = name.encode("utf-16-be") + b"\x00\x00"
    return struct.pack(">H", len(encoded) // 2) + encoded


def _ase_block(kind: int, body: bytes) -> bytes:
    return struct.pack(">HI", kind, len(body)) + body


def read_palette_file(path: str | Path) -> np.ndarray:
    """The colours of a ``.gpl``, ``.act``, ``.ase`` or colorquant ``.json`` palette file.

    Returns (n, 3) uint8, or (n, 4) for a JSON palette with transparency, 1 ≤ n ≤ 256. Raises
    PaletteFileError with a one-line reason for anything else.
    """
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if kind not in READABLE_FORMATS:
        raise PaletteFileError(
            f"{path}: a palette file is .gpl, .act, .ase or a colorquant .json, not {path.name}"
        )
    try:
        if not path.is_file():
            raise PaletteFileError(f"{path}: no such palette file")
        if path.stat().st_size > MAX_PALETTE_FILE_BYTES:
            raise PaletteFileError(f"{path}: too large for a palette file")
        data = path.read_bytes()
    except OSError as exc:
        raise PaletteFileError(f"{path}: cannot read: {exc.strerror}") from None
    readers = {"gpl": read_gpl, "act": read_act, "ase": read_ase, "json": read_json}
    try:
        colors = readers[kind](data)
    except PaletteFileError as exc:
        raise PaletteFileError(f"{path}: {exc}") from None
    except (ValueError, KeyError, TypeError, IndexError, SyntaxError, struct.error) as exc:
        raise PaletteFileError(f"{path}: not a valid .{kind} palette ({_reason(exc)})") from None
    if not 1 <= len(colors) <= 256:
        raise PaletteFileError(f"{path}: {len(colors)} colours; a palette holds 1 to 256")
    return colors


def _reason(exc: Exception) -> str:
    return _one_line(str(exc)) or type(exc).__name__


def read_gpl(data: bytes) -> np.ndarray:
    from PIL.GimpPaletteFile import GimpPaletteFile

    palette, _ = GimpPaletteFile.frombytes(data).getpalette()
    return np.frombuffer(palette, dtype=np.uint8).reshape(-1, 3).copy()


def read_act(data: bytes) -> np.ndarray:
    if len(data) not in (ACT_COLORS * 3, ACT_BYTES):
        raise PaletteFileError(f"an .act file has 768 or 772 bytes, this one {len(data)}")
    table = np.frombuffer(data[: ACT_COLORS * 3], dtype=np.uint8).reshape(-1, 3)
    if len(data) == ACT_COLORS * 3:
        return table.copy()
    count, clear = struct.unpack(">HH", data[ACT_COLORS * 3 :])
    count = count or ACT_COLORS  # some writers put 0 for "all 256"
    if count > ACT_COLORS:
        raise PaletteFileError(f"colour count {count} above 256")
    colors = table[:count]
    if clear == ACT_NO_TRANSPARENCY or clear >= count:
        return colors.copy()
    alpha = np.full(count, 255, dtype=np.uint8)
    alpha[clear] = 0
    return np.column_stack([colors, alpha])


def read_ase(data: bytes) -> np.ndarray:
    if data[:4] != b"ASEF":
        raise PaletteFileError("not an Adobe Swatch Exchange file (no ASEF signature)")
    (count,) = struct.unpack(">I", data[8:12])
    offset, colors = 12, []
    for _ in range(count):
        kind, length = struct.unpack(">HI", data[offset : offset + 6])
        body = data[offset + 6 : offset + 6 + length]
        if len(body) != length:
            raise PaletteFileError("truncated block")
        offset += 6 + length
        if kind == ASE_COLOR_BLOCK:
            colors.append(_ase_color(body))
    return np.array(colors, dtype=np.uint8).reshape(-1, 3)


def _ase_color(body: bytes) -> list[int]:
    (name_chars,) = struct.unpack(">H", body[:2])
    at = 2 + 2 * name_chars
    model = body[at : at + 4]
    if model == b"RGB ":
        values = struct.unpack(">3f", body[at + 4 : at + 16])
    elif model == b"Gray":
        values = struct.unpack(">f", body[at + 4 : at + 8]) * 3
    else:
        raise PaletteFileError(
            f"swatch in colour model {model.decode('latin-1').strip()!r}; use RGB swatches"
        )
    return [int(np.clip(round(v * 255), 0, 255)) for v in values]


def read_json(data: bytes) -> np.ndarray:
    return document_colors(json.loads(data))


def document_colors(document: dict) -> np.ndarray:
    """The palette of a colorquant palette JSON document: (n, 3), or (n, 4) with alpha."""
    rows = [[*entry["rgb"], entry.get("alpha", 255)] for entry in document["colors"]]
    array = np.array(rows, dtype=np.int64).reshape(-1, 4)
    if array.size and (array.min() < 0 or array.max() > 255):
        raise PaletteFileError("colour values outside 0–255")
    array = array.astype(np.uint8)
    return array if (array[:, 3] < 255).any() else array[:, :3].copy()


def read_css(data: bytes) -> np.ndarray:
    """The colours of a CSS file's ``--name: #hex`` custom properties, in order."""
    found = re.findall(rb"--[\w-]+\s*:\s*#([0-9a-fA-F]{8}|[0-9a-fA-F]{6})\s*;", data)
    colors = [[int(h[i : i + 2], 16) for i in range(0, len(h), 2)] for h in found]
    if any(len(c) == 4 for c in colors):
        return np.array([c + [255] * (4 - len(c)) for c in colors], dtype=np.uint8)
    return np.array(colors, dtype=np.uint8).reshape(-1, 3)
