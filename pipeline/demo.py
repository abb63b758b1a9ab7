"""``colorquant demo``: the seed example end to end on scikit-learn's bundled photos."""

import filecmp
import os
import shutil
from pathlib import Path

from pipeline.batch import collect_items, run_batch
from pipeline.compare import comparison_figure, panels
from pipeline.discover import resolve_roots
from pipeline.ownership import OutputRefused, check_figure_target

#: The photos scikit-learn ships, which the seed example uses.
DEMO_IMAGES = ("china.jpg", "flower.jpg")


def bundled_image_folder() -> Path:
    """Where scikit-learn keeps its sample photos (found without importing scikit-learn)."""
    from importlib.util import find_spec

    spec = find_spec("sklearn")
    return Path(spec.origin).parent / "datasets" / "images"


#: Output folder of each result the demo writes, by its panel in the figure (left to right).
DEMO_FOLDERS = ("example", "default", "random")


def run_demo(folder: Path, k: int, workers: int, on_result=None, overwrite: bool = False) -> dict:
    """Copy the photos to ``folder/input``; write the example's result, colorquant's default
    and the random codebook (each in its own folder); draw a four-panel figure per photo.

    Raises OutputRefused, before writing anything, when a file there is not the demo's own
    (unless ``overwrite``). A re-run skips the results that are up to date.
    """
    inputs = folder / "input"
    figures = {name: folder / f"{Path(name).stem}-compare.png" for name in DEMO_IMAGES}
    for name in DEMO_IMAGES:
        _check_copy_target(bundled_image_folder() / name, inputs / name, overwrite)
        check_figure_target(figures[name], inputs / name, overwrite)
    inputs.mkdir(parents=True, exist_ok=True)
    for name in DEMO_IMAGES:
        if not _same_bytes(bundled_image_folder() / name, inputs / name):
            shutil.copyfile(bundled_image_folder() / name, inputs / name)
    summaries = {}
    results = [panel.params for panel in panels(k, seed=0) if panel.params is not None]
    for name, params in zip(DEMO_FOLDERS, results, strict=True):
        out = folder / name
        items, ignored = collect_items(resolve_roots([inputs], out))
        summaries[name] = run_batch(
            items,
            out,
            params,
            workers=workers,
            overwrite=overwrite,
            ignored=ignored,
            on_result=on_result,
        )
    drawn = [comparison_figure(inputs / name, figures[name], k) for name in DEMO_IMAGES]
    return {"folder": folder, "summaries": summaries, "figures": drawn}


def _check_copy_target(bundled: Path, target: Path, overwrite: bool) -> None:
    if os.path.lexists(target) and not overwrite and not _same_bytes(bundled, target):
        raise OutputRefused(
            f"{target} exists and is not the demo's copy of {bundled.name}; "
            "not replaced without --overwrite"
        )


def _same_bytes(first: Path, second: Path) -> bool:
    try:
        return second.is_file() and filecmp.cmp(first, second, shallow=False)
    except OSError:
        return False
