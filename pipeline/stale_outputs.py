"""Remove the outputs an image's new outputs replace, so a re-run leaves no orphan colorquant wrote.

Two re-runs name an image's output differently from the run before:

- another ``--format``: ``a/b.webp`` replaces ``a/b.png`` (their palette JSON is one file,
  ``a/b.palette.json``, read before the new one is written);
- a same-stem sibling added or removed (see :func:`pipeline.discover.output_names`): ``b.jpg``
  alone goes to ``b.png``; beside ``b.png`` it goes to ``b.jpg.png``, and back again;
- fewer ``--export`` kinds: ``a/b.gpl`` of the palette before stays beside a JSON that lists
  another palette, unless removed.

A file is removed only when it is colorquant's output of this very source: the palette JSON
beside it names it and this source, and the image has the size that JSON recorded (a file a
person put there since is left alone). Nothing that is an input, or one of the new outputs, is
ever removed.
"""

import os
from pathlib import Path, PurePosixPath

from pipeline.discover import InputItem
from pipeline.outputs import OutputFiles, stem_of
from pipeline.ownership import is_palette_of, read_palette, same_file
from pipeline.settings import EXPORT_FORMATS, IMAGE_FORMATS, PALETTE_SUFFIX


def stale_image(previous: dict | None, item: InputItem, files: OutputFiles) -> Path | None:
    """The image of another format that ``previous`` (the palette JSON at ``files.palette``
    before this write) names for this source, when it is still there untouched."""
    if not _names_this_source(previous, item, files.output):
        return None
    extension = previous["output"].rsplit(".", 1)[-1]
    if extension == files.output.rsplit(".", 1)[-1] or extension not in IMAGE_FORMATS:
        return None
    image = files.root / f"{stem_of(files.output)}.{extension}"
    return image if _untouched(image, previous, item, files) else None


def remove_stale_outputs(previous: dict | None, item: InputItem, files: OutputFiles) -> None:
    """After ``files`` were written for ``item``: remove the image of another format that
    ``previous`` named, and every output of this source under its other walk name."""
    image = stale_image(previous, item, files)
    if image is not None:
        _remove(image)
    for path in _dropped_exports(previous, item, files):
        _remove(path)
    for name in _other_walk_names(item):
        _remove_outputs_named(name, item, files)


def _dropped_exports(previous: dict | None, item: InputItem, files: OutputFiles) -> list[Path]:
    """The palette files ``previous`` listed beside this image that this write did not redo:
    they hold the palette before it, so keeping them would contradict the new JSON."""
    if not _names_this_source(previous, item, files.output):
        return []
    kinds = [kind for kind in previous.get("exports") or () if kind in EXPORT_FORMATS]
    return [files.export(kind) for kind in kinds if kind not in files.kinds]


def _other_walk_names(item: InputItem) -> list[str]:
    """The walk names this input has had, or will have, beside a same-stem sibling or without
    one, other than its name now: ``b.png`` and ``b.jpg.png`` for ``b.jpg``."""
    folder = PurePosixPath(item.output).parent
    name = PurePosixPath(item.rel).name
    plain, kept = os.path.splitext(name)[0] + ".png", name + ".png"
    names = {(folder / plain).as_posix(), (folder / kept).as_posix()}
    return sorted(names - {item.output})


def _remove_outputs_named(walk_name: str, item: InputItem, files: OutputFiles) -> None:
    """Remove the image, exports and palette JSON at ``walk_name`` when they are this source's."""
    stem = walk_name[: -len(".png")]
    palette_path = files.root / (stem + PALETTE_SUFFIX)
    previous = read_palette(palette_path)
    if not _names_this_source(previous, item, walk_name) or same_file(palette_path, files.palette):
        return
    extension = previous["output"].rsplit(".", 1)[-1]
    image = files.root / f"{stem}.{extension}"
    if extension not in IMAGE_FORMATS or not _untouched(image, previous, item, files):
        return  # not the image that JSON describes: a person's file, kept with its JSON
    kinds = [kind for kind in previous.get("exports") or () if kind in EXPORT_FORMATS]
    for path in [files.root / f"{stem}.{kind}" for kind in kinds] + [image]:
        if not any(same_file(path, mine) for mine in files.every_path()):
            _remove(path)
    _remove(palette_path)  # last: while it is there, what it names stays colorquant's


def _names_this_source(previous: dict | None, item: InputItem, output: str) -> bool:
    return (
        is_palette_of(previous, output)
        and previous.get("source") == item.source
        and isinstance(previous.get("output"), str)
    )


def _untouched(image: Path, previous: dict, item: InputItem, files: OutputFiles) -> bool:
    """True when ``image`` is the one ``previous`` describes (its recorded size), and neither
    this input nor one of the new outputs."""
    try:
        if image.stat().st_size != previous["metrics"]["bytes_out"]:
            return False
    except (OSError, KeyError, TypeError):
        return False
    return not same_file(image, item.path) and not any(
        same_file(image, mine) for mine in files.every_path()
    )


def _remove(path: Path) -> None:
    """Best effort: the new outputs are written, so a stale file that cannot be removed (gone
    already, removed by another copy of this task, or a read-only folder) must not fail them."""
    try:
        path.unlink()
    except OSError:
        pass
