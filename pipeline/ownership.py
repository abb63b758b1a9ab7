"""Never destroy what colorquant did not write: which files a writer may replace.

Two rules hold for every writer (``run``, ``submit`` and its workers, ``compare``, ``demo``):

- An output path that is an input of the same job is refused before anything is written.
- A file at an output path that colorquant did not make is never replaced without
  ``overwrite``. An image's outputs (the indexed image and every sidecar) are colorquant's when
  the palette JSON beside them names that image's output; a figure is colorquant's when it
  carries the panels' text chunk that ``compare`` writes into every PNG figure.

Whether two paths are one file is asked of the file system (device and inode), never decided by
comparing names, so hard links, symlinks and case-insensitive file systems (where ``A.png`` and
``a.png`` are one file) are all covered by the same test.
"""

import json
import os
from collections.abc import Iterable
from pathlib import Path

from pipeline.discover import InputItem, InputRoot, InputWalk, output_paths


class OutputRefused(ValueError):
    """Writing would replace a file colorquant must not replace; nothing was written."""


class OutputIsInput(OutputRefused):
    """An output path is an input of the same job: a usage error, found before any work."""


def file_identity(path: str | Path) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path`` (links followed), or None when there is none."""
    try:
        stat = os.stat(path)
    except (OSError, ValueError):
        return None
    return stat.st_dev, stat.st_ino


def same_file(first: str | Path, second: str | Path) -> bool:
    """True when both paths exist and are one file."""
    identity = file_identity(first)
    return identity is not None and identity == file_identity(second)


def outputs_may_reach_inputs(roots: list[InputRoot], out: str | Path) -> bool:
    """True when some input lies inside OUT, the only way an output path can be an input.

    Cheap, so the full check below runs only for jobs that need it.
    """
    out_real = Path(os.path.abspath(out)).resolve()
    for root in roots:
        real = root.path.resolve()
        if real == out_real or out_real in real.parents:
            return True
    return False


def refuse_outputs_over_inputs(
    roots: list[InputRoot],
    out: str | Path,
    items: Iterable[InputItem] | None = None,
    fmt: str = "png",
    exports: Iterable[str] = (),
) -> None:
    """Raise OutputIsInput when an output path of the job is one of the job's inputs.

    ``items`` defaults to a fresh walk of ``roots``; it is walked only when some input lies
    inside OUT.
    """
    if not outputs_may_reach_inputs(roots, out):
        return
    listed = list(InputWalk(roots) if items is None else items)
    inputs = {}
    for item in listed:
        identity = file_identity(item.path)
        if identity is not None:
            inputs.setdefault(identity, item)
    for item in listed:
        for path in output_paths(out, item.output, fmt, exports):
            overwritten = inputs.get(file_identity(path))
            if overwritten is not None:
                raise OutputIsInput(
                    f"the output {path} would replace the input {overwritten.path}; "
                    "choose an -o folder that holds no inputs"
                )


def foreign_output(paths: Iterable[Path], palette: dict | None, output: str) -> Path | None:
    """The first existing file among an image's output ``paths`` that colorquant did not make.

    ``palette`` is the parsed palette JSON found beside them (None when absent or unreadable);
    when it names ``output`` (compared case-insensitively, as such a file system would), every
    output of the image is colorquant's.
    """
    if is_palette_of(palette, output):
        return None
    for path in paths:
        if os.path.lexists(path):
            return path
    return None


def read_palette(palette_path: Path) -> dict | None:
    """The parsed palette JSON at ``palette_path``; None when absent, unreadable or not one."""
    try:
        document = json.loads(palette_path.read_bytes())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def is_palette_of(palette: dict | None, output: str) -> bool:
    """True when ``palette`` is the palette JSON of ``output``, in any of the image formats
    (the files of one output share its name up to the extension)."""
    named = palette.get("output") if isinstance(palette, dict) else None
    return isinstance(named, str) and _stem(named).casefold() == _stem(output).casefold()


def _stem(output: str) -> str:
    return output.rsplit(".", 1)[0] if "." in output.rsplit("/", 1)[-1] else output


def not_ours_reason(path: Path) -> str:
    """The failure reason for an image whose output path holds a file colorquant did not make."""
    return (
        f"{path} exists and colorquant did not write it (no matching palette JSON); "
        "not replaced without --overwrite"
    )


def is_our_figure(path: Path) -> bool:
    """True when ``path`` is a figure colorquant drew (a PNG with the panels' text chunk)."""
    from PIL import Image

    from pipeline.compare import PANELS_KEY

    try:
        with Image.open(path) as image:
            return image.format == "PNG" and PANELS_KEY in image.info
    except Exception:  # unreadable, or not an image: not ours
        return False


def check_figure_target(figure: Path, source: Path, overwrite: bool) -> None:
    """Refuse to draw a figure over its own source, or over a file colorquant did not draw."""
    if same_file(figure, source):
        raise OutputIsInput(f"the figure {figure} would replace the image {source}")
    if os.path.lexists(figure) and not overwrite and not is_our_figure(figure):
        raise OutputRefused(
            f"{figure} exists and colorquant did not draw it; not replaced without --overwrite"
        )
