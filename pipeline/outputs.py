"""What is written for each image: the names, the image encoders and the files beside them.

For an input whose walk name below OUT is ``a/b.png`` (see :mod:`pipeline.discover`), colorquant
writes the indexed image ``a/b.png``, ``a/b.webp`` or ``a/b.gif`` (``--format``), its palette
JSON ``a/b.palette.json``, and one palette file per ``--export`` kind: ``a/b.gpl``, ``a/b.act``,
``a/b.ase``, ``a/b.css``. :class:`OutputFiles` names them all, so every writer and every check
(is it up to date, may it be replaced) sees the same list.

Formats:

* PNG: mode P with a tRNS chunk when the palette has alpha (every viewer reads it).
* WebP: lossless. libwebp stores an image of at most 256 colours through its colour-indexing
  transform (its palette mode), with the alpha of each entry, and the file is usually smaller
  than the PNG. Decoders hand it back as RGB(A) with exactly the palette's colours.
* GIF: mode P with one transparent index (GIF has no partial alpha: entries with partial alpha
  are written opaque; fully transparent pixels keep their one transparent entry).

No encoder is given the source's EXIF or other metadata: only pixels, palette and the colour
profile (PNG and WebP carry it; GIF cannot).
"""

import io
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from pipeline.discover import output_paths
from pipeline.palette_files import export_bytes
from pipeline.save import png_bytes
from pipeline.settings import PALETTE_SUFFIX

#: The walk names outputs with this extension; the chosen format's replaces it.
WALK_EXTENSION = ".png"

#: libwebp lossless effort: ``method`` 0–6 and ``quality`` 0–100 (for lossless, how hard it
#: searches). Method 4 at quality 50 is within 1–2% of the smallest size measured here at the
#: time of PNG encoding; method 6 at quality 100 gains 3% more for 40× the time.
WEBP_METHOD, WEBP_QUALITY = 4, 50


def image_name(walk_output: str, fmt: str) -> str:
    """The output image's name below OUT for the chosen format: ``a/b.png`` → ``a/b.webp``."""
    stem = walk_output[: -len(WALK_EXTENSION)] if walk_output.endswith(WALK_EXTENSION) else None
    if stem is None:
        raise ValueError(f"output path {walk_output!r} is not an output name; nothing written")
    return f"{stem}.{fmt}"


def stem_of(output: str) -> str:
    """``a/b.webp`` → ``a/b``: what every file beside the image is named after."""
    return output.rsplit(".", 1)[0]


@dataclass(frozen=True)
class OutputFiles:
    """Every file written for one image below OUT, named from its walk name and the spec."""

    root: Path
    output: str  # the image below OUT, POSIX, with the format's extension
    kinds: tuple[str, ...] = ()  # the exports asked for

    @classmethod
    def of(
        cls, out_root: str | Path, walk_output: str, fmt: str = "png", exports=()
    ) -> "OutputFiles":
        """The files for an input; ValueError for a name that would leave OUT."""
        output_paths(out_root, walk_output)  # the check
        return cls(Path(out_root), image_name(walk_output, fmt), tuple(exports))

    @property
    def image(self) -> Path:
        return self.root / self.output

    @property
    def palette(self) -> Path:
        return self.root / (stem_of(self.output) + PALETTE_SUFFIX)

    def export(self, kind: str) -> Path:
        return self.root / f"{stem_of(self.output)}.{kind}"

    @property
    def exports(self) -> dict[str, Path]:
        return {kind: self.export(kind) for kind in self.kinds}

    def every_path(self) -> list[Path]:
        """The image, its palette JSON and each export asked for."""
        return [self.image, self.palette, *self.exports.values()]

    def missing_exports(self) -> list[str]:
        return [kind for kind, path in self.exports.items() if not path.is_file()]

    def export_name(self) -> str:
        """The name a palette file carries inside (GIMP's ``Name:``, the CSS prefix)."""
        return PurePosixPath(stem_of(self.output)).name


def encode_image(indexed: Image.Image, fmt: str, icc_profile: bytes | None = None) -> bytes:
    """Encode a mode-P result in ``fmt``; no metadata but the colour profile."""
    encoders = {"png": _png, "webp": _webp, "gif": _gif}
    buffer = io.BytesIO()
    encoders[fmt](indexed, buffer, icc_profile)
    return buffer.getvalue()


def _png(indexed, buffer, icc_profile):
    buffer.write(png_bytes(indexed, icc_profile))


def _webp(indexed, buffer, icc_profile):
    mode = "RGBA" if "transparency" in indexed.info else "RGB"
    options = {"lossless": True, "method": WEBP_METHOD, "quality": WEBP_QUALITY, "exact": True}
    if icc_profile:
        options["icc_profile"] = icc_profile
    indexed.convert(mode).save(buffer, format="WEBP", **options)


def _gif(indexed, buffer, icc_profile):
    options = {"optimize": False}
    alphas = indexed.info.get("transparency")
    if isinstance(alphas, bytes):
        clear = np.flatnonzero(np.frombuffer(alphas, dtype=np.uint8) == 0)
        if len(clear):
            options["transparency"] = int(clear[0])
        indexed = indexed.copy()
        indexed.info.pop("transparency", None)
    indexed.save(buffer, format="GIF", **options)


def export_files(files: OutputFiles, colors: np.ndarray, kinds=None) -> dict[Path, bytes]:
    """The bytes of each export of ``files`` (or only ``kinds``) for the palette ``colors``."""
    chosen = files.kinds if kinds is None else kinds
    return export_files_named([files.export(kind) for kind in chosen], colors, files.export_name())


def export_files_named(paths: list[Path], colors: np.ndarray, name: str) -> dict[Path, bytes]:
    """The bytes of each palette file in ``paths``, its kind read from its extension."""
    return {path: export_bytes(path.suffix.lstrip("."), colors, name) for path in paths}
